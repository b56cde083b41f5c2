#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ne_kvm_module_test: load/unload cycles.  The module cannot go while an fd
# is open; it goes cleanly afterwards, comes back with its parameters, and
# /dev/nitro_enclaves comes back with it.  TAP output; exit 4 (skip) without
# the device or the module file.
KO=${NE_KVM_KO:-}
echo "TAP version 13"
if [ ! -c /dev/nitro_enclaves ] || [ ! -f "$KO" ]; then
	echo "1..0 # SKIP no /dev/nitro_enclaves or no module file (NE_KVM_KO)"
	exit 4
fi
n=0 failed=0
ok() {	# ok DESCRIPTION COMMAND...
	local what=$1
	shift
	n=$((n + 1))
	if "$@" > /tmp/ne_kvm_module_test.out 2>&1; then
		echo "ok $n $what"
	else
		echo "not ok $n $what"
		sed 's/^/# /' /tmp/ne_kvm_module_test.out
		failed=1
	fi
}
not() { ! "$@"; }
bound() { [ -e /sys/bus/pci/drivers/nitro_enclaves ] && ls /sys/bus/pci/drivers/nitro_enclaves | grep -q ':'; }
wait_node() { for _ in $(seq 50); do [ -c /dev/nitro_enclaves ] && return 0; sleep 0.1; done; return 1; }

exec 3<> /dev/nitro_enclaves
ok "rmmod refused while /dev/nitro_enclaves is open" not rmmod ne_kvm
exec 3>&-
for cycle in 1 2 3; do
	ok "cycle $cycle: rmmod once nothing is open" rmmod ne_kvm
	ok "cycle $cycle: the device node is gone" not test -e /dev/nitro_enclaves
	ok "cycle $cycle: insmod with parameters" insmod "$KO" cmd_timeout_ms=5000 ne_cpus=2-3
	ok "cycle $cycle: the device is bound and the node is back" sh -c "$(declare -f bound wait_node); bound && wait_node"
	ok "cycle $cycle: parameters taken at load" sh -c \
		'[ "$(cat /sys/module/ne_kvm/parameters/cmd_timeout_ms)" = 5000 ] &&
		 [ "$(cat /sys/module/ne_kvm/parameters/ne_cpus)" = 2-3 ] &&
		 [ "$(cat /sys/devices/system/cpu/cpu2/online)" = 0 ]'
done
ok "unload brings the pool's CPUs back online" sh -c \
	'rmmod ne_kvm && [ "$(cat /sys/devices/system/cpu/cpu2/online)" = 1 ] &&
	 [ "$(cat /sys/devices/system/cpu/cpu3/online)" = 1 ]'
# ne_cpus is set before the load can still fail (here on the next
# parameter), when no module exit will run: nothing may be taken then.
ok "a load that fails after ne_cpus=2-3 takes no CPU and no hotplug state" sh -c \
	"! insmod '$KO' ne_cpus=2-3 cmd_timeout_ms=bogus &&
	 [ \"\$(cat /sys/devices/system/cpu/cpu2/online)\" = 1 ] &&
	 [ \"\$(cat /sys/devices/system/cpu/cpu3/online)\" = 1 ] &&
	 ! grep ne_kvm /sys/devices/system/cpu/hotplug/states"
# Leave the module as the suite found it: loaded with its defaults.
ok "reload with the defaults" sh -c "insmod '$KO' && $(declare -f wait_node); wait_node"
echo "1..$n"
exit $failed
