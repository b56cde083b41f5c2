/*
 * The host's TSC rate (see ne-tsc.h) on a host that has none: its TCG
 * guests calibrate for themselves.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>

#include "ne-tsc.h"

uint64_t ne_tsc_khz(const char **why)
{
    *why = "not an x86 host";
    return 0;
}
