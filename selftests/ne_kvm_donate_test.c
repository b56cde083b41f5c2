// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_donate_test: KVM_SET_USER_MEMORY_REGION where it used to go wrong.
 * A huge memory_size allocates nothing in proportion and warns nothing; the
 * driver's allocations are charged to the caller's memory cgroup, and an
 * ENOMEM is recorded; the same physical page donated twice is EEXIST;
 * memory that is not hugetlbfs is refused before anything is pinned; a slot
 * set once is EEXIST before any other check; a device that accepts part of
 * a region and refuses the rest leaves a dead VM (EIO to all but close).
 */
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>

#include "kselftest_harness.h"
#include "ne_kvm_util.h"

/* memfd_create's page size flag has mmap's encoding (HUGETLB_FLAG_ENCODE). */
#define MFD_HUGE_2MB_FLAG	MAP_HUGE_2MB

/* Pages pinned so far, system wide (exact: per-CPU counters folded). */
static long pins_acquired(void)
{
	ne_write_file("/proc/sys/vm/stat_refresh", "1");
	return ne_vmstat("nr_foll_pin_acquired");
}

/* The value of @key in @fd's fdinfo, into @buf; 0 when found. */
static int fdinfo_of(pid_t pid, int fd, const char *key, char *buf,
		     size_t len)
{
	char path[64], line[512];
	size_t klen = strlen(key);
	int rc = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		snprintf(buf, len, "%s", line + klen + 1 + strspn(line + klen + 1, " \t"));
		buf[strcspn(buf, "\n")] = '\0';
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

/* A 2 MiB aligned, unmapped address range of @size bytes. */
static char *reserve(uint64_t size)
{
	char *p = mmap(NULL, size + HPAGE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, size + HPAGE);
	return (char *)(((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1));
}

/* Maps hugetlbfs file @fd at @offset, shared, at exactly @addr. */
static int map_huge_at(char *addr, int fd, off_t offset)
{
	char *p = mmap(addr, HPAGE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, offset);

	if (p != addr)
		return -1;
	p[0] = 1;
	return 0;
}

/* A hugetlbfs file of @pages 2 MiB pages. */
static int huge_file(unsigned int pages)
{
	int fd = memfd_create("ne_donate", MFD_CLOEXEC | MFD_HUGETLB |
			      MFD_HUGE_2MB_FLAG);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)pages * HPAGE)) {
		close(fd);
		return -1;
	}
	return fd;
}

FIXTURE(donate) {
	int vm;
};

FIXTURE_SETUP(donate)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->vm = ne_create_vm();
	ASSERT_LE(0, self->vm);
}

FIXTURE_TEARDOWN(donate)
{
	close(self->vm);
}

/* ---- a huge memory_size ---------------------------------------------------- */

struct sampler {
	volatile int stop;
	long peak_kb;
};

static void *sample_vmalloc(void *arg)
{
	struct sampler *s = arg;

	while (!s->stop) {
		long v = ne_meminfo("VmallocUsed");

		if (v > s->peak_kb)
			s->peak_kb = v;
		usleep(200);
	}
	return NULL;
}

/* Kernel log records written since @fd was opened at its end. */
static int kmsg_has_splat(int fd, char *first, size_t len)
{
	char rec[2048];
	ssize_t n;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			return 0;
		rec[n] = '\0';
		if (strstr(rec, "WARNING") || strstr(rec, "Call Trace") ||
		    strstr(rec, "vmalloc error") ||
		    strstr(rec, "allocation failure")) {
			snprintf(first, len, "%s", rec);
			return 1;
		}
	}
}

/*
 * 2 MiB of hugetlbfs memory, then nothing up to the top of user space:
 * the call must fail on the hole (EFAULT) having allocated a few pages, not
 * an array sized by memory_size (about 500 MiB for 126 TiB), and without a
 * warning in the kernel log.
 */
TEST_F(donate, huge_memory_size_is_bounded)
{
	const uint64_t top = 0x7ffffffff000ULL & ~(HPAGE - 1);
	char *mem = mmap((void *)(1ULL << 40), HPAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 MAP_HUGE_2MB | MAP_POPULATE | MAP_FIXED_NOREPLACE,
			 -1, 0);
	struct sampler s = { 0 };
	char splat[2048] = "";
	uint64_t size;
	pthread_t t;
	long base, pins = ne_pins_held();
	int kmsg, i;

	ASSERT_EQ((void *)(1ULL << 40), mem);
	size = top - (uintptr_t)mem;
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, kmsg);
	ASSERT_LE(0, lseek(kmsg, 0, SEEK_END));

	base = ne_meminfo("VmallocUsed");
	s.peak_kb = base;
	ASSERT_EQ(0, pthread_create(&t, NULL, sample_vmalloc, &s));
	for (i = 0; i < 3; i++) {
		errno = 0;
		EXPECT_EQ(-1, ne_set_region(self->vm, 0, 0, mem, size, 0));
		EXPECT_EQ(EFAULT, errno) {
			TH_LOG("memory_size %#llx: errno %d (%s)",
			       (unsigned long long)size, errno, strerror(errno));
		}
	}
	s.stop = 1;
	pthread_join(t, NULL);
	TH_LOG("memory_size %#llx: VmallocUsed %ld kB, at most %ld kB during the calls",
	       (unsigned long long)size, base, s.peak_kb);
	EXPECT_GT(16 * 1024, s.peak_kb - base);
	EXPECT_EQ(0, kmsg_has_splat(kmsg, splat, sizeof(splat))) {
		TH_LOG("kernel log: %s", splat);
	}
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	close(kmsg);
	munmap(mem, HPAGE);
}

/* ---- the same physical page twice ------------------------------------------ */

TEST_F(donate, same_page_twice_in_one_call_is_eexist)
{
	int fd = huge_file(1);
	char *a = reserve(2 * HPAGE);
	long pins = ne_pins_held();
	char why[256];

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, map_huge_at(a, fd, 0));
	ASSERT_EQ(0, map_huge_at(a + HPAGE, fd, 0));
	ASSERT_EQ(ne_phys(a), ne_phys(a + HPAGE));
	ASSERT_NE(0, ne_phys(a));

	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 0, 0, a, 2 * HPAGE, 0));
	EXPECT_EQ(EEXIST, errno) {
		TH_LOG("errno %d (%s)", errno, strerror(errno));
	}
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", why, sizeof(why)));
	EXPECT_STRNE("none", why);
	/* The VM is still usable: the page once is fine. */
	EXPECT_EQ(0, ne_set_region(self->vm, 0, 0, a, HPAGE, 0));
	munmap(a, 2 * HPAGE);
	close(fd);
}

TEST_F(donate, same_page_twice_in_two_calls_is_eexist)
{
	int fd = huge_file(2);
	char *a = reserve(HPAGE), *b;
	long pins;

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, map_huge_at(a, fd, 0));
	b = reserve(2 * HPAGE);
	ASSERT_NE(NULL, b);
	/* b: the second page of the file, then the first one again. */
	ASSERT_EQ(0, map_huge_at(b, fd, HPAGE));
	ASSERT_EQ(0, map_huge_at(b + HPAGE, fd, 0));
	ASSERT_EQ(ne_phys(a), ne_phys(b + HPAGE));

	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, a, HPAGE, 0));
	pins = ne_pins_held();
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 1, HPAGE, b + HPAGE, HPAGE, 0));
	EXPECT_EQ(EEXIST, errno) {
		TH_LOG("errno %d (%s)", errno, strerror(errno));
	}
	/* Within a call that also brings a new page. */
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 1, HPAGE, b, 2 * HPAGE, 0));
	EXPECT_EQ(EEXIST, errno) {
		TH_LOG("errno %d (%s)", errno, strerror(errno));
	}
	EXPECT_EQ(pins, ne_pins_held());
	EXPECT_EQ((long long)HPAGE, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	/* The slot was not used up: the new page alone is accepted. */
	EXPECT_EQ(0, ne_set_region(self->vm, 1, HPAGE, b, HPAGE, 0));
	munmap(a, HPAGE);
	munmap(b, 2 * HPAGE);
	close(fd);
}

/* ---- memory that is not hugetlbfs ------------------------------------------- */

TEST_F(donate, not_hugetlbfs_is_refused_before_pinning)
{
	char *a = reserve(2 * HPAGE), *p;
	long acquired;

	ASSERT_NE(NULL, a);
	/* Small pages. */
	p = mmap(a, 2 * HPAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(a, p);
	ASSERT_EQ(0, madvise(a, 2 * HPAGE, MADV_NOHUGEPAGE));
	memset(a, 1, 2 * HPAGE);
	acquired = pins_acquired();
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 0, 0, a, HPAGE, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(acquired, pins_acquired());

	/* A hugetlbfs page, then small pages: nothing of it is pinned either. */
	p = mmap(a, HPAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB |
		 MAP_POPULATE | MAP_FIXED, -1, 0);
	ASSERT_EQ(a, p);
	acquired = pins_acquired();
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 0, 0, a, 2 * HPAGE, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(acquired, pins_acquired()) {
		TH_LOG("%ld pages pinned (and released) by a refused call",
		       pins_acquired() - acquired);
	}
	EXPECT_EQ(0, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	munmap(a, 2 * HPAGE);
}

/* ---- a slot set once ---------------------------------------------------------- */

TEST_F(donate, slot_reuse_is_eexist_before_other_checks)
{
	char *mem = ne_huge_alloc(2 * HPAGE);
	char *small = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct {
		const char *what;
		uint64_t gpa;
		void *addr;
		uint64_t size;
		uint32_t flags;
	} calls[] = {
		{ "flags", HPAGE, mem + HPAGE, HPAGE, 1 },
		{ "unaligned size", HPAGE, mem + HPAGE, 4096, 0 },
		{ "unaligned address", HPAGE, mem + HPAGE + 4096, HPAGE, 0 },
		{ "wrong gpa", 0, mem + HPAGE, HPAGE, 0 },
		{ "wrap", HPAGE, (void *)(-HPAGE), 2 * HPAGE, 0 },
		{ "kernel address", HPAGE, (void *)0xffff880000000000ULL, HPAGE, 0 },
		{ "not hugetlbfs", HPAGE, small, HPAGE, 0 },
		{ "overlap", HPAGE, mem, HPAGE, 0 },
	};
	unsigned int i;

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_NE(MAP_FAILED, small);
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, HPAGE, 0));
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ne_set_region(self->vm, 0, calls[i].gpa,
					    calls[i].addr, calls[i].size,
					    calls[i].flags));
		EXPECT_EQ(EEXIST, errno) {
			TH_LOG("slot 0 again, %s: errno %d (%s)", calls[i].what,
			       errno, strerror(errno));
		}
	}
	/* Slot 1, same call: the slot check does not hide the others. */
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 1, HPAGE, mem + HPAGE, HPAGE, 1));
	EXPECT_EQ(EINVAL, errno);
	munmap(small, HPAGE);
	munmap(mem, 2 * HPAGE);
}

/*
 * memory_size 0 is KVM's delete, not a second setting of the slot: EINVAL
 * on a set slot as on a free one, and neither slot changes.
 */
TEST_F(donate, delete_is_einval_on_a_set_slot_too)
{
	char *mem = ne_huge_alloc(2 * HPAGE);

	ASSERT_NE(MAP_FAILED, mem);
	ASSERT_EQ(0, ne_set_region(self->vm, 0, 0, mem, HPAGE, 0));
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 0, 0, mem, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 1, HPAGE, mem + HPAGE, 0, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ((long long)HPAGE, ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	/* Slot 0 is still set, slot 1 still free. */
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 0, HPAGE, mem + HPAGE, HPAGE, 0));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(0, ne_set_region(self->vm, 1, HPAGE, mem + HPAGE, HPAGE, 0));
	munmap(mem, 2 * HPAGE);
}

/* ---- ENOMEM: the driver's allocations are the caller's ----------------------- */

struct memcg_child {
	volatile int step;	/* parent: 1 go, 2 exit */
	volatile int ready;	/* child: 1 ready, 2 done */
	volatile int vm;
	volatile int rc;
	volatile int err;
};

static void memcg_child(struct memcg_child *sh)
{
	char *mem = ne_huge_alloc(HPAGE);
	int vm = ne_create_vm();

	if (vm < 0 || mem == MAP_FAILED)
		_exit(1);
	/* Every page this process touches below, touched once before. */
	ne_set_region(vm, 0, 0, mem, HPAGE, 1);
	sh->vm = vm;
	sh->ready = 1;
	while (sh->step < 1)
		sched_yield();
	sh->rc = ne_set_region(vm, 0, 0, mem, HPAGE, 0);
	sh->err = errno;
	sh->ready = 2;
	while (sh->step < 2)
		sched_yield();
	_exit(0);
}

/* The cgroup2 hierarchy, mounted at @dir if it is nowhere. */
static int cgroup2_root(char *dir, size_t len)
{
	char dev[256], mnt[PATH_MAX], type[64];
	FILE *f = fopen("/proc/mounts", "r");
	int found = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, mnt, type) == 3)
		if (!strcmp(type, "cgroup2")) {
			snprintf(dir, len, "%s", mnt);
			found = 1;
			break;
		}
	fclose(f);
	if (found)
		return 0;
	snprintf(dir, len, "/tmp/ne_kvm_cgroup2");
	mkdir(dir, 0755);
	return mount("none", dir, "cgroup2", 0, NULL);
}

TEST_F(donate, enomem_from_the_memcg_is_recorded)
{
	struct memcg_child *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char root[PATH_MAX], cg[PATH_MAX + 64], file[PATH_MAX + 128];
	char pid_s[32], why[256] = "", before[256] = "";
	int status, n;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, sh);
	memset((void *)sh, 0, sizeof(*sh));
	ASSERT_EQ(0, cgroup2_root(root, sizeof(root)));
	snprintf(file, sizeof(file), "%s/cgroup.subtree_control", root);
	ne_write_file(file, "+memory");
	snprintf(cg, sizeof(cg), "%s/ne_kvm_donate.%d", root, getpid());
	ASSERT_EQ(0, mkdir(cg, 0755));
	snprintf(file, sizeof(file), "%s/memory.max", cg);
	ASSERT_EQ(0, access(file, W_OK)) {
		TH_LOG("no memory controller in %s", cg);
	}

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		memcg_child(sh);
	for (n = 0; n < 30000 && !sh->ready; n++)
		usleep(1000);
	ASSERT_EQ(1, sh->ready);
	fdinfo_of(pid, sh->vm, "ne_last_error", before, sizeof(before));

	snprintf(file, sizeof(file), "%s/cgroup.procs", cg);
	snprintf(pid_s, sizeof(pid_s), "%d", pid);
	ASSERT_EQ(0, ne_write_file(file, pid_s));
	/* The child's charges stayed behind: the new group holds nothing. */
	snprintf(file, sizeof(file), "%s/memory.max", cg);
	ASSERT_EQ(0, ne_write_file(file, "0"));
	sh->step = 1;
	for (n = 0; n < 30000 && sh->ready != 2; n++)
		usleep(1000);
	EXPECT_EQ(2, sh->ready);
	EXPECT_EQ(0, fdinfo_of(pid, sh->vm, "ne_last_error", why, sizeof(why)));
	ne_write_file(file, "max");
	sh->step = 2;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	rmdir(cg);

	EXPECT_EQ(-1, sh->rc);
	EXPECT_EQ(ENOMEM, sh->err) {
		TH_LOG("errno %d (%s), wanted ENOMEM", sh->err, strerror(sh->err));
	}
	EXPECT_STRNE("none", why);
	EXPECT_STRNE(before, why) {
		TH_LOG("ne_last_error still says \"%s\"", why);
	}
	TH_LOG("ne_last_error: %s", why);
	EXPECT_TRUE(WIFEXITED(status));
	munmap((void *)sh, 4096);
}

/* ---- a donation the device takes half of ------------------------------------- */

struct donation {
	int vm;
	char *addr;
	uint64_t size;
	int rc;
	int err;
};

static void *donate_thread(void *arg)
{
	struct donation *d = arg;

	d->rc = ne_set_region(d->vm, 0, 0, d->addr, d->size, 0);
	d->err = errno;
	return NULL;
}

/*
 * The second SLOT_ADD_MEM of a region is refused with @dev_rc, the first
 * accepted: the VM is dead, whatever the errno (the device's own ENODEV is
 * no lost slot).
 */
static void partial_donation(struct __test_metadata *_metadata,
			     FIXTURE_DATA(donate) *self, int dev_rc)
{
	volatile uint32_t *tc = ne_testctl_map();
	int fd = huge_file(2), vcpu, n;
	char *a = reserve(2 * HPAGE), *more = ne_huge_alloc(HPAGE);
	long pins = ne_pins_held();
	struct donation d;
	char dead[256], why[256];
	uint32_t sent;
	uint64_t cid = 0;
	pthread_t t;

	ASSERT_NE(NULL, tc) {
		TH_LOG("needs the device's test controls (test-controls=on)");
	}
	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, a);
	ASSERT_NE(MAP_FAILED, more);
	/* Two pages that cannot merge: two SLOT_ADD_MEM. */
	ASSERT_EQ(0, map_huge_at(a, fd, 0));
	ASSERT_EQ(0, map_huge_at(a + HPAGE, fd, HPAGE));
	if (ne_phys(a) + HPAGE == ne_phys(a + HPAGE)) {
		ASSERT_EQ(0, map_huge_at(a, fd, HPAGE));
		ASSERT_EQ(0, map_huge_at(a + HPAGE, fd, 0));
	}
	ASSERT_NE(ne_phys(a) + HPAGE, ne_phys(a + HPAGE));
	vcpu = vm_ioctl(self->vm, KVM_CREATE_VCPU, 0);

	/* The first SLOT_ADD_MEM is slow; the second one is refused. */
	ne_tc_disarm_all(tc);
	sent = ne_tc_cmds(tc, NE_WIRE_SLOT_ADD_MEM);
	ne_tc_arm(tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_ADD_MEM,
		  NE_TESTCTL_DELAY_MS, 1000);
	d = (struct donation){ .vm = self->vm, .addr = a, .size = 2 * HPAGE };
	ASSERT_EQ(0, pthread_create(&t, NULL, donate_thread, &d));
	for (n = 0; n < 20000 && ne_tc_cmds(tc, NE_WIRE_SLOT_ADD_MEM) == sent; n++)
		usleep(500);
	ne_tc_arm(tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_ADD_MEM,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-dev_rc);
	pthread_join(t, NULL);
	EXPECT_EQ(0, ne_tc_read(tc, NE_TESTCTL_FAIL_ARM)) {
		TH_LOG("the second SLOT_ADD_MEM never came");
	}
	ne_tc_disarm_all(tc);
	EXPECT_EQ(sent + 2, ne_tc_cmds(tc, NE_WIRE_SLOT_ADD_MEM));
	ASSERT_EQ(-1, d.rc);
	EXPECT_EQ(dev_rc, d.err);
	EXPECT_EQ((long long)HPAGE, ne_fdinfo_num(self->vm, "ne_mem_bytes"));

	/* Dead: EIO to everything but close, and fdinfo says why. */
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_dead", dead, sizeof(dead)));
	EXPECT_STRNE("no", dead);
	TH_LOG("ne_dead: %s", dead);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(self->vm, 1, HPAGE, more, HPAGE, 0));
	EXPECT_EQ(EIO, errno);
	ASSERT_IOCTL_ERRNO(EIO, self->vm, KVM_CREATE_VCPU, 1);
	errno = 0;
	EXPECT_EQ(-1, ne_start(self->vm, 0, &cid));
	EXPECT_EQ(EIO, errno);
	ASSERT_IOCTL_ERRNO(EIO, vcpu, KVM_RUN, 0);
	ASSERT_EQ(0, ne_fdinfo(self->vm, "ne_last_error", why, sizeof(why)));
	EXPECT_STREQ(dead, why);

	/* Close gives everything back. */
	close(vcpu);
	close(self->vm);
	self->vm = ne_create_vm();
	EXPECT_EQ(pins, ne_pins_held());
	munmap(a, 2 * HPAGE);
	munmap(more, HPAGE);
	close(fd);
}

TEST_F(donate, partial_donation_leaves_a_dead_vm)
{
	partial_donation(_metadata, self, EINVAL);
}

/* The device's ENODEV is its answer, not a lost slot: dead too. */
TEST_F(donate, partial_donation_refused_with_enodev_leaves_a_dead_vm)
{
	partial_donation(_metadata, self, ENODEV);
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
