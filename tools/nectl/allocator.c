// SPDX-License-Identifier: GPL-2.0
/*
 * nectl allocate: reserves what /etc/nitro_enclaves/allocator.yaml asks for
 * (nitro-cli's format): hugepages on the CPU pool's NUMA node and the CPU
 * pool in /sys/module/ne_kvm/parameters/ne_cpus.  The ne-kvm-allocator
 * service runs it once at boot.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocator.h"
#include "enclaves.h"
#include "errors.h"

/* ------------------------------------------------------------ the file */

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int parse_positive(const char *v, uint64_t max, uint64_t *out)
{
	unsigned long long n;
	char *end;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || !n || n > max)
		return -1;
	*out = n;
	return 0;
}

int alloc_config_parse(const char *text, struct alloc_config *cfg, char *msg, size_t msglen)
{
	const char *p = text;
	int seen_memory = 0, seen_count = 0, seen_pool = 0, keys = 0, lineno = 0;
	char line[512];

	memset(cfg, 0, sizeof(*cfg));
	msg[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, "\n");
		char *key, *value, *colon;
		uint64_t v;

		lineno++;
		if (n >= sizeof(line)) {
			snprintf(msg, msglen, "line %d: too long", lineno);
			return -1;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (p[n] == '\n');

		if (line[0] == ' ' || line[0] == '\t') {
			key = trim(line);
			if (!*key || *key == '#')
				continue;
			snprintf(msg, msglen, "line %d: indented \"%s\": only top-level keys are read",
				 lineno, key);
			return -1;
		}
		key = trim(line);
		if (!*key || *key == '#')
			continue;
		if (!strcmp(key, "---")) {
			if (keys) {
				snprintf(msg, msglen, "line %d: a second document (---): one is read",
					 lineno);
				return -1;
			}
			continue;
		}
		if (!strcmp(key, "..."))
			break;
		colon = strchr(key, ':');
		if (!colon) {
			snprintf(msg, msglen, "line %d: \"%s\" is not \"key: value\"", lineno, key);
			return -1;
		}
		*colon = '\0';
		value = colon + 1;
		if (*value && *value != ' ' && *value != '\t') {
			snprintf(msg, msglen, "line %d: no space after \"%s:\"", lineno, key);
			return -1;
		}
		key = trim(key);
		/* A comment after the value: " #" */
		for (colon = value; *colon; colon++)
			if (*colon == '#' && (colon[-1] == ' ' || colon[-1] == '\t')) {
				*colon = '\0';
				break;
			}
		value = trim(value);
		n = strlen(value);
		if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
			value[n - 1] = '\0';
			value++;
		}
		keys++;
		if (!*value) {
			snprintf(msg, msglen, "line %d: %s has no value", lineno, key);
			return -1;
		}
		if (!strcmp(key, "memory_mib")) {
			if (seen_memory++) {
				snprintf(msg, msglen, "line %d: memory_mib given twice", lineno);
				return -1;
			}
			if (parse_positive(value, 1ULL << 40, &cfg->memory_mib)) {
				snprintf(msg, msglen, "line %d: memory_mib \"%s\" is not a positive number of MiB",
					 lineno, value);
				return -1;
			}
		} else if (!strcmp(key, "cpu_count")) {
			if (seen_count++) {
				snprintf(msg, msglen, "line %d: cpu_count given twice", lineno);
				return -1;
			}
			if (parse_positive(value, ALLOC_MAX_CPUS, &v)) {
				snprintf(msg, msglen, "line %d: cpu_count \"%s\" is not a positive number of CPUs",
					 lineno, value);
				return -1;
			}
			cfg->cpu_count = v;
		} else if (!strcmp(key, "cpu_pool")) {
			static unsigned int ids[ALLOC_MAX_CPUS];

			if (seen_pool++) {
				snprintf(msg, msglen, "line %d: cpu_pool given twice", lineno);
				return -1;
			}
			if (strlen(value) >= sizeof(cfg->cpu_pool) || strchr(value, ' ') ||
			    parse_cpu_list(value, ids, ALLOC_MAX_CPUS) <= 0) {
				snprintf(msg, msglen, "line %d: cpu_pool \"%s\" is not a cpu list such as 2,3,6-9",
					 lineno, value);
				return -1;
			}
			snprintf(cfg->cpu_pool, sizeof(cfg->cpu_pool), "%s", value);
		} else {
			snprintf(msg, msglen, "line %d: unknown key \"%s\" (the keys are memory_mib, cpu_count and cpu_pool)",
				 lineno, key);
			return -1;
		}
	}
	if (!seen_memory) {
		snprintf(msg, msglen, "memory_mib is missing (the MiB of hugepages to reserve)");
		return -1;
	}
	if (seen_count && seen_pool) {
		snprintf(msg, msglen, "cpu_count and cpu_pool are both given: use one of them");
		return -1;
	}
	if (!seen_count && !seen_pool) {
		snprintf(msg, msglen, "neither cpu_count nor cpu_pool is given (one of them says which CPUs to reserve)");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ cores */

static int cpu_by_id(const struct alloc_cpu *cpus, unsigned int n, unsigned int id)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (cpus[i].id == id)
			return i;
	return -1;
}

int alloc_pick_cores(const struct alloc_cpu *cpus, unsigned int n, unsigned int count,
		     char *pool, size_t poollen, char *msg, size_t msglen)
{
	unsigned int i, j, left = count, usable = 0, threads = 0;
	size_t pos = 0;
	int c0 = cpu_by_id(cpus, n, 0);

	pool[0] = msg[0] = '\0';
	if (c0 < 0) {
		snprintf(msg, msglen, "CPU 0 is not listed: its NUMA node is unknown");
		return -1;
	}
	/* Cores in ascending order of their lowest thread: walk the CPUs by id. */
	for (i = 0; i < n; i++) {
		const struct alloc_cpu *c = &cpus[i];

		if (c->core != c->id || c->node != cpus[c0].node || c->core == cpus[c0].core)
			continue;
		usable += c->threads;
		threads = c->threads;
	}
	for (i = 0; i < n && left; i++) {
		const struct alloc_cpu *c = &cpus[i];

		if (c->core != c->id || c->node != cpus[c0].node || c->core == cpus[c0].core ||
		    c->threads > left)
			continue;
		for (j = 0; j < n; j++) {
			if (cpus[j].core != c->core)
				continue;
			pos += snprintf(pool + pos, pos < poollen ? poollen - pos : 0, "%s%u",
					pos ? "," : "", cpus[j].id);
			left--;
		}
	}
	if (left || pos >= poollen) {
		pool[0] = '\0';
		if (usable >= count && threads > 1 && count % threads)
			snprintf(msg, msglen, "cpu_count %u is not a whole number of cores (%u threads each)",
				 count, threads);
		else
			snprintf(msg, msglen, "cpu_count %u: NUMA node %d of CPU 0 has %u CPUs in whole cores besides CPU 0's core",
				 count, cpus[c0].node, usable);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ hugepages */

int hp_reserve(const struct hp_pool *pool, uint64_t need, hp_set_fn set, void *ctx,
	       uint64_t *reserved, char *msg, size_t msglen)
{
	uint64_t left, smallest, got = 0;
	unsigned int i;
	char name[32];
	size_t pos;
	int64_t r;

	msg[0] = '\0';
	memset(reserved, 0, sizeof(*reserved) * HP_MAX_SIZES);
	if (!pool->nr_sizes) {
		snprintf(msg, msglen, "no hugepage sizes of 2 MiB multiples");
		return -1;
	}
	smallest = pool->page_bytes[pool->nr_sizes - 1];
	left = (need + smallest - 1) / smallest * smallest;
	need = left;
	/* Cleared first: old large pages would otherwise overshoot or crowd out small ones. */
	for (i = 0; i < pool->nr_sizes; i++)
		if (set(ctx, i, 0) < 0)
			goto fail_set;
	for (i = 0; i < pool->nr_sizes && left; i++) {
		uint64_t want = left / pool->page_bytes[i];

		if (!want)
			continue;
		r = set(ctx, i, want);
		if (r < 0)
			goto fail_set;
		reserved[i] = (uint64_t)r;
		got += (uint64_t)r * pool->page_bytes[i];
		left = got >= need ? 0 : need - got;
	}
	if (!left)
		return 0;
	pos = snprintf(msg, msglen, "not enough hugepages: %llu MiB asked, the kernel reserved %llu MiB (",
		       (unsigned long long)(need >> 20), (unsigned long long)(got >> 20));
	for (i = 0; i < pool->nr_sizes; i++) {
		hp_size_name(pool->page_bytes[i], name, sizeof(name));
		pos += snprintf(msg + pos, pos < msglen ? msglen - pos : 0, "%s%llu x %s",
				i ? " + " : "", (unsigned long long)reserved[i], name);
	}
	snprintf(msg + pos, pos < msglen ? msglen - pos : 0,
		 "); %llu MiB missing: free memory, or boot with hugepages= reserved",
		 (unsigned long long)(left >> 20));
	goto rollback;
fail_set:
	snprintf(msg, msglen, "cannot set the number of %s pages: %s",
		 (hp_size_name(pool->page_bytes[i], name, sizeof(name)), name), strerror(errno));
rollback:
	for (i = 0; i < pool->nr_sizes; i++)
		set(ctx, i, 0);
	for (i = 0; i < pool->nr_sizes; i++) {
		r = set(ctx, i, pool->total_pages[i]);
		if (r == (int64_t)pool->total_pages[i])
			continue;
		pos = strlen(msg);
		hp_size_name(pool->page_bytes[i], name, sizeof(name));
		snprintf(msg + pos, pos < msglen ? msglen - pos : 0,
			 "; the %s pages could not all be put back (%lld of %llu)", name,
			 (long long)r, (unsigned long long)pool->total_pages[i]);
	}
	return -1;
}

/* ------------------------------------------------------------ sysfs */

static const char *sysfs_root(void)
{
	const char *r = getenv("NECTL_SYSFS");

	return r && *r ? r : "/sys";
}

static int read_text(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_text(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
	ssize_t n;
	int saved;

	if (fd < 0)
		return -1;
	n = write(fd, len ? text : "\n", len ? len : 1);
	saved = errno;
	close(fd);
	errno = saved;
	return n < 0 ? -1 : 0;
}

struct node_pages {
	char dir[512];
	const struct hp_pool *pool;
};

static int64_t sysfs_set_pages(void *ctx, unsigned int i, uint64_t count)
{
	struct node_pages *np = ctx;
	char path[640], text[32];
	unsigned long long got;

	snprintf(path, sizeof(path), "%s/hugepages-%llukB/nr_hugepages", np->dir,
		 (unsigned long long)(np->pool->page_bytes[i] >> 10));
	snprintf(text, sizeof(text), "%llu", (unsigned long long)count);
	/* A shortfall shows in the count read back, not always as an error. */
	if (write_text(path, text) && errno != ENOMEM && errno != EBUSY)
		return -1;
	if (read_text(path, text, sizeof(text)) || sscanf(text, "%llu", &got) != 1)
		return -1;
	return got;
}

/* NUMA node of each CPU from /sys/devices/system/node/nodeN/cpulist; -1 if none. */
static int node_of(unsigned int cpu)
{
	static unsigned int ids[ALLOC_MAX_CPUS];
	char path[512], text[4096];
	struct dirent *de;
	int node = -1, n, i, k;
	DIR *d;

	snprintf(path, sizeof(path), "%s/devices/system/node", sysfs_root());
	d = opendir(path);
	if (!d)
		return cpu < ALLOC_MAX_CPUS ? 0 : -1;	/* no NUMA: one node */
	while (node < 0 && (de = readdir(d))) {
		if (sscanf(de->d_name, "node%d", &k) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/devices/system/node/%s/cpulist", sysfs_root(),
			 de->d_name);
		if (read_text(path, text, sizeof(text)))
			continue;
		n = parse_cpu_list(text, ids, ALLOC_MAX_CPUS);
		for (i = 0; i < n; i++)
			if (ids[i] == cpu)
				node = k;
	}
	closedir(d);
	return node;
}

/*
 * NUMA node of @cpu from its cpuN/nodeM link, which an offline CPU keeps
 * (the node's cpulist leaves it out); -1 if it has none.
 */
static int node_link_of(unsigned int cpu)
{
	char path[512];
	struct dirent *de;
	int node = -1, k;
	DIR *d;

	snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu%u", sysfs_root(), cpu);
	d = opendir(path);
	if (!d)
		return -1;
	while (node < 0 && (de = readdir(d)))
		if (sscanf(de->d_name, "node%d", &k) == 1 && k >= 0)
			node = k;
	closedir(d);
	return node;
}

/* NUMA node of @cpu, online or offline; -1 if it is not present. */
static int cpu_node(unsigned int cpu)
{
	int node = node_link_of(cpu);

	return node >= 0 ? node : node_of(cpu);
}

int alloc_pool_node(void)
{
	unsigned int ids[ALLOC_MAX_CPUS];
	char path[512], text[4096];
	int n;

	snprintf(path, sizeof(path), "%s/module/ne_kvm/parameters/ne_cpus", sysfs_root());
	if (read_text(path, text, sizeof(text)))
		return -1;
	n = parse_cpu_list(text, ids, ALLOC_MAX_CPUS);
	/* the pool's CPUs are offline: their links, not the nodes' lists */
	return n > 0 ? cpu_node(ids[0]) : -1;
}

static int read_topology(struct alloc_cpu *cpus, unsigned int *nr, char *msg, size_t msglen)
{
	static unsigned int online[ALLOC_MAX_CPUS], sib[ALLOC_MAX_CPUS];
	char path[512], text[4096];
	int n, i, s, k;

	snprintf(path, sizeof(path), "%s/devices/system/cpu/online", sysfs_root());
	n = read_text(path, text, sizeof(text)) ? -1 : parse_cpu_list(text, online, ALLOC_MAX_CPUS);
	if (n <= 0) {
		snprintf(msg, msglen, "cannot read the online CPUs from %s", path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct alloc_cpu *c = &cpus[i];

		c->id = online[i];
		c->node = node_of(c->id);
		snprintf(path, sizeof(path), "%s/devices/system/cpu/cpu%u/topology/thread_siblings_list",
			 sysfs_root(), c->id);
		s = read_text(path, text, sizeof(text)) ? -1 : parse_cpu_list(text, sib, ALLOC_MAX_CPUS);
		if (s <= 0) {
			snprintf(msg, msglen, "cannot read CPU %u's threads from %s", c->id, path);
			return -1;
		}
		c->core = sib[0];
		for (k = 1; k < s; k++)
			if (sib[k] < c->core)
				c->core = sib[k];
		c->threads = s;
	}
	/* A core with a thread offline is not whole: it must not be picked. */
	for (i = 0; i < n; i++) {
		for (k = 0, s = 0; k < n; k++)
			s += cpus[k].core == cpus[i].core;
		if ((unsigned int)s != cpus[i].threads)
			cpus[i].node = -2;
	}
	*nr = n;
	return 0;
}

static const char allocate_help[] =
	"Usage: nectl allocate [--config FILE]\n\n"
	"Reserves what FILE (default /etc/nitro_enclaves/allocator.yaml, nitro-cli's\n"
	"format) asks for: memory_mib MiB of hugepages, and the CPU pool, either\n"
	"cpu_count CPUs (whole cores on CPU 0's NUMA node, never CPU 0's core, lowest\n"
	"ids first) or the cpu list cpu_pool (e.g. 2,3,6-9), never both.  The old\n"
	"pool is cleared first, then the new one written to\n"
	"/sys/module/ne_kvm/parameters/ne_cpus; then the hugepages are reserved on\n"
	"the pool's NUMA node: every size is cleared, then the largest pages first,\n"
	"never a page bigger than what is still needed (the request rounded up to the\n"
	"smallest size).  If either fails, the old pool and the hugepage counts are\n"
	"put back (a count that cannot be restored is named in the error).  The\n"
	"ne-kvm-allocator service runs this at boot.  Needs root.\n\n"
	"Errors: E17 for the file's contents (the line and what is wrong), E19 for a\n"
	"file that cannot be read or written (no FILE; ne_kvm not loaded; the pool\n"
	"refused by the driver, with the reason), E22 when the CPUs are not there,\n"
	"E27 when the kernel cannot reserve enough hugepages.\n\n"
	"Environment: NECTL_SYSFS=DIR reads and writes DIR instead of /sys (tests).\n";

static const char *pool_refusal(int err)
{
	switch (err) {
	case EBUSY:
		return "an enclave exists (terminate every enclave first)";
	case EINVAL:
		return "the driver takes present CPUs of one NUMA node, whole cores, no thread of CPU 0's core";
	case EPERM:
	case EACCES:
		return "writing the pool needs root (CAP_SYS_ADMIN)";
	case ENODEV:
		return "ne_kvm is being unloaded";
	default:
		return strerror(err);
	}
}

int cmd_allocate(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct alloc_cpu cpus[ALLOC_MAX_CPUS];
	static unsigned int ids[ALLOC_MAX_CPUS];
	const char *config = ALLOC_CONFIG_PATH;
	char text[8192], msg[1024], pool_text[1024], old_pool[1024], cpus_path[512], name[32];
	uint64_t reserved[HP_MAX_SIZES];
	struct alloc_config cfg;
	struct node_pages np;
	struct hp_pool hp;
	unsigned int nr = 0, i;
	int opt, n, node = -1, fd, code;
	ssize_t len;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		if (opt == 'h') {
			fputs(allocate_help, stdout);
			return 0;
		}
		if (opt != 'c')
			return nectl_error(E_INVALID_ARG, "allocate takes only --config FILE (see allocate --help)");
		config = optarg;
	}
	if (optind < argc)
		return nectl_error(E_INVALID_ARG, "allocate takes only --config FILE (see allocate --help)");

	fd = open(config, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nectl_error(E_FILE_OPERATION, "cannot read %s: %s (it names memory_mib and cpu_count or cpu_pool)",
				   config, strerror(errno));
	len = read(fd, text, sizeof(text));
	close(fd);
	if (len < 0 || (size_t)len >= sizeof(text))
		return nectl_error(E_FILE_OPERATION, "cannot read %s: %s", config,
				   len < 0 ? strerror(errno) : "larger than 8 KiB");
	text[len] = '\0';
	if (alloc_config_parse(text, &cfg, msg, sizeof(msg)))
		return nectl_error(E_CONFIG_PARSE, "%s: %s", config, msg);

	snprintf(cpus_path, sizeof(cpus_path), "%s/module/ne_kvm/parameters/ne_cpus", sysfs_root());
	if (read_text(cpus_path, old_pool, sizeof(old_pool)))
		return nectl_error(E_FILE_OPERATION, "cannot read %s: %s (is ne_kvm loaded? modprobe ne_kvm)",
				   cpus_path, strerror(errno));

	/*
	 * The old pool's CPUs are offline, and an offline CPU is in no node's
	 * cpulist and has no siblings: bring them back first (both ways of
	 * naming the pool), and put the old pool back on any failure.
	 */
	if (old_pool[0] && write_text(cpus_path, ""))
		return nectl_error(E_FILE_OPERATION, "cannot clear the CPU pool %s in %s: %s",
				   old_pool, cpus_path, pool_refusal(errno));
	if (cfg.cpu_count) {
		code = 0;
		if (read_topology(cpus, &nr, msg, sizeof(msg)))
			code = E_FILE_OPERATION;
		else if (alloc_pick_cores(cpus, nr, cfg.cpu_count, pool_text, sizeof(pool_text),
					  msg, sizeof(msg)))
			code = E_INSUFFICIENT_CPUS;
		if (code) {
			code = nectl_error(code, "%s", msg);
			goto restore_pool;
		}
	} else {
		snprintf(pool_text, sizeof(pool_text), "%s", cfg.cpu_pool);
	}

	n = parse_cpu_list(pool_text, ids, ALLOC_MAX_CPUS);
	for (i = 0; i < (unsigned int)n; i++) {
		/* offline by hand is fine: the driver takes such a CPU as it is */
		int k = cpu_node(ids[i]);

		if (k < 0) {
			code = nectl_error(E_INSUFFICIENT_CPUS, "CPU %u of the pool %s is not present",
					   ids[i], pool_text);
			goto restore_pool;
		}
		if (node >= 0 && k != node) {
			code = nectl_error(E_INSUFFICIENT_CPUS, "the pool %s spans NUMA nodes %d and %d: it must be on one",
					   pool_text, node, k);
			goto restore_pool;
		}
		node = k;
	}

	np.pool = &hp;
	snprintf(np.dir, sizeof(np.dir), "%s/devices/system/node/node%d/hugepages", sysfs_root(), node);
	if (access(np.dir, F_OK))
		snprintf(np.dir, sizeof(np.dir), "%s/kernel/mm/hugepages", sysfs_root());
	if (hp_pool_read(np.dir, &hp)) {
		code = nectl_error(E_FILE_OPERATION, "cannot read the hugepage sizes in %s: %s",
				   np.dir, strerror(errno));
		goto restore_pool;
	}
	/*
	 * The pool first: the driver's refusal changes nothing, while the
	 * hugepages, once freed, may not all come back (1 GiB pages reserved
	 * at boot, a fragmented node).
	 */
	if (write_text(cpus_path, pool_text)) {
		code = nectl_error(E_FILE_OPERATION, "ne_kvm refused the CPU pool %s: %s",
				   pool_text, pool_refusal(errno));
		goto restore_pool;
	}
	if (hp_reserve(&hp, cfg.memory_mib << 20, sysfs_set_pages, &np, reserved, msg, sizeof(msg))) {
		code = nectl_error(E_INSUFFICIENT_MEMORY, "node %d: %s", node, msg);
		goto restore_pool;
	}

	printf("nectl allocate: CPU pool %s; %llu MiB of hugepages on node %d:", pool_text,
	       (unsigned long long)cfg.memory_mib, node);
	for (i = 0, n = 0; i < hp.nr_sizes; i++) {
		if (!reserved[i])
			continue;
		hp_size_name(hp.page_bytes[i], name, sizeof(name));
		printf("%s %llu x %s", n++ ? " +" : "", (unsigned long long)reserved[i], name);
	}
	printf("\n");
	return 0;

restore_pool:
	/* the old pool (or none); the driver takes back any list it had */
	write_text(cpus_path, old_pool);
	return code;
}
