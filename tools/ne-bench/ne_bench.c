// SPDX-License-Identifier: GPL-2.0
/*
 * ne_bench: what the driver's ioctls cost, as numbers (run it in the parent
 * VM as root; `make bench` does).
 *
 *   - the median latency of each ioctl of the KVM-shaped API;
 *   - donating 1 GiB as 2 MiB pages and as one 1 GiB page: the time of the
 *     KVM_SET_USER_MEMORY_REGION call and the SLOT_ADD_MEM commands it sent
 *     (read from the emulated device's test controls when present) next to
 *     the number of physically contiguous runs of the pages, which is what
 *     the command count must be.
 *
 * The 2 MiB pages are donated as hugetlb hands them out (in descending
 * physical order) and ordered by physical address first, as nectl (a
 * launcher that wants few ranges) does.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <linux/kvm.h>
#include <linux/mman.h>
#include <linux/ne_kvm.h>

#include "hw/ne/ne-testctl.h"

#define MIB		(1ULL << 20)
#define GIB		(1ULL << 30)
#define ROUNDS		200
#define START_ROUNDS	10
#define POOL		"/sys/module/ne_kvm/parameters/ne_cpus"
#define CMD_SLOT_ADD_MEM 6

static int sys_fd;
static volatile uint32_t *testctl;

static void die(const char *what)
{
	fprintf(stderr, "ne_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static void row(const char *what, double us, int n)
{
	printf("%-48s %10.1f us  (median of %d)\n", what, us, n);
}

static int create_vm(void)
{
	int vm = ioctl(sys_fd, KVM_CREATE_VM, 0);

	if (vm < 0)
		die("KVM_CREATE_VM");
	return vm;
}

static int set_region(int vm, uint32_t slot, uint64_t gpa, void *addr,
		      uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uintptr_t)addr,
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);
}

/* The emulated device's test controls, for the command counts; or NULL. */
static volatile uint32_t *map_testctl(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir("/sys/bus/pci/devices");
	void *regs = NULL;

	while (d && (de = readdir(d))) {
		char id[16] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
			 de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(id, sizeof(id), f) && !strncmp(id, "0xe4c1", 6)) {
			int fd;

			snprintf(path, sizeof(path),
				 "/sys/bus/pci/devices/%s/resource%d",
				 de->d_name, NE_TESTCTL_BAR);
			fd = open(path, O_RDWR | O_SYNC);
			if (fd >= 0) {
				regs = mmap(NULL, NE_TESTCTL_BAR_SIZE,
					    PROT_READ | PROT_WRITE, MAP_SHARED,
					    fd, 0);
				close(fd);
			}
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	if (!regs || regs == MAP_FAILED ||
	    ((volatile uint32_t *)regs)[NE_TESTCTL_MAGIC / 4] !=
	    NE_TESTCTL_MAGIC_VALUE)
		return NULL;
	return regs;
}

static long add_mem_commands(void)
{
	if (!testctl)
		return -1;
	return testctl[(NE_TESTCTL_CMD_COUNT(CMD_SLOT_ADD_MEM)) / 4];
}

static uint64_t phys_of(void *addr)
{
	static int fd = -1;
	uint64_t entry = 0;

	if (fd < 0)
		fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || pread(fd, &entry, 8, (uintptr_t)addr / 4096 * 8) != 8)
		die("pagemap");
	return (entry & ((1ULL << 55) - 1)) * 4096;
}

static int cmp_page(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/*
 * @size of @page-sized hugepages, faulted in; ordered by physical address
 * (as nectl orders them) if @sort, else as hugetlb handed them out.
 */
static char *huge_pages(uint64_t size, uint64_t page, int flag, int sort)
{
	unsigned int n = size / page, i;
	uint64_t (*pages)[2] = calloc(n, sizeof(*pages));
	char *mem, *out;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | flag, -1, 0);
	if (mem == MAP_FAILED || !pages)
		return NULL;
	for (i = 0; i < n; i++) {
		mem[i * page] = 1;
		pages[i][0] = phys_of(mem + i * page);
		pages[i][1] = (uintptr_t)(mem + i * page);
	}
	if (!sort) {
		free(pages);
		return mem;
	}
	qsort(pages, n, sizeof(*pages), cmp_page);
	out = mmap(NULL, size, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (out == MAP_FAILED)
		die("mmap");
	for (i = 0; i < n; i++)
		if (mremap((void *)(uintptr_t)pages[i][1], page, page,
			   MREMAP_MAYMOVE | MREMAP_FIXED,
			   out + i * page) == MAP_FAILED)
			die("mremap");
	free(pages);
	return out;
}

static unsigned int phys_runs(char *mem, uint64_t size, uint64_t page)
{
	uint64_t i, end = 0;
	unsigned int runs = 0;

	for (i = 0; i < size; i += page) {
		uint64_t p = phys_of(mem + i);

		if (!runs || p != end)
			runs++;
		end = p + page;
	}
	return runs;
}

static void bench_latencies(void)
{
	static double t[ROUNDS];
	char *mem = mmap(NULL, 64 * MIB, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB,
			 -1, 0);
	int i, vm;

	if (mem == MAP_FAILED)
		die("64 MiB of 2 MiB hugepages");
	memset(mem, 0, 64 * MIB);

	for (i = 0; i < ROUNDS; i++) {
		double t0 = now_us();

		ioctl(sys_fd, KVM_GET_API_VERSION, 0);
		t[i] = now_us() - t0;
	}
	row("KVM_GET_API_VERSION", median(t, ROUNDS), ROUNDS);

	for (i = 0; i < ROUNDS; i++) {
		double t0 = now_us();

		ioctl(sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
		t[i] = now_us() - t0;
	}
	row("KVM_CHECK_EXTENSION", median(t, ROUNDS), ROUNDS);

	for (i = 0; i < ROUNDS; i++) {
		double t0 = now_us(), t1;

		vm = create_vm();
		t1 = now_us();
		t[i] = t1 - t0;
		close(vm);
	}
	row("KVM_CREATE_VM (SLOT_ALLOC)", median(t, ROUNDS), ROUNDS);

	for (i = 0; i < ROUNDS; i++) {
		double t0;

		vm = create_vm();
		t0 = now_us();
		close(vm);
		t[i] = now_us() - t0;
	}
	row("last close of an empty VM fd (SLOT_FREE)", median(t, ROUNDS), ROUNDS);

	for (i = 0; i < ROUNDS; i++) {
		double t0;

		vm = create_vm();
		t0 = now_us();
		if (set_region(vm, 0, 0, mem, 2 * MIB))
			die("KVM_SET_USER_MEMORY_REGION");
		t[i] = now_us() - t0;
		close(vm);
	}
	row("KVM_SET_USER_MEMORY_REGION, one 2 MiB page", median(t, ROUNDS), ROUNDS);

	for (i = 0; i < ROUNDS; i++) {
		double t0;
		int vcpu;

		vm = create_vm();
		t0 = now_us();
		vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
		t[i] = now_us() - t0;
		if (vcpu < 0)
			die("KVM_CREATE_VCPU");
		close(vcpu);
		close(vm);
	}
	row("KVM_CREATE_VCPU (claims a core, SLOT_ADD_VCPU)", median(t, ROUNDS), ROUNDS);

	for (i = 0; i < START_ROUNDS; i++) {
		struct ne_enclave_start s = { 0 };
		int v0, v1;
		double t0;

		vm = create_vm();
		if (set_region(vm, 0, 0, mem, 64 * MIB))
			die("KVM_SET_USER_MEMORY_REGION 64 MiB");
		v0 = ioctl(vm, KVM_CREATE_VCPU, 0);
		v1 = ioctl(vm, KVM_CREATE_VCPU, 1);
		if (v0 < 0 || v1 < 0)
			die("KVM_CREATE_VCPU");
		t0 = now_us();
		if (ioctl(vm, NE_ENCLAVE_START, &s))
			die("NE_ENCLAVE_START");
		t[i] = now_us() - t0;
		close(v0);
		close(v1);
		t0 = now_us();
		close(vm);
		t[ROUNDS - 1 - i] = now_us() - t0;
	}
	row("NE_ENCLAVE_START (64 MiB, 2 vCPUs)", median(t, START_ROUNDS), START_ROUNDS);
	row("last close of a running enclave (STOP + FREE)",
	    median(t + ROUNDS - START_ROUNDS, START_ROUNDS), START_ROUNDS);
	munmap(mem, 64 * MIB);
}

/*
 * Donating 1 GiB, DONATION_ROUNDS times: the median time of the call with
 * its spread, beside the SLOT_ADD_MEM commands it sent and the physically
 * contiguous runs of the pages (the least it could send).
 */
#define DONATION_ROUNDS	5
static void bench_donation(const char *what, uint64_t page, int flag, int sort)
{
	double t[DONATION_ROUNDS], lo = 0, hi = 0, t0, mid;
	long before, cmds = 0, cmd_hi = 0;
	unsigned int runs = 0, run_hi = 0;
	int r, vm;

	for (r = 0; r < DONATION_ROUNDS; r++) {
		char *mem = huge_pages(GIB, page, flag, sort);

		if (!mem) {
			printf("%-48s %s\n", what, "skipped: not enough free hugepages of that size");
			return;
		}
		runs = phys_runs(mem, GIB, page);
		vm = create_vm();
		before = add_mem_commands();
		t0 = now_us();
		if (set_region(vm, 0, 0, mem, GIB)) {
			int limit;

			if (errno != ENOSPC)
				die("KVM_SET_USER_MEMORY_REGION 1 GiB");
			/* what nectl avoids by sorting: more ranges than a slot takes */
			limit = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
			cmds = before < 0 ? -1 : add_mem_commands() - before;
			close(vm);
			munmap(mem, GIB);
			printf("%-48s refused (ENOSPC): %u pages in %u contiguous runs, more than the device's %d ranges per slot; %ld SLOT_ADD_MEM sent\n",
			       what, (unsigned int)(GIB / page), runs, limit, cmds);
			return;
		}
		t[r] = now_us() - t0;
		cmds = before < 0 ? -1 : add_mem_commands() - before;
		close(vm);
		munmap(mem, GIB);
		if (!r || t[r] < lo)
			lo = t[r];
		if (!r || t[r] > hi)
			hi = t[r];
		/* the rounds' worst: a mismatch in any round shows */
		if (runs > run_hi)
			run_hi = runs;
		if (cmds < 0 || cmds > cmd_hi)
			cmd_hi = cmds;
	}
	mid = median(t, DONATION_ROUNDS);
	printf("%-48s %10.1f us  [%.1f-%.1f, %d rounds]  %u pages, %u contiguous runs, ",
	       what, mid, lo, hi, DONATION_ROUNDS, (unsigned int)(GIB / page), run_hi);
	if (cmds < 0)
		printf("SLOT_ADD_MEM count n/a");
	else
		printf("%ld SLOT_ADD_MEM (%.2fx the runs)%s", cmd_hi,
		       (double)cmd_hi / run_hi,
		       (unsigned long)cmd_hi == run_hi ? "" : "  (MISMATCH)");
	/* as make bench's other figures: a spread over a quarter of the median */
	printf("%s\n", hi - lo > mid / 4 ? "  SPREAD TOO LARGE TO TRUST" : "");
}

int main(void)
{
	int pool = open(POOL, O_WRONLY);

	if (pool < 0 || write(pool, "2-3", 3) < 0)
		die("setting ne_cpus=2-3");
	close(pool);
	sys_fd = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
	if (sys_fd < 0)
		die("/dev/nitro_enclaves");
	testctl = map_testctl();

	printf("%-48s %s\n", "ioctl / operation", "time (TCG guest)");
	bench_latencies();
	bench_donation("donate 1 GiB of 2 MiB pages, unsorted", 2 * MIB, MAP_HUGE_2MB, 0);
	bench_donation("donate 1 GiB of 2 MiB pages, sorted as nectl", 2 * MIB, MAP_HUGE_2MB, 1);
	bench_donation("donate 1 GiB as one 1 GiB page", GIB, MAP_HUGE_1GB, 1);
	return 0;
}
