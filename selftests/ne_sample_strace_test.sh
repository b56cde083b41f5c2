#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ne_sample_strace_test: the KVM-style sample launcher under strace reads like
# a KVM VMM's trace: every ioctl decoded by name, the memory region with its
# fields, all succeeding.  TAP output; exit 4 (skip) without the device.
TOP=${NE_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
SAMPLE=${NE_BUILD:-$TOP/build}/tools/ne_sample
POOL=/sys/module/ne_kvm/parameters/ne_cpus

echo "TAP version 13"
if [ ! -c /dev/nitro_enclaves ] || ! command -v strace > /dev/null; then
	echo "1..0 # SKIP no /dev/nitro_enclaves or no strace"
	exit 4
fi
old_pool=$(cat "$POOL")
[ "$old_pool" = 2-3 ] || echo 2-3 > "$POOL"
trace=$(strace -e trace=ioctl "$SAMPLE" --mem 64 2>&1)
rc=$?
[ "$old_pool" = 2-3 ] || echo "$old_pool" > "$POOL"

n=0 failed=0
check() {	# check DESCRIPTION EXTENDED-REGEX
	n=$((n + 1))
	if grep -qE "$2" <<< "$trace"; then
		echo "ok $n $1"
	else
		echo "not ok $n $1"
		failed=1
	fi
}
n=$((n + 1))
if [ $rc = 0 ]; then echo "ok $n sample exits 0"; else echo "not ok $n sample exits $rc"; failed=1; fi
check "KVM_GET_API_VERSION returns 12" 'ioctl\([0-9]+, KVM_GET_API_VERSION, 0\) += 12'
check "KVM_CREATE_VM returns a fd" 'ioctl\([0-9]+, KVM_CREATE_VM, 0\) += [0-9]+'
check "KVM_SET_USER_MEMORY_REGION decoded and succeeding" \
	'KVM_SET_USER_MEMORY_REGION, \{slot=0, flags=0, guest_phys_addr=0, memory_size=67108864, userspace_addr=0x[0-9a-f]+\}\) += 0'
check "KVM_CREATE_VCPU returns a fd" 'ioctl\([0-9]+, KVM_CREATE_VCPU, 0\) += [0-9]+'
check "the start ioctl is decoded and succeeds" 'ioctl\([0-9]+, NE_START_ENCLAVE, 0x[0-9a-f]+\) += 0'
echo "1..$n"
[ $failed = 0 ] && [ -z "$(grep -E '= -1 ' <<< "$trace")" ] || { echo "$trace" | sed 's/^/# /'; exit 1; }
exit 0
