// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_lifecycle_test: teardown loses nothing.  VM and vCPU fds closed in
 * every order, a running enclave closed, the creator killed, fork (the
 * child gets EIO and its copy keeps the enclave alive): afterwards the
 * slot is freed on the device, no page stays pinned and the pool has its
 * core back.
 */
#include <signal.h>

#include "kselftest_harness.h"
#include "ne_kvm_util.h"

#define ENCLAVE_MEM	(64 * MIB)

FIXTURE(life) {
	volatile uint32_t *tc;
	long pins;
	uint32_t slots;
	char *mem;
};

FIXTURE_SETUP(life)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->tc = ne_testctl_map();
	ASSERT_TRUE(self->tc != NULL) {
		TH_LOG("no test controls: BAR 2 missing (tools/ne-vm --ne-pci test-controls=on)");
	}
	self->pins = ne_pins_held();
	self->slots = ne_tc_read(self->tc, NE_TESTCTL_SLOTS);
	self->mem = ne_huge_alloc(ENCLAVE_MEM);
	ASSERT_NE(MAP_FAILED, self->mem);
}

FIXTURE_TEARDOWN(life)
{
	munmap(self->mem, ENCLAVE_MEM);
}

/* Memory and a whole core: an enclave ready to start. */
static int build_enclave(char *mem, int *v0, int *v1)
{
	int vm = ne_create_vm();

	if (vm < 0 || ne_set_region(vm, 0, 0, mem, ENCLAVE_MEM, 0))
		return -1;
	*v0 = ioctl(vm, KVM_CREATE_VCPU, 0);
	*v1 = ioctl(vm, KVM_CREATE_VCPU, 1);
	return *v0 < 0 || *v1 < 0 ? -1 : vm;
}

static int start_enclave(int vm)
{
	uint64_t cid = 0;

	return ne_start(vm, 0, &cid);
}

/* Slots, pins and the pool are as before the test. */
#define ASSERT_NOTHING_HELD(self) do {					\
	int __vm;							\
	ASSERT_EQ((self)->slots, ne_tc_read((self)->tc, NE_TESTCTL_SLOTS)); \
	ASSERT_EQ((self)->pins, ne_pins_held());			\
	__vm = ne_create_vm();						\
	ASSERT_LE(0, __vm);						\
	ASSERT_EQ(2, __vm_ioctl(__vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS)); \
	close(__vm);							\
} while (0)

#define ASSERT_SLOTS(self, n)						\
	ASSERT_EQ((self)->slots + (n), ne_tc_read((self)->tc, NE_TESTCTL_SLOTS))

TEST_F(life, close_vm_first)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);

	ASSERT_LE(0, vm);
	close(vm);
	/* The vCPU fds keep the enclave. */
	ASSERT_SLOTS(self, 1);
	ASSERT_LT(self->pins, ne_pins_held());
	close(v0);
	ASSERT_SLOTS(self, 1);
	close(v1);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(life, close_vcpus_first)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);

	ASSERT_LE(0, vm);
	close(v1);
	close(v0);
	ASSERT_SLOTS(self, 1);
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(life, close_interleaved_while_running)
{
	uint32_t stops = ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP);
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);

	ASSERT_LE(0, vm);
	ASSERT_EQ(0, start_enclave(vm));
	close(v0);
	close(vm);
	ASSERT_SLOTS(self, 1);
	close(v1);
	EXPECT_EQ(stops + 1, ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP));
	ASSERT_NOTHING_HELD(self);
}

TEST_F(life, fork_child_gets_eio_and_keeps_it_alive)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1), status;
	int pipefd[2];
	pid_t pid;
	char c;

	ASSERT_LE(0, vm);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct ne_enclave_start s = { 0 };
		int fails = 0;

		/* Another mm: every ioctl of the VM and its vCPUs is EIO. */
		fails += ioctl(vm, KVM_CREATE_VCPU, 5) != -1 || errno != EIO;
		fails += ioctl(vm, NE_ENCLAVE_START, &s) != -1 || errno != EIO;
		fails += ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) != -1 ||
			 errno != EIO;
		fails += ne_set_region(vm, 1, ENCLAVE_MEM, self->mem, HPAGE, 0) != -1 ||
			 errno != EIO;
		fails += ioctl(v0, KVM_RUN, 0) != -1 || errno != EIO;
		/* The parent closes its fds; this copy keeps the enclave. */
		close(pipefd[1]);
		if (read(pipefd[0], &c, 1) != 0)
			fails++;
		_exit(fails);
	}
	close(pipefd[0]);
	close(v0);
	close(v1);
	close(vm);
	ASSERT_SLOTS(self, 1);
	close(pipefd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_NOTHING_HELD(self);
}

TEST_F(life, fork_parent_keeps_working)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1), status;
	pid_t pid;

	ASSERT_LE(0, vm);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child's exit closes its copies: nothing happens. */
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_SLOTS(self, 1);
	EXPECT_EQ(0, start_enclave(vm));
	close(v0);
	close(v1);
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

/*
 * The killed creator's last close waits, uninterruptibly and at most
 * NE_EXIT_RELEASE_WAIT_MS (5 s), for the teardown: its exit must end when
 * the teardown does.  Once the pins are back, it is reaped within half of
 * that cap (it was always the whole cap: the wake-up missed the waiter).
 */
TEST_F(life, killed_creator_frees_everything)
{
	int pipefd[2], status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int v0, v1, vm = build_enclave(self->mem, &v0, &v1);

		if (vm < 0 || start_enclave(vm))
			_exit(1);
		c = 'r';
		if (write(pipefd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	ASSERT_SLOTS(self, 1);
	kill(pid, SIGKILL);
	ASSERT_EQ(self->pins, ne_pins_reach(self->pins));
	if (!ne_reaped_within(pid, &status, 2500)) {
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(0) TH_LOG("the exit outlived its teardown by 2.5 s");
	}
	ASSERT_TRUE(WIFSIGNALED(status));
	close(pipefd[0]);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(life, exiting_creator_frees_everything)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		int v0, v1, vm = build_enclave(self->mem, &v0, &v1);

		_exit(vm < 0 || start_enclave(vm));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_NOTHING_HELD(self);
}

TEST_F(life, many_enclaves_created_and_closed)
{
	int vms[64], i, n;

	/* The device's slot limit: filled, then one more is refused. */
	for (n = 0; n < 64; n++) {
		vms[n] = ne_create_vm();
		if (vms[n] < 0)
			break;
	}
	ASSERT_LT(0, n);
	ASSERT_GT(64, n);
	EXPECT_EQ(ENOSPC, errno);
	ASSERT_SLOTS(self, n);
	for (i = 0; i < n; i++)
		close(vms[i]);
	ASSERT_NOTHING_HELD(self);
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
