#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# nectl run's hugepages come from the CPU pool's NUMA node, on a guest with
# two nodes only (make check's NUMA stage; selftests/run runs it when named).
exec python3 -B "$(dirname "$0")/../tools/nectl/tests/numa_guest_test.py" "$@"
