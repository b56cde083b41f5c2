// SPDX-License-Identifier: GPL-2.0
/*
 * tools/vm/tsc-khz: prints the host's TSC frequency in kHz, measured
 * against CLOCK_MONOTONIC_RAW, for tools/ne-vm to give its TCG guests
 * (tsc_early_khz=): under TCG a guest's TSC is the host's, and a guest
 * that calibrates it on a loaded host can get it wrong.
 *
 * Each sample brackets one RDTSC between two clock reads no more than
 * 20 us apart; the frequency is the median of five 40 ms intervals.
 * Exit status 1, with a message, when no sample is tight enough (a host
 * too loaded to measure: the guest then calibrates for itself).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define ROUNDS          5
#define INTERVAL_NS     40000000LL
#define BRACKET_NS      20000LL
#define TRIES           1000

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One RDTSC and the time in the middle of its bracket; 0 if none tight */
static int sample(uint64_t *tsc, int64_t *ns)
{
	int i;

	for (i = 0; i < TRIES; i++) {
		int64_t before = now_ns();
		uint64_t t = __rdtsc();
		int64_t after = now_ns();

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

int main(void)
{
	struct timespec pause = { 0, INTERVAL_NS };
	uint64_t khz[ROUNDS], t0, t1;
	int64_t n0, n1;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		if (!sample(&t0, &n0) || nanosleep(&pause, NULL) ||
		    !sample(&t1, &n1) || n1 <= n0) {
			fprintf(stderr, "tsc-khz: no tight sample of the TSC\n");
			return 1;
		}
		khz[i] = (t1 - t0) * 1000000ULL / (uint64_t)(n1 - n0);
	}
	qsort(khz, ROUNDS, sizeof(khz[0]), compare);
	printf("%llu\n", (unsigned long long)khz[ROUNDS / 2]);
	return 0;
}
