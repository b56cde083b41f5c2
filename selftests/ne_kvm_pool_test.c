// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_pool_test: the rules of the CPU pool parameter ne_cpus.  The guest
 * has 4 CPUs, cores {0,1} and {2,3}: only 2-3 can be pooled.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/kvm.h>
#include <linux/ne_kvm.h>

#include "kselftest_harness.h"
#include "ne_test_util.h"
#include "ne_kvm_util.h"

static int cpu_online(int cpu)
{
	char path[96], val[8];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	if (ne_read_file(path, val, sizeof(val)))
		return -1;
	return val[0] == '1';
}

/* Empties the pool: a newline, since a write of 0 bytes changes nothing. */
#define NO_CPUS "\n"

static void pool_is(struct __test_metadata *_metadata, const char *want)
{
	char cur[64];

	ASSERT_EQ(0, ne_read_file(NE_CPUS_PARAM, cur, sizeof(cur)));
	EXPECT_STREQ(want, cur);
}

FIXTURE(pool) {
	char saved[64];
};

FIXTURE_SETUP(pool)
{
	ASSERT_EQ(0, ne_read_file(NE_CPUS_PARAM, self->saved,
				  sizeof(self->saved)));
	ASSERT_EQ(0, ne_set_pool(NO_CPUS));
}

static int set_online(int cpu, const char *val)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	return ne_write_file(path, val);
}

FIXTURE_TEARDOWN(pool)
{
	int cpu;

	ne_set_pool(NO_CPUS);
	/* What a test took offline by hand comes back. */
	for (cpu = 1; cpu < 4; cpu++)
		if (cpu_online(cpu) == 0)
			set_online(cpu, "1");
	ne_set_pool(self->saved[0] ? self->saved : NO_CPUS);
}

TEST_F(pool, whole_core_goes_offline_and_comes_back)
{
	ASSERT_EQ(0, ne_set_pool("2-3"));
	pool_is(_metadata, "2-3");
	EXPECT_EQ(0, cpu_online(2));
	EXPECT_EQ(0, cpu_online(3));
	ASSERT_EQ(0, ne_set_pool(NO_CPUS));
	pool_is(_metadata, "");
	EXPECT_EQ(1, cpu_online(2));
	EXPECT_EQ(1, cpu_online(3));
}

/*
 * A list that breaks a pool rule is refused, and the pool stays as it was:
 * the new list is checked before the old pool lets go of anything.
 */
TEST_F(pool, rule_breaking_lists_are_einval_and_keep_the_pool)
{
	static const char *const bad[] = {
		"2",		/* half a core */
		"3",		/* the other half */
		"0",		/* CPU 0 */
		"1",		/* CPU 0's sibling */
		"0-1",		/* CPU 0's core */
		"1-3",		/* with CPU 0's sibling */
		"0-3",		/* everything */
	};
	unsigned int i;

	ASSERT_EQ(0, ne_set_pool("2-3"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, ne_set_pool(bad[i])) {
			TH_LOG("ne_cpus=%s was not refused with EINVAL", bad[i]);
		}
		pool_is(_metadata, "2-3");
		EXPECT_EQ(0, cpu_online(2));
		EXPECT_EQ(0, cpu_online(3));
		EXPECT_EQ(1, cpu_online(1));
	}
	/* The same list again changes nothing either. */
	EXPECT_EQ(0, ne_set_pool("2-3"));
	pool_is(_metadata, "2-3");
	EXPECT_EQ(0, cpu_online(2));
	EXPECT_EQ(0, cpu_online(3));
}

/* Upstream's NE_CPUS_SIZE: the longest list is one byte shorter. */
#define NE_CPUS_SIZE 512

/*
 * ne_cpus reads back the list as it was written and a newline, as
 * upstream's string parameter does (tools written for it, nitro-cli's
 * allocator among them, parse what they read); a list of NE_CPUS_SIZE
 * bytes or more is ENOSPC and changes nothing.
 */
TEST_F(pool, reads_back_as_written)
{
	static const char *const lists[] = { "3,2", "2-3\n", " 2-3 ", "2,3,2" };
	char raw[2 * NE_CPUS_SIZE], longest[NE_CPUS_SIZE + 1], want[NE_CPUS_SIZE + 1];
	unsigned int i;
	size_t n;

	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		ASSERT_EQ(0, ne_set_pool(lists[i]));
		snprintf(want, sizeof(want), "%s\n", lists[i]);
		ASSERT_LT(0, ne_read_raw(NE_CPUS_PARAM, raw, sizeof(raw)));
		EXPECT_STREQ(want, raw);
		EXPECT_EQ(0, cpu_online(2));
		EXPECT_EQ(0, cpu_online(3));
	}

	/* "2-3" and ",2" until NE_CPUS_SIZE - 1 bytes: accepted whole. */
	strcpy(longest, "2-3");
	for (n = 3; n + 2 <= NE_CPUS_SIZE - 1; n += 2)
		strcat(longest, ",2");
	ASSERT_EQ(NE_CPUS_SIZE - 1, strlen(longest));
	ASSERT_EQ(0, ne_set_pool(longest));
	snprintf(want, sizeof(want), "%s\n", longest);
	ASSERT_LT(0, ne_read_raw(NE_CPUS_PARAM, raw, sizeof(raw)));
	EXPECT_STREQ(want, raw);

	/* One byte more is ENOSPC; the pool and what ne_cpus reads stay. */
	ASSERT_EQ(0, ne_set_pool("3,2"));
	strcat(longest, " ");
	EXPECT_EQ(-ENOSPC, ne_set_pool(longest));
	ASSERT_LT(0, ne_read_raw(NE_CPUS_PARAM, raw, sizeof(raw)));
	EXPECT_STREQ("3,2\n", raw);
	EXPECT_EQ(0, cpu_online(2));
	EXPECT_EQ(0, cpu_online(3));

	/* An empty list clears the pool and reads back as written. */
	ASSERT_EQ(0, ne_set_pool(NO_CPUS));
	ASSERT_LT(0, ne_read_raw(NE_CPUS_PARAM, raw, sizeof(raw)));
	EXPECT_STREQ(NO_CPUS "\n", raw);
	EXPECT_EQ(1, cpu_online(2));
	EXPECT_EQ(1, cpu_online(3));
}

/* Root cannot bring a pooled CPU online behind the pool's back. */
TEST_F(pool, pooled_cpu_cannot_be_onlined)
{
	int vm, v;

	ASSERT_EQ(0, ne_set_pool("2-3"));
	EXPECT_EQ(-EBUSY, set_online(2, "1"));
	EXPECT_EQ(-EBUSY, set_online(3, "1"));
	EXPECT_EQ(0, cpu_online(2));
	EXPECT_EQ(0, cpu_online(3));

	/* Nor once it is donated. */
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	v = vm_ioctl(vm, KVM_CREATE_VCPU, 0);
	EXPECT_EQ(-EBUSY, set_online(2, "1"));
	EXPECT_EQ(0, cpu_online(2));
	close(v);
	close(vm);

	/* The pool itself gives them back. */
	ASSERT_EQ(0, ne_set_pool(NO_CPUS));
	EXPECT_EQ(1, cpu_online(2));
	EXPECT_EQ(1, cpu_online(3));
	/* And then they are Linux's again. */
	EXPECT_EQ(0, set_online(3, "0"));
	EXPECT_EQ(0, set_online(3, "1"));
}

/*
 * A core is whole with its offline threads: CPU 3 offline, "2" is still
 * half a core.  The whole core is taken, CPU 3 as it is (already offline).
 */
TEST_F(pool, offline_siblings_count)
{
	ASSERT_EQ(0, set_online(3, "0"));
	ASSERT_EQ(0, cpu_online(3));
	EXPECT_EQ(-EINVAL, ne_set_pool("2")) {
		TH_LOG("half a core was taken while its other half is offline");
	}
	pool_is(_metadata, "");
	EXPECT_EQ(1, cpu_online(2));
	EXPECT_EQ(0, ne_set_pool("2-3"));
	pool_is(_metadata, "2-3");
	EXPECT_EQ(0, cpu_online(2));
	EXPECT_EQ(0, cpu_online(3));
	ASSERT_EQ(0, ne_set_pool(NO_CPUS));
	EXPECT_EQ(1, cpu_online(2));
	EXPECT_EQ(1, cpu_online(3));
}

/* Text that is no cpu list is refused before the pool is touched. */
TEST_F(pool, unparsable_lists_are_einval_and_keep_the_pool)
{
	static const char *const bad[] = { "two", "3-2", "2-", "2-3x", "-1" };
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(0, ne_set_pool("2-3"));
		EXPECT_EQ(-EINVAL, ne_set_pool(bad[i])) {
			TH_LOG("ne_cpus=%s was not refused with EINVAL", bad[i]);
		}
		pool_is(_metadata, "2-3");
		EXPECT_EQ(0, cpu_online(2));
		EXPECT_EQ(0, cpu_online(3));
	}
}

TEST_F(pool, cpu_that_does_not_exist_is_refused)
{
	EXPECT_GT(0, ne_set_pool("2-3,64"));
	pool_is(_metadata, "");
}

TEST_F(pool, busy_while_an_enclave_exists)
{
	int vm;

	ASSERT_EQ(0, ne_set_pool("2-3"));
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	EXPECT_EQ(-EBUSY, ne_set_pool(NO_CPUS));
	EXPECT_EQ(-EBUSY, ne_set_pool("2-3"));
	pool_is(_metadata, "2-3");
	close(vm);
	EXPECT_EQ(0, ne_set_pool(NO_CPUS));
}

TEST_F(pool, empty_pool_gives_no_vcpu)
{
	int vm = ne_create_vm();

	ASSERT_LE(0, vm);
	EXPECT_EQ(0, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	EXPECT_EQ(0, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID));
	/* Every id is at or above KVM_CAP_MAX_VCPU_ID, which is 0. */
	ASSERT_IOCTL_ERRNO(EINVAL, vm, KVM_CREATE_VCPU, 0);
	close(vm);
}

/* Root without CAP_SYS_ADMIN may open the file but not change the pool. */
TEST_F(pool, needs_cap_sys_admin)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct __user_cap_header_struct hdr = {
			.version = _LINUX_CAPABILITY_VERSION_3,
		};
		struct __user_cap_data_struct data[2];

		if (syscall(SYS_capget, &hdr, data))
			_exit(10);
		data[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
		if (syscall(SYS_capset, &hdr, data))
			_exit(11);
		_exit(ne_set_pool("2-3") == -EPERM ? 0 : 12);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	pool_is(_metadata, "");
}

int main(int argc, char **argv)
{
	ne_require_device();
	return test_harness_run(argc, argv);
}
