// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_vm_test: the VM fd and KVM_SET_USER_MEMORY_REGION: every field
 * checked, every errno of kvm-api.md, the range limit filled and exceeded,
 * physically contiguous pages merged (also across calls), nothing left
 * pinned by a refused call, and the VM fd's own refusals.
 */
#include "kselftest_harness.h"
#include "ne_kvm_util.h"

FIXTURE(vm) {
	int vm;
	int max_slots;
};

FIXTURE_SETUP(vm)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->vm = ne_create_vm();
	ASSERT_LE(0, self->vm);
	self->max_slots = vm_ioctl(self->vm, KVM_CHECK_EXTENSION,
				   KVM_CAP_NR_MEMSLOTS);
	ASSERT_LT(2, self->max_slots);
}

FIXTURE_TEARDOWN(vm)
{
	close(self->vm);
}

/* The fdinfo says why the last call was refused. */
#define ASSERT_LAST_ERROR(fd) do {					\
	char __why[256];						\
	ASSERT_EQ(0, ne_fdinfo(fd, "ne_last_error", __why, sizeof(__why))); \
	ASSERT_STRNE("none", __why);					\
} while (0)

#define ASSERT_REGION_ERRNO(err, vm, slot, gpa, addr, size, flags) do {	\
	errno = 0;							\
	ASSERT_EQ(-1, ne_set_region(vm, slot, gpa, addr, size, flags));	\
	ASSERT_EQ(err, errno) {						\
		TH_LOG("errno %d (%s), wanted %d", errno, strerror(errno), err); \
	}								\
	ASSERT_LAST_ERROR(vm);						\
} while (0)

TEST_F(vm, region_success_merges_contiguous_pages)
{
	uint64_t size = 64 * MIB;
	char *mem = ne_huge_alloc(size);
	long pins = ne_pins_held();
	unsigned int runs;

	ASSERT_NE(MAP_FAILED, mem);
	runs = ne_count_runs(mem, size);
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, size, 0));
	EXPECT_EQ(pins + (long)(size / HPAGE), ne_pins_held());
	EXPECT_EQ((long long)size, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	EXPECT_EQ(runs, ne_fdinfo_num(self->vm, "ne_mem_ranges"));
	TH_LOG("64 MiB of 2 MiB pages made %u ranges", runs);
	close(self->vm);
	self->vm = ne_create_vm();
	EXPECT_EQ(pins, ne_pins_held());
	munmap(mem, size);
}

TEST_F(vm, region_appended_from_gpa_0)
{
	char *mem = ne_huge_alloc(3 * HPAGE);

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, HPAGE, mem, HPAGE, 0);
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, HPAGE, 0));
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 1, 0, mem + HPAGE, HPAGE, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 1, 2 * HPAGE, mem + HPAGE, HPAGE, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 1, HPAGE + 4096, mem + HPAGE, HPAGE, 0);
	ASSERT_EQ(0, ne_set_region(self->vm, 1, HPAGE, mem + HPAGE, HPAGE, 0));
	/* Slots need not come in order; the guest-physical layout does. */
	ASSERT_EQ(0, ne_set_region(self->vm, self->max_slots - 1, 2 * HPAGE,
				   mem + 2 * HPAGE, HPAGE, 0));
	EXPECT_EQ((long long)(3 * HPAGE), ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	munmap(mem, 3 * HPAGE);
}

TEST_F(vm, region_every_flag_bit_is_refused)
{
	char *mem = ne_huge_alloc(HPAGE);
	long pins = ne_pins_held();
	int bit;

	ASSERT_NE(MAP_FAILED, mem);
	for (bit = 0; bit < 32; bit++)
		ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, mem, HPAGE, 1U << bit);
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ(0, ne_set_region(self->vm, 0, 0, mem, HPAGE, 0));
	munmap(mem, HPAGE);
}

TEST_F(vm, region_slot_address_space_and_range)
{
	char *mem = ne_huge_alloc(HPAGE);
	int bit;

	ASSERT_NE(MAP_FAILED, mem);
	for (bit = 16; bit < 32; bit++)
		ASSERT_REGION_ERRNO(EINVAL, self->vm, 1U << bit, 0, mem, HPAGE, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, self->max_slots, 0, mem, HPAGE, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0xffff, 0, mem, HPAGE, 0);
	ASSERT_EQ(0, ne_set_region(self->vm, self->max_slots - 1, 0, mem, HPAGE, 0));
	munmap(mem, HPAGE);
}

TEST_F(vm, region_size_and_alignment)
{
	char *mem = ne_huge_alloc(2 * HPAGE);

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, mem, 0, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, mem, 4096, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, mem, MIB, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, mem, HPAGE + 4096, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, mem + 4096, HPAGE, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, mem + MIB, HPAGE, 0);
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, (void *)(-HPAGE), 2 * HPAGE, 0);
	munmap(mem, 2 * HPAGE);
}

TEST_F(vm, region_must_be_mapped)
{
	char *hole = mmap(NULL, 4 * HPAGE, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *aligned;
	long pins = ne_pins_held();

	ASSERT_NE(MAP_FAILED, hole);
	aligned = (char *)(((uintptr_t)hole + HPAGE - 1) & ~(HPAGE - 1));
	munmap(hole, 4 * HPAGE);
	ASSERT_REGION_ERRNO(EFAULT, self->vm, 0, 0, aligned, HPAGE, 0);
	/* Kernel addresses are not user memory. */
	ASSERT_REGION_ERRNO(EFAULT, self->vm, 0, 0, (void *)0xffff880000000000ULL,
			    HPAGE, 0);
	/* A bad pointer to the argument itself. */
	ASSERT_IOCTL_ERRNO(EFAULT, self->vm, KVM_SET_USER_MEMORY_REGION, 8);
	EXPECT_EQ(pins, ne_pins_held());
}

/*
 * The AnonHugePages of the mapping of /proc/self/smaps that holds @addr, in
 * kB, or -1 when it cannot be read.
 */
static long anon_huge_kb(void *addr)
{
	unsigned long start, end, want = (uintptr_t)addr;
	char line[512];
	long kb = -1;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = start <= want && want < end;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* HPAGE of anonymous memory, 2 MiB aligned, inside a 3 * HPAGE mapping. */
static char *anon_aligned(char **map)
{
	*map = mmap(NULL, 3 * HPAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*map == MAP_FAILED)
		return NULL;
	return (char *)(((uintptr_t)*map + HPAGE - 1) & ~(HPAGE - 1));
}

TEST_F(vm, region_must_be_hugetlbfs)
{
	long pins = ne_pins_held();
	char *map, *aligned = anon_aligned(&map);

	/* Small pages. */
	ASSERT_TRUE(aligned != NULL);
	ASSERT_EQ(0, madvise(aligned, HPAGE, MADV_NOHUGEPAGE));
	memset(aligned, 1, HPAGE);
	ASSERT_EQ(0, anon_huge_kb(aligned));
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, aligned, HPAGE, 0);
	EXPECT_EQ(pins, ne_pins_held());
	munmap(map, 3 * HPAGE);
}

/*
 * Transparent huge pages are not hugetlbfs pages either.  The page must
 * really be a THP (tools/ne-vm boots with transparent_hugepage=always and
 * MADV_HUGEPAGE asks for one at fault time): otherwise the test fails
 * rather than testing small pages twice.
 */
TEST_F(vm, region_transparent_huge_page_is_refused)
{
	long pins = ne_pins_held();
	char *map, *aligned = anon_aligned(&map);
	char mode[128] = "";

	ASSERT_TRUE(aligned != NULL);
	ASSERT_EQ(0, madvise(aligned, HPAGE, MADV_HUGEPAGE));
	memset(aligned, 1, HPAGE);
	ne_read_file("/sys/kernel/mm/transparent_hugepage/enabled", mode,
		     sizeof(mode));
	ASSERT_EQ(HPAGE / 1024, anon_huge_kb(aligned)) {
		TH_LOG("no transparent huge page behind the mapping (THP enabled: %s)",
		       mode);
	}
	ASSERT_REGION_ERRNO(EINVAL, self->vm, 0, 0, aligned, HPAGE, 0);
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	/* The refusal left the page as it was. */
	EXPECT_EQ(HPAGE / 1024, anon_huge_kb(aligned));
	munmap(map, 3 * HPAGE);
}

TEST_F(vm, region_half_hugetlb_pins_nothing)
{
	char *mem = ne_huge_alloc(2 * HPAGE);
	long pins = ne_pins_held();

	ASSERT_NE(MAP_FAILED, mem);
	/* The second page is gone: the first one must not stay pinned. */
	munmap(mem + HPAGE, HPAGE);
	ASSERT_REGION_ERRNO(EFAULT, self->vm, 0, 0, mem, 2 * HPAGE, 0);
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	munmap(mem, HPAGE);
}

TEST_F(vm, region_slot_set_once_and_no_overlap)
{
	char *mem = ne_huge_alloc(3 * HPAGE);

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, 2 * HPAGE, 0));
	ASSERT_REGION_ERRNO(EEXIST, self->vm, 0, 2 * HPAGE, mem + 2 * HPAGE, HPAGE, 0);
	ASSERT_REGION_ERRNO(EEXIST, self->vm, 1, 2 * HPAGE, mem, HPAGE, 0);
	ASSERT_REGION_ERRNO(EEXIST, self->vm, 1, 2 * HPAGE, mem + HPAGE, 2 * HPAGE, 0);
	ASSERT_EQ(0, ne_set_region(self->vm, 1, 2 * HPAGE, mem + 2 * HPAGE, HPAGE, 0));
	munmap(mem, 3 * HPAGE);
}

TEST_F(vm, memory_already_donated_elsewhere_is_refused)
{
	char *mem = ne_huge_alloc(HPAGE);
	int other = ne_create_vm();
	long pins;

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, HPAGE, 0));
	pins = ne_pins_held();
	/*
	 * The hypervisor refuses memory another slot holds with EBUSY
	 * (ne-hv.c, SLOT_ADD_MEM) and kvm-api.md says its error comes back
	 * as is; the refusal pins nothing and is recorded.
	 */
	ASSERT_REGION_ERRNO(EBUSY, other, 0, 0, mem, HPAGE, 0);
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ(0, ne_fdinfo_num(other, "ne_mem_bytes"));
	EXPECT_EQ((long long)HPAGE, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	close(other);
	munmap(mem, HPAGE);
}

/*
 * Pages of @mem (n of them) picked so that none continues the previous one,
 * and the one before last does not end at @then (what comes after it).
 */
static int pick_unmergeable(char *mem, int n, int *order, int want,
			    uint64_t *prev_end, uint64_t then)
{
	int used[4096] = { 0 }, got = 0, i;
	uint64_t phys[4096];

	/* (read once: a pagemap read is milliseconds under the debug kernel) */
	for (i = 0; i < n; i++)
		phys[i] = ne_phys(mem + (uint64_t)i * HPAGE);
	while (got < want) {
		for (i = 0; i < n; i++) {
			uint64_t p = phys[i];

			if (used[i] || p == *prev_end)
				continue;
			if (got == want - 2 && p + HPAGE == then)
				continue;
			used[i] = 1;
			order[got++] = i;
			*prev_end = p + HPAGE;
			break;
		}
		if (i == n)
			return -1;
	}
	return 0;
}

/*
 * Two hugepages in one mapping that are not physically contiguous: the
 * second page is faulted after a page of another mapping took the one in
 * between (the free hugepages are handed out in order).  Up to 8 tries, the
 * failed ones kept so that each try gets other pages; MAP_FAILED if none.
 */
static char *split_pair(void)
{
	char *tries[8], *between[8], *pair = MAP_FAILED;
	int i, n;

	for (n = 0; n < 8 && pair == MAP_FAILED; n++) {
		tries[n] = mmap(NULL, 2 * HPAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
				MAP_HUGE_2MB, -1, 0);
		between[n] = MAP_FAILED;
		if (tries[n] == MAP_FAILED)
			break;
		tries[n][0] = 1;
		between[n] = ne_huge_alloc(HPAGE);
		tries[n][HPAGE] = 1;
		if (ne_phys(tries[n] + HPAGE) != ne_phys(tries[n]) + HPAGE)
			pair = tries[n];
	}
	for (i = 0; i < n && i < 8; i++) {
		if (tries[i] != MAP_FAILED && tries[i] != pair)
			munmap(tries[i], 2 * HPAGE);
		if (between[i] != MAP_FAILED)
			munmap(between[i], HPAGE);
	}
	return pair;
}

/* 256 ranges by default: minutes under the debug kernel (KASAN, TCG). */
TEST_F_TIMEOUT(vm, ranges_filled_to_the_limit_then_enospc, 600)
{
	int max = self->max_slots, n = max + 8, i, order[4096];
	char *mem, *pair = NULL;
	uint64_t prev_end = 0, gpa = 0;
	long pins;

	ASSERT_GT(4096, n);
	mem = ne_huge_alloc((uint64_t)n * HPAGE);
	ASSERT_NE(MAP_FAILED, mem);
	/* A two-page region whose pages cannot merge: two ranges. */
	pair = split_pair();
	ASSERT_NE(MAP_FAILED, pair);
	ASSERT_NE(ne_phys(pair) + HPAGE, ne_phys(pair + HPAGE));

	prev_end = ne_phys(pair) + 0;
	ASSERT_EQ(0, pick_unmergeable(mem, n, order, max, &prev_end, ne_phys(pair)));
	for (i = 0; i < max - 1; i++, gpa += HPAGE)
		ASSERT_EQ(0, ne_set_region(self->vm, i, gpa,
					   mem + (uint64_t)order[i] * HPAGE, HPAGE, 0)) {
			TH_LOG("range %d: %s", i, strerror(errno));
		}
	ASSERT_EQ(max - 1, ne_fdinfo_num(self->vm, "ne_mem_ranges"));

	/* One past the limit: refused, and nothing of the call stays pinned. */
	pins = ne_pins_held();
	ASSERT_NE(ne_phys(pair), ne_phys(mem + (uint64_t)order[max - 2] * HPAGE) + HPAGE);
	ASSERT_REGION_ERRNO(ENOSPC, self->vm, max - 1, gpa, pair, 2 * HPAGE, 0);
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ(max - 1, ne_fdinfo_num(self->vm, "ne_mem_ranges"));

	/* Exactly the limit. */
	ASSERT_EQ(0, ne_set_region(self->vm, max - 1, gpa,
				   mem + (uint64_t)order[max - 1] * HPAGE, HPAGE, 0));
	EXPECT_EQ(max, ne_fdinfo_num(self->vm, "ne_mem_ranges"));
	munmap(pair, 2 * HPAGE);
	munmap(mem, (uint64_t)n * HPAGE);
}

TEST_F(vm, contiguous_pages_merge_across_calls)
{
	enum { N = 48 };
	char *pages[N];
	uint64_t phys[N];
	int i, j, a = -1, b = -1;

	for (i = 0; i < N; i++) {
		pages[i] = ne_huge_alloc(HPAGE);
		ASSERT_NE(MAP_FAILED, pages[i]);
		phys[i] = ne_phys(pages[i]);
	}
	for (i = 0; i < N && a < 0; i++)
		for (j = 0; j < N; j++)
			if (phys[j] == phys[i] + HPAGE) {
				a = i;
				b = j;
				break;
			}
	/* 48 pages of a boot-time pool of 512: two of them are adjacent. */
	EXPECT_LE(0, a) {
		TH_LOG("no two physically adjacent hugepages among %d", N);
	}
	if (a >= 0) {
		ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, pages[a], HPAGE, 0));
		ASSERT_EQ(0, ne_set_region(self->vm, 1, HPAGE, pages[b], HPAGE, 0));
		EXPECT_EQ(1, ne_fdinfo_num(self->vm, "ne_mem_ranges"));
		EXPECT_EQ((long long)(2 * HPAGE),
			  ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	}
	for (i = 0; i < N; i++)
		munmap(pages[i], HPAGE);
}

TEST_F(vm, check_extension_on_the_vm_fd)
{
	int sys = ne_open_sys();

	ASSERT_LE(0, sys);
	EXPECT_EQ(1, __vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
	EXPECT_EQ(__vm_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS),
		  __vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS));
	EXPECT_EQ(2, __vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS));
	EXPECT_EQ(2, __vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID));
	EXPECT_EQ(0, __vm_ioctl(self->vm, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP));
	close(sys);
}

TEST_F(vm, fdinfo_has_every_key)
{
	static const char * const keys[] = {
		"ne_slot_uid", "ne_state", "ne_enclave_cid", "ne_flags",
		"ne_mem_bytes", "ne_mem_ranges", "ne_vcpus", "ne_parent_cpus",
		"ne_last_error",
	};
	char val[256];
	unsigned int i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ASSERT_EQ(0, ne_fdinfo(self->vm, keys[i], val, sizeof(val))) {
			TH_LOG("no %s", keys[i]);
		}
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_slot_uid", val, sizeof(val)));
	EXPECT_EQ(0, strncmp(val, "0x", 2));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_state", val, sizeof(val)));
	EXPECT_STREQ("init", val);
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", val, sizeof(val)));
	EXPECT_STREQ("none", val);
}

/*
 * The driver's fdinfo lines are "key: value" (kvm-api.md): one colon, one
 * space, no tab.  Returns how many ne_ lines @fd has, -1 on a bad one.
 */
static int check_fdinfo_form(struct __test_metadata *_metadata, int fd)
{
	char path[64], line[512];
	int nr = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t key = strspn(line, "abcdefghijklmnopqrstuvwxyz_");

		if (strncmp(line, "ne_", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		EXPECT_TRUE(line[key] == ':' && line[key + 1] == ' ' &&
			    line[key + 2] && line[key + 2] != ' ' &&
			    !strchr(line, '\t')) {
			TH_LOG("fdinfo line \"%s\" is not \"key: value\"", line);
			nr = -1;
		}
		if (nr >= 0)
			nr++;
	}
	fclose(f);
	return nr;
}

TEST_F(vm, fdinfo_is_key_colon_space_value)
{
	int v = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);

	EXPECT_LE(9, check_fdinfo_form(_metadata, self->vm));
	EXPECT_EQ(2, check_fdinfo_form(_metadata, v));
	close(v);
}

TEST_F(vm, vm_fd_refusals)
{
	char buf[8] = { 0 };

	EXPECT_EQ(-1, read(self->vm, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(self->vm, buf, sizeof(buf)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->vm, 0));
	EXPECT_EQ(ENODEV, errno);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->vm, KVM_RUN, 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->vm, KVM_CREATE_VM, 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->vm, KVM_GET_API_VERSION, 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->vm, KVM_CREATE_IRQCHIP, 0);
	ASSERT_IOCTL_ERRNO(ENOTTY, self->vm, _IO(KVMIO, 0x25), 0);
	ASSERT_LAST_ERROR(self->vm);
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
