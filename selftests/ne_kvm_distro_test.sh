#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ne_kvm_distro_test: when the distribution's nitro_enclaves driver already
# owns the device (a stand-in here: Debian's kernel does not build it),
# loading ne_kvm succeeds and says so in one kernel log line, instead of
# failing with EBUSY; once that driver is gone, ne_kvm binds the device
# again.  TAP output; exit 4 (skip) without the device or the module files.
KO=${NE_KVM_KO:-}
FAKE=${NE_FAKE_NITRO_KO:-${NE_BUILD:-${NE_TOP:-.}/build}/selftests/fake_nitro/fake_nitro_enclaves.ko}
echo "TAP version 13"
if [ ! -c /dev/nitro_enclaves ] || [ ! -f "$KO" ] || [ ! -f "$FAKE" ]; then
	echo "1..0 # SKIP no /dev/nitro_enclaves, NE_KVM_KO or $FAKE"
	exit 4
fi
n=0 failed=0
ok() {	# ok DESCRIPTION COMMAND...
	local what=$1
	shift
	n=$((n + 1))
	if "$@" > /tmp/ne_kvm_distro_test.out 2>&1; then
		echo "ok $n $what"
	else
		echo "not ok $n $what"
		sed 's/^/# /' /tmp/ne_kvm_distro_test.out
		failed=1
	fi
}
not() { ! "$@"; }
wait_node() { for _ in $(seq 50); do [ -c /dev/nitro_enclaves ] && return 0; sleep 0.1; done; return 1; }
line='ne_kvm: the NE device belongs to the nitro_enclaves module'

ok "rmmod ne_kvm" rmmod ne_kvm
ok "the stand-in nitro_enclaves driver binds the device" sh -c \
	"insmod '$FAKE' && ls /sys/bus/pci/drivers/nitro_enclaves | grep -q ':'"
before=$(dmesg | grep -c "$line")
ok "insmod ne_kvm succeeds" insmod "$KO"
ok "it says why, in one line" sh -c \
	"[ \$(dmesg | grep -c '$line') = $((before + 1)) ]"
ok "and makes no /dev/nitro_enclaves" not test -e /dev/nitro_enclaves
ok "rmmod ne_kvm" rmmod ne_kvm
# Whatever failed, the stand-in goes, so that ne_kvm can have the device.
ok "rmmod the stand-in" rmmod fake_nitro_enclaves
# Leave the module as the suite found it: loaded, bound, its node there.
ok "ne_kvm loads and binds the device again" sh -c \
	"$(declare -f wait_node); insmod '$KO' && wait_node"
echo "1..$n"
exit $failed
