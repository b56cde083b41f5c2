// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_vcpu_test: KVM_CREATE_VCPU and the vCPU fd: placement that fills
 * claimed cores first, the id rules, the CPU limit filled and exceeded, and
 * the vCPU fd's refusals (it cannot run and shows no state).
 */
#include "kselftest_harness.h"
#include "ne_kvm_util.h"

FIXTURE(vcpu) {
	int vm;
};

FIXTURE_SETUP(vcpu)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->vm = ne_create_vm();
	ASSERT_LE(0, self->vm);
}

FIXTURE_TEARDOWN(vcpu)
{
	close(self->vm);
}

TEST_F(vcpu, fills_the_claimed_core_first)
{
	char link[64], target[64], cpus[64];
	int v0, v1;
	ssize_t n;

	v0 = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);
	EXPECT_EQ(0, ne_fdinfo_num(v0, "ne_vcpu_id"));
	EXPECT_EQ(2, ne_fdinfo_num(v0, "ne_parent_cpu"));
	v1 = vm_ioctl(self->vm, KVM_CREATE_VCPU, 1);
	EXPECT_EQ(1, ne_fdinfo_num(v1, "ne_vcpu_id"));
	EXPECT_EQ(3, ne_fdinfo_num(v1, "ne_parent_cpu"));
	EXPECT_EQ(2, ne_fdinfo_num(self->vm, "ne_vcpus"));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_parent_cpus", cpus, sizeof(cpus)));
	EXPECT_STREQ("2-3", cpus);

	EXPECT_EQ(FD_CLOEXEC, fcntl(v0, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDWR, fcntl(v0, F_GETFL) & O_ACCMODE);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", v0);
	n = readlink(link, target, sizeof(target) - 1);
	ASSERT_LT(0, n);
	target[n] = '\0';
	EXPECT_STREQ("anon_inode:ne-vcpu", target);
	close(v0);
	close(v1);
}

TEST_F(vcpu, ids_in_any_order)
{
	int v1 = vm_ioctl(self->vm, KVM_CREATE_VCPU, 1);
	int v0 = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);

	EXPECT_EQ(2, ne_fdinfo_num(v1, "ne_parent_cpu"));
	EXPECT_EQ(3, ne_fdinfo_num(v0, "ne_parent_cpu"));
	close(v0);
	close(v1);
}

TEST_F(vcpu, id_limit_filled_then_exceeded)
{
	int max = vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID);
	int fds[64], i;
	unsigned long bit;

	ASSERT_EQ(2, max);
	ASSERT_IOCTL_ERRNO(EINVAL, self->vm, KVM_CREATE_VCPU, max);
	for (bit = 1; bit < 64; bit++)
		if ((1UL << bit) >= (unsigned long)max)
			ASSERT_IOCTL_ERRNO(EINVAL, self->vm, KVM_CREATE_VCPU, 1UL << bit);
	for (i = 0; i < max; i++)
		fds[i] = vm_ioctl(self->vm, KVM_CREATE_VCPU, i);
	ASSERT_IOCTL_ERRNO(EINVAL, self->vm, KVM_CREATE_VCPU, max);
	EXPECT_EQ(max, ne_fdinfo_num(self->vm, "ne_vcpus"));
	for (i = 0; i < max; i++)
		close(fds[i]);
}

TEST_F(vcpu, id_is_unique)
{
	int v0 = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);

	ASSERT_IOCTL_ERRNO(EEXIST, self->vm, KVM_CREATE_VCPU, 0);
	/* Closing the vCPU fd does not give the CPU back: still taken. */
	close(v0);
	ASSERT_IOCTL_ERRNO(EEXIST, self->vm, KVM_CREATE_VCPU, 0);
	EXPECT_EQ(1, ne_fdinfo_num(self->vm, "ne_vcpus"));
}

TEST_F(vcpu, pool_exhausted_is_enospc)
{
	int other = ne_create_vm(), v0;

	ASSERT_LE(0, other);
	v0 = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);
	/* The only core is claimed by self->vm, whole. */
	EXPECT_EQ(0, __vm_ioctl(other, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS));
	EXPECT_EQ(2, __vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS));
	ASSERT_IOCTL_ERRNO(ENOSPC, other, KVM_CREATE_VCPU, 0);
	EXPECT_EQ(0, ne_fdinfo_num(other, "ne_vcpus"));
	/* Once self->vm is gone, its core is free again. */
	close(v0);
	close(self->vm);
	self->vm = other;
	v0 = vm_ioctl(other, KVM_CREATE_VCPU, 0);
	EXPECT_EQ(2, ne_fdinfo_num(v0, "ne_parent_cpu"));
	close(v0);
}

static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
	KVM_TRANSLATE, KVM_INTERRUPT, KVM_GET_MSRS, KVM_SET_MSRS,
	KVM_SET_CPUID2, KVM_GET_CPUID2, KVM_GET_FPU, KVM_SET_FPU,
	KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_NMI, KVM_GET_VCPU_EVENTS,
	KVM_SET_VCPU_EVENTS, KVM_GET_MP_STATE, KVM_SET_MP_STATE,
	KVM_SET_GUEST_DEBUG, KVM_GET_ONE_REG, KVM_SET_ONE_REG,
	KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS,
	KVM_ENABLE_CAP, KVM_SET_SIGNAL_MASK, KVM_GET_DEBUGREGS,
	KVM_SET_DEBUGREGS,
};

TEST_F(vcpu, vcpu_fd_refusals)
{
	char buf[64] = { 0 };
	unsigned int i;
	int v = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);

	for (i = 0; i < sizeof(vcpu_ioctls) / sizeof(vcpu_ioctls[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(v, vcpu_ioctls[i], buf));
		EXPECT_EQ(EOPNOTSUPP, errno) {
			TH_LOG("vCPU ioctl %#lx: errno %d", vcpu_ioctls[i], errno);
		}
	}
	ASSERT_IOCTL_ERRNO(ENOTTY, v, KVM_CREATE_VCPU, 1);
	ASSERT_IOCTL_ERRNO(ENOTTY, v, KVM_GET_API_VERSION, 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, v, NE_ENCLAVE_START, buf);
	ASSERT_IOCTL_ERRNO(ENOTTY, v, _IO('x', 7), 0);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, v, 0));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(-1, read(v, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(v, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	close(v);
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
