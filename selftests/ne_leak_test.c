// SPDX-License-Identifier: GPL-2.0
/*
 * ne_leak_test: run last by selftests/run, it checks that the suite left
 * nothing behind: no page pinned, no slot in the device, no enclave fd, and
 * every core of the CPU pool back in the pool (and still offline).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/ne_kvm.h>

#include "kselftest_harness.h"
#include "ne_test_util.h"
#include "ne_kvm_util.h"

TEST(no_page_is_left_pinned)
{
	EXPECT_EQ(0, ne_pins_held());
}

TEST(device_holds_no_slot)
{
	volatile uint32_t *tc = ne_testctl_map();

	ASSERT_TRUE(tc != NULL) {
		TH_LOG("no test controls: BAR 2 missing (tools/ne-vm --ne-pci test-controls=on)");
	}
	EXPECT_EQ(0, ne_tc_read(tc, NE_TESTCTL_SLOTS));
	munmap((void *)tc, NE_TESTCTL_BAR_SIZE);
}

/* True if /proc/PID/fd/FD is an enclave VM or vCPU. */
static int is_enclave_fd(const char *pid, const char *fd)
{
	char path[PATH_MAX], target[256];
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%s/fd/%s", pid, fd);
	len = readlink(path, target, sizeof(target) - 1);
	if (len < 0)
		return 0;
	target[len] = '\0';
	return !strcmp(target, "anon_inode:ne-vm") ||
	       !strcmp(target, "anon_inode:ne-vcpu");
}

TEST(no_process_holds_an_enclave_fd)
{
	struct dirent *p, *f;
	DIR *procs = opendir("/proc");
	char path[PATH_MAX];
	int found = 0;

	ASSERT_NE(NULL, procs);
	while ((p = readdir(procs))) {
		DIR *fds;

		if (p->d_name[0] < '0' || p->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((f = readdir(fds)))
			if (is_enclave_fd(p->d_name, f->d_name)) {
				TH_LOG("process %s holds fd %s", p->d_name,
				       f->d_name);
				found++;
			}
		closedir(fds);
	}
	closedir(procs);
	EXPECT_EQ(0, found);
}

TEST(pool_has_all_its_cores_offline)
{
	char list[256], path[128], online[8];
	int cpus[256], n, i, vm;

	ASSERT_EQ(0, ne_read_file(NE_CPUS_PARAM, list, sizeof(list)));
	/*
	 * An empty pool holds nothing to leak: fill it (refused with EBUSY
	 * if an enclave outlived its test) and check the fresh pool instead.
	 */
	if (!list[0]) {
		ASSERT_EQ(0, ne_ensure_pool());
		ASSERT_EQ(0, ne_read_file(NE_CPUS_PARAM, list, sizeof(list)));
	}
	n = ne_cpulist(list, cpus, 256);
	ASSERT_LT(0, n);

	/* A new enclave could get every CPU of the pool. */
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	EXPECT_EQ(n, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	close(vm);

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu%d/online", cpus[i]);
		ASSERT_EQ(0, ne_read_file(path, online, sizeof(online)));
		EXPECT_EQ('0', online[0]) {
			TH_LOG("pool CPU %d is online", cpus[i]);
		}
	}
}

int main(int argc, char **argv)
{
	ne_require_device();
	return test_harness_run(argc, argv);
}
