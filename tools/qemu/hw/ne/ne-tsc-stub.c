/*
 * The host's TSC rate (see ne-tsc.h) on a host that has none: its TCG
 * guests calibrate for themselves.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>

#include "ne-tsc.h"

int ne_tsc_khz(bool host_clock, uint64_t *khz, const char **why)
{
    (void)host_clock;
    *khz = 0;
    *why = "not an x86 host";
    return -ENODEV;
}
