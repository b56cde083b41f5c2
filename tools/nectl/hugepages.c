// SPDX-License-Identifier: GPL-2.0
/* Hugepage pool discovery, exact-fit planning and mapping. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/mempolicy.h>

#include "hugepages.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

void hp_size_name(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= (1ULL << 30) && !(bytes & ((1ULL << 30) - 1)))
		snprintf(buf, len, "%llu GiB", (unsigned long long)(bytes >> 30));
	else
		snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes >> 20));
}

static int read_u64_file(const char *path, uint64_t *out)
{
	unsigned long long v;
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%llu", &v) == 1;
	fclose(f);
	if (!ok)
		return -1;
	*out = v;
	return 0;
}

static void pool_insert(struct hp_pool *pool, uint64_t bytes, uint64_t free_pages, uint64_t total)
{
	unsigned int i = pool->nr_sizes;

	/* Insertion sort, largest first. */
	while (i > 0 && pool->page_bytes[i - 1] < bytes) {
		pool->page_bytes[i] = pool->page_bytes[i - 1];
		pool->free_pages[i] = pool->free_pages[i - 1];
		pool->total_pages[i] = pool->total_pages[i - 1];
		i--;
	}
	pool->page_bytes[i] = bytes;
	pool->free_pages[i] = free_pages;
	pool->total_pages[i] = total;
	pool->nr_sizes++;
}

/* Reads @file of the @page_bytes size under @dir (a hugepages directory). */
static int read_size_count(const char *dir, uint64_t page_bytes, const char *file, uint64_t *out)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/hugepages-%llukB/%s", dir,
		 (unsigned long long)(page_bytes >> 10), file);
	return read_u64_file(path, out);
}

int hp_pool_read(const char *sysfs_dir, struct hp_pool *pool)
{
	struct dirent *de;
	DIR *dir;

	memset(pool, 0, sizeof(*pool));
	pool->node = -1;
	snprintf(pool->dir, sizeof(pool->dir), "%s", sysfs_dir);
	dir = opendir(sysfs_dir);
	if (!dir)
		return -1;
	while ((de = readdir(dir)) && pool->nr_sizes < HP_MAX_SIZES) {
		unsigned long long kib;
		uint64_t free_pages, resv = 0, total = 0;

		if (sscanf(de->d_name, "hugepages-%llukB", &kib) != 1)
			continue;
		/* The driver takes only multiples of 2 MiB. */
		if (kib < 2048 || kib % 2048)
			continue;
		if (read_size_count(sysfs_dir, (uint64_t)kib << 10, "free_hugepages", &free_pages))
			continue;
		read_size_count(sysfs_dir, (uint64_t)kib << 10, "resv_hugepages", &resv);
		read_size_count(sysfs_dir, (uint64_t)kib << 10, "nr_hugepages", &total);
		pool_insert(pool, (uint64_t)kib << 10, free_pages > resv ? free_pages - resv : 0,
			    total);
	}
	closedir(dir);
	return 0;
}

int hp_pool_limit_node(struct hp_pool *pool, const char *node_dir, int node)
{
	uint64_t free_pages, total;
	unsigned int i;

	if (access(node_dir, F_OK))
		return -1;
	/*
	 * Reservations are counted for the whole system only (a node has no
	 * resv_hugepages): a size's usable pages are the fewer of the node's
	 * free ones and the system's free and unreserved ones.
	 */
	for (i = 0; i < pool->nr_sizes; i++) {
		free_pages = total = 0;
		read_size_count(node_dir, pool->page_bytes[i], "free_hugepages", &free_pages);
		read_size_count(node_dir, pool->page_bytes[i], "nr_hugepages", &total);
		if (free_pages < pool->free_pages[i])
			pool->free_pages[i] = free_pages;
		pool->total_pages[i] = total;
	}
	pool->node = node;
	snprintf(pool->dir, sizeof(pool->dir), "%s", node_dir);
	return 0;
}

static void describe_missing(const struct hp_pool *pool, uint64_t need, uint64_t have,
			     char *msg, size_t msglen)
{
	uint64_t missing = need - have, smallest;
	char name[32], node[64] = "";
	size_t pos = 0;
	unsigned int i;
	int n;

	if (pool->node >= 0)
		snprintf(node, sizeof(node), " on NUMA node %d (the CPU pool's)", pool->node);
	n = snprintf(msg, msglen, "need %llu MiB of hugepages%s, only %llu MiB can be used; free:",
		     (unsigned long long)(need >> 20), node, (unsigned long long)(have >> 20));
	pos = n > 0 ? (size_t)n : 0;
	for (i = 0; i < pool->nr_sizes && pos < msglen; i++) {
		hp_size_name(pool->page_bytes[i], name, sizeof(name));
		n = snprintf(msg + pos, msglen - pos, "%s %llu x %s", i ? "," : "",
			     (unsigned long long)pool->free_pages[i], name);
		pos += n > 0 ? (size_t)n : 0;
	}
	if (!pool->nr_sizes && pos < msglen) {
		n = snprintf(msg + pos, msglen - pos, " none (no hugepage sizes of 2 MiB multiples)");
		pos += n > 0 ? (size_t)n : 0;
	}
	if (!pool->nr_sizes || pos >= msglen)
		return;
	smallest = pool->page_bytes[pool->nr_sizes - 1];
	hp_size_name(smallest, name, sizeof(name));
	snprintf(msg + pos, msglen - pos,
		 "; missing %llu MiB = %llu more %s pages: echo %llu > %s/hugepages-%llukB/nr_hugepages",
		 (unsigned long long)(missing >> 20),
		 (unsigned long long)((missing + smallest - 1) / smallest), name,
		 (unsigned long long)(pool->total_pages[pool->nr_sizes - 1] +
				      (missing + smallest - 1) / smallest),
		 pool->dir, (unsigned long long)(smallest >> 10));
}

/* After an overshooting page at index big, drop smaller pages no longer needed. */
static void trim_smaller_pages(const struct hp_pool *pool, struct hp_plan *plan,
			       unsigned int big, uint64_t need)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < pool->nr_sizes; i++)
		total += plan->pages[i] * pool->page_bytes[i];
	for (i = pool->nr_sizes; i-- > big + 1;) {
		while (plan->pages[i] && total - pool->page_bytes[i] >= need) {
			plan->pages[i]--;
			total -= pool->page_bytes[i];
		}
	}
}

int hp_plan(const struct hp_pool *pool, uint64_t need, struct hp_plan *plan,
	    char *msg, size_t msglen)
{
	uint64_t left = need, free_bytes = 0;
	unsigned int i;

	memset(plan, 0, sizeof(*plan));
	msg[0] = '\0';
	for (i = 0; i < pool->nr_sizes; i++) {
		uint64_t take = left / pool->page_bytes[i];

		if (take > pool->free_pages[i])
			take = pool->free_pages[i];
		plan->pages[i] = take;
		left -= take * pool->page_bytes[i];
		free_bytes += pool->free_pages[i] * pool->page_bytes[i];
	}
	/*
	 * With sizes that divide each other, the greedy fill above is exact
	 * whenever any exact fill exists.  A remainder means the small pages ran
	 * out: cover it with the smallest single page that is still free.
	 */
	if (left) {
		for (i = pool->nr_sizes; i-- > 0;) {
			if (pool->page_bytes[i] >= left && plan->pages[i] < pool->free_pages[i]) {
				plan->pages[i]++;
				left = 0;
				trim_smaller_pages(pool, plan, i, need);
				break;
			}
		}
	}
	if (left) {
		describe_missing(pool, need, need - left < free_bytes ? need - left : free_bytes,
				 msg, msglen);
		return -1;
	}
	for (i = 0; i < pool->nr_sizes; i++)
		plan->total_bytes += plan->pages[i] * pool->page_bytes[i];
	return 0;
}

static int log2_u64(uint64_t v)
{
	int n = 0;

	while (v >>= 1)
		n++;
	return n;
}

/* Physical frame of the page mapped at addr, or 0 when unknown (no CAP_SYS_ADMIN). */
static uint64_t page_frame(int pagemap, const void *addr)
{
	uint64_t entry;
	off_t off = (uintptr_t)addr / 4096 * sizeof(entry);

	if (pread(pagemap, &entry, sizeof(entry), off) != sizeof(entry) || !(entry >> 63))
		return 0;
	return entry & ((1ULL << 55) - 1);
}

struct page_order {
	uint64_t frame;
	uint64_t index;
};

static int compare_frames(const void *a, const void *b)
{
	const struct page_order *x = a, *y = b;

	return x->frame < y->frame ? -1 : x->frame > y->frame;
}

/* Moves the pages of one mapping to new_base, in the order of order[]. */
static int move_pages(void *addr, uint64_t page_bytes, const struct page_order *order,
		      uint64_t pages, char *new_base)
{
	uint64_t k;

	for (k = 0; k < pages; k++) {
		void *from = (char *)addr + order[k].index * page_bytes;

		if (mremap(from, page_bytes, page_bytes, MREMAP_MAYMOVE | MREMAP_FIXED,
			   new_base + k * page_bytes) == MAP_FAILED)
			return -1;
	}
	return 0;
}

/* One thread's share of hp_prefault(): pages [first, end). */
struct prefault_share {
	char *addr;
	uint64_t page_bytes, first, end;
};

static void *prefault_share(void *arg)
{
	const struct prefault_share *s = arg;
	uint64_t k;

	for (k = s->first; k < s->end; k++)
		*(volatile char *)(s->addr + k * s->page_bytes) = 0;
	return NULL;
}

/* The CPUs this process may run on, at least 1. */
static unsigned int usable_cpus(void)
{
	cpu_set_t *set = CPU_ALLOC(HP_MAX_CPUS);
	size_t size = CPU_ALLOC_SIZE(HP_MAX_CPUS);
	int n = 1;

	if (set && !sched_getaffinity(0, size, set))
		n = CPU_COUNT_S(size, set);
	CPU_FREE(set);
	return n > 0 ? n : 1;
}

/*
 * Whichever CPU a thread faults on, the pages come from @node first (the
 * caller's node when @node is -1), then from the others, as the default
 * policy falls back.  Without NUMA support there is one node: mbind()
 * fails, and that changes nothing.
 */
static void prefer_node(void *addr, uint64_t bytes, int node)
{
	const unsigned int bits = 8 * sizeof(unsigned long);
	unsigned long *mask;
	unsigned int cpu, here;

	if (node < 0) {
		if (getcpu(&cpu, &here))
			return;
		node = here;
	}
	mask = calloc(node / bits + 1, sizeof(*mask));
	if (!mask)
		return;
	mask[node / bits] = 1UL << (node % bits);
	/* (the kernel reads maxnode - 1 bits) */
	syscall(SYS_mbind, addr, bytes, MPOL_PREFERRED, mask, (unsigned long)node + 2, 0);
	free(mask);
}

void hp_prefault(void *addr, uint64_t page_bytes, uint64_t pages, int node)
{
	struct prefault_share share[HP_PREFAULT_THREADS];
	pthread_t thread[HP_PREFAULT_THREADS];
	bool started[HP_PREFAULT_THREADS] = { false };
	uint64_t n = usable_cpus(), t;

	if (n > HP_PREFAULT_THREADS)
		n = HP_PREFAULT_THREADS;
	if (n > pages)
		n = pages;
	if (pages)
		prefer_node(addr, page_bytes * pages, node);
	for (t = 0; t < n; t++) {
		share[t] = (struct prefault_share){ addr, page_bytes, pages * t / n,
						    pages * (t + 1) / n };
		/* share 0 is the caller's own */
		started[t] = t && !pthread_create(&thread[t], NULL, prefault_share, &share[t]);
	}
	for (t = 0; t < n; t++)
		if (!started[t])
			prefault_share(&share[t]);
	for (t = 0; t < n; t++)
		if (started[t])
			pthread_join(thread[t], NULL);
}

/*
 * The device takes a limited number of physical ranges per enclave (64 in
 * the emulation; NE_ERR_MEM_MAX_REGIONS on EC2), and hugetlb hands out pages
 * in no useful physical order (often descending).  Reading the frames of
 * the faulted-in pages from /proc/self/pagemap and mremap()ing them into
 * ascending physical order lets the driver merge neighbours into one range.
 * The pages must be faulted in (hp_prefault).  Returns the (possibly new)
 * address of the mapping, or NULL on failure (then the mapping is gone).
 * Without the frames it changes nothing.
 */
static void *sort_physically(void *addr, uint64_t page_bytes, uint64_t pages)
{
	uint64_t bytes = page_bytes * pages, k, sorted = 1;
	struct page_order *order;
	char *reserve, *base;
	int pagemap;

	if (pages < 2)
		return addr;
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	order = calloc(pages, sizeof(*order));
	if (pagemap < 0 || !order)
		goto keep;
	for (k = 0; k < pages; k++) {
		order[k].frame = page_frame(pagemap, (char *)addr + k * page_bytes);
		order[k].index = k;
		if (!order[k].frame)
			goto keep;
		if (k && order[k].frame < order[k - 1].frame)
			sorted = 0;
	}
	if (sorted)
		goto keep;
	qsort(order, pages, sizeof(*order), compare_frames);
	/* Address space for the result, aligned to the page size. */
	reserve = mmap(NULL, bytes + page_bytes, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (reserve == MAP_FAILED)
		goto keep;
	base = (char *)(((uintptr_t)reserve + page_bytes - 1) & ~(uintptr_t)(page_bytes - 1));
	if (base > reserve)
		munmap(reserve, base - reserve);
	if (reserve + page_bytes > base)
		munmap(base + bytes, reserve + page_bytes - base);
	if (move_pages(addr, page_bytes, order, pages, base)) {
		/* Pages are now split between both areas: drop both. */
		munmap(base, bytes);
		munmap(addr, bytes);
		base = NULL;
	}
	free(order);
	close(pagemap);
	return base;
keep:
	free(order);
	if (pagemap >= 0)
		close(pagemap);
	return addr;
}

int hp_map(const struct hp_pool *pool, const struct hp_plan *plan, int node,
	   struct hp_region *regions, unsigned int max_regions)
{
	unsigned int count = 0, i;
	int saved;

	/*
	 * One mapping per page size, holding all the pages of that size: each
	 * mapping costs the enclave one memory slot (KVM_CAP_NR_MEMSLOTS is
	 * small), while the driver merges physically contiguous pages anyway.
	 */
	for (i = 0; i < pool->nr_sizes; i++) {
		uint64_t bytes = pool->page_bytes[i] * plan->pages[i];
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			    (log2_u64(pool->page_bytes[i]) << MAP_HUGE_SHIFT);
		void *p;

		if (!plan->pages[i])
			continue;
		if (count == max_regions) {
			errno = E2BIG;
			goto fail;
		}
		/* MAP_PRIVATE hugetlb reserves the pages now: no SIGBUS later. */
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
		if (p == MAP_FAILED)
			goto fail;
		hp_prefault(p, pool->page_bytes[i], plan->pages[i], node);
		p = sort_physically(p, pool->page_bytes[i], plan->pages[i]);
		if (!p)
			goto fail;
		regions[count].addr = p;
		regions[count].bytes = bytes;
		count++;
	}
	return count;
fail:
	saved = errno;
	hp_unmap(regions, count);
	errno = saved;
	return -1;
}

void hp_unmap(struct hp_region *regions, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++)
		munmap(regions[i].addr, regions[i].bytes);
}
