// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_start_test: NE_ENCLAVE_START: success with a chosen and an
 * automatic CID, every flag bit, every reserved CID, every missing resource,
 * only once, and no more resources after it.
 */
#include "kselftest_harness.h"
#include "ne_kvm_util.h"

#define ENCLAVE_MEM	(64 * MIB)

FIXTURE(start) {
	int vm;
	int vcpus[2];
	char *mem;
};

FIXTURE_SETUP(start)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->vcpus[0] = self->vcpus[1] = -1;
	self->vm = ne_create_vm();
	ASSERT_LE(0, self->vm);
	self->mem = ne_huge_alloc(ENCLAVE_MEM + 2 * HPAGE);
	ASSERT_NE(MAP_FAILED, self->mem);
}

FIXTURE_TEARDOWN(start)
{
	close(self->vcpus[0]);
	close(self->vcpus[1]);
	close(self->vm);
	munmap(self->mem, ENCLAVE_MEM + 2 * HPAGE);
}

static int add_memory(int vm, char *mem, uint64_t size)
{
	return ne_set_region(vm, 0, 0, mem, size, 0);
}

static int add_vcpus(int vm, int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		fds[i] = ioctl(vm, KVM_CREATE_VCPU, i);
		if (fds[i] < 0)
			return -1;
	}
	return 0;
}

#define ASSERT_START_ERRNO(err, vm, flags, cid_in) do {			\
	uint64_t __cid = (cid_in);					\
	errno = 0;							\
	ASSERT_EQ(-1, ne_start(vm, flags, &__cid));			\
	ASSERT_EQ(err, errno) {						\
		TH_LOG("start errno %d (%s), wanted %d", errno,		\
		       strerror(errno), err);				\
	}								\
} while (0)

TEST_F(start, automatic_cid)
{
	uint64_t cid = 0;
	char state[32];

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	ASSERT_EQ(0, ne_start(self->vm, 0, &cid)) {
		TH_LOG("start: %s", strerror(errno));
	}
	EXPECT_LT(3, cid);
	EXPECT_GT(0xffffffffULL, cid);
	EXPECT_EQ((long long)cid, ne_fdinfo_num(self->vm, "ne_enclave_cid"));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_state", state, sizeof(state)));
	EXPECT_STREQ("running", state);
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_flags"));
}

TEST_F(start, chosen_cid_and_debug_mode)
{
	uint64_t cid = 1234;

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	ASSERT_EQ(0, ne_start(self->vm, NE_ENCLAVE_DEBUG_MODE, &cid));
	EXPECT_EQ(1234, cid);
	EXPECT_EQ(NE_ENCLAVE_DEBUG_MODE, ne_fdinfo_num(self->vm, "ne_flags"));
}

TEST_F(start, highest_valid_cid)
{
	uint64_t cid = 0xfffffffeULL;

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	ASSERT_EQ(0, ne_start(self->vm, 0, &cid));
	EXPECT_EQ(0xfffffffeULL, cid);
}

TEST_F(start, every_unknown_flag_bit)
{
	int bit;

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	for (bit = 1; bit < 64; bit++)
		ASSERT_START_ERRNO(EINVAL, self->vm, 1ULL << bit, 0);
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_enclave_cid"));
}

TEST_F(start, reserved_cids)
{
	static const uint64_t bad[] = {
		1, 2, 3, 0xffffffffULL, 0x100000000ULL, 1ULL << 40, ~0ULL,
	};
	unsigned int i;

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_START_ERRNO(EINVAL, self->vm, 0, bad[i]);
}

TEST_F(start, no_memory)
{
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	ASSERT_START_ERRNO(EINVAL, self->vm, 0, 0);
}

TEST_F(start, less_than_64_mib)
{
	uint64_t cid = 0;

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM - HPAGE));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	ASSERT_START_ERRNO(EINVAL, self->vm, 0, 0);
	/* One more page reaches the minimum exactly. */
	ASSERT_EQ(0, ne_set_region(self->vm, 1, ENCLAVE_MEM - HPAGE,
				   self->mem + ENCLAVE_MEM - HPAGE, HPAGE, 0));
	EXPECT_EQ(0, ne_start(self->vm, 0, &cid));
}

TEST_F(start, no_vcpu)
{
	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_START_ERRNO(EINVAL, self->vm, 0, 0);
}

TEST_F(start, half_a_core)
{
	uint64_t cid = 0;

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 1));
	ASSERT_START_ERRNO(EINVAL, self->vm, 0, 0);
	self->vcpus[1] = vm_ioctl(self->vm, KVM_CREATE_VCPU, 1);
	EXPECT_EQ(0, ne_start(self->vm, 0, &cid));
}

TEST_F(start, only_once_and_nothing_after)
{
	uint64_t cid = 0;
	int extra;

	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	ASSERT_EQ(0, ne_start(self->vm, 0, &cid));
	ASSERT_START_ERRNO(EBUSY, self->vm, 0, 0);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 1, ENCLAVE_MEM,
				    self->mem + ENCLAVE_MEM, HPAGE, 0));
	EXPECT_EQ(EBUSY, errno);
	extra = ioctl(self->vm, KVM_CREATE_VCPU, 5);
	EXPECT_EQ(-1, extra);
	EXPECT_EQ(EBUSY, errno);
}

TEST_F(start, bad_argument_pointer)
{
	ASSERT_EQ(0, add_memory(self->vm, self->mem, ENCLAVE_MEM));
	ASSERT_EQ(0, add_vcpus(self->vm, self->vcpus, 2));
	ASSERT_IOCTL_ERRNO(EFAULT, self->vm, NE_ENCLAVE_START, 16);
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
