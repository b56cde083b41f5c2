/*
 * The host's TSC rate, for TCG guests: under TCG a guest's TSC is the
 * host's, and a guest left to calibrate it on a loaded host can get it
 * wrong (microvm has no HPET or ACPI PM timer to fall back on), so the
 * launcher and tools/ne-vm give it on the kernel's command line
 * (tsc_early_khz=).  Plain C, shared with tools/vm/tsc-khz.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_TSC_H
#define HW_NE_NE_TSC_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The host's TSC rate in kHz into *@khz, measured against
 * CLOCK_MONOTONIC_RAW (five 40 ms intervals, each end one RDTSC between
 * two clock reads at most 20 us apart, agreeing within 0.2%: their median;
 * up to three times).  Returns 0; or, with @why set to a static string,
 * -ENODEV when the TSC is no clock a guest can keep (not constant; or,
 * with @host_clock, not the host kernel's own clocksource, as on a host
 * that is itself a VM claiming a constant TSC: a guest told tsc=reliable
 * needs that), -EAGAIN when the host was too loaded to measure it.  Takes
 * about 200 ms.
 */
int ne_tsc_khz(bool host_clock, uint64_t *khz, const char **why);

#endif /* HW_NE_NE_TSC_H */
