// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_parallel_test: ioctls on different enclaves do not wait for each
 * other, except for the device command itself (one at a time).  While
 * enclave A's KVM_CREATE_VCPU waits for a slow device reply (the delay
 * knob), enclave B's ioctls that need no command return before A's, and
 * B's device command is sent only once A's is answered: the device's
 * counters show no command rung while another was in flight, and every
 * command answered when B's ioctl returns (not A's thread's return, which
 * may come after B's: A still creates its vCPU fd once answered).  Only
 * the order of events is asserted, never a duration.  (The counters also
 * count any command the driver sends on its own meanwhile, e.g. a
 * previous program's teardown; none is pending when a program starts on
 * an idle device, as selftests/run runs them.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/ne_kvm.h>

#include "kselftest_harness.h"
#include "ne_test_util.h"
#include "ne_kvm_util.h"

#define SLOW_REPLY_MS	3000

struct slow_vcpu {
	int vm;
	int vcpu;
	atomic_int done;
};

static void *create_vcpu(void *arg)
{
	struct slow_vcpu *a = arg;

	a->vcpu = ioctl(a->vm, KVM_CREATE_VCPU, 0);
	atomic_store(&a->done, 1);
	return NULL;
}

TEST(other_enclaves_wait_only_for_the_device)
{
	volatile uint32_t *tc = ne_testctl_map();
	struct slow_vcpu a = { .vcpu = -1 };
	char *mem = ne_huge_alloc(2 << 20);
	uint32_t sent, total, replies, ignored;
	pthread_t thread;
	int vm_b;

	ASSERT_TRUE(tc != NULL) {
		TH_LOG("no test controls: BAR 2 missing (tools/ne-vm --ne-pci test-controls=on)");
	}
	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, ne_set_pool("2-3"));
	a.vm = ne_create_vm();
	vm_b = ne_create_vm();
	ASSERT_LE(0, a.vm);
	ASSERT_LE(0, vm_b);

	ne_tc_disarm_all(tc);
	sent = ne_tc_cmds(tc, NE_WIRE_SLOT_ADD_VCPU);
	total = ne_tc_read(tc, NE_TESTCTL_CMDS_TOTAL);
	replies = ne_tc_read(tc, NE_TESTCTL_REPLIES);
	ignored = ne_tc_read(tc, NE_TESTCTL_CMDS_IGNORED);
	ne_tc_arm(tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_ADD_VCPU,
		  NE_TESTCTL_DELAY_MS, SLOW_REPLY_MS);
	ASSERT_EQ(0, pthread_create(&thread, NULL, create_vcpu, &a));
	/* A's command is at the device once the device has counted it. */
	while (ne_tc_cmds(tc, NE_WIRE_SLOT_ADD_VCPU) == sent)
		usleep(1000);

	/* B's ioctls that send nothing do not wait for A. */
	EXPECT_EQ(1, ioctl(vm_b, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
	EXPECT_EQ(0, atomic_load(&a.done));
	ASSERT_IOCTL_ERRNO(EINVAL, vm_b, KVM_CREATE_VCPU, 1 << 20);
	EXPECT_EQ(0, atomic_load(&a.done)) {
		TH_LOG("enclave B's ioctls waited for enclave A's command");
	}

	/* B's device command (SLOT_ADD_MEM) waits for the device: after A's. */
	EXPECT_EQ(0, ne_set_region(vm_b, 0, 0, mem, 2 << 20, 0));
	EXPECT_EQ(ignored, ne_tc_read(tc, NE_TESTCTL_CMDS_IGNORED)) {
		TH_LOG("a command was rung while another was in flight");
	}
	EXPECT_LE(total + 2, ne_tc_read(tc, NE_TESTCTL_CMDS_TOTAL));
	EXPECT_EQ(ne_tc_read(tc, NE_TESTCTL_CMDS_TOTAL) - total,
		  ne_tc_read(tc, NE_TESTCTL_REPLIES) - replies) {
		TH_LOG("B's ioctl returned before every command was answered (A's included)");
	}
	ASSERT_EQ(0, pthread_join(thread, NULL));
	EXPECT_LE(0, a.vcpu);

	ne_tc_disarm_all(tc);
	close(a.vcpu);
	close(a.vm);
	close(vm_b);
	munmap(mem, 2 << 20);
	munmap((void *)tc, NE_TESTCTL_BAR_SIZE);
}

int main(int argc, char **argv)
{
	ne_require_device();
	return test_harness_run(argc, argv);
}
