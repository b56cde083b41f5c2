#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# nectl run/describe/terminate against ne_kvm.ko, inside the parent VM (TAP).
# Exit 0 pass, 1 fail, 4 skip (no /dev/nitro_enclaves).
exec python3 -B "$(dirname "$0")/../tools/nectl/tests/guest_test.py" "$@"
