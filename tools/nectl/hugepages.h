/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_HUGEPAGES_H
#define NECTL_HUGEPAGES_H

#include <stddef.h>
#include <stdint.h>

#define HP_MAX_SIZES	8
#define HP_MAX_REGIONS	HP_MAX_SIZES

struct hp_pool {
	unsigned int nr_sizes;
	uint64_t page_bytes[HP_MAX_SIZES];	/* largest first */
	uint64_t free_pages[HP_MAX_SIZES];	/* free minus reserved */
	uint64_t total_pages[HP_MAX_SIZES];	/* nr_hugepages */
	int node;			/* the NUMA node counted, or -1: all */
	char dir[256];			/* where the counts are (for hints) */
};

struct hp_plan {
	uint64_t pages[HP_MAX_SIZES];	/* per size of the pool */
	uint64_t total_bytes;
};

struct hp_region {
	void *addr;
	uint64_t bytes;
};

/* Reads the pool from sysfs_dir (normally /sys/kernel/mm/hugepages). */
int hp_pool_read(const char *sysfs_dir, struct hp_pool *pool);

/*
 * Limits @pool to the pages free on NUMA node @node, whose counts are in
 * @node_dir (/sys/devices/system/node/nodeN/hugepages): the driver takes an
 * enclave's memory from its CPU pool's node only.  Returns -1, @pool
 * unchanged, when @node_dir cannot be read (a kernel without NUMA).
 */
int hp_pool_limit_node(struct hp_pool *pool, const char *node_dir, int node);

/*
 * Chooses pages for need_bytes: largest sizes first but never a page bigger
 * than what is still needed, so the request is met exactly whenever the free
 * pages allow it (nitro-cli issue #602).  Only if that leaves a remainder is
 * one page of the smallest size covering it added (overshoot, reported).
 * Returns 0, or -1 with what is missing described in msg.
 */
int hp_plan(const struct hp_pool *pool, uint64_t need_bytes, struct hp_plan *plan,
	    char *msg, size_t msglen);

/*
 * Maps the plan's pages (one MAP_HUGETLB mapping per page size, largest first),
 * faulted in (hp_prefault), from NUMA node @node first (-1: the caller's).
 * Returns the number of regions, or -1 if a page could not be mapped (then
 * nothing stays mapped).
 */
int hp_map(const struct hp_pool *pool, const struct hp_plan *plan, int node,
	   struct hp_region *regions, unsigned int max_regions);
void hp_unmap(struct hp_region *regions, unsigned int count);

/*
 * Faults in the @pages pages of @page_bytes at @addr, from NUMA node @node
 * first (-1: the caller's; an enclave's memory must be on its CPU pool's
 * node).  The kernel clears each hugepage as it faults it in, most of a
 * launch's memory set-up, so the pages are split among up to
 * HP_PREFAULT_THREADS threads, one per CPU this process may run on (of the
 * first HP_MAX_CPUS).  A thread that cannot be created leaves its share to
 * the caller.
 */
#define HP_PREFAULT_THREADS	8
#define HP_MAX_CPUS		8192
void hp_prefault(void *addr, uint64_t page_bytes, uint64_t pages, int node);

/* "2 MiB", "1 GiB" */
void hp_size_name(uint64_t bytes, char *buf, size_t len);

#endif
