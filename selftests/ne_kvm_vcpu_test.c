// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_vcpu_test: KVM_CREATE_VCPU and the vCPU fd: placement that fills
 * claimed cores first, the id rules, the CPU limit filled and exceeded, and
 * the vCPU fd's refusals (it cannot run and shows no state).
 */
#include <sys/resource.h>
#include <sys/wait.h>

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

/*
 * The limit is the VM fd's own KVM_CAP_MAX_VCPU_ID, which counts the CPUs it
 * could still get: once another enclave holds the pool's only core, it is
 * 0 here, and id 0 is at the limit.
 */
TEST_F(vcpu, id_at_the_vm_fds_limit_is_einval)
{
	int other = ne_create_vm(), v0;
	char why[256];

	ASSERT_LE(0, other);
	v0 = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);
	/* The only core is claimed by self->vm, whole. */
	EXPECT_EQ(0, __vm_ioctl(other, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS));
	EXPECT_EQ(0, __vm_ioctl(other, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID));
	EXPECT_EQ(2, __vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS));
	ASSERT_IOCTL_ERRNO(EINVAL, other, KVM_CREATE_VCPU, 0);
	ASSERT_EQ(0, ne_fdinfo(other, "ne_last_error", why, sizeof(why)));
	EXPECT_STRNE("none", why);
	EXPECT_EQ(0, ne_fdinfo_num(other, "ne_vcpus"));
	/* Once self->vm is gone, its core is free again. */
	close(v0);
	close(self->vm);
	self->vm = other;
	EXPECT_EQ(2, __vm_ioctl(other, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID));
	v0 = vm_ioctl(other, KVM_CREATE_VCPU, 0);
	EXPECT_EQ(2, ne_fdinfo_num(v0, "ne_parent_cpu"));
	close(v0);
}

/* No file descriptor left: EMFILE, and the fdinfo says why. */
TEST_F(vcpu, emfile_is_recorded)
{
	struct rlimit saved, rl;
	char why[256];
	int lowest;

	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", why, sizeof(why)));
	ASSERT_STREQ("none", why);
	lowest = fcntl(self->vm, F_DUPFD_CLOEXEC, 0);
	ASSERT_LE(0, lowest);
	close(lowest);
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &saved));
	rl = saved;
	rl.rlim_cur = lowest;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->vm, KVM_CREATE_VCPU, 0));
	EXPECT_EQ(EMFILE, errno);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &saved));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", why, sizeof(why)));
	EXPECT_STRNE("none", why);
	TH_LOG("ne_last_error: %s", why);
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_vcpus"));
	/* Nothing was taken: the same id works once fds are there. */
	close(vm_ioctl(self->vm, KVM_CREATE_VCPU, 0));
}

/*
 * Every vCPU ioctl of <linux/kvm.h> (6.1) whose argument type exists on
 * x86 (KVM_ARM_VCPU_INIT's struct is arm64's alone).
 */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
	KVM_TRANSLATE, KVM_INTERRUPT, KVM_SET_SIGNAL_MASK, KVM_GET_FPU,
	KVM_SET_FPU, KVM_GET_MP_STATE, KVM_SET_MP_STATE, KVM_SET_GUEST_DEBUG,
	KVM_ENABLE_CAP, KVM_GET_ONE_REG, KVM_SET_ONE_REG, KVM_GET_REG_LIST,
	KVM_SET_DEVICE_ATTR, KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR,
	KVM_GET_STATS_FD,
	KVM_GET_MSRS, KVM_SET_MSRS, KVM_SET_CPUID, KVM_SET_CPUID2,
	KVM_GET_CPUID2, KVM_GET_SUPPORTED_HV_CPUID, KVM_GET_LAPIC,
	KVM_SET_LAPIC, KVM_TPR_ACCESS_REPORTING, KVM_SET_VAPIC_ADDR, KVM_NMI,
	KVM_SMI, KVM_X86_SETUP_MCE, KVM_X86_SET_MCE, KVM_GET_VCPU_EVENTS,
	KVM_SET_VCPU_EVENTS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS,
	KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_SET_XSAVE, KVM_GET_XCRS,
	KVM_SET_XCRS, KVM_GET_SREGS2, KVM_SET_SREGS2, KVM_KVMCLOCK_CTRL,
	KVM_SET_TSC_KHZ, KVM_GET_TSC_KHZ, KVM_GET_NESTED_STATE,
	KVM_SET_NESTED_STATE, KVM_XEN_VCPU_GET_ATTR, KVM_XEN_VCPU_SET_ATTR,
	KVM_S390_INTERRUPT, KVM_S390_IRQ, KVM_S390_STORE_STATUS,
	KVM_S390_SET_INITIAL_PSW, KVM_S390_INITIAL_RESET,
	KVM_S390_NORMAL_RESET, KVM_S390_CLEAR_RESET, KVM_S390_UCAS_MAP,
	KVM_S390_UCAS_UNMAP, KVM_S390_VCPU_FAULT, KVM_S390_MEM_OP,
	KVM_S390_SET_IRQ_STATE, KVM_S390_GET_IRQ_STATE,
	KVM_S390_PV_CPU_COMMAND,
	KVM_ARM_VCPU_FINALIZE, KVM_DIRTY_TLB,
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
	/* A number KVM does not use. */
	ASSERT_IOCTL_ERRNO(ENOTTY, v, _IO(KVMIO, 0xff), 0);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, v, 0));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(-1, read(v, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(v, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	close(v);
}

/*
 * The vCPU fd's refusals are the VM's ne_last_error, each with its own
 * reason; another process's EIO changes nothing there.
 */
TEST_F(vcpu, vcpu_fd_refusals_are_recorded)
{
	char run[256], unknown[256], why[256];
	int v = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);
	int status;
	pid_t pid;

	ASSERT_IOCTL_ERRNO(EOPNOTSUPP, v, KVM_RUN, 0);
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", run, sizeof(run)));
	EXPECT_STRNE("none", run);
	ASSERT_IOCTL_ERRNO(ENOTTY, v, _IO(KVMIO, 0xff), 0);
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", unknown,
			       sizeof(unknown)));
	EXPECT_STRNE("none", unknown);
	EXPECT_STRNE(run, unknown);
	TH_LOG("ne_last_error: \"%s\", then \"%s\"", run, unknown);

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(ioctl(v, KVM_RUN, 0) == -1 && errno == EIO ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", why, sizeof(why)));
	EXPECT_STREQ(unknown, why);
	close(v);
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
