// SPDX-License-Identifier: GPL-2.0
/*
 * tools/vm/tsc-khz: prints the host's TSC frequency in kHz, measured
 * against CLOCK_MONOTONIC_RAW, for tools/ne-vm to give its TCG guests
 * (tsc_early_khz=): under TCG a guest's TSC is the host's, and a guest
 * that calibrates it on a loaded host can get it wrong.
 *
 * Each sample brackets one RDTSC between two clock reads no more than
 * 20 us apart; the frequency is the median of five 40 ms intervals, which
 * must agree within 0.1%.  Exit status 1, with a message, when they do not
 * or no sample is tight enough (a host too loaded to measure, or a TSC
 * that is no clock): the guest then calibrates for itself.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define ROUNDS          5
#define INTERVAL_NS     40000000LL
#define BRACKET_NS      20000LL
#define TRIES           1000

static int now_ns(int64_t *ns)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts))
		return 0;
	*ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	return 1;
}

/* One RDTSC and the time in the middle of its bracket; 0 if none tight */
static int sample(uint64_t *tsc, int64_t *ns)
{
	int64_t before, after;
	uint64_t t;
	int i;

	for (i = 0; i < TRIES; i++) {
		if (!now_ns(&before))
			return 0;
		t = __rdtsc();
		if (!now_ns(&after))
			return 0;
		if (after - before <= BRACKET_NS) {
			*tsc = t;
			*ns = before + (after - before) / 2;
			return 1;
		}
	}
	return 0;
}

static int compare(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The TSC's rate over one interval, in kHz, rounded; 0 if unmeasurable */
static uint64_t one_round(void)
{
	struct timespec pause = { 0, INTERVAL_NS };
	uint64_t t0, t1, dn;
	int64_t n0, n1;

	if (!sample(&t0, &n0))
		return 0;
	nanosleep(&pause, NULL);
	if (!sample(&t1, &n1) || n1 <= n0 || t1 <= t0)
		return 0;
	dn = n1 - n0;
	return ((t1 - t0) * 1000000ULL + dn / 2) / dn;
}

int main(void)
{
	uint64_t khz[ROUNDS];
	int i;

	for (i = 0; i < ROUNDS; i++) {
		khz[i] = one_round();
		if (!khz[i]) {
			fprintf(stderr, "tsc-khz: no tight sample of the TSC\n");
			return 1;
		}
	}
	qsort(khz, ROUNDS, sizeof(khz[0]), compare);
	if ((khz[ROUNDS - 1] - khz[0]) * 1000 > khz[0]) {
		fprintf(stderr, "tsc-khz: the TSC's rate varies: %llu to %llu kHz\n",
			(unsigned long long)khz[0], (unsigned long long)khz[ROUNDS - 1]);
		return 1;
	}
	printf("%llu\n", (unsigned long long)khz[ROUNDS / 2]);
	return 0;
}
