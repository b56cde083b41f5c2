/*
 * The host's TSC rate (see ne-tsc.h), on x86 hosts (meson.build: other
 * hosts build ne-tsc-stub.c).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* CLOCK_MONOTONIC_RAW, whatever -std= */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "ne-tsc.h"

#define NE_TSC_ROUNDS           5
#define NE_TSC_INTERVAL_NS      40000000LL
#define NE_TSC_BRACKET_NS       20000LL
#define NE_TSC_TRIES            1000
#define NE_TSC_MEASURES         3

static bool ne_tsc_now(int64_t *ns)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts)) {
        return false;
    }
    *ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    return true;
}

/* One RDTSC and the time in the middle of its bracket */
static bool ne_tsc_sample(uint64_t *tsc, int64_t *ns)
{
    int64_t before, after;
    uint64_t t;
    int i;

    for (i = 0; i < NE_TSC_TRIES; i++) {
        if (!ne_tsc_now(&before)) {
            return false;
        }
        t = __rdtsc();
        if (!ne_tsc_now(&after)) {
            return false;
        }
        if (after - before <= NE_TSC_BRACKET_NS) {
            *tsc = t;
            *ns = before + (after - before) / 2;
            return true;
        }
    }
    return false;
}

/* The rate over one interval, in kHz, rounded; 0 if unmeasurable */
static uint64_t ne_tsc_round(void)
{
    struct timespec pause = { 0, NE_TSC_INTERVAL_NS };
    uint64_t t0, t1, dn;
    int64_t n0, n1;

    if (!ne_tsc_sample(&t0, &n0)) {
        return 0;
    }
    nanosleep(&pause, NULL);
    if (!ne_tsc_sample(&t1, &n1) || n1 <= n0 || t1 <= t0) {
        return 0;
    }
    dn = n1 - n0;
    return ((t1 - t0) * 1000000ULL + dn / 2) / dn;
}

static int ne_tsc_compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Whether /proc/cpuinfo's first flags line names @flag */
static bool ne_tsc_has_flag(const char *cpuinfo, const char *flag)
{
    const char *line = strstr(cpuinfo, "\nflags");
    const char *end = line ? strchr(line + 1, '\n') : NULL;
    size_t n = strlen(flag);
    const char *p;

    for (p = line; p && end && (p = strstr(p, flag)) && p < end; p += n) {
        if (p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n')) {
            return true;
        }
    }
    return false;
}

/*
 * Whether the host's TSC is constant and, if @host_clock, the host
 * kernel's own clocksource
 */
static bool ne_tsc_is_clock(bool host_clock, const char **why)
{
    char info[16384], source[32] = "";   /* (the first CPU's flags fit) */
    size_t len;
    FILE *f;

    f = fopen("/proc/cpuinfo", "r");
    len = f ? fread(info, 1, sizeof(info) - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    info[len] = '\0';
    if (!ne_tsc_has_flag(info, "constant_tsc") ||
        !ne_tsc_has_flag(info, "nonstop_tsc")) {
        *why = "the host's TSC is not constant";
        return false;
    }
    if (!host_clock) {
        return true;
    }
    f = fopen("/sys/devices/system/clocksource/clocksource0/"
              "current_clocksource", "r");
    if (!f || !fgets(source, sizeof(source), f) || strcmp(source, "tsc\n")) {
        if (f) {
            fclose(f);
        }
        *why = "the host kernel's clocksource is not the TSC";
        return false;
    }
    fclose(f);
    return true;
}

/*
 * One measure: the median of NE_TSC_ROUNDS rates, which must agree within
 * 0.2% (each end of an interval is within 10 us of its RDTSC, so a
 * constant TSC's rates differ by 0.1% at most); 0 with @why set if not.
 */
static uint64_t ne_tsc_measure(const char **why)
{
    uint64_t khz[NE_TSC_ROUNDS];
    int i;

    for (i = 0; i < NE_TSC_ROUNDS; i++) {
        khz[i] = ne_tsc_round();
        if (!khz[i]) {
            *why = "no tight sample of the TSC (a loaded host)";
            return 0;
        }
    }
    qsort(khz, NE_TSC_ROUNDS, sizeof(khz[0]), ne_tsc_compare);
    if ((khz[NE_TSC_ROUNDS - 1] - khz[0]) * 500 > khz[0]) {
        *why = "the TSC's rate varied between intervals";
        return 0;
    }
    return khz[NE_TSC_ROUNDS / 2];
}

int ne_tsc_khz(bool host_clock, uint64_t *khz, const char **why)
{
    int i;

    *khz = 0;
    *why = NULL;
    if (!ne_tsc_is_clock(host_clock, why)) {
        return -ENODEV;
    }
    /* a host loaded enough to spoil one measure rarely spoils three */
    for (i = 0; i < NE_TSC_MEASURES && !*khz; i++) {
        *khz = ne_tsc_measure(why);
    }
    if (!*khz) {
        return -EAGAIN;
    }
    *why = NULL;
    return 0;
}
