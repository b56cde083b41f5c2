// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_sys_test: the system fd (/dev/nitro_enclaves) answers KVM's system
 * ioctls as kvm-api.md says, and refuses everything else.
 */
#include "kselftest_harness.h"
#include "ne_kvm_util.h"

FIXTURE(sys) {
	int fd;
};

FIXTURE_SETUP(sys)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->fd = ne_open_sys();
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(sys)
{
	close(self->fd);
}

TEST_F(sys, api_version)
{
	EXPECT_EQ(KVM_API_VERSION, __vm_ioctl(self->fd, KVM_GET_API_VERSION, 0));
	ASSERT_IOCTL_ERRNO(EINVAL, self->fd, KVM_GET_API_VERSION, 1);
}

TEST_F(sys, check_extension)
{
	int slots;

	EXPECT_EQ(1, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
	EXPECT_EQ(2, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS));
	EXPECT_EQ(2, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	EXPECT_EQ(2, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID));
	slots = __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	EXPECT_LT(0, slots);
	/* Capabilities the driver does not have, and unknown numbers. */
	EXPECT_EQ(0, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP));
	EXPECT_EQ(0, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_MMU));
	EXPECT_EQ(0, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, 100000));
	EXPECT_EQ(0, __vm_ioctl(self->fd, KVM_CHECK_EXTENSION, -1UL));
}

TEST_F(sys, create_vm_gives_a_cloexec_ne_vm_fd)
{
	char link[64], target[64];
	int vm = vm_ioctl(self->fd, KVM_CREATE_VM, 0);
	ssize_t n;

	EXPECT_EQ(FD_CLOEXEC, fcntl(vm, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(O_RDWR, fcntl(vm, F_GETFL) & O_ACCMODE);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", vm);
	n = readlink(link, target, sizeof(target) - 1);
	ASSERT_LT(0, n);
	target[n] = '\0';
	EXPECT_STREQ("anon_inode:ne-vm", target);
	close(vm);
}

TEST_F(sys, create_vm_machine_type_must_be_0)
{
	unsigned long bit;

	for (bit = 0; bit < 64; bit++)
		ASSERT_IOCTL_ERRNO(EINVAL, self->fd, KVM_CREATE_VM, 1UL << bit);
}

TEST_F(sys, system_fd_survives_its_vms)
{
	int vm1 = vm_ioctl(self->fd, KVM_CREATE_VM, 0);
	int vm2 = vm_ioctl(self->fd, KVM_CREATE_VM, 0);
	char a[64], b[64];

	ASSERT_EQ(0, ne_fdinfo(vm1, "ne_slot_uid", a, sizeof(a)));
	ASSERT_EQ(0, ne_fdinfo(vm2, "ne_slot_uid", b, sizeof(b)));
	EXPECT_STRNE(a, b);
	close(vm1);
	close(vm2);
	EXPECT_EQ(KVM_API_VERSION, __vm_ioctl(self->fd, KVM_GET_API_VERSION, 0));
}

TEST_F(sys, vcpu_mmap_size_is_not_supported)
{
	ASSERT_IOCTL_ERRNO(EOPNOTSUPP, self->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
}

TEST_F(sys, unknown_and_vm_ioctls_are_enotty)
{
	struct kvm_userspace_memory_region r = { 0 };

	ASSERT_IOCTL_ERRNO(ENOTTY, self->fd, KVM_RUN, 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->fd, KVM_CREATE_VCPU, 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->fd, KVM_SET_USER_MEMORY_REGION, &r);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->fd, NE_ENCLAVE_START, &r);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->fd, _IO(KVMIO, 0x3f), 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->fd, _IO('x', 1), 0);
}

TEST_F(sys, read_write_mmap_are_refused)
{
	char buf[8] = { 0 };

	EXPECT_EQ(-1, read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, 0));
	EXPECT_EQ(ENODEV, errno);
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
