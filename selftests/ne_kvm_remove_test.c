// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_remove_test: the PCI device goes away (sysfs remove) while an
 * enclave runs.  Nothing crashes, the enclave's fds answer ENODEV, closing
 * them releases every pinned page and pooled core, and after a rescan the
 * driver binds again with /dev/nitro_enclaves back.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/ne_kvm.h>

#include "kselftest_harness.h"
#include "ne_test_util.h"
#include "ne_kvm_util.h"

#define ENCLAVE_MEM	(64ULL << 20)

static int wait_for_node(void)
{
	struct stat st;
	int i;

	for (i = 0; i < 100; i++) {
		if (!stat(NE_DEV_PATH, &st))
			return 0;
		usleep(50 * 1000);
	}
	return -1;
}

/* Whatever happened, the device comes back for the tests that follow. */
FIXTURE(remove) {
	int unused;
};

FIXTURE_SETUP(remove)
{
}

FIXTURE_TEARDOWN(remove)
{
	char dir[PATH_MAX];

	if (ne_find_pci_device(dir, sizeof(dir)))
		ne_write_file("/sys/bus/pci/rescan", "1");
	wait_for_node();
}

TEST_F(remove, with_a_running_enclave_then_rescan)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	uint64_t cid = 0;
	long pins_before;
	int vm, v0, v1;
	char *mem;

	ASSERT_EQ(0, ne_ensure_pool());
	ASSERT_EQ(0, ne_find_pci_device(dir, sizeof(dir)));
	mem = ne_huge_alloc(ENCLAVE_MEM);
	ASSERT_NE(MAP_FAILED, mem);
	pins_before = ne_pins_held();

	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	ASSERT_EQ(0, ne_set_region(vm, 0, 0, mem, ENCLAVE_MEM, 0));
	v0 = ioctl(vm, KVM_CREATE_VCPU, 0);
	v1 = ioctl(vm, KVM_CREATE_VCPU, 1);
	ASSERT_LE(0, v0);
	ASSERT_LE(0, v1);
	ASSERT_EQ(0, ne_start(vm, 0, &cid));
	EXPECT_LT(0, ne_pins_held() - pins_before);

	snprintf(path, sizeof(path), "%s/remove", dir);
	ASSERT_EQ(0, ne_write_file(path, "1"));

	/*
	 * The enclave is gone with the device: its resource and start ioctls
	 * say so before any state rule (queries such as KVM_CHECK_EXTENSION
	 * still answer).
	 */
	ASSERT_IOCTL_ERRNO(ENODEV, vm, KVM_CREATE_VCPU, 2);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(vm, 1, ENCLAVE_MEM, mem, 2 << 20, 0));
	EXPECT_EQ(ENODEV, errno);
	errno = 0;
	EXPECT_EQ(-1, ne_start(vm, 0, &cid));
	EXPECT_EQ(ENODEV, errno);
	close(v0);
	close(v1);
	close(vm);
	EXPECT_EQ(pins_before, ne_pins_held());
	munmap(mem, ENCLAVE_MEM);

	ASSERT_EQ(0, ne_write_file("/sys/bus/pci/rescan", "1"));
	ASSERT_EQ(0, wait_for_node());
	vm = ne_create_vm();
	ASSERT_LE(0, vm) {
		TH_LOG("the driver does not work after the rescan");
	}
	close(vm);
}

int main(int argc, char **argv)
{
	ne_require_device();
	return test_harness_run(argc, argv);
}
