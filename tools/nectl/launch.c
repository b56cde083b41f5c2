// SPDX-License-Identifier: GPL-2.0
/*
 * `nectl run`.  The enclave lives as long as its VM fd, and only the process
 * that created the VM may issue ioctls on it, so nectl forks a holder first
 * and the holder does the whole launch: create the VM, map and fill the
 * hugepages, donate memory and vCPUs, bind the heartbeat listener, start,
 * wait for the heartbeat.  It reports progress and the result to the
 * waiting `nectl run` through a pipe ("P text" lines, then "R code" and the
 * run JSON or the error text), then detaches and waits for the enclave to
 * stop (EPOLLHUP) or for a termination request (SIGTERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "linux/ne_kvm.h"

#include "allocator.h"
#include "eif.h"
#include "eif_sig.h"
#include "enclaves.h"
#include "errors.h"
#include "hugepages.h"
#include "launch.h"
#include "metadata.h"

#define MIB			(1ULL << 20)
#define MAP_ATTEMPTS		3

struct launch {
	const struct run_options *opt;
	struct eif_info eif;
	int eif_fd;
	int report_fd;
	int sig_fd;
	int vm_fd;
	int vcpu_fds[NECTL_MAX_CPUS];
	unsigned int cpu_ids[NECTL_MAX_CPUS];
	unsigned int nr_vcpus;
	int listen_fd;
	int heartbeat_lock;
	uint64_t slot_uid;
	uint64_t cid;
	struct hp_region regions[HP_MAX_REGIONS];
	unsigned int nr_regions;
	uint64_t mem_bytes;
	char name[NECTL_NAME_MAX + 1];
	struct json_value *metadata;	/* the EIF's metadata section, for --metadata */
	bool registered;
	char err[1024];
	/* The measuring thread publishes under this lock, unless told to stop. */
	pthread_mutex_t measure_lock;
	bool measure_stop;
};

unsigned int heartbeat_timeout_seconds(uint64_t eif_bytes, uint64_t mem_bytes)
{
	const uint64_t eif_step = 6ULL << 30, mem_step = 100ULL << 30;
	uint64_t eif_units = (eif_bytes + eif_step - 1) / eif_step;
	uint64_t mem_units = (mem_bytes + mem_step - 1) / mem_step;

	/* nitro-cli counts at least one unit of each: the minimum is 180 s. */
	return 90 * ((eif_units ? eif_units : 1) + (mem_units ? mem_units : 1));
}

static int fail(struct launch *l, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct launch *l, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->err, sizeof(l->err), fmt, ap);
	va_end(ap);
	return code;
}

static void progress(struct launch *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void progress(struct launch *l, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	nectl_log("%s", line);
	if (l->report_fd < 0)
		return;
	dprintf(l->report_fd, "P %.*s\n", n, line);
}

/* The driver's reason for the last refused call, from the VM fd's fdinfo. */
static const char *driver_reason(struct launch *l, char *buf, size_t len)
{
	if (l->vm_fd < 0 || fdinfo_read(0, l->vm_fd, "ne_last_error", buf, len))
		snprintf(buf, len, "no reason given");
	return buf;
}

/* ------------------------------------------------------------ registry */

/*
 * How long a launch waits for the registry lock, which launches hold for
 * a moment each: one held longer is held by something else (a member of
 * the group may hold it for good).  NECTL_LOCK_TIMEOUT=S overrides it
 * (tests).
 */
#define REGISTRY_LOCK_WAIT_S	30

static unsigned int registry_lock_wait(void)
{
	const char *env = getenv("NECTL_LOCK_TIMEOUT");

	return env && atoi(env) > 0 ? (unsigned int)atoi(env) : REGISTRY_LOCK_WAIT_S;
}

/* nectl_lock() waits: say so, and for whom, with the launch's progress. */
static void lock_waiting(void *ctx, const char *file, pid_t holder)
{
	if (holder)
		progress(ctx, "Waiting for %s/%s, locked by pid %d...", nectl_run_dir(), file,
			 (int)holder);
	else
		progress(ctx, "Waiting for %s/%s, locked by another process...", nectl_run_dir(),
			 file);
}

/* Takes @file's lock for @l, waiting at most @limit_s (0: no limit). */
static int launch_lock(struct launch *l, const char *file, unsigned int limit_s)
{
	struct nectl_lock_wait w = {
		.limit_s = limit_s,
		.cancel_fd = l->sig_fd,
		.waiting = lock_waiting,
		.ctx = l,
	};
	char who[32] = "another process";
	int fd = nectl_lock(file, &w);

	if (fd >= 0)
		return fd;
	if (errno == EPERM || errno == ELOOP)
		fail(l, E_LOCK, "cannot lock %s/%s: it is not a regular file with one name (a link, a FIFO...): remove it",
		     nectl_run_dir(), file);
	else if (errno == ETIMEDOUT) {
		if (w.holder)
			snprintf(who, sizeof(who), "pid %d", (int)w.holder);
		fail(l, E_LOCK, "cannot lock %s/%s: still locked after %u s, by %s (a launch holds it for a moment)",
		     nectl_run_dir(), file, limit_s, who);
	} else if (errno == EINTR)
		fail(l, E_LOCK, "a signal came while waiting for %s/%s", nectl_run_dir(), file);
	else
		fail(l, E_LOCK, "cannot lock %s/%s: %s", nectl_run_dir(), file, strerror(errno));
	return -1;
}

static int registry_update(struct launch *l, const char *state)
{
	struct registry_entry e = {
		.name = l->name,
		.slot_uid = l->slot_uid,
		.holder = getpid(),
		.state = state,
		.eif_path = l->opt->eif_path,
		.measured = l->eif.measured ? &l->eif : NULL,
		.metadata = l->metadata,
		.no_heartbeat = l->opt->no_heartbeat,
	};
	size_t len = 0;
	char *text = registry_render(&e, &len);
	int ret;

	if (!text)
		return -1;
	ret = registry_write(l->slot_uid, text, len);
	free(text);
	if (!ret)
		l->registered = true;
	return ret;
}

static void default_name(const char *eif_path, char *name, size_t len)
{
	const char *base = strrchr(eif_path, '/');
	size_t n;

	base = base ? base + 1 : eif_path;
	n = strlen(base);
	if (n > 4 && !strcmp(base + n - 4, ".eif"))
		n -= 4;
	if (n == 0 || n > NECTL_NAME_MAX - 8)
		n = n ? NECTL_NAME_MAX - 8 : 0;
	snprintf(name, len, "%.*s", (int)n, n ? base : "enclave");
}

/* Picks the name and records the enclave, under the registry lock. */
static int register_enclave(struct launch *l)
{
	char base[NECTL_NAME_MAX + 1], **taken;
	unsigned int i;
	bool in_use;
	size_t n;
	int lock = launch_lock(l, "registry.lock", registry_lock_wait());

	if (lock < 0)
		return E_LOCK;
	if (registry_taken_names(&taken, &n)) {
		nectl_unlock(lock);
		return fail(l, E_FILE_OPERATION, "cannot read the registry in %s: %s",
			    nectl_run_dir(), strerror(errno));
	}
	if (l->opt->enclave_name[0]) {
		snprintf(l->name, sizeof(l->name), "%s", l->opt->enclave_name);
	} else {
		/* As nitro-cli: the EIF's name, then name_1, name_2... (n + 1 tries: one is free) */
		default_name(l->opt->eif_path, base, sizeof(base));
		snprintf(l->name, sizeof(l->name), "%s", base);
		for (i = 1; names_contain(taken, n, l->name) && i <= n; i++)
			snprintf(l->name, sizeof(l->name), "%.*s_%u", NECTL_NAME_MAX - 8, base, i);
	}
	in_use = names_contain(taken, n, l->name);
	names_free(taken, n);
	if (in_use) {
		nectl_unlock(lock);
		return fail(l, E_NAMING,
			    "an enclave named '%s' is already running: choose another --enclave-name",
			    l->name);
	}
	if (registry_update(l, "STARTING")) {
		nectl_unlock(lock);
		return fail(l, E_FILE_OPERATION, "cannot write the registry in %s: %s", nectl_run_dir(),
			    strerror(errno));
	}
	nectl_unlock(lock);
	return 0;
}

/* ------------------------------------------------------------ launch steps */

static int create_vm(struct launch *l)
{
	char v[64];
	int dev, version;

	dev = open(NECTL_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		if (errno == ENOENT)
			return fail(l, E_FILE_OPERATION,
				    "%s does not exist: load the driver (insmod ne_kvm.ko)", NECTL_DEVICE);
		return fail(l, E_FILE_OPERATION, "cannot open %s: %s%s", NECTL_DEVICE,
			    strerror(errno),
			    errno == EACCES ? " (run as root or join the device's group)" : "");
	}
	version = ioctl(dev, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		close(dev);
		return fail(l, E_IOCTL, "%s answers API version %d, nectl needs %d: wrong driver?",
			    NECTL_DEVICE, version, KVM_API_VERSION);
	}
	l->vm_fd = ioctl(dev, KVM_CREATE_VM, 0);
	close(dev);	/* the VM fd keeps what it needs */
	if (l->vm_fd < 0)
		return fail(l, E_IOCTL, "KVM_CREATE_VM failed: %s%s", strerror(errno),
			    errno == ENOSPC || errno == EBUSY ? " (no free enclave slot)" : "");
	if (fdinfo_read(0, l->vm_fd, "ne_slot_uid", v, sizeof(v)))
		return fail(l, E_IOCTL, "the VM fd has no ne_slot_uid in its fdinfo: driver too old");
	l->slot_uid = strtoull(v, NULL, 0);
	return 0;
}

static int allocate_memory(struct launch *l)
{
	uint64_t need = (l->opt->memory_mib * MIB + NE_MEM_ALIGN - 1) & ~(NE_MEM_ALIGN - 1);
	struct hp_pool pool;
	struct hp_plan plan;
	char msg[768], node_dir[96];
	int attempt, n, node;

	progress(l, "Start allocating memory...");
	/* the driver takes memory from the CPU pool's node only */
	node = alloc_pool_node();
	/* Another launcher can take pages between the plan and the mmap: retry. */
	for (attempt = 0; attempt < MAP_ATTEMPTS; attempt++) {
		if (hp_pool_read("/sys/kernel/mm/hugepages", &pool))
			return fail(l, E_INSUFFICIENT_MEMORY,
				    "/sys/kernel/mm/hugepages is missing: the kernel has no hugetlb support");
		/* pages of other nodes would be refused (E29) after all the work */
		if (node >= 0) {
			snprintf(node_dir, sizeof(node_dir),
				 "/sys/devices/system/node/node%d/hugepages", node);
			hp_pool_limit_node(&pool, node_dir, node);
		}
		if (hp_plan(&pool, need, &plan, msg, sizeof(msg)))
			return fail(l, E_INSUFFICIENT_MEMORY, "%s", msg);
		n = hp_map(&pool, &plan, node, l->regions, HP_MAX_REGIONS);
		if (n >= 0) {
			l->nr_regions = n;
			l->mem_bytes = plan.total_bytes;
			if (plan.total_bytes > need)
				progress(l, "Note: %llu MiB allocated for %llu MiB requested: the free hugepages could not make up the exact amount",
					 (unsigned long long)(plan.total_bytes / MIB),
					 (unsigned long long)(need / MIB));
			return 0;
		}
	}
	return fail(l, E_INSUFFICIENT_MEMORY,
		    "the free hugepages were taken by someone else while mapping (%s); try again",
		    strerror(errno));
}

/* Copies the whole EIF to guest-physical NE_IMAGE_LOAD_GPA of the concatenated regions. */
static int write_image(struct launch *l)
{
	uint64_t gpa = 0, file_off = 0, size = l->eif.file_size;
	unsigned int i;

	if (NE_IMAGE_LOAD_GPA + size > l->mem_bytes)
		return fail(l, E_MEMORY_REQUEST_TOO_SMALL,
			    "the EIF (%llu bytes) does not fit above 8 MiB in %llu MiB: increase --memory",
			    (unsigned long long)size, (unsigned long long)(l->mem_bytes / MIB));
	for (i = 0; i < l->nr_regions && file_off < size; i++) {
		uint64_t start = gpa, end = gpa + l->regions[i].bytes;

		gpa = end;
		if (end <= NE_IMAGE_LOAD_GPA + file_off)
			continue;
		while (file_off < size && NE_IMAGE_LOAD_GPA + file_off < end) {
			uint64_t at = NE_IMAGE_LOAD_GPA + file_off - start;
			uint64_t n = end - (NE_IMAGE_LOAD_GPA + file_off);
			ssize_t got;

			if (n > size - file_off)
				n = size - file_off;
			got = pread(l->eif_fd, (char *)l->regions[i].addr + at, n, file_off);
			if (got <= 0)
				return fail(l, E_EIF, "cannot read %s into enclave memory: %s",
					    l->opt->eif_path, got ? strerror(errno) : "file shrank");
			file_off += got;
		}
	}
	return 0;
}

static int donate_memory(struct launch *l)
{
	uint64_t gpa = 0;
	unsigned int i;
	char why[200];
	int slots = ioctl(l->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);

	if (slots > 0 && l->nr_regions > (unsigned int)slots)
		return fail(l, E_IOCTL,
			    "%u memory regions needed but the device takes only %d: use fewer page sizes",
			    l->nr_regions, slots);
	for (i = 0; i < l->nr_regions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.flags = 0,
			.guest_phys_addr = gpa,
			.memory_size = l->regions[i].bytes,
			.userspace_addr = (uintptr_t)l->regions[i].addr,
		};

		if (!ioctl(l->vm_fd, KVM_SET_USER_MEMORY_REGION, &r)) {
			gpa += r.memory_size;
			continue;
		}
		if (errno == ENOSPC)
			return fail(l, E_IOCTL,
				    "KVM_SET_USER_MEMORY_REGION: the hugepages are physically too fragmented: they make more ranges than the device's limit of %d (NE_ERR_MEM_MAX_REGIONS); ask for less memory",
				    slots);
		return fail(l, E_IOCTL,
			    "KVM_SET_USER_MEMORY_REGION: donating region %u (%llu MiB at guest-physical %#llx) failed: %s (driver: %s)",
			    i, (unsigned long long)(r.memory_size / MIB),
			    (unsigned long long)gpa, strerror(errno),
			    driver_reason(l, why, sizeof(why)));
	}
	return 0;
}

static void read_pool(char *pool, size_t len)
{
	FILE *f = fopen("/sys/module/ne_kvm/parameters/ne_cpus", "re");

	pool[0] = '\0';
	if (!f)
		return;
	if (!fgets(pool, len, f))
		pool[0] = '\0';
	fclose(f);
	pool[strcspn(pool, "\n")] = '\0';
}

static int cpu_shortage(struct launch *l, long available)
{
	char pool[128];

	read_pool(pool, sizeof(pool));
	if (!pool[0])
		return fail(l, E_INSUFFICIENT_CPUS,
			    "%llu vCPUs requested but the CPU pool is empty: give it whole cores, e.g. echo 2-3 > /sys/module/ne_kvm/parameters/ne_cpus",
			    (unsigned long long)l->opt->cpu_count);
	return fail(l, E_INSUFFICIENT_CPUS,
		    "%llu vCPUs requested but only %ld CPUs of the pool (ne_cpus=%s) are free: terminate an enclave, ask for fewer, or grow the pool",
		    (unsigned long long)l->opt->cpu_count, available, pool);
}

/* Checked before memory is allocated, so that a shortage fails fast; racy, so add_vcpus checks again. */
static int check_cpus(struct launch *l)
{
	int available = ioctl(l->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);

	if (available >= 0 && (uint64_t)available < l->opt->cpu_count)
		return cpu_shortage(l, available);
	return 0;
}

/*
 * Whether vCPU id @id is at or above the VM fd's KVM_CAP_MAX_VCPU_ID, which
 * shrinks while other enclaves claim cores (the driver's EINVAL then).
 */
static int id_past_limit(struct launch *l, unsigned int id)
{
	int saved = errno;
	int max = ioctl(l->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID);

	errno = saved;
	return max >= 0 && id >= (unsigned int)max;
}

static int add_vcpus(struct launch *l)
{
	char v[32], why[200];
	unsigned int i;
	int fd;

	for (i = 0; i < l->opt->cpu_count; i++) {
		fd = ioctl(l->vm_fd, KVM_CREATE_VCPU, i);
		if (fd < 0 && (errno == ENOSPC ||
			       (errno == EINVAL && id_past_limit(l, i))))
			return cpu_shortage(l, i);
		if (fd < 0)
			return fail(l, E_IOCTL, "KVM_CREATE_VCPU %u failed: %s (driver: %s)",
				    i, strerror(errno), driver_reason(l, why, sizeof(why)));
		l->vcpu_fds[l->nr_vcpus] = fd;
		l->cpu_ids[l->nr_vcpus++] =
			fdinfo_read(0, fd, "ne_parent_cpu", v, sizeof(v)) ? 0 : atoi(v);
	}
	return 0;
}

/*
 * The listener must exist before the start.  All launchers share port 9000,
 * so concurrent launches take turns between bind and heartbeat (nitro-cli
 * issue #516: there, all but one fail).
 */
static int bind_heartbeat_listener(struct launch *l)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = NE_PARENT_VM_CID,
		.svm_port = NECTL_HEARTBEAT_PORT,
	};

	/* (no limit: another launch holds it until its enclave's heartbeat) */
	l->heartbeat_lock = launch_lock(l, "heartbeat.lock", 0);
	if (l->heartbeat_lock < 0)
		return E_LOCK;
	l->listen_fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->listen_fd < 0)
		return fail(l, E_BOOT,
			    "vsock is not available (%s): is the vsock device loaded? (for tests without vsock: --no-heartbeat)",
			    strerror(errno));
	if (bind(l->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(l->listen_fd, 4))
		return fail(l, E_BOOT,
			    "vsock CID 3 port %d is not available (%s): is the vsock device loaded? (for tests without vsock: --no-heartbeat)",
			    NECTL_HEARTBEAT_PORT, strerror(errno));
	return 0;
}

static int start_enclave(struct launch *l)
{
	struct ne_enclave_start start = {
		.flags = l->opt->debug_mode ? NE_ENCLAVE_DEBUG_MODE : 0,
		.enclave_cid = l->opt->enclave_cid,
	};
	char why[200], cpus[256];
	unsigned int i;
	size_t pos = 0;

	if (ioctl(l->vm_fd, NE_ENCLAVE_START, &start))
		return fail(l, E_IOCTL, "NE_ENCLAVE_START failed: %s (driver: %s)%s",
			    strerror(errno), driver_reason(l, why, sizeof(why)),
			    l->nr_vcpus % 2 ? "; hint: use whole cores (an even --cpu-count)" : "");
	l->cid = start.enclave_cid;
	cpus[0] = '\0';
	for (i = 0; i < l->nr_vcpus && pos < sizeof(cpus) - 12; i++)
		pos += snprintf(cpus + pos, sizeof(cpus) - pos, "%s%u", i ? ", " : "", l->cpu_ids[i]);
	progress(l, "Started enclave with enclave-cid: %llu, memory: %llu MiB, cpu-ids: [%s]",
		 (unsigned long long)l->cid, (unsigned long long)(l->mem_bytes / MIB), cpus);
	return 0;
}

/*
 * Waits for fd to be readable before deadline, watching the signal fd and
 * the enclave's VM fd (it reports POLLHUP once the enclave stopped).
 * 1 ready, 0 timeout, -1 signal or error, -2 the enclave stopped.
 */
static int wait_readable(int fd, int sig_fd, int vm_fd, int64_t deadline)
{
	struct pollfd p[3] = { { fd, POLLIN, 0 }, { sig_fd, POLLIN, 0 }, { vm_fd, 0, 0 } };
	int64_t left;
	int r;

	for (;;) {
		left = deadline - nectl_now_ms();
		if (left <= 0)
			return 0;
		r = poll(p, 3, left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (p[1].revents & POLLIN))
			return -1;
		if (p[2].revents)
			return -2;
		if (p[0].revents)
			return 1;
	}
}

/* A vsock peer must be the enclave; other socket families (tests) are trusted. */
static bool peer_is(const struct sockaddr_storage *peer, uint64_t cid, unsigned int *peer_cid)
{
	const struct sockaddr_vm *vm = (const struct sockaddr_vm *)peer;

	if (peer->ss_family != AF_VSOCK)
		return true;
	*peer_cid = vm->svm_cid;
	return vm->svm_cid == cid;
}

int heartbeat_wait(int listen_fd, int sig_fd, int vm_fd, uint64_t cid, unsigned int timeout,
		   char *err, size_t errlen)
{
	int64_t deadline = nectl_now_ms() + (int64_t)timeout * 1000;
	struct sockaddr_storage peer;
	unsigned char byte;
	unsigned int peer_cid = 0;
	socklen_t plen;
	int conn, r;

	for (;;) {
		r = wait_readable(listen_fd, sig_fd, vm_fd, deadline);
		if (r == -2) {
			snprintf(err, errlen,
				 "the enclave stopped before its heartbeat (its kernel or init failed: run it with --attach-console to see why)");
			return E_BOOT;
		}
		if (r < 0) {
			snprintf(err, errlen, "interrupted while waiting for the heartbeat");
			return E_BOOT;
		}
		if (r == 0) {
			snprintf(err, errlen,
				 "no heartbeat from the enclave within %u s (it did not boot, or its init cannot reach vsock CID 3 port 9000); the enclave was terminated",
				 timeout);
			return E_BOOT;
		}
		plen = sizeof(peer);
		conn = accept4(listen_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		/* Unlike nitro-cli, the read has a deadline too. */
		byte = 0;
		r = wait_readable(conn, sig_fd, vm_fd, deadline);
		if (r == 1 && read(conn, &byte, 1) == 1 && byte == NECTL_HEARTBEAT_BYTE &&
		    write(conn, &byte, 1) == 1) {
			close(conn);
			if (peer_is(&peer, cid, &peer_cid))
				return 0;
			/* Another enclave's late heartbeat: answered, keep waiting. */
			nectl_log("answered a heartbeat from CID %u while waiting for %llu",
				  peer_cid, (unsigned long long)cid);
			continue;
		}
		close(conn);
		if (r == -2)
			snprintf(err, errlen,
				 "the enclave stopped before its heartbeat (its kernel or init failed: run it with --attach-console to see why)");
		else if (r <= 0)
			snprintf(err, errlen,
				 "the enclave connected but sent no heartbeat byte within %u s; the enclave was terminated",
				 timeout);
		else
			snprintf(err, errlen,
				 "the enclave sent 0x%02x instead of the 0xB7 heartbeat; the enclave was terminated",
				 byte);
		return E_BOOT;
	}
}

static int wait_heartbeat(struct launch *l)
{
	unsigned int timeout = heartbeat_timeout_seconds(l->eif.file_size, l->mem_bytes);
	const char *env = getenv("NECTL_HEARTBEAT_TIMEOUT");

	if (env && atoi(env) > 0)
		timeout = atoi(env);	/* tests only; documented in --help */
	return heartbeat_wait(l->listen_fd, l->sig_fd, l->vm_fd, l->cid, timeout, l->err,
			      sizeof(l->err));
}

static void close_heartbeat_listener(struct launch *l)
{
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	l->listen_fd = -1;
	nectl_unlock(l->heartbeat_lock);
	l->heartbeat_lock = -1;
}

/* Frees everything: closing the fds stops the enclave and returns CPUs and memory. */
static void release_enclave(struct launch *l)
{
	unsigned int i;

	close_heartbeat_listener(l);
	for (i = 0; i < l->nr_vcpus; i++)
		close(l->vcpu_fds[i]);
	l->nr_vcpus = 0;
	if (l->vm_fd >= 0)
		close(l->vm_fd);
	l->vm_fd = -1;
	hp_unmap(l->regions, l->nr_regions);
	l->nr_regions = 0;
	if (l->registered)
		registry_remove(l->slot_uid);
	l->registered = false;
	json_free(l->metadata);
	l->metadata = NULL;
}

static void write_run_json(struct launch *l, FILE *out)
{
	struct json_writer w;
	char id[200];
	unsigned int i;

	enclave_id(l->slot_uid, id, sizeof(id));
	json_init(&w, out);
	json_begin_object(&w);
	json_key(&w, "EnclaveName");
	json_string(&w, l->name);
	json_key(&w, "EnclaveID");
	json_string(&w, id);
	json_key(&w, "ProcessID");
	json_u64(&w, getpid());
	json_key(&w, "EnclaveCID");
	json_u64(&w, l->cid);
	json_key(&w, "NumberOfCPUs");
	json_u64(&w, l->nr_vcpus);
	json_key(&w, "CPUIDs");
	json_begin_array(&w);
	for (i = 0; i < l->nr_vcpus; i++)
		json_u64(&w, l->cpu_ids[i]);
	json_end_array(&w);
	json_key(&w, "MemoryMiB");
	json_u64(&w, l->mem_bytes / MIB);
	if (l->opt->no_heartbeat) {
		json_key(&w, "Heartbeat");
		json_string(&w, "SKIPPED (--no-heartbeat)");
	}
	json_end_object(&w);
	json_finish(&w);
}

/*
 * NECTL_TIMINGS=FILE: `nectl run` appends "PHASE MONOTONIC REALTIME" (the
 * two clocks, in seconds) to FILE at the end of each phase of the launch,
 * for `make bench`'s breakdown.  Unset or empty: nothing.
 */
static void timing(const char *phase)
{
	const char *path = getenv("NECTL_TIMINGS");
	struct timespec mono, real;
	int fd;

	if (!path || !*path)
		return;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	dprintf(fd, "%s %lld.%09ld %lld.%09ld\n", phase, (long long)mono.tv_sec, mono.tv_nsec,
		(long long)real.tv_sec, real.tv_nsec);
	close(fd);
}

static int launch_steps(struct launch *l)
{
	int code;

	code = create_vm(l);
	if (!code)
		code = register_enclave(l);
	if (!code)
		code = check_cpus(l);
	timing("create-vm");
	if (!code)
		code = allocate_memory(l);
	timing("hugepages");
	if (!code)
		code = write_image(l);
	timing("eif-copy");
	if (!code)
		code = donate_memory(l);
	timing("donation");
	if (!code)
		code = add_vcpus(l);
	timing("vcpus");
	if (!code && !l->opt->no_heartbeat)
		code = bind_heartbeat_listener(l);
	timing("listener");
	if (!code)
		code = start_enclave(l);
	timing("start");
	if (code)
		return code;
	if (l->opt->no_heartbeat)
		progress(l, "--no-heartbeat: not waiting for the enclave's heartbeat (testing only)");
	else
		code = wait_heartbeat(l);
	timing("heartbeat");
	close_heartbeat_listener(l);
	if (!code && registry_update(l, "RUNNING"))
		code = fail(l, E_FILE_OPERATION, "cannot update the registry: %s", strerror(errno));
	return code;
}

static void report_result(struct launch *l, int code)
{
	FILE *f = fdopen(l->report_fd, "w");

	if (!f) {
		close(l->report_fd);
		l->report_fd = -1;
		return;
	}
	fprintf(f, "R %d\n", code);
	if (code)
		fprintf(f, "%s\n", l->err);
	else
		write_run_json(l, f);
	fclose(f);
	l->report_fd = -1;
}

/*
 * The PCRs are for describe-enclaves only, and SHA-384 over a large image
 * takes a while: computed after `nectl run` has returned, in a thread of
 * the holder as nitro-cli does, so that the holder still answers a
 * termination or notices the enclave's end at once.  The image file is
 * read again, unchanged (its CRC was just checked), as the enclave memory
 * is no longer ours.  Once the holder stops (stop_measuring) the thread
 * touches nothing shared: the holder may be releasing everything.
 */
static void *measure_image(void *arg)
{
	struct launch *l = arg;
	struct eif_info measured;
	char err[256] = "CRC changed";
	bool ok;

	ok = !eif_read(l->eif_fd, &measured, true, err, sizeof(err)) &&
	     measured.computed_crc == l->eif.computed_crc;
	close(l->eif_fd);
	pthread_mutex_lock(&l->measure_lock);
	l->eif_fd = -1;
	if (l->measure_stop) {
		/* Terminating: no measurements to publish any more. */
	} else if (ok) {
		memcpy(l->eif.pcr0, measured.pcr0, sizeof(measured.pcr0));
		memcpy(l->eif.pcr1, measured.pcr1, sizeof(measured.pcr1));
		memcpy(l->eif.pcr2, measured.pcr2, sizeof(measured.pcr2));
		l->eif.measured = true;
		registry_update(l, "RUNNING");
	} else {
		nectl_log("enclave %s: no measurements: the image changed or cannot be read (%s)",
			  l->name, err);
	}
	pthread_mutex_unlock(&l->measure_lock);
	eif_info_release(&measured);
	return NULL;
}

static void start_measuring(struct launch *l)
{
	pthread_attr_t attr;
	pthread_t thread;
	int ret;

	pthread_mutex_init(&l->measure_lock, NULL);
	l->measure_stop = false;
	/* Signals stay blocked in the thread (inherited mask): the signalfd gets them. */
	ret = pthread_attr_init(&attr);
	if (!ret) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&thread, &attr, measure_image, l);
		pthread_attr_destroy(&attr);
	}
	if (ret) {
		nectl_log("enclave %s: no measuring thread (%s): measuring now", l->name,
			  strerror(ret));
		measure_image(l);
	}
}

static void stop_measuring(struct launch *l)
{
	pthread_mutex_lock(&l->measure_lock);
	l->measure_stop = true;
	pthread_mutex_unlock(&l->measure_lock);
}

/* The holder's life after a successful launch. */
static int hold_enclave(struct launch *l)
{
	struct pollfd p[2] = { { l->vm_fd, POLLIN, 0 }, { l->sig_fd, POLLIN, 0 } };
	struct signalfd_siginfo si;
	char state[16] = "?";

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			nectl_log("enclave %s: poll failed: %s; terminating it", l->name,
				  strerror(errno));
			break;
		}
		if (p[0].revents & (POLLHUP | POLLERR)) {
			fdinfo_read(0, l->vm_fd, "ne_state", state, sizeof(state));
			nectl_log("enclave %s (slot %#llx, CID %llu) stopped on its own (ne_state %s): cleaning up",
				  l->name, (unsigned long long)l->slot_uid,
				  (unsigned long long)l->cid, state);
			break;
		}
		if (p[1].revents & POLLIN) {
			stop_measuring(l);
			if (read(l->sig_fd, &si, sizeof(si)) == sizeof(si))
				nectl_log("enclave %s: terminating on signal %u from pid %u",
					  l->name, si.ssi_signo, si.ssi_pid);
			registry_update(l, "TERMINATING");
			break;
		}
	}
	stop_measuring(l);
	release_enclave(l);
	nectl_log("enclave %s: released", l->name);
	return 0;
}

static void detach_stdio(void)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0)
		return;
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	if (null > 2)
		close(null);
}

static int holder_main(struct launch *l)
{
	sigset_t set;
	int code;

	setsid();
	detach_stdio();	/* never keep the caller's stdout/stderr pipes open */
	if (chdir("/"))	/* nor its working directory busy */
		nectl_log("chdir /: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	l->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (l->sig_fd < 0) {
		code = fail(l, E_EPOLL, "signalfd: %s", strerror(errno));
		report_result(l, code);
		return code;
	}
	code = launch_steps(l);
	if (code) {
		nectl_log("launch failed: E%02d %s", code, l->err);
		release_enclave(l);
		report_result(l, code);
		return code;
	}
	nectl_log("enclave %s (slot %#llx) running, CID %llu, %llu MiB, %u vCPUs", l->name,
		  (unsigned long long)l->slot_uid, (unsigned long long)l->cid,
		  (unsigned long long)(l->mem_bytes / MIB), l->nr_vcpus);
	report_result(l, 0);
	start_measuring(l);
	return hold_enclave(l);
}

/* ------------------------------------------------------------ the caller */

static int check_request(const struct run_options *opt, struct launch *l)
{
	char err[512];
	uint64_t mem = opt->memory_mib * MIB;

	l->eif_fd = open(opt->eif_path, O_RDONLY | O_CLOEXEC);
	if (l->eif_fd < 0)
		return nectl_error(E_FILE_OPERATION, "cannot open EIF %s: %s", opt->eif_path,
				   strerror(errno));
	if (eif_read(l->eif_fd, &l->eif, false, err, sizeof(err)))
		return nectl_error(E_EIF, "%s: %s", opt->eif_path, err);
	if (!l->eif.crc_ok)
		return nectl_error(E_EIF, "%s: CRC mismatch (stored %08x, computed %08x): the file is corrupt",
				   opt->eif_path, l->eif.stored_crc, l->eif.computed_crc);
	if (l->eif.flags & 1)
		return nectl_error(E_EIF, "%s is an aarch64 image; this parent is x86_64",
				   opt->eif_path);
	/*
	 * Metadata nitro-cli's reader refuses is refused here, before launching
	 * (nitro-cli notices it only when describe-enclaves fails).  A
	 * CustomMetadata it cannot show (E17 for describe-eif) is launched:
	 * nitro-cli launches it, and describe --metadata leaves those keys out.
	 */
	if (l->eif.metadata &&
	    metadata_parse(l->eif.metadata, l->eif.metadata_len, &l->metadata, err,
			   sizeof(err)) == E_EIF)
		return nectl_error(E_EIF, "%s: %s", opt->eif_path, err);
	if (mem < NE_MIN_ENCLAVE_MEM_SIZE)
		return nectl_error(E_MEMORY_REQUEST_TOO_SMALL,
				   "--memory %llu MiB is below the 64 MiB minimum of an enclave",
				   (unsigned long long)opt->memory_mib);
	if (mem / 4 < l->eif.file_size)
		return nectl_error(E_MEMORY_REQUEST_TOO_SMALL,
				   "--memory %llu MiB is less than 4 x the EIF size (%llu bytes): use at least --memory %llu",
				   (unsigned long long)opt->memory_mib,
				   (unsigned long long)l->eif.file_size,
				   (unsigned long long)((4 * l->eif.file_size + MIB - 1) / MIB));
	/*
	 * nitro-cli checks the signature after its memory check and before the
	 * image is loaded; here before the device is touched.  PCR8 is kept for
	 * describe-enclaves.
	 */
	if (l->eif.is_signed && eif_sig_check_image(l->eif_fd, &l->eif, err, sizeof(err)))
		return nectl_error(E_EIF_SIGNATURE, "%s: %s", opt->eif_path, err);
	if (access(NECTL_DEVICE, F_OK))
		return nectl_error(E_FILE_OPERATION, "%s does not exist: load the driver (insmod ne_kvm.ko)",
				   NECTL_DEVICE);
	if (mkdir(nectl_run_dir(), 0755) && errno != EEXIST)
		return nectl_error(E_FILE_OPERATION, "cannot create %s: %s", nectl_run_dir(), strerror(errno));
	return 0;
}

/* Relays the holder's progress to stderr and its result to stdout. */
static int read_report(FILE *in, pid_t holder, uint64_t *cid)
{
	char *line = NULL;
	size_t cap = 0;
	int code = -1;

	while (getline(&line, &cap, in) > 0) {
		if (!strncmp(line, "P ", 2)) {
			fputs(line + 2, stderr);
			continue;
		}
		if (!strncmp(line, "R ", 2)) {
			code = atoi(line + 2);
			break;
		}
	}
	if (code < 0) {
		free(line);
		return nectl_error(E_HOLDER, "the holder process %d died during the launch: see %s/nectl.log",
				   (int)holder, nectl_run_dir());
	}
	if (code) {
		if (getline(&line, &cap, in) > 0)
			line[strcspn(line, "\n")] = '\0';
		else
			line[0] = '\0';
		nectl_error(code, "%s", line);
		waitpid(holder, NULL, 0);	/* a failed holder exits at once */
		free(line);
		return code;
	}
	while (getline(&line, &cap, in) > 0) {
		char *p = strstr(line, "\"EnclaveCID\": ");

		if (p)
			*cid = strtoull(p + 14, NULL, 10);
		fputs(line, stdout);
	}
	fflush(stdout);
	free(line);
	return 0;
}

int nectl_run(const struct run_options *opt)
{
	static struct launch l;	/* large (region table): not on the stack */
	uint64_t cid = 0;
	int pipefd[2], code;
	pid_t pid;
	FILE *in;

	memset(&l, 0, sizeof(l));
	l.opt = opt;
	l.vm_fd = l.listen_fd = l.heartbeat_lock = l.report_fd = l.sig_fd = -1;
	timing("begin");
	code = check_request(opt, &l);
	timing("image-check");
	if (code) {
		if (l.eif_fd >= 0)
			close(l.eif_fd);
		eif_info_release(&l.eif);
		json_free(l.metadata);
		return code;
	}
	if (pipe2(pipefd, O_CLOEXEC))
		return nectl_error(E_PROCESS_SPAWN, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return nectl_error(E_PROCESS_SPAWN, "cannot fork the holder: %s", strerror(errno));
	if (pid == 0) {
		close(pipefd[0]);
		l.report_fd = pipefd[1];
		_exit(holder_main(&l));
	}
	close(pipefd[1]);
	close(l.eif_fd);
	eif_info_release(&l.eif);
	json_free(l.metadata);	/* the holder's copy is its own */
	in = fdopen(pipefd[0], "r");
	if (!in)
		return nectl_error(E_HOLDER, "fdopen: %s", strerror(errno));
	code = read_report(in, pid, &cid);
	fclose(in);
	timing("reported");
	if (!code && opt->attach_console)
		code = console_attach(cid, -1);
	return code;
}
