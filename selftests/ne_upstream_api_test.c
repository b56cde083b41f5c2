// SPDX-License-Identifier: GPL-2.0
/*
 * ne_upstream_api_test: the upstream Nitro Enclaves ioctls on the same node
 * (<linux/nitro_enclaves.h>): NE_CREATE_VM, then NE_ADD_VCPU,
 * NE_GET_IMAGE_LOAD_INFO, NE_SET_USER_MEMORY_REGION and NE_START_ENCLAVE on
 * its VM fd, each refusal with upstream's NE_ERR_* value, and the rule that
 * a VM fd answers only the family that made it.
 *
 * Every NE_ERR_* value the driver can return is made to happen here, but
 * NE_ERR_MEM_DIFFERENT_NUMA_NODE (ne_kvm_numa_test, which needs a VM with
 * two nodes) and two that cannot happen: NE_ERR_INVALID_PAGE_SIZE (x86
 * huge pages are 2 MiB and 1 GiB) and NE_ERR_VCPU_INVALID_CPU_CORE (the
 * pool's cores are checked when ne_cpus is set).
 */
#include <linux/nitro_enclaves.h>

#include "kselftest_harness.h"
#include "ne_kvm_util.h"

#define ENCLAVE_MEM	(64 * MIB)
#define MAP_BYTES	(ENCLAVE_MEM + 4 * HPAGE)

/* NE_CREATE_VM on a fresh system fd: the VM fd, or -1 with errno. */
static int ne_new_vm(uint64_t *slot_uid)
{
	int sys = ne_open_sys(), vm, err;

	if (sys < 0)
		return -1;
	vm = ioctl(sys, NE_CREATE_VM, slot_uid);
	err = errno;
	close(sys);
	errno = err;
	return vm;
}

static int ne_add_vcpu(int vm, uint32_t *id)
{
	return ioctl(vm, NE_ADD_VCPU, id);
}

static int ne_add_mem(int vm, void *addr, uint64_t size, uint64_t flags)
{
	struct ne_user_memory_region r = {
		.flags = flags,
		.memory_size = size,
		.userspace_addr = (uintptr_t)addr,
	};

	return ioctl(vm, NE_SET_USER_MEMORY_REGION, &r);
}

static int ne_start_enclave(int vm, uint64_t flags, uint64_t *cid)
{
	struct ne_enclave_start_info s = { .flags = flags, .enclave_cid = *cid };
	int rc = ioctl(vm, NE_START_ENCLAVE, &s);

	*cid = s.enclave_cid;
	return rc;
}

/* nr_cpu_ids: one past the last possible CPU, or -1. */
static int possible_cpus(void)
{
	char buf[64], *last;

	if (ne_read_file("/sys/devices/system/cpu/possible", buf, sizeof(buf)))
		return -1;
	last = strrchr(buf, '-');
	return atoi(last ? last + 1 : buf) + 1;
}

/* Asserts that @call is -1 with errno @err (an NE_ERR_* value or errno). */
#define ASSERT_ERR(err, call) do {					\
	errno = 0;							\
	ASSERT_EQ(-1, (call));						\
	ASSERT_EQ(err, errno) {						\
		TH_LOG("%s: errno %d (%s), wanted %d", #call, errno,	\
		       strerror(errno), err);				\
	}								\
} while (0)

/* Both threads of the pool's core, by the driver's pick. */
#define ADD_WHOLE_CORE(vm) do {						\
	uint32_t __id = 0;						\
	ASSERT_EQ(0, ne_add_vcpu(vm, &__id));				\
	__id = 0;							\
	ASSERT_EQ(0, ne_add_vcpu(vm, &__id));				\
} while (0)

FIXTURE(ne) {
	int vm;
	uint64_t slot_uid;
	char *mem;
};

FIXTURE_SETUP(ne)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->vm = ne_new_vm(&self->slot_uid);
	ASSERT_LE(0, self->vm) {
		TH_LOG("NE_CREATE_VM: %s", strerror(errno));
	}
	self->mem = ne_huge_alloc(MAP_BYTES);
	ASSERT_NE(MAP_FAILED, self->mem);
}

FIXTURE_TEARDOWN(ne)
{
	close(self->vm);
	munmap(self->mem, MAP_BYTES);
}

TEST_F(ne, create_vm_gives_a_cloexec_fd_and_its_slot_uid)
{
	EXPECT_NE(0, self->slot_uid);
	EXPECT_EQ((long long)self->slot_uid,
		  ne_fdinfo_num(self->vm, "ne_slot_uid"));
	EXPECT_EQ(FD_CLOEXEC, fcntl(self->vm, F_GETFD) & FD_CLOEXEC);
}

TEST(create_vm_with_a_bad_pointer_is_efault_and_leaves_no_slot)
{
	int sys, probe;
	uint64_t uid;

	ASSERT_EQ(0, ne_ensure_pool());
	sys = ne_open_sys();
	ASSERT_LE(0, sys);
	ASSERT_ERR(EFAULT, ioctl(sys, NE_CREATE_VM, (void *)8));
	close(sys);
	/* No enclave is left: the pool can be set (EBUSY while one exists). */
	ASSERT_EQ(0, ne_set_pool(NE_TEST_POOL));
	/* And a new VM can claim the whole pool. */
	probe = ne_new_vm(&uid);
	ASSERT_LE(0, probe);
	ADD_WHOLE_CORE(probe);
	close(probe);
}

TEST_F(ne, create_vm_without_a_free_cpu_is_refused)
{
	uint64_t uid;

	ADD_WHOLE_CORE(self->vm);
	ASSERT_ERR(NE_ERR_NO_CPUS_AVAIL_IN_POOL, ne_new_vm(&uid));
}

TEST_F(ne, add_vcpu_zero_picks_the_threads_of_one_core)
{
	uint32_t a = 0, b = 0, c = 0;
	char cpus[64];

	ASSERT_EQ(0, ne_add_vcpu(self->vm, &a));
	ASSERT_EQ(0, ne_add_vcpu(self->vm, &b));
	EXPECT_TRUE((a == 2 && b == 3) || (a == 3 && b == 2))
		TH_LOG("picked CPUs %u and %u from pool %s", a, b, NE_TEST_POOL);
	ASSERT_ERR(NE_ERR_NO_CPUS_AVAIL_IN_POOL, ne_add_vcpu(self->vm, &c));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_parent_cpus", cpus, sizeof(cpus)));
	EXPECT_STREQ(NE_TEST_POOL, cpus);
}

TEST_F(ne, add_vcpu_by_id)
{
	uint32_t id = 3;

	ASSERT_EQ(0, ne_add_vcpu(self->vm, &id));
	EXPECT_EQ(3, id);
	id = 3;
	ASSERT_ERR(NE_ERR_VCPU_ALREADY_USED, ne_add_vcpu(self->vm, &id));
	/* CPU 2 is of the core this enclave claimed with CPU 3. */
	id = 2;
	ASSERT_EQ(0, ne_add_vcpu(self->vm, &id));
	EXPECT_EQ(2, id);
}

TEST_F(ne, add_vcpu_refusals)
{
	uint32_t id;

	id = 1;
	ASSERT_ERR(NE_ERR_VCPU_NOT_IN_CPU_POOL, ne_add_vcpu(self->vm, &id));
	id = possible_cpus();
	ASSERT_LT(0, (int)id);
	ASSERT_ERR(NE_ERR_INVALID_VCPU, ne_add_vcpu(self->vm, &id));
	id = UINT32_MAX;
	ASSERT_ERR(NE_ERR_INVALID_VCPU, ne_add_vcpu(self->vm, &id));
	ASSERT_ERR(EFAULT, ioctl(self->vm, NE_ADD_VCPU, (void *)8));
}

TEST_F(ne, add_vcpu_of_another_enclaves_core_is_not_in_the_pool)
{
	uint64_t uid;
	uint32_t id = 2;
	int other = ne_new_vm(&uid);

	ASSERT_LE(0, other);
	ASSERT_EQ(0, ne_add_vcpu(other, &id));
	id = 3;
	ASSERT_ERR(NE_ERR_VCPU_NOT_IN_CPU_POOL, ne_add_vcpu(self->vm, &id));
	close(other);
}

TEST_F(ne, image_load_info)
{
	struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
	uint64_t flags[] = { 0, 2, 3, 1ULL << 63 };
	unsigned int i;

	ASSERT_EQ(0, ioctl(self->vm, NE_GET_IMAGE_LOAD_INFO, &info));
	EXPECT_EQ(8 * MIB, info.memory_offset);
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		info.flags = flags[i];
		ASSERT_ERR(NE_ERR_INVALID_FLAG_VALUE,
			   ioctl(self->vm, NE_GET_IMAGE_LOAD_INFO, &info));
	}
	ASSERT_ERR(EFAULT, ioctl(self->vm, NE_GET_IMAGE_LOAD_INFO, (void *)8));
}

TEST_F(ne, set_memory_refusals_in_upstream_order)
{
	char *anon;

	/* flags first, whatever else is wrong */
	ASSERT_ERR(NE_ERR_INVALID_FLAG_VALUE,
		   ne_add_mem(self->vm, self->mem + 4096, 4096, 1));
	ASSERT_ERR(NE_ERR_INVALID_MEM_REGION_SIZE,
		   ne_add_mem(self->vm, self->mem + 4096, HPAGE + 4096, 0));
	ASSERT_ERR(NE_ERR_UNALIGNED_MEM_REGION_ADDR,
		   ne_add_mem(self->vm, self->mem + 4096, HPAGE, 0));
	ASSERT_ERR(NE_ERR_INVALID_MEM_REGION_ADDR,
		   ne_add_mem(self->vm, (void *)0xffff888000000000ULL, HPAGE, 0));
	ASSERT_ERR(ENOMEM, ne_add_mem(self->vm, self->mem, 0, 0));

	anon = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	ASSERT_ERR(NE_ERR_MEM_NOT_HUGE_PAGE,
		   ne_add_mem(self->vm, (void *)(((uintptr_t)anon + HPAGE - 1) &
						 ~(HPAGE - 1)), HPAGE, 0));
	munmap(anon, 2 * HPAGE);

	ASSERT_EQ(0, ne_add_mem(self->vm, self->mem, 2 * HPAGE, 0));
	ASSERT_ERR(NE_ERR_MEM_REGION_ALREADY_USED,
		   ne_add_mem(self->vm, self->mem + HPAGE, 2 * HPAGE, 0));
	ASSERT_ERR(EFAULT, ioctl(self->vm, NE_SET_USER_MEMORY_REGION, (void *)8));
	EXPECT_EQ(2 * HPAGE, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
}

TEST_F(ne, set_memory_fills_the_device_regions_then_max_regions)
{
	int sys = ne_open_sys();
	long max = ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	uint64_t bytes = (max + 1) * HPAGE;
	long pins = ne_pins_held();
	char *big;
	long i;

	close(sys);
	ASSERT_LT(0, max);
	big = ne_huge_alloc(bytes);
	if (big == MAP_FAILED)
		SKIP(return, "the device takes %ld regions: %ld free 2 MiB hugepages needed",
		     max, max + 1);
	/* One call per 2 MiB page: the device's limit counts them all. */
	for (i = 0; i < max; i++)
		ASSERT_EQ(0, ne_add_mem(self->vm, big + i * HPAGE, HPAGE, 0)) {
			TH_LOG("region %ld of %ld: %s", i, max, strerror(errno));
		}
	ASSERT_ERR(NE_ERR_MEM_MAX_REGIONS,
		   ne_add_mem(self->vm, big + max * HPAGE, HPAGE, 0));
	EXPECT_EQ(pins + max, ne_pins_held());
	close(self->vm);
	self->vm = -1;
	EXPECT_EQ(pins, ne_pins_held());
	munmap(big, bytes);
}

TEST_F(ne, start_refusals_in_upstream_order)
{
	uint64_t cids[] = { 1, 2, 3, UINT32_MAX, 1ULL << 32, UINT64_MAX };
	uint64_t cid = 0;
	uint32_t id = 2;
	unsigned int i;

	ASSERT_ERR(NE_ERR_INVALID_FLAG_VALUE, ne_start_enclave(self->vm, 2, &cid));
	for (i = 0; i < sizeof(cids) / sizeof(cids[0]); i++) {
		cid = cids[i];
		ASSERT_ERR(NE_ERR_INVALID_ENCLAVE_CID,
			   ne_start_enclave(self->vm, 0, &cid));
	}
	cid = 0;
	ASSERT_ERR(NE_ERR_NO_MEM_REGIONS_ADDED, ne_start_enclave(self->vm, 0, &cid));
	ASSERT_EQ(0, ne_add_mem(self->vm, self->mem, HPAGE, 0));
	ASSERT_ERR(NE_ERR_ENCLAVE_MEM_MIN_SIZE, ne_start_enclave(self->vm, 0, &cid));
	ASSERT_EQ(0, ne_add_mem(self->vm, self->mem + HPAGE, ENCLAVE_MEM, 0));
	ASSERT_ERR(NE_ERR_NO_VCPUS_ADDED, ne_start_enclave(self->vm, 0, &cid));
	ASSERT_EQ(0, ne_add_vcpu(self->vm, &id));
	ASSERT_ERR(NE_ERR_FULL_CORES_NOT_USED, ne_start_enclave(self->vm, 0, &cid));
	ASSERT_ERR(EFAULT, ioctl(self->vm, NE_START_ENCLAVE, (void *)8));
}

TEST_F(ne, start_then_every_resource_is_not_in_init_state)
{
	struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
	uint64_t cid = 0;
	uint32_t id = 0;
	char state[32];

	ASSERT_EQ(0, ne_add_mem(self->vm, self->mem, ENCLAVE_MEM, 0));
	ADD_WHOLE_CORE(self->vm);
	ASSERT_EQ(0, ne_start_enclave(self->vm, NE_ENCLAVE_DEBUG_MODE, &cid)) {
		TH_LOG("NE_START_ENCLAVE: %s", strerror(errno));
	}
	EXPECT_LT(3, cid);
	EXPECT_GT(UINT32_MAX, cid);
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_state", state, sizeof(state)));
	EXPECT_STREQ("running", state);
	EXPECT_EQ(NE_ENCLAVE_DEBUG_MODE, ne_fdinfo_num(self->vm, "ne_flags"));

	ASSERT_ERR(NE_ERR_NOT_IN_INIT_STATE, ne_start_enclave(self->vm, 0, &cid));
	ASSERT_ERR(NE_ERR_NOT_IN_INIT_STATE, ne_add_vcpu(self->vm, &id));
	ASSERT_ERR(NE_ERR_NOT_IN_INIT_STATE,
		   ne_add_mem(self->vm, self->mem + ENCLAVE_MEM, HPAGE, 0));
	ASSERT_ERR(NE_ERR_NOT_IN_INIT_STATE,
		   ioctl(self->vm, NE_GET_IMAGE_LOAD_INFO, &info));
}

TEST_F(ne, a_vm_fd_answers_only_its_own_family)
{
	struct kvm_userspace_memory_region r = {
		.memory_size = HPAGE,
		.userspace_addr = (uintptr_t)self->mem,
	};
	struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
	uint64_t cid = 0;
	uint32_t id = 0;
	char why[160];
	int kvm_vm;

	ASSERT_ERR(ENOTTY, ioctl(self->vm, KVM_CREATE_VCPU, 0));
	ASSERT_ERR(ENOTTY, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &r));
	ASSERT_ERR(ENOTTY, ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", why, sizeof(why)));
	EXPECT_STREQ("a KVM ioctl on a VM fd made by NE_CREATE_VM", why);

	/* The VM fd of KVM_CREATE_VM: NE_START_ENCLAVE keeps KVM's errnos. */
	close(self->vm);
	self->vm = -1;
	kvm_vm = ne_create_vm();
	ASSERT_LE(0, kvm_vm);
	ASSERT_ERR(ENOTTY, ne_add_vcpu(kvm_vm, &id));
	ASSERT_ERR(ENOTTY, ioctl(kvm_vm, NE_GET_IMAGE_LOAD_INFO, &info));
	ASSERT_ERR(ENOTTY, ne_add_mem(kvm_vm, self->mem, HPAGE, 0));
	ASSERT_ERR(EINVAL, ne_start_enclave(kvm_vm, 0, &cid));
	close(kvm_vm);
}

/*
 * Another process holding the fd: EIO from the resource ioctls before any
 * other check (no core claimed, nothing pinned), while image load info and
 * start make their checks as for the creator (upstream has no such check
 * there); none of its refusals changes the creator's ne_last_error.
 */
TEST_F(ne, another_process_cannot_add_resources)
{
	struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
	long pins = ne_pins_held();
	char why[160];
	uint64_t uid;
	int status, probe;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		uint64_t cid = 0;
		uint32_t id = 0;

		if (ne_add_vcpu(self->vm, &id) != -1 || errno != EIO)
			_exit(1);
		if (ne_add_mem(self->vm, self->mem, HPAGE, 0) != -1 || errno != EIO)
			_exit(2);
		if (ioctl(self->vm, NE_GET_IMAGE_LOAD_INFO, &info))
			_exit(3);
		if (ne_start_enclave(self->vm, 0, &cid) != -1 ||
		    errno != NE_ERR_NO_MEM_REGIONS_ADDED)
			_exit(4);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("the child's check %d failed", WEXITSTATUS(status));
	}
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_vcpus"));
	EXPECT_EQ(pins, ne_pins_held());
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", why, sizeof(why)));
	EXPECT_STREQ("none", why);
	/* No core was claimed: another enclave gets the whole pool. */
	probe = ne_new_vm(&uid);
	ASSERT_LE(0, probe);
	ADD_WHOLE_CORE(probe);
	close(probe);
}

TEST_F(ne, the_same_physical_memory_twice_is_already_used)
{
	int fd = memfd_create("ne-twice", MFD_HUGETLB | MFD_CLOEXEC);
	long pins = ne_pins_held();
	char *a, *b;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, HPAGE));
	a = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	b = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	ASSERT_NE(MAP_FAILED, a);
	ASSERT_NE(MAP_FAILED, b);
	ASSERT_EQ(0, ne_add_mem(self->vm, a, HPAGE, 0));
	ASSERT_ERR(NE_ERR_MEM_REGION_ALREADY_USED, ne_add_mem(self->vm, b, HPAGE, 0));
	EXPECT_EQ(pins + 1, ne_pins_held());
	EXPECT_EQ(HPAGE, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	close(self->vm);
	self->vm = -1;
	munmap(a, HPAGE);
	munmap(b, HPAGE);
	close(fd);
}

TEST_F(ne, close_gives_back_the_cpus_and_the_pages)
{
	long pins = ne_pins_held();
	uint64_t uid;
	int again;

	ASSERT_EQ(0, ne_add_mem(self->vm, self->mem, ENCLAVE_MEM, 0));
	ADD_WHOLE_CORE(self->vm);
	EXPECT_EQ(pins + (long)(ENCLAVE_MEM / HPAGE), ne_pins_held());
	close(self->vm);
	self->vm = -1;
	EXPECT_EQ(pins, ne_pins_held());
	again = ne_new_vm(&uid);
	ASSERT_LE(0, again);
	ADD_WHOLE_CORE(again);
	close(again);
}

TEST_HARNESS_MAIN
