/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_ALLOCATOR_H
#define NECTL_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>

#include "hugepages.h"

#define ALLOC_CONFIG_PATH	"/etc/nitro_enclaves/allocator.yaml"
#define ALLOC_MAX_CPUS		4096

/* /etc/nitro_enclaves/allocator.yaml, as nitro-cli's allocator reads it. */
struct alloc_config {
	uint64_t memory_mib;
	unsigned int cpu_count;		/* 0: cpu_pool given instead */
	char cpu_pool[256];		/* "" unless given */
};

/*
 * Parses the file's text: an optional "---", then "key: value" lines with
 * the keys memory_mib, cpu_count and cpu_pool (comments, blank lines and
 * quoted values allowed).  memory_mib and exactly one of cpu_count and
 * cpu_pool are required.  Returns 0, or -1 with the reason (and line) in msg.
 */
int alloc_config_parse(const char *text, struct alloc_config *cfg, char *msg, size_t msglen);

/* One CPU of the machine, as sysfs shows it. */
struct alloc_cpu {
	unsigned int id;
	int node;		/* NUMA node */
	unsigned int core;	/* the lowest CPU id of its core's threads */
	unsigned int threads;	/* threads of its core */
};

/*
 * Picks count CPUs as whole cores on CPU 0's NUMA node, never CPU 0's core,
 * lowest CPU ids first (nitro-cli's allocator picks the same way).  Writes
 * the pool as a cpu list ("2,3") into pool.  Returns 0, or -1 with what is
 * missing in msg.
 */
int alloc_pick_cores(const struct alloc_cpu *cpus, unsigned int nr_cpus, unsigned int count,
		     char *pool, size_t poollen, char *msg, size_t msglen);

/*
 * Sets the number of pages of pool size index i to count and returns the
 * number the kernel really reserved, or -1 if it could not be set.
 */
typedef int64_t (*hp_set_fn)(void *ctx, unsigned int i, uint64_t count);

/*
 * Reserves need_bytes (rounded up to the smallest page size) as hugepages:
 * every size is first cleared, then the largest pages first, never a page
 * bigger than what is still needed, each size taking what the kernel gives
 * before the next smaller one.  If the total falls short, the old counts
 * (pool->total_pages) are put back and -1 returned with what is missing in
 * msg.  reserved[] gets the count per size.
 */
int hp_reserve(const struct hp_pool *pool, uint64_t need_bytes, hp_set_fn set, void *ctx,
	       uint64_t *reserved, char *msg, size_t msglen);

/* nectl allocate */
/*
 * The NUMA node of the driver's CPU pool (ne_cpus), the one node the driver
 * takes an enclave's memory from; -1 when the pool is empty or unknown.
 */
int alloc_pool_node(void);

int cmd_allocate(int argc, char **argv);

#endif
