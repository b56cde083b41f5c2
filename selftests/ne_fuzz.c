// SPDX-License-Identifier: GPL-2.0
/*
 * ne_fuzz: an ioctl fuzzer for ne_kvm.ko, run inside the parent VM as root.
 *
 * Worker processes (--procs), each with worker threads (--threads), send
 * random sequences of every ioctl of the system, VM and vCPU fds with random
 * and edge-case arguments, map and unmap memory of every kind, close fds at
 * random, poll, dup fds between threads and fork children that try the
 * inherited fds.  Both ioctl families drive the same table of VM fds: KVM's
 * (KVM_CREATE_VM and on) and upstream's of <linux/nitro_enclaves.h>
 * (NE_CREATE_VM, NE_ADD_VCPU, NE_GET_IMAGE_LOAD_INFO,
 * NE_SET_USER_MEMORY_REGION, NE_START_ENCLAVE), so each family's ioctls
 * also land on the other's fds, where the mixing rule says ENOTTY
 * (Documentation/ne-kvm/upstream-api.rst); every refusal on an NE VM fd
 * must be one that document lists for the call.  A chaos process arms the device's test-control faults,
 * raises "enclave stopped" events, rewrites ne_cpus, onlines CPUs and
 * removes and rescans the PCI device.  The supervisor (the first process)
 * watches every worker: an operation that does not return within
 * --hang-timeout is reported with the kernel stacks of the fuzzer's tasks,
 * and the fuzzer exits instead of hanging.  While the fuzzer's processes
 * keep using CPU time (a slow munmap, a fork copying huge pages on an
 * overloaded TCG host) an operation gets HANG_BUSY_FACTOR times as long:
 * a blocked task makes no such progress, a busy machine does.  After the
 * run it checks that the driver gave everything back (see --help).
 *
 * Each worker draws its operations from its own generator, seeded from the
 * run's seed and the worker's index, and draws the same number of values for
 * every operation whatever the results: --seed replays every worker's
 * sequence of operations.  Thread interleaving, and the arguments derived
 * from earlier results (the next guest-physical address), are not replayed.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/mman.h>
#include <linux/ne_kvm.h>
#include <linux/nitro_enclaves.h>

#include "hw/ne/ne-testctl.h"
#include "ne_kvm_util.h"

#define KMEMLEAK	"/sys/kernel/debug/kmemleak"
#define ZOMBIES		"/sys/kernel/debug/ne_kvm/zombies"
#define ORPHANS		"/sys/kernel/debug/ne_kvm/orphans"
#define U32_MAX_	0xffffffffULL

/* Exit statuses (also in --help). */
enum {
	EXIT_CLEAN = 0,
	EXIT_FINDING = 1,
	EXIT_USAGE = 2,
	EXIT_ENV = 3,
	EXIT_HANG = 5,
};

/* ---- shared state: one record per worker, in MAP_SHARED memory ------------- */

#define RING		64
#define TEXT		160
#define NSYS		3
#define NVM		6
#define NVCPU		8
#define NMEM		6
#define MAXTHREADS	16
#define MAXPROCS	16

struct op_rec {
	uint64_t n;
	char text[TEXT];
};

/* The operations a worker draws (op_weight[] says how often). */
enum {
	OP_OPEN_SYS, OP_CLOSE, OP_SYS_IOCTL, OP_CREATE_VM, OP_SET_MEM, OP_CREATE_VCPU,
	OP_START, OP_VM_IOCTL, OP_VCPU_IOCTL, OP_POLL, OP_EPOLL, OP_RW, OP_FDINFO, OP_DUP,
	OP_FORK, OP_MAP, OP_UNMAP, OP_ENCLAVE,
	/* the upstream family of <linux/nitro_enclaves.h> */
	OP_NE_CREATE_VM, OP_NE_ADD_VCPU, OP_NE_INFO, OP_NE_SET_MEM, OP_NE_START, OP_CROSS,
	OP_NE_ENCLAVE, NR_OPS,
};

struct wstate {
	pid_t pid, tid;
	volatile pid_t aux_pid;		/* a forked child being waited for */
	volatile uint64_t op_start_ns;	/* 0 while not inside an operation */
	volatile uint64_t ops;		/* log entries */
	volatile uint64_t steps;	/* operations drawn (--ops counts these) */
	volatile int violations;
	volatile int fd_leak;		/* fds left open at the worker's end */
	volatile int done;
	volatile int child_bad_cmd;	/* set by a forked child: what it saw */
	volatile int child_bad_errno;
	volatile int child_bad_rc;
	volatile int child_bad_want;	/* the errno it wanted, 0: an NE answer */
	uint32_t head;
	struct op_rec ring[RING];
};

struct shared {
	volatile int stop;
	volatile int64_t huge_budget;	/* bytes of hugetlb the workers may map */
	volatile int findings;
	/* What succeeded, to judge a run's depth. */
	volatile uint64_t n_vm, n_mem, n_vcpu, n_start, n_fork, n_remove, n_event, n_pool;
	volatile uint64_t n_ne_vm, n_ne_vcpu, n_ne_info, n_ne_mem, n_ne_start;
	volatile uint64_t n_cross;	/* mixing-rule calls on a live fd */
	volatile uint64_t op_count[NR_OPS];	/* operations drawn, all workers */
	uint32_t nr_memslots, max_vcpu_id, ncpus;
	uint32_t pool_cpu[2];		/* the first CPUs of ne_cpus at the start */
	long cap_value;		/* caps_fn's answer: exit codes stop at 255 */
	int nworkers;			/* procs * threads, then the chaos worker */
	struct wstate w[];
};

static struct shared *sh;

/* Options. */
static uint64_t opt_seed;
static unsigned int opt_seconds = 60, opt_threads = 3, opt_procs = 2;
static unsigned int opt_hang = 60, opt_settle = 30, opt_cmd_timeout = 2000;
static bool opt_remove = true, opt_faults = true, opt_pool = true;
static bool opt_hotplug = true, opt_fork = true, opt_kmsg = true;
/* (off when the caller scans for leaks after the whole boot) */
static bool opt_kmemleak = true;
static const char *opt_self_test;
static uint64_t opt_ops;		/* operations per worker, 0: no limit */
static bool opt_verbose;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* An operation's time limit while the fuzzer's processes use CPU time. */
#define HANG_BUSY_FACTOR	5

/* CPU time (clock ticks, every thread) used so far by the processes @pids. */
static uint64_t cpu_ticks(const pid_t *pids, int n)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < n; i++) {
		unsigned long long utime, stime;
		char path[64], buf[1024], *p;
		ssize_t len;
		int fd;

		if (pids[i] <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pids[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* after "(comm) ": state, then fields 4-13, utime, stime */
		p = strrchr(buf, ')');
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&utime, &stime) == 2)
			sum += utime + stime;
	}
	return sum;
}

static void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- the generator: xoshiro256** seeded by splitmix64 --------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

/* ---- files ----------------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

/* ---- the operation log ------------------------------------------------------ */

struct worker;
static void op_begin(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct worker {
	int idx;
	struct wstate *ws;
	struct rng rng;
	uint64_t r[8];			/* this operation's random values */
	const char *prefix;		/* "enclave: " inside op_enclave */
	/* Tables (thread workers); fds are -1 when empty. */
	int sys[NSYS];
	/*
	 * A VM fd and what this worker saw succeed on it.  What it saw is a
	 * lower bound of the enclave's state (a dup in another thread adds
	 * to the same enclave unseen), so it may only make a success
	 * suspect, never a refusal.  Written under tab_lock, which op_dup
	 * copies it under.
	 */
	struct vmrec {
		int fd;
		bool ne;		/* made by NE_CREATE_VM */
		bool started;		/* a start on it succeeded */
		uint64_t mem;		/* bytes donated (what the next gpa is) */
		uint32_t slots, vcpus;	/* NE: NE_SET_USER_MEMORY_REGION calls */
		uint64_t cpus;		/* NE: parent CPUs (< 64) added */
		uint64_t uaddr, usize;	/* NE: the last user range donated */
	} vm[NVM];
	int vcpu[NVCPU];
	int epfd;
	struct memrec {
		char *addr;
		uint64_t size, len;	/* usable size, mapped length */
		int kind;
		bool huge;
		bool guarded;		/* a PROT_NONE page follows (mem_guard) */
	} mem[NMEM];
	char *page_none;		/* PROT_NONE */
	char *page_ro;			/* read only: a valid-looking argument */
	char *page_rw;			/* RW, followed by page_none */
	unsigned int nfile;
};

static void op_vlog(struct worker *w, const char *fmt, va_list ap)
{
	struct wstate *ws = w->ws;
	struct op_rec *rec = &ws->ring[ws->head % RING];
	int n;

	rec->n = ws->ops;
	n = snprintf(rec->text, TEXT, "#%" PRIu64 " %s", ws->steps, w->prefix);
	vsnprintf(rec->text + n, TEXT - n, fmt, ap);
}

static void op_begin(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_vlog(w, fmt, ap);
	va_end(ap);
	__atomic_store_n(&w->ws->op_start_ns, now_ns(), __ATOMIC_SEQ_CST);
}

/* Upstream's positive error values, 256 on (<linux/nitro_enclaves.h>). */
static const char *const ne_err_names[] = {
	"NE_ERR_VCPU_ALREADY_USED", "NE_ERR_VCPU_NOT_IN_CPU_POOL",
	"NE_ERR_VCPU_INVALID_CPU_CORE", "NE_ERR_INVALID_MEM_REGION_SIZE",
	"NE_ERR_INVALID_MEM_REGION_ADDR", "NE_ERR_UNALIGNED_MEM_REGION_ADDR",
	"NE_ERR_MEM_REGION_ALREADY_USED", "NE_ERR_MEM_NOT_HUGE_PAGE",
	"NE_ERR_MEM_DIFFERENT_NUMA_NODE", "NE_ERR_MEM_MAX_REGIONS",
	"NE_ERR_NO_MEM_REGIONS_ADDED", "NE_ERR_NO_VCPUS_ADDED", "NE_ERR_ENCLAVE_MEM_MIN_SIZE",
	"NE_ERR_FULL_CORES_NOT_USED", "NE_ERR_NOT_IN_INIT_STATE", "NE_ERR_INVALID_VCPU",
	"NE_ERR_NO_CPUS_AVAIL_IN_POOL", "NE_ERR_INVALID_PAGE_SIZE", "NE_ERR_INVALID_FLAG_VALUE",
	"NE_ERR_INVALID_ENCLAVE_CID",
};

/* @err's name: an errno's, an NE_ERR_* one's, or its number. */
static const char *err_name(int err)
{
	static __thread char num[16];

	if (err >= 256 && err < 256 + (int)ARRAY_SIZE(ne_err_names))
		return ne_err_names[err - 256];
	if (strerrorname_np(err))
		return strerrorname_np(err);
	snprintf(num, sizeof(num), "%d", err);
	return num;
}

/* Ends the current operation: appends its result to the ring. */
static long op_end(struct worker *w, long rc, int err)
{
	struct wstate *ws = w->ws;
	struct op_rec *rec = &ws->ring[ws->head % RING];
	size_t n = strnlen(rec->text, TEXT);

	if (rc < 0)
		snprintf(rec->text + n, TEXT - n, " = -1 %s", err_name(err));
	else
		snprintf(rec->text + n, TEXT - n, " = %ld", rc);
	__atomic_store_n(&ws->op_start_ns, 0, __ATOMIC_SEQ_CST);
	if (opt_verbose)
		printf("# w%d %s\n", w->idx, rec->text);
	ws->head++;
	ws->ops++;
	return rc;
}

static void print_ring(int idx)
{
	struct wstate *ws = &sh->w[idx];
	uint32_t i, start = ws->head > RING ? ws->head - RING : 0;

	printf("# worker %d (pid %d tid %d), last %u of %" PRIu64 " operations:\n",
	       idx, ws->pid, ws->tid, ws->head - start, ws->ops);
	for (i = start; i < ws->head; i++)
		printf("#   w%d %s\n", idx, ws->ring[i % RING].text);
	if (ws->op_start_ns)
		printf("#   w%d in progress: %s\n", idx, ws->ring[ws->head % RING].text);
}

static void violation(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A result the spec rules out: a finding. */
static void violation(struct worker *w, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("# FINDING (seed %" PRIu64 ", worker %d, op #%" PRIu64 "): %s\n",
	       opt_seed, w->idx, w->ws->steps, buf);
	w->ws->violations++;
	__atomic_add_fetch(&sh->findings, 1, __ATOMIC_SEQ_CST);
}

/* ---- argument pickers --------------------------------------------------- */

static uint64_t pick(uint64_t r, const uint64_t *vals, size_t n)
{
	return vals[r % n];
}
#define PICK(r, ...) ({ const uint64_t __v[] = { __VA_ARGS__ }; \
			pick(r, __v, ARRAY_SIZE(__v)); })

enum ptr_kind { PTR_OK, PTR_NULL, PTR_NONE, PTR_STRADDLE, PTR_RO, PTR_MISALIGNED,
		PTR_KERNEL, PTR_KINDS };
static const char *const ptr_names[] = { "ok", "NULL", "unmapped", "straddle",
					  "read-only", "misaligned", "kernel" };

/* The argument pointer for a struct of @size at @good, by kind. */
static void *arg_ptr(struct worker *w, int kind, void *good, size_t size)
{
	switch (kind) {
	case PTR_NULL:
		return NULL;
	case PTR_NONE:
		return w->page_none;
	case PTR_STRADDLE:
		memcpy(w->page_rw + 4096 - size / 2, good, size / 2);
		return w->page_rw + 4096 - size / 2;
	case PTR_RO:
		return w->page_ro;
	case PTR_MISALIGNED:
		memcpy(w->page_rw + 1, good, size);
		return w->page_rw + 1;
	case PTR_KERNEL:
		return (void *)0xffff888000000000ULL;
	}
	return good;
}

static int pick_vm(struct worker *w, uint64_t r);
static int pick_vcpu(struct worker *w, uint64_t r);

static int *vm_fd(struct worker *w, uint64_t r)
{
	return &w->vm[pick_vm(w, r)].fd;
}

static int *vcpu_fd(struct worker *w, uint64_t r)
{
	return &w->vcpu[pick_vcpu(w, r)];
}

/* A bad argument pointer one time in eight (the start of a PICK). */
static int pick_ptr(uint64_t r)
{
	return r % 8 ? PTR_OK : 1 + (int)((r >> 3) % (PTR_KINDS - 1));
}

/* Whether a call with an argument of @kind may succeed. */
static bool ptr_usable(int kind)
{
	return kind == PTR_OK || kind == PTR_MISALIGNED;
}

/* ---- the errnos the spec allows ------------------------------------------ */

/*
 * The rcs the chaos process makes the device fail a command with.  The
 * driver passes a plain errno through and makes the rest (-4096, the
 * kernel's internal 512 and 517) EIO.
 */
static const int32_t fault_rcs[] = {
	-EIO, -ENOMEM, -EINVAL, -EBUSY, -ENOSPC, -EEXIST, -1, -4095, -4096, -512, -517,
	-EINTR,
};

/* The emulated device's own refusals (tools/qemu/hw/ne/ne-hv.h), and EAGAIN. */
static const int device_errnos[] = {
	EPERM, ENOENT, ENOEXEC, ENOMEM, EBUSY, ENODEV, EINVAL, ENOSPC, EOPNOTSUPP,
	EADDRINUSE, EAGAIN,
};

/* Whether @err is what the device (or the driver's wait for it) may say. */
static bool device_errno(int err)
{
	size_t i;

	if (err == ETIMEDOUT)
		return true;
	for (i = 0; i < ARRAY_SIZE(device_errnos); i++)
		if (err == device_errnos[i])
			return true;
	for (i = 0; opt_faults && i < ARRAY_SIZE(fault_rcs); i++)
		if (err == -fault_rcs[i])
			return true;
	return false;
}

#define NE_ERR_FIRST	NE_ERR_VCPU_ALREADY_USED	/* 256 */
#define NE_ERR_LAST	NE_ERR_INVALID_ENCLAVE_CID	/* 275 */
#define NE_ERR_BIT(e)	(1U << ((e) - NE_ERR_FIRST))

/*
 * The NE_ERR_* values each upstream ioctl may answer (upstream-api.rst).
 * Never NE_ERR_VCPU_INVALID_CPU_CORE (the pool's cores are checked when
 * ne_cpus is set) nor NE_ERR_INVALID_PAGE_SIZE (no such huge page on x86).
 */
static uint32_t ne_errs_of(unsigned long cmd)
{
	switch (cmd) {
	case NE_CREATE_VM:
		return NE_ERR_BIT(NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	case NE_ADD_VCPU:
		return NE_ERR_BIT(NE_ERR_VCPU_ALREADY_USED) |
		       NE_ERR_BIT(NE_ERR_VCPU_NOT_IN_CPU_POOL) |
		       NE_ERR_BIT(NE_ERR_NOT_IN_INIT_STATE) | NE_ERR_BIT(NE_ERR_INVALID_VCPU) |
		       NE_ERR_BIT(NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	case NE_GET_IMAGE_LOAD_INFO:
		return NE_ERR_BIT(NE_ERR_NOT_IN_INIT_STATE) |
		       NE_ERR_BIT(NE_ERR_INVALID_FLAG_VALUE);
	case NE_SET_USER_MEMORY_REGION:
		return NE_ERR_BIT(NE_ERR_INVALID_MEM_REGION_SIZE) |
		       NE_ERR_BIT(NE_ERR_INVALID_MEM_REGION_ADDR) |
		       NE_ERR_BIT(NE_ERR_UNALIGNED_MEM_REGION_ADDR) |
		       NE_ERR_BIT(NE_ERR_MEM_REGION_ALREADY_USED) |
		       NE_ERR_BIT(NE_ERR_MEM_NOT_HUGE_PAGE) |
		       NE_ERR_BIT(NE_ERR_MEM_DIFFERENT_NUMA_NODE) |
		       NE_ERR_BIT(NE_ERR_MEM_MAX_REGIONS) | NE_ERR_BIT(NE_ERR_NOT_IN_INIT_STATE) |
		       NE_ERR_BIT(NE_ERR_INVALID_FLAG_VALUE);
	case NE_START_ENCLAVE:
		return NE_ERR_BIT(NE_ERR_NO_MEM_REGIONS_ADDED) |
		       NE_ERR_BIT(NE_ERR_NO_VCPUS_ADDED) |
		       NE_ERR_BIT(NE_ERR_ENCLAVE_MEM_MIN_SIZE) |
		       NE_ERR_BIT(NE_ERR_FULL_CORES_NOT_USED) |
		       NE_ERR_BIT(NE_ERR_NOT_IN_INIT_STATE) | NE_ERR_BIT(NE_ERR_INVALID_FLAG_VALUE) |
		       NE_ERR_BIT(NE_ERR_INVALID_ENCLAVE_CID);
	}
	return 0;
}

static bool is_ne_cmd(unsigned long cmd)
{
	return cmd == NE_ADD_VCPU || cmd == NE_GET_IMAGE_LOAD_INFO ||
	       cmd == NE_SET_USER_MEMORY_REGION || cmd == NE_START_ENCLAVE;
}

/*
 * Whether @err is a refusal of the upstream ioctl @cmd that
 * upstream-api.rst allows: its NE_ERR_* values, the standard errnos it
 * lists, and the device's rcs for the calls that reach the device (all but
 * NE_GET_IMAGE_LOAD_INFO).
 */
static bool ne_refusal_ok(unsigned long cmd, int err)
{
	if (err >= NE_ERR_FIRST && err <= NE_ERR_LAST)
		return ne_errs_of(cmd) & NE_ERR_BIT(err);
	switch (err) {
	case EFAULT: case EIO: case ENODEV: case EINTR:
		return true;
	case ENOMEM:
		return cmd != NE_GET_IMAGE_LOAD_INFO;
	case EMFILE: case ENFILE:
		return cmd == NE_CREATE_VM;
	}
	return cmd != NE_GET_IMAGE_LOAD_INFO && device_errno(err);
}

/* The same on an NE VM fd, where any ioctl but the four is ENOTTY. */
static bool ne_errno_ok(unsigned long cmd, int err)
{
	if (!is_ne_cmd(cmd))
		return err == ENOTTY;
	return ne_refusal_ok(cmd, err);
}

/* A refusal outside the spec of @cmd on an NE VM fd, or on the system fd. */
static void check_ne_refusal(struct worker *w, unsigned long cmd, int err, bool sys)
{
	if (!(sys ? ne_refusal_ok(cmd, err) : ne_errno_ok(cmd, err)))
		violation(w, "ioctl %#lx on %s was refused with %d (%s), which "
			  "upstream-api.rst does not allow", cmd, sys ? "the system fd" :
			  "an NE VM fd", err, err_name(err));
}

/*
 * A refusal on a system, vCPU or KVM VM fd: standard errnos only, never an
 * NE_ERR_* value nor a kernel-internal one (512-529).
 */
static void check_kvm_refusal(struct worker *w, unsigned long cmd, int err)
{
	if ((err >= NE_ERR_FIRST && err <= NE_ERR_LAST) || (err >= 512 && err <= 529))
		violation(w, "ioctl %#lx on a KVM-family fd was refused with %d, not a "
			  "standard errno", cmd, err);
}

/* Whether @fd's VM is dead (fdinfo ne_dead), which makes everything EIO. */
static bool vm_dead(int fd)
{
	char why[200];

	return !ne_fdinfo(fd, "ne_dead", why, sizeof(why)) && strcmp(why, "no");
}

/*
 * The mixing rule: a VM fd answers only the family that made it, so @what
 * (the other family's ioctl) must have been ENOTTY; but a dead KVM VM
 * answers EIO to everything, as KVM's does.
 */
static void check_mixing(struct worker *w, const struct vmrec *v, const char *what,
			 long rc, int err)
{
	if (v->fd < 0)
		return;
	__atomic_add_fetch(&sh->n_cross, 1, __ATOMIC_RELAXED);
	if (rc < 0 && err == ENOTTY)
		return;
	if (rc < 0 && err == EIO && !v->ne && vm_dead(v->fd))
		return;
	if (rc < 0)
		violation(w, "%s on a VM fd made by %s: %s, not ENOTTY", what,
			  v->ne ? "NE_CREATE_VM" : "KVM_CREATE_VM", err_name(err));
	else
		violation(w, "%s on a VM fd made by %s succeeded (%ld)", what,
			  v->ne ? "NE_CREATE_VM" : "KVM_CREATE_VM", rc);
}

/* ---- operations on fds ------------------------------------------------------ */

static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct worker *proc_workers[MAXTHREADS];
static unsigned int proc_nworkers;

/* Closes *@fd: it leaves the table first, so that dup_op never sees it. */
static void table_close(int *fd)
{
	int old;

	pthread_mutex_lock(&tab_lock);
	old = *fd;
	*fd = -1;
	pthread_mutex_unlock(&tab_lock);
	if (old >= 0)
		close(old);
}

static void table_set(int *slot, int fd)
{
	table_close(slot);
	pthread_mutex_lock(&tab_lock);
	*slot = fd;
	pthread_mutex_unlock(&tab_lock);
}

/*
 * A new VM fd in vm[@i], its record whole under the lock: op_dup must never
 * copy an NE fd with a KVM fd's record (its checks would then be wrong).
 */
static void table_set_vm(struct worker *w, int i, int fd, bool ne)
{
	table_close(&w->vm[i].fd);
	pthread_mutex_lock(&tab_lock);
	w->vm[i] = (struct vmrec){ .fd = fd, .ne = ne };
	pthread_mutex_unlock(&tab_lock);
}

static void op_open_sys(struct worker *w)
{
	int i = w->r[1] % NSYS, fd;

	op_begin(w, "open sys[%d]", i);
	fd = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC);
	op_end(w, fd, errno);
	if (fd >= 0)
		table_set(&w->sys[i], fd);
}

static void op_close(struct worker *w)
{
	int which = w->r[1] % 3, vi = pick_vm(w, w->r[2]), *fd;

	fd = which == 0 ? &w->sys[w->r[2] % NSYS] :
	     which == 1 ? &w->vm[vi].fd : vcpu_fd(w, w->r[2]);
	op_begin(w, "close %s fd %d", which == 0 ? "sys" : which == 1 ? "vm" : "vcpu", *fd);
	table_close(fd);
	if (which == 1)
		w->vm[vi] = (struct vmrec){ .fd = -1 };
	op_end(w, 0, 0);
}

static uint64_t pick_cap(uint64_t r)
{
	return PICK(r, 0, KVM_CAP_USER_MEMORY, KVM_CAP_NR_VCPUS, KVM_CAP_MAX_VCPUS,
		    KVM_CAP_MAX_VCPU_ID, KVM_CAP_NR_MEMSLOTS, KVM_CAP_IRQCHIP,
		    KVM_CAP_NR_MEMSLOTS, KVM_CAP_MAX_VCPU_ID, 0xffffffffULL,
		    1ULL << 32, ~0ULL, r >> 8 & 0xffff);
}

/* Ioctl numbers that the fds do not implement (or only some of them do). */
static unsigned long pick_foreign(uint64_t r, uint64_t r2)
{
	switch (r % 40) {
	case 0:
		return KVM_RUN;
	case 1:
		return KVM_GET_REGS;
	case 2:
		return KVM_SET_SREGS;
	case 3:
		return KVM_GET_TSC_KHZ;
	case 4:
		return KVM_SET_TSC_KHZ;
	case 5:
		return KVM_GET_XSAVE2;
	case 6:
		return KVM_GET_DEVICE_ATTR;
	case 7:
		return KVM_SET_DEVICE_ATTR;
	case 8:
		return KVM_HAS_DEVICE_ATTR;
	case 9:
		return KVM_GET_REG_LIST;
	case 10:
		return KVM_CREATE_IRQCHIP;
	case 11:
		return KVM_GET_DIRTY_LOG;
	case 12:
		return KVM_IRQFD;
	case 13:
		return KVM_IOEVENTFD;
	case 14:
		return KVM_SET_TSS_ADDR;
	case 15:
		return KVM_ENABLE_CAP;
	case 16:
		return KVM_GET_STATS_FD;
	case 17:
		return KVM_CREATE_DEVICE;
	case 18:
		return KVM_GET_MSR_INDEX_LIST;
	case 19:
		return KVM_GET_SUPPORTED_CPUID;
	/* The upstream Nitro Enclaves numbers, 0xAE20-0xAE24, with their sizes. */
	case 20: return _IOR(0xAE, 0x20, __u64);		/* NE_CREATE_VM */
	case 21: return _IOWR(0xAE, 0x21, __u32);		/* NE_ADD_VCPU */
	case 22: return _IOWR(0xAE, 0x22, char[16]);		/* NE_GET_IMAGE_LOAD_INFO */
	case 23: return _IOW(0xAE, 0x23, char[32]);		/* NE_SET_USER_MEMORY_REGION */
	case 24:
		return _IO(0xAE, 0x20 + r2 % 5);
	case 25: return _IOWR(0xAE, 0x24, char[24]);		/* START, wrong size */
	case 26: return _IOW(0xAE, 0x24, struct ne_enclave_start); /* START, wrong dir */
	case 27: return _IOWR(0xAE, 0x25 + r2 % 27, char[16]);	/* rest of NE's range */
	case 28:
		return KVM_CREATE_VM;
	case 29:
		return KVM_GET_API_VERSION;
	case 30:
		return KVM_CHECK_EXTENSION;
	case 31:
		return KVM_CREATE_VCPU;
	case 32:
		return KVM_SET_USER_MEMORY_REGION;
	case 33:
		return NE_ENCLAVE_START;
	case 34:
		return KVM_GET_VCPU_MMAP_SIZE;
	case 35: return _IOW(KVMIO, 0x46, char[40]);	/* SET_USER_MEMORY_REGION, size 40 */
	case 36:
		return 0;
	case 37:
		return 0xffffffffUL;
	case 38:
		return _IOC(r2 & 3, KVMIO, r2 >> 8 & 0xff, r2 >> 16 & 0x3fff);
	}
	return (unsigned long)r2;
}

static unsigned long pick_arg(struct worker *w, uint64_t r, uint64_t r2)
{
	switch (r % 8) {
	case 0:
		return 0;
	case 1:
		return (unsigned long)w->page_rw;
	case 2:
		return (unsigned long)w->page_none;
	case 3:
		return (unsigned long)w->page_ro;
	case 4:
		return (unsigned long)(w->page_rw + 4090);
	case 5:
		return 0xffff888000000000UL;
	case 6:
		return r2 % 64;
	}
	return r2;
}

/*
 * Names of the commands that may succeed, per fd type (a VM fd of either
 * family); others must fail.
 */
static bool may_succeed(int fdtype, bool ne, unsigned long cmd)
{
	if (fdtype == 0)
		return cmd == KVM_GET_API_VERSION || cmd == KVM_CHECK_EXTENSION ||
		       cmd == KVM_CREATE_VM;
	if (fdtype == 1 && ne)
		return is_ne_cmd(cmd);
	if (fdtype == 1)
		return cmd == KVM_CHECK_EXTENSION || cmd == KVM_CREATE_VCPU ||
		       cmd == KVM_SET_USER_MEMORY_REGION || cmd == NE_ENCLAVE_START;
	return false;
}

/* The errno checks of op_any_ioctl's refusal, by the fd's family. */
static void check_any_refusal(struct worker *w, int fdtype, const struct vmrec *v,
			      unsigned long cmd, long rc, int err)
{
	if (fdtype == 1 && !v->ne && is_ne_cmd(cmd) && cmd != NE_START_ENCLAVE)
		check_mixing(w, v, "an NE_* ioctl", rc, err);
	if (rc >= 0)
		return;
	if (fdtype == 1 && v->ne)
		check_ne_refusal(w, cmd, err, false);
	else
		check_kvm_refusal(w, cmd, err);
}

/* A generic ioctl on a sys (0), VM (1) or vCPU (2) fd. */
static void op_any_ioctl(struct worker *w, int fdtype)
{
	struct vmrec none = { .fd = -1 }, *v = fdtype == 1 ? &w->vm[pick_vm(w, w->r[1])] : &none;
	int fd = fdtype == 0 ? w->sys[w->r[1] % NSYS] : fdtype == 1 ?
		 v->fd : *vcpu_fd(w, w->r[1]);
	unsigned long cmd, arg;
	long rc;
	int err;

	if (w->r[2] % 3 == 0) {
		/* The numbers the fd does implement, with odd arguments. */
		cmd = fdtype == 0 ? PICK(w->r[3], KVM_GET_API_VERSION, KVM_CHECK_EXTENSION,
					 KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VM) :
		      fdtype == 1 ? KVM_CHECK_EXTENSION : KVM_RUN;
		arg = cmd == KVM_CHECK_EXTENSION ? pick_cap(w->r[4]) :
		      PICK(w->r[4], 0, 0, 1, 2, ~0UL, 1UL << 32, w->r[5]);
	} else {
		cmd = pick_foreign(w->r[3], w->r[4]);
		arg = pick_arg(w, w->r[5], w->r[6]);
	}
	/*
	 * Those with their own operation: kept out of here (NE_CREATE_VM
	 * would make an fd that nothing closes).  On an NE VM fd the KVM ones
	 * stay: they are the mixing rule's ENOTTY.
	 */
	if ((fdtype == 1 && !v->ne && (cmd == KVM_CREATE_VCPU ||
				       cmd == KVM_SET_USER_MEMORY_REGION ||
				       cmd == NE_ENCLAVE_START)) ||
	    (fdtype == 0 && ((cmd == KVM_CREATE_VM && arg == 0) || cmd == NE_CREATE_VM)))
		cmd = KVM_CHECK_EXTENSION;
	op_begin(w, "ioctl %s fd %d cmd %#lx arg %#lx",
		 fdtype == 0 ? "sys" : fdtype == 1 ? (v->ne ? "ne-vm" : "vm") : "vcpu", fd,
		 cmd, arg);
	rc = ioctl(fd, cmd, arg);
	err = errno;
	op_end(w, rc, err);
	if (fd >= 0)
		check_any_refusal(w, fdtype, v, cmd, rc, err);
	if (rc >= 0 && !may_succeed(fdtype, v->ne, cmd))
		violation(w, "ioctl %#lx (arg %#lx) on a %s fd succeeded (%ld)", cmd, arg,
			  fdtype == 0 ? "system" : fdtype == 1 ? (v->ne ? "NE VM" : "VM") :
			  "vCPU", rc);
	if (rc >= 0 && fdtype == 0 && cmd == KVM_CREATE_VM) {
		violation(w, "KVM_CREATE_VM with machine type %#lx succeeded", arg);
		close(rc);
	}
	/* (a vCPU fd a broken NE VM fd would make: not left open) */
	if (rc > 0 && fdtype == 1 && v->ne && cmd == KVM_CREATE_VCPU)
		close(rc);
}

static void op_create_vm(struct worker *w)
{
	int i = w->r[1] % NVM, sys = w->sys[w->r[2] % NSYS], fd;
	bool own = w->r[3] % 4 == 0;

	op_begin(w, "KVM_CREATE_VM vm[%d] sys %d%s", i, own ? -1 : sys, own ? " (own open)" : "");
	if (own)
		sys = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC);
	fd = ioctl(sys, KVM_CREATE_VM, 0);
	op_end(w, fd, errno);
	if (own && sys >= 0)
		close(sys);
	if (fd >= 0) {
		__atomic_add_fetch(&sh->n_vm, 1, __ATOMIC_RELAXED);
		table_set_vm(w, i, fd, false);
	}
}

static const char *const mem_kinds[] = {
	"hugetlb", "hugetlb-lazy", "hugetlbfs-file", "thp", "4k-anon", "shmem-file",
	"hugetlb-ro", "hugetlb",
};

static bool kind_is_huge(int kind)
{
	return kind <= 2 || kind >= 6;
}

static void mem_unmap(struct memrec *m)
{
	if (!m->addr)
		return;
	munmap(m->addr, m->len + (m->guarded ? 4096 : 0));
	if (m->huge)
		__atomic_add_fetch(&sh->huge_budget, m->len, __ATOMIC_SEQ_CST);
	memset(m, 0, sizeof(*m));
}

/*
 * The model says a range that runs past a mapping's end is refused, which
 * holds only if what follows is not hugetlb memory: the kernel may place
 * another hugetlb mapping of the fuzzer right there, and the donation then
 * rightly succeeds (a false finding, seed 423844524058).  So a PROT_NONE
 * page is put after each mapping, never over anything (another thread may
 * have mapped there): where that fails, past-the-end ranges of the mapping
 * are not judged.  (Mapping into a reservation with MAP_FIXED is no
 * answer: a MAP_FIXED hugetlb mmap that fails leaves a hole another thread
 * can map into, and freeing the reservation then unmaps its memory.)
 */
static void mem_guard(struct memrec *m)
{
	void *g = mmap(m->addr + m->len, 4096, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	m->guarded = g == m->addr + m->len;
	if (g != MAP_FAILED && !m->guarded)	/* a kernel without NOREPLACE */
		munmap(g, 4096);
}

static void op_map(struct worker *w)
{
	struct memrec *m = &w->mem[w->r[1] % NMEM];
	int kind = w->r[2] % 8, fd = -1, flags, prot = PROT_READ | PROT_WRITE;
	uint64_t size = PICK(w->r[3], 2, 4, 8, 8, 16, 64, 2, 66) * MIB;
	char *p = MAP_FAILED;
	char path[128];

	if (!kind_is_huge(kind) && w->r[3] % 4)
		size = 4 * MIB;
	op_begin(w, "map mem[%u] %s %" PRIu64 " MiB", (unsigned int)(w->r[1] % NMEM),
		 mem_kinds[kind], size >> 20);
	mem_unmap(m);
	if (kind_is_huge(kind) &&
	    __atomic_sub_fetch(&sh->huge_budget, size, __ATOMIC_SEQ_CST) < 0) {
		__atomic_add_fetch(&sh->huge_budget, size, __ATOMIC_SEQ_CST);
		op_end(w, -1, ENOMEM);
		return;
	}
	switch (kind) {
	case 0: case 7: case 1: case 6:
		flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB;
		if (kind != 1)
			flags |= MAP_POPULATE;
		if (kind == 6)
			prot = PROT_READ;
		p = mmap(NULL, size, prot, flags, -1, 0);
		break;
	case 2:
		snprintf(path, sizeof(path), "/dev/hugepages/ne_fuzz.%d.%d.%u", getpid(),
			 w->idx, w->nfile++);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			unlink(path);
			p = mmap(NULL, size, prot, MAP_SHARED | MAP_POPULATE, fd, 0);
		}
		break;
	case 3: {
		/* THP: 2 MiB aligned anonymous memory, faulted as huge pages. */
		char *raw = mmap(NULL, size + HPAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (raw == MAP_FAILED)
			break;
		p = (char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
		if (p > raw)
			munmap(raw, p - raw);
		munmap(p + size, raw + HPAGE - p);
		madvise(p, size, MADV_HUGEPAGE);
		memset(p, 1, HPAGE);
		break;
	}
	case 4:
		p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		break;
	case 5:
		fd = memfd_create("ne_fuzz", MFD_CLOEXEC);
		if (fd >= 0 && !ftruncate(fd, size))
			p = mmap(NULL, size, prot, MAP_SHARED | MAP_POPULATE, fd, 0);
		break;
	}
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED) {
		if (kind_is_huge(kind))
			__atomic_add_fetch(&sh->huge_budget, size, __ATOMIC_SEQ_CST);
		op_end(w, -1, errno);
		return;
	}
	m->addr = p;
	m->size = m->len = size;
	m->kind = kind;
	m->huge = kind_is_huge(kind);
	mem_guard(m);
	op_end(w, 0, 0);
}

static void op_unmap(struct worker *w)
{
	struct memrec *m = &w->mem[w->r[1] % NMEM];

	op_begin(w, "munmap mem[%u] %p", (unsigned int)(w->r[1] % NMEM), m->addr);
	mem_unmap(m);
	op_end(w, 0, 0);
}

/*
 * Slot pickers: mostly the first occupied entry from a random start (so that
 * calls reach the driver), sometimes the raw entry (maybe empty: EBADF).
 * Which entries are occupied depends on earlier results, not on the draws.
 */
static int pick_vm(struct worker *w, uint64_t r)
{
	int i, k = r % NVM;

	if ((r >> 8) % 8 == 0)
		return k;
	for (i = 0; i < NVM; i++)
		if (w->vm[(k + i) % NVM].fd >= 0)
			return (k + i) % NVM;
	return k;
}

static int pick_vcpu(struct worker *w, uint64_t r)
{
	int i, k = r % NVCPU;

	if ((r >> 8) % 8 == 0)
		return k;
	for (i = 0; i < NVCPU; i++)
		if (w->vcpu[(k + i) % NVCPU] >= 0)
			return (k + i) % NVCPU;
	return k;
}

static int pick_mem(struct worker *w, uint64_t r)
{
	int i, k = r % NMEM;

	if ((r >> 8) % 8 == 0)
		return k;
	for (i = 0; i < NMEM; i++)
		if (w->mem[(k + i) % NMEM].addr)
			return (k + i) % NMEM;
	return k;
}

/*
 * Three modes: a valid call (half the time), a valid call with one field
 * mutated, or every field random.
 */
enum { MODE_VALID, MODE_MUTATE, MODE_RANDOM };

static int pick_mode(uint64_t r)
{
	return r % 8 < 4 ? MODE_VALID : r % 8 < 7 ? MODE_MUTATE : MODE_RANDOM;
}

/*
 * Whether a KVM_SET_USER_MEMORY_REGION of @reg must fail, @reg being @m's
 * memory from byte @off on (or, when userspace_addr is not there, an
 * address field 3 of op_set_mem made up: 0, a 4 KiB page, a kernel
 * address, the top of user space, a random one, none of them this
 * process's hugetlb memory).  The memory's kind is known only where the
 * range starts inside @m.  A range that starts at or past @m's end lies
 * in whatever follows: with a guard page there, nothing mapped; without
 * one, maybe another hugetlb mapping of the fuzzer, rightly donated (a
 * false finding, seed 1828151582255: 2 MiB past a 2 MiB shmem mapping).
 */
static bool set_mem_must_fail(const struct kvm_userspace_memory_region *reg,
			      const struct memrec *m, uint64_t off, int pk)
{
	bool from_m = m->addr && reg->userspace_addr == (uintptr_t)m->addr + off;

	if (reg->flags || !reg->memory_size || reg->memory_size % HPAGE ||
	    reg->userspace_addr % HPAGE || reg->slot >= sh->nr_memslots ||
	    (pk != PTR_OK && pk != PTR_MISALIGNED))
		return true;
	if (!from_m)
		return true;
	if (off < m->size && !m->huge)
		return true;
	return m->guarded && off + reg->memory_size > m->size;
}

/* The lines of /proc/self/maps that meet [@start, @start + @len). */
static void print_maps(uint64_t start, uint64_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned long long lo, hi;
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 && lo < start + len && start < hi)
			printf("#   maps: %s", line);
	fclose(f);
}

static void op_set_mem(struct worker *w)
{
	struct vmrec *v = &w->vm[pick_vm(w, w->r[1])];
	struct memrec *m = &w->mem[pick_mem(w, w->r[2])];
	struct kvm_userspace_memory_region reg = { 0 };
	int mode = pick_mode(w->r[3]), field = w->r[3] >> 8 & 7;
	uint64_t off = 0;
	int pk = PTR_OK;
	void *arg;
	long rc;
	int err;

	reg.slot = v->slots;
	reg.guest_phys_addr = v->mem;
	reg.userspace_addr = (uintptr_t)m->addr;
	reg.memory_size = m->size;
	if (mode == MODE_VALID)
		field = -1;
	if (mode == MODE_RANDOM || field == 0)
		reg.slot = PICK(w->r[3] >> 16, 0, v->slots + 1, sh->nr_memslots - 1,
				sh->nr_memslots, sh->nr_memslots + 1, 0x10000,
				0x10000 | v->slots, U32_MAX_, w->r[3] >> 32);
	if (mode == MODE_RANDOM || field == 1)
		reg.flags = PICK(w->r[4], KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, 4,
				 1U << 31, w->r[4] >> 32);
	if (mode == MODE_RANDOM || field == 2)
		reg.guest_phys_addr = PICK(w->r[5], 0, v->mem + HPAGE, v->mem + 1,
					   v->mem - HPAGE, (w->r[5] >> 20) << 21,
					   1ULL << 52, ~0ULL << 21);
	if (mode == MODE_RANDOM || field == 3) {
		switch (w->r[6] % 10) {
		case 0:
			reg.userspace_addr = 0;
			break;
		case 1:
			reg.userspace_addr = (uintptr_t)w->page_none;
			break;
		case 2:
			reg.userspace_addr = 0xffff888000000000ULL;
			break;
		case 3:
			reg.userspace_addr = (1ULL << 47) - HPAGE;
			break;
		case 4:
			reg.userspace_addr = w->r[6] & ~(HPAGE - 1);
			break;
		default:
			off = PICK(w->r[6] >> 8, HPAGE, MIB, 4096, 64);
			reg.userspace_addr += off;
			reg.memory_size = m->size > off ? m->size - off : HPAGE;
			break;
		}
	}
	if (mode == MODE_RANDOM || field == 4) {
		switch (w->r[6] >> 40 & 7) {
		case 0:
			reg.memory_size = 0;
			break;
		case 1:
			reg.memory_size += HPAGE;
			break;
		case 2:
			reg.memory_size |= 4096;
			break;
		case 3:
			reg.memory_size = 1ULL << 40;
			break;
		case 4:
			reg.memory_size = ~0ULL;
			break;
		case 5:
			reg.memory_size = ~0ULL - HPAGE + 1;
			break;
		case 6:
			reg.memory_size = 1ULL << 63;
			break;
		case 7:
			reg.memory_size = m->size > HPAGE ? m->size - HPAGE : HPAGE;
			break;
		}
	}
	if (mode == MODE_RANDOM || field == 5)
		pk = 1 + w->r[7] % (PTR_KINDS - 1);
	if (field == 6)	/* an earlier range again: EEXIST (same pages) */
		reg.slot = v->slots ? v->slots - 1 : 0;
	arg = arg_ptr(w, pk, &reg, sizeof(reg));
	op_begin(w, "SET_USER_MEMORY_REGION vm %d {slot %#x flags %#x gpa %#llx size %#llx "
		 "addr %#llx (%s)} arg %s", v->fd, reg.slot, reg.flags,
		 (unsigned long long)reg.guest_phys_addr, (unsigned long long)reg.memory_size,
		 (unsigned long long)reg.userspace_addr, m->addr ? mem_kinds[m->kind] : "-",
		 ptr_names[pk]);
	rc = ioctl(v->fd, KVM_SET_USER_MEMORY_REGION, arg);
	err = errno;
	op_end(w, rc, err);
	if (v->ne) {
		check_mixing(w, v, "KVM_SET_USER_MEMORY_REGION", rc, err);
		return;
	}
	if (rc < 0 && v->fd >= 0)
		check_kvm_refusal(w, KVM_SET_USER_MEMORY_REGION, err);
	if (rc < 0 || v->fd < 0)
		return;
	__atomic_add_fetch(&sh->n_mem, 1, __ATOMIC_RELAXED);
	if (set_mem_must_fail(&reg, m, off, pk) && pk != PTR_RO) {
		violation(w, "SET_USER_MEMORY_REGION {slot %#x flags %#x size %#llx addr %#llx, "
			  "%s memory at offset %#llx, %s pointer} succeeded", reg.slot, reg.flags,
			  (unsigned long long)reg.memory_size,
			  (unsigned long long)reg.userspace_addr,
			  m->addr ? mem_kinds[m->kind] : "no", (unsigned long long)off,
			  ptr_names[pk]);
		print_maps(reg.userspace_addr, reg.memory_size);
	}
	if (pk == PTR_OK || pk == PTR_MISALIGNED) {
		v->mem += reg.memory_size;
		v->slots++;
	}
}

static void op_create_vcpu(struct worker *w)
{
	struct vmrec *v = &w->vm[pick_vm(w, w->r[1])];
	int i = w->r[2] % NVCPU, fd, err;
	unsigned long id = pick_mode(w->r[4]) == MODE_VALID ? v->vcpus :
		PICK(w->r[3], 0, 1, 2, 3, sh->max_vcpu_id - 1, sh->max_vcpu_id,
		     sh->max_vcpu_id + 1, sh->ncpus, ~0UL, U32_MAX_, 1UL << 32,
		     1UL << 32 | 1, w->r[3] >> 16);

	op_begin(w, "KVM_CREATE_VCPU vm %d id %#lx -> vcpu[%d]", v->fd, id, i);
	fd = ioctl(v->fd, KVM_CREATE_VCPU, id);
	err = errno;
	op_end(w, fd, err);
	if (v->ne)
		check_mixing(w, v, "KVM_CREATE_VCPU", fd, err);
	else if (fd < 0 && v->fd >= 0)
		check_kvm_refusal(w, KVM_CREATE_VCPU, err);
	if (fd < 0)
		return;
	__atomic_add_fetch(&sh->n_vcpu, 1, __ATOMIC_RELAXED);
	if ((uint32_t)id >= sh->ncpus)
		violation(w, "KVM_CREATE_VCPU id %#lx succeeded (%u CPUs in all)", id, sh->ncpus);
	if (id == v->vcpus)
		v->vcpus++;
	table_set(&w->vcpu[i], fd);
}

/* What a start that succeeded must have been, and what it must return. */
static void start_succeeded(struct worker *w, struct vmrec *v,
			    const struct ne_enclave_start *s, const void *arg, int pk)
{
	struct ne_enclave_start out;

	if (!ptr_usable(pk)) {
		violation(w, "NE_ENCLAVE_START with a %s argument succeeded", ptr_names[pk]);
		return;
	}
	if ((s->flags & ~NE_ENCLAVE_START_FLAGS) ||
	    (s->enclave_cid >= 1 && s->enclave_cid <= 3) || s->enclave_cid >= U32_MAX_)
		violation(w, "NE_ENCLAVE_START {flags %#llx cid %llu} succeeded",
			  (unsigned long long)s->flags, (unsigned long long)s->enclave_cid);
	if (v->started)
		violation(w, "a second start of one enclave succeeded");
	memcpy(&out, arg, sizeof(out));
	if (out.enclave_cid <= NE_PARENT_VM_CID || out.enclave_cid >= U32_MAX_)
		violation(w, "the start returned CID %llu, a reserved one",
			  (unsigned long long)out.enclave_cid);
	pthread_mutex_lock(&tab_lock);
	v->started = true;
	pthread_mutex_unlock(&tab_lock);
}

/*
 * NE_ENCLAVE_START, which has NE_START_ENCLAVE's number and layout: on an
 * NE VM fd it answers with upstream's values, on a KVM one with errnos.
 */
static void start_vm(struct worker *w, struct vmrec *v)
{
	int fd = v->fd, mode = pick_mode(w->r[5]);
	int field = mode == MODE_MUTATE ? (int)((w->r[5] >> 8) % 3) : -1, pk = PTR_OK;
	struct ne_enclave_start s;
	void *arg;
	long rc;
	int err;

	s.flags = w->r[2] >> 8 & 1;
	s.enclave_cid = w->r[3] % 2 ? 0 : 4 + (w->r[3] >> 8) % 100000;
	if (mode == MODE_RANDOM || field == 0)
		s.flags = PICK(w->r[2] >> 8, 2, 1ULL << 63, ~0ULL, w->r[2] >> 32);
	if (mode == MODE_RANDOM || field == 1)
		s.enclave_cid = PICK(w->r[3], 1, 2, 3, U32_MAX_, U32_MAX_ - 1, 1ULL << 32,
				     ~0ULL, w->r[3] >> 8);
	if (mode == MODE_RANDOM || field == 2)
		pk = 1 + w->r[4] % (PTR_KINDS - 1);
	arg = arg_ptr(w, pk, &s, sizeof(s));
	op_begin(w, "%s %s %d {flags %#llx cid %llu} arg %s",
		 v->ne ? "NE_START_ENCLAVE" : "NE_ENCLAVE_START", v->ne ? "ne-vm" : "vm", fd,
		 (unsigned long long)s.flags, (unsigned long long)s.enclave_cid,
		 ptr_names[pk]);
	rc = ioctl(fd, NE_ENCLAVE_START, arg);
	err = errno;
	op_end(w, rc, err);
	if (rc < 0 && fd >= 0 && v->ne)
		check_ne_refusal(w, NE_START_ENCLAVE, err, false);
	else if (rc < 0 && fd >= 0)
		check_kvm_refusal(w, NE_ENCLAVE_START, err);
	if (rc < 0)
		return;
	__atomic_add_fetch(v->ne ? &sh->n_ne_start : &sh->n_start, 1, __ATOMIC_RELAXED);
	start_succeeded(w, v, &s, arg, pk);
}

static void op_start(struct worker *w)
{
	start_vm(w, &w->vm[pick_vm(w, w->r[1])]);
}

/* A whole enclave the way a launcher builds it, then started. */
static void op_enclave(struct worker *w)
{
	int vi = w->r[1] % NVM, mi = w->r[4] % NMEM, i;
	uint64_t r4 = w->r[4], r5 = w->r[5], r6 = w->r[6];

	w->prefix = "enclave: ";
	w->r[3] = 3;	/* create_vm: not its own open */
	w->r[2] = r5;
	op_create_vm(w);
	if (w->vm[vi].fd < 0) {
		w->prefix = "";
		return;
	}
	/* 64 MiB of hugetlb, anonymous or a hugetlbfs file. */
	w->r[1] = mi;
	w->r[2] = r4 % 2 ? 0 : 2;
	w->r[3] = 5;
	op_map(w);
	w->r[1] = vi;		/* pick_vm: this one */
	w->r[2] = mi;		/* pick_mem: this one */
	w->r[3] = 0;		/* valid */
	op_set_mem(w);
	for (i = 0; i < 2; i++) {
		w->r[2] = r5 + i;
		w->r[4] = 0;	/* valid: the next id */
		op_create_vcpu(w);
	}
	w->r[2] = r6 & 0x100;	/* flags 0 or debug */
	w->r[3] = r6 >> 16;	/* cid 0 or 4.. */
	w->r[5] = 0;		/* valid */
	op_start(w);
	w->prefix = "";
}

/* ---- the upstream family (<linux/nitro_enclaves.h>) ------------------------ */

static const char *vm_kind(const struct vmrec *v)
{
	return v->ne ? "ne-vm" : "vm";
}

/*
 * An upstream operation's VM fd: mostly an NE one (the first from a random
 * start), one time in eight the raw entry (maybe empty: EBADF), one in
 * eight any (a KVM one: the mixing rule).
 */
static int pick_ne_vm(struct worker *w, uint64_t r)
{
	int i, k = r % NVM;

	switch ((r >> 8) % 8) {
	case 0:
		return k;
	case 1:
		return pick_vm(w, r >> 16);
	}
	for (i = 0; i < NVM; i++)
		if (w->vm[(k + i) % NVM].fd >= 0 && w->vm[(k + i) % NVM].ne)
			return (k + i) % NVM;
	return pick_vm(w, r >> 16);
}

/* The slot uid NE_CREATE_VM wrote must be the VM's; the fd O_CLOEXEC. */
static void ne_vm_created(struct worker *w, int fd, const void *arg)
{
	long long fduid = ne_fdinfo_num(fd, "ne_slot_uid");
	uint64_t uid;

	memcpy(&uid, arg, sizeof(uid));
	if (!uid || fduid != (long long)uid)
		violation(w, "NE_CREATE_VM wrote slot uid %#llx, the VM fd's fdinfo says %#llx",
			  (unsigned long long)uid, fduid);
	if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
		violation(w, "the VM fd of NE_CREATE_VM is not O_CLOEXEC");
}

/* A system fd: mostly the first open one from a random start, else raw. */
static int pick_sys(struct worker *w, uint64_t r)
{
	int i, k = r % NSYS;

	if ((r >> 8) % 8 == 0)
		return w->sys[k];
	for (i = 0; i < NSYS; i++)
		if (w->sys[(k + i) % NSYS] >= 0)
			return w->sys[(k + i) % NSYS];
	return w->sys[k];
}

static void op_ne_create_vm(struct worker *w)
{
	int i = w->r[1] % NVM, sys = pick_sys(w, w->r[2]), pk = pick_ptr(w->r[4]), fd, err;
	bool own = w->r[3] % 4 == 0;
	uint64_t uid = 0;
	void *arg = arg_ptr(w, pk, &uid, sizeof(uid));

	op_begin(w, "NE_CREATE_VM vm[%d] sys %d%s arg %s", i, own ? -1 : sys,
		 own ? " (own open)" : "", ptr_names[pk]);
	if (own)
		sys = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC);
	fd = ioctl(sys, NE_CREATE_VM, arg);
	err = errno;
	op_end(w, fd, err);
	if (own && sys >= 0)
		close(sys);
	if (fd < 0) {
		if (sys >= 0)
			check_ne_refusal(w, NE_CREATE_VM, err, true);
		return;
	}
	__atomic_add_fetch(&sh->n_ne_vm, 1, __ATOMIC_RELAXED);
	if (ptr_usable(pk))
		ne_vm_created(w, fd, arg);
	else
		violation(w, "NE_CREATE_VM with a %s argument succeeded", ptr_names[pk]);
	table_set_vm(w, i, fd, true);	/* (closed with the table, whatever it is) */
}

/* NE_ADD_VCPU's id: 0 (the driver picks) most, pool CPUs, others, huge. */
static uint32_t pick_ne_cpu(uint64_t r)
{
	return PICK(r, 0, 0, 0, 0, sh->pool_cpu[0], sh->pool_cpu[1], sh->pool_cpu[1] + 1, 1,
		    sh->ncpus - 1, sh->ncpus, sh->ncpus + 1, 255, 4096, 1U << 31, U32_MAX_,
		    r >> 32);
}

/* Whether @cpu is in ne_cpus now and offline (unknown: yes). */
static bool pool_cpu_offline(uint32_t cpu)
{
	char pool[256], path[64], on[8];
	int cpus[256], n, i;

	if (ne_read_file(NE_CPUS_PARAM, pool, sizeof(pool)))
		return true;
	n = ne_cpulist(pool, cpus, 256);
	for (i = 0; i < n && cpus[i] != (int)cpu; i++)
		;
	if (i == n)
		return false;
	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/online", cpu);
	return ne_read_file(path, on, sizeof(on)) || on[0] == '0';
}

/*
 * What an NE_ADD_VCPU that succeeded must have been, and its CPU: the one
 * asked for, else a pool CPU; new to the enclave.  The pool cannot change
 * while an enclave exists (ours does), so reading ne_cpus now is exact.
 */
static void ne_vcpu_added(struct worker *w, struct vmrec *v, uint32_t id,
			  const void *arg, int pk)
{
	uint32_t cpu;

	if (!ptr_usable(pk)) {
		violation(w, "NE_ADD_VCPU with a %s argument succeeded", ptr_names[pk]);
		return;
	}
	memcpy(&cpu, arg, sizeof(cpu));
	if (v->started)
		violation(w, "NE_ADD_VCPU succeeded after the enclave started");
	if (id >= sh->ncpus)
		violation(w, "NE_ADD_VCPU of CPU %u succeeded (%u CPUs in all)", id, sh->ncpus);
	if (id && cpu != id)
		violation(w, "NE_ADD_VCPU of CPU %u added CPU %u", id, cpu);
	if (cpu < 64 && (v->cpus >> cpu & 1))
		violation(w, "NE_ADD_VCPU gave CPU %u, which the enclave already has", cpu);
	if (!pool_cpu_offline(cpu))
		violation(w, "NE_ADD_VCPU gave CPU %u, not an offline CPU of ne_cpus", cpu);
	pthread_mutex_lock(&tab_lock);
	if (cpu < 64)
		v->cpus |= 1ULL << cpu;
	pthread_mutex_unlock(&tab_lock);
}

/*
 * The common verdict on an NE_* ioctl @cmd (@name) on @v that returned @rc
 * with errno @err: on a KVM VM fd it must be refused as the mixing rule
 * says; a refusal on an NE VM fd must be one of the listed values.  True
 * when it succeeded on an NE VM fd: the caller then judges what it did.
 */
static bool ne_answered(struct worker *w, const struct vmrec *v, unsigned long cmd,
			const char *name, long rc, int err)
{
	if (!v->ne) {
		check_mixing(w, v, name, rc, err);
		return false;
	}
	if (rc < 0) {
		if (v->fd >= 0)
			check_ne_refusal(w, cmd, err, false);
		return false;
	}
	return true;
}

static void op_ne_add_vcpu(struct worker *w)
{
	struct vmrec *v = &w->vm[pick_ne_vm(w, w->r[1])];
	uint32_t id = pick_ne_cpu(w->r[2]), in = id;
	int pk = pick_ptr(w->r[3]), err;
	void *arg = arg_ptr(w, pk, &id, sizeof(id));
	long rc;

	op_begin(w, "NE_ADD_VCPU %s %d id %u arg %s", vm_kind(v), v->fd, in, ptr_names[pk]);
	rc = ioctl(v->fd, NE_ADD_VCPU, arg);
	err = errno;
	op_end(w, rc, err);
	if (ne_answered(w, v, NE_ADD_VCPU, "NE_ADD_VCPU", rc, err)) {
		__atomic_add_fetch(&sh->n_ne_vcpu, 1, __ATOMIC_RELAXED);
		ne_vcpu_added(w, v, in, arg, pk);
	}
}

/* What an NE_GET_IMAGE_LOAD_INFO that succeeded must have been and said. */
static void ne_info_given(struct worker *w, const struct vmrec *v, uint64_t flags,
			  const void *arg, int pk)
{
	struct ne_image_load_info out;

	if (!ptr_usable(pk)) {
		violation(w, "NE_GET_IMAGE_LOAD_INFO with a %s argument succeeded",
			  ptr_names[pk]);
		return;
	}
	memcpy(&out, arg, sizeof(out));
	if (flags != NE_EIF_IMAGE)
		violation(w, "NE_GET_IMAGE_LOAD_INFO with flags %#llx succeeded",
			  (unsigned long long)flags);
	if (v->started)
		violation(w, "NE_GET_IMAGE_LOAD_INFO succeeded after the enclave started");
	if (out.memory_offset != NE_IMAGE_LOAD_GPA)
		violation(w, "NE_GET_IMAGE_LOAD_INFO gave memory_offset %#llx, not 8 MiB",
			  (unsigned long long)out.memory_offset);
}

static void op_ne_info(struct worker *w)
{
	struct vmrec *v = &w->vm[pick_ne_vm(w, w->r[1])];
	struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
	int pk = pick_ptr(w->r[3]), err;
	void *arg;
	long rc;

	if (pick_mode(w->r[2]) != MODE_VALID)
		info.flags = PICK(w->r[2] >> 8, 0, 2, 3, 1ULL << 63, ~0ULL, w->r[2] >> 32);
	arg = arg_ptr(w, pk, &info, sizeof(info));
	op_begin(w, "NE_GET_IMAGE_LOAD_INFO %s %d {flags %#llx} arg %s", vm_kind(v), v->fd,
		 (unsigned long long)info.flags, ptr_names[pk]);
	rc = ioctl(v->fd, NE_GET_IMAGE_LOAD_INFO, arg);
	err = errno;
	op_end(w, rc, err);
	if (ne_answered(w, v, NE_GET_IMAGE_LOAD_INFO, "NE_GET_IMAGE_LOAD_INFO", rc, err)) {
		__atomic_add_fetch(&sh->n_ne_info, 1, __ATOMIC_RELAXED);
		ne_info_given(w, v, info.flags, arg, pk);
	}
}

/*
 * NE_SET_USER_MEMORY_REGION's address, mutated: returns false where the
 * range may be anybody's memory (a random address, next to the mapping),
 * where a success is not judged.
 */
static bool ne_region_addr(struct worker *w, struct ne_user_memory_region *reg)
{
	switch (w->r[6] % 8) {
	case 0:
		reg->userspace_addr = 0;
		break;
	case 1:
		reg->userspace_addr = (uintptr_t)w->page_none;
		break;
	case 2:
		reg->userspace_addr = 0xffff888000000000ULL;
		break;
	case 3:
		reg->userspace_addr = (1ULL << 47) - HPAGE;
		break;
	case 4:
		reg->userspace_addr = w->r[6] & ~(HPAGE - 1);
		return false;
	case 5:
		reg->userspace_addr += PICK(w->r[6] >> 8, 4096, MIB, 64);
		break;
	case 6:
		reg->userspace_addr -= HPAGE;
		return false;
	default:	/* maybe just past the mapping, where another may be */
		reg->userspace_addr += HPAGE;
		return false;
	}
	return true;
}

/*
 * NE_SET_USER_MEMORY_REGION's argument: valid (@m whole, or its tail or one
 * huge page from a random one), or one field mutated, or all.  Returns
 * whether the range is known to be in @m or nobody's (see ne_region_addr).
 */
static bool ne_region(struct worker *w, const struct memrec *m, const struct vmrec *v,
		      struct ne_user_memory_region *reg, int *pk)
{
	int mode = pick_mode(w->r[3]), field = mode == MODE_MUTATE ? (int)(w->r[3] >> 8) % 6 : -1;
	uint64_t pages = m->size / HPAGE, off = 0;
	bool placed = true;

	if (w->r[4] % 2 == 0 && pages)
		off = (w->r[4] >> 8) % pages * HPAGE;
	reg->flags = 0;
	reg->userspace_addr = (uintptr_t)m->addr + off;
	reg->memory_size = (w->r[4] >> 40) % 2 || !pages ? m->size - off : HPAGE;
	if (mode == MODE_RANDOM || field == 0)
		reg->flags = PICK(w->r[5], 1, 2, 3, 1ULL << 63, ~0ULL, w->r[5] >> 32);
	if (mode == MODE_RANDOM || field == 1)
		reg->memory_size = PICK(w->r[5] >> 16, 0, reg->memory_size + HPAGE,
					reg->memory_size | 4096, 4096, 1ULL << 40, ~0ULL,
					~0ULL - HPAGE + 1, 1ULL << 63, m->size + HPAGE);
	if (mode == MODE_RANDOM || field == 2)
		placed = ne_region_addr(w, reg);
	if (mode == MODE_RANDOM || field == 3)
		*pk = 1 + w->r[7] % (PTR_KINDS - 1);
	if (field == 4 && v->usize) {	/* the last range again: already used */
		reg->userspace_addr = v->uaddr;
		reg->memory_size = v->usize;
		placed = false;
	}
	if (field == 5)
		reg->memory_size = 0;
	return placed;
}

/*
 * What an NE_SET_USER_MEMORY_REGION that succeeded must have been: flags
 * 0, 2 MiB aligned, not empty, in the enclave's init state, within the
 * device's range limit, clear of the last range, of hugetlb memory.
 */
static void ne_region_added(struct worker *w, struct vmrec *v, const struct memrec *m,
			    const struct ne_user_memory_region *r, int pk, bool placed)
{
	uint64_t a = r->userspace_addr, size = r->memory_size, base = (uintptr_t)m->addr;
	bool in_m = m->addr && a >= base && a < base + m->size;

	if (!ptr_usable(pk) || r->flags || !size || size % HPAGE || a % HPAGE || v->started ||
	    v->slots >= sh->nr_memslots || (v->usize && a < v->uaddr + v->usize &&
					     v->uaddr < a + size) ||
	    (placed && (!in_m || !m->huge || (m->guarded && a + size > base + m->size))))
		violation(w, "NE_SET_USER_MEMORY_REGION {flags %#llx size %#llx addr %#llx, %s "
			  "memory, %s pointer} succeeded (call %u; %s; last range %#llx+%#llx)",
			  (unsigned long long)r->flags, (unsigned long long)size,
			  (unsigned long long)a, m->addr ? mem_kinds[m->kind] : "no",
			  ptr_names[pk], v->slots + 1, v->started ? "started" : "init",
			  (unsigned long long)v->uaddr, (unsigned long long)v->usize);
	pthread_mutex_lock(&tab_lock);
	v->slots++;
	v->mem += size;
	v->uaddr = a;
	v->usize = size;
	pthread_mutex_unlock(&tab_lock);
}

static void op_ne_set_mem(struct worker *w)
{
	struct vmrec *v = &w->vm[pick_ne_vm(w, w->r[1])];
	struct memrec *m = &w->mem[pick_mem(w, w->r[2])];
	struct ne_user_memory_region reg;
	int pk = PTR_OK, err;
	bool placed = ne_region(w, m, v, &reg, &pk);
	void *arg = arg_ptr(w, pk, &reg, sizeof(reg));
	long rc;

	op_begin(w, "NE_SET_USER_MEMORY_REGION %s %d {flags %#llx size %#llx addr %#llx (%s)} "
		 "arg %s", vm_kind(v), v->fd, (unsigned long long)reg.flags,
		 (unsigned long long)reg.memory_size, (unsigned long long)reg.userspace_addr,
		 m->addr ? mem_kinds[m->kind] : "-", ptr_names[pk]);
	rc = ioctl(v->fd, NE_SET_USER_MEMORY_REGION, arg);
	err = errno;
	op_end(w, rc, err);
	if (ne_answered(w, v, NE_SET_USER_MEMORY_REGION, "NE_SET_USER_MEMORY_REGION", rc, err)) {
		__atomic_add_fetch(&sh->n_ne_mem, 1, __ATOMIC_RELAXED);
		ne_region_added(w, v, m, &reg, pk, placed);
	}
}

static void op_ne_start(struct worker *w)
{
	start_vm(w, &w->vm[pick_ne_vm(w, w->r[1])]);
}

/* Valid-looking arguments of either family, for op_cross. */
struct cross_args {
	struct kvm_userspace_memory_region kreg;
	struct ne_user_memory_region nreg;
	struct ne_image_load_info info;
	struct ne_enclave_start start;
	uint64_t uid;
	uint32_t id;
};

static unsigned long cross_arg(struct cross_args *a, unsigned long cmd)
{
	switch (cmd) {
	case KVM_SET_USER_MEMORY_REGION:
		return (unsigned long)&a->kreg;
	case NE_SET_USER_MEMORY_REGION:
		return (unsigned long)&a->nreg;
	case NE_GET_IMAGE_LOAD_INFO:
		return (unsigned long)&a->info;
	case NE_START_ENCLAVE:
		return (unsigned long)&a->start;
	case NE_CREATE_VM:
		return (unsigned long)&a->uid;
	case NE_ADD_VCPU:
		return (unsigned long)&a->id;
	case KVM_CHECK_EXTENSION:
		return KVM_CAP_USER_MEMORY;
	}
	return 0;
}

/*
 * The other family's ioctl: on an NE VM fd KVM's (and the system fd's),
 * on a KVM one the NE_* ones but NE_START_ENCLAVE (NE_ENCLAVE_START there),
 * on the system fd the VM ones.
 */
static unsigned long cross_cmd(uint64_t r, int target)
{
	if (target == 0)
		return PICK(r, NE_ADD_VCPU, NE_GET_IMAGE_LOAD_INFO, NE_SET_USER_MEMORY_REGION,
			    NE_START_ENCLAVE, KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION);
	if (target == 1)
		return PICK(r, KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION, KVM_CHECK_EXTENSION,
			    KVM_RUN, KVM_GET_API_VERSION, KVM_CREATE_VM, NE_CREATE_VM);
	return PICK(r, NE_ADD_VCPU, NE_GET_IMAGE_LOAD_INFO, NE_SET_USER_MEMORY_REGION,
		    NE_CREATE_VM);
}

/*
 * The mixing rule with arguments the right family would take: each call
 * must be ENOTTY (on a dead KVM VM, EIO).
 */
static void op_cross(struct worker *w)
{
	struct vmrec *v = &w->vm[pick_vm(w, w->r[1])], sys = { .fd = -1 };
	struct memrec *m = &w->mem[pick_mem(w, w->r[2])];
	struct cross_args a = {
		.kreg = { .guest_phys_addr = v->mem, .memory_size = m->size,
			  .userspace_addr = (uintptr_t)m->addr, .slot = v->slots },
		.nreg = { .memory_size = m->size, .userspace_addr = (uintptr_t)m->addr },
		.info = { .flags = NE_EIF_IMAGE },
	};
	int target = w->r[3] % 4 == 0 ? 0 : v->ne ? 1 : 2, err;
	unsigned long cmd = cross_cmd(w->r[4], target);
	long rc;

	if (target == 0) {	/* the system fd: no dead state, ENOTTY only */
		sys.fd = w->sys[w->r[5] % NSYS];
		v = &sys;
	}
	op_begin(w, "cross: ioctl %s %d cmd %#lx", target ? vm_kind(v) : "sys", v->fd, cmd);
	rc = ioctl(v->fd, cmd, cross_arg(&a, cmd));
	err = errno;
	op_end(w, rc, err);
	if (target)
		check_mixing(w, v, "the other family's ioctl", rc, err);
	else if (v->fd >= 0 && (rc >= 0 || err != ENOTTY))
		violation(w, "VM ioctl %#lx on the system fd: %ld, %s, not ENOTTY", cmd, rc,
			  rc < 0 ? err_name(err) : "success");
	if (rc > 0 && cmd != KVM_GET_API_VERSION && cmd != KVM_CHECK_EXTENSION)
		close(rc);	/* a vCPU or VM fd that should not be */
}

/*
 * A launcher ends its old enclaves first: with one core in the pool, a VM
 * that holds it keeps every NE_CREATE_VM out (NE_ERR_NO_CPUS_AVAIL_IN_POOL).
 * This worker's VM fds with parent CPUs and its vCPU fds (which hold their
 * VM) are closed; another worker's dup may still hold the core.
 */
static void release_cores(struct worker *w)
{
	char cpus[64];
	int i;

	for (i = 0; i < NVCPU; i++) {
		if (w->vcpu[i] < 0)
			continue;
		op_begin(w, "close vcpu fd %d", w->vcpu[i]);
		table_close(&w->vcpu[i]);
		op_end(w, 0, 0);
	}
	for (i = 0; i < NVM; i++) {
		if (w->vm[i].fd < 0 ||
		    ne_fdinfo(w->vm[i].fd, "ne_parent_cpus", cpus, sizeof(cpus)) || !cpus[0])
			continue;
		op_begin(w, "close vm fd %d (parent CPUs %s)", w->vm[i].fd, cpus);
		table_close(&w->vm[i].fd);
		w->vm[i] = (struct vmrec){ .fd = -1 };
		op_end(w, 0, 0);
	}
}

/* A whole enclave the way nitro-cli builds it, then started. */
static void op_ne_enclave(struct worker *w)
{
	int vi = w->r[1] % NVM, mi = w->r[4] % NMEM, old = w->vm[vi].fd, i;
	uint64_t r4 = w->r[4], r5 = w->r[5], r6 = w->r[6];

	w->prefix = "ne-enclave: ";
	release_cores(w);
	old = w->vm[vi].fd;
	w->r[2] = r5;
	w->r[3] = 3;		/* create: not its own open */
	w->r[4] = 1;		/* valid pointers from here on */
	op_ne_create_vm(w);
	/* (a new fd never has the old one's number: that is closed after) */
	if (w->vm[vi].fd < 0 || w->vm[vi].fd == old) {
		w->prefix = "";
		return;
	}
	/* 64 MiB of hugetlb, anonymous or a hugetlbfs file. */
	w->r[1] = mi;
	w->r[2] = r4 % 2 ? 0 : 2;
	w->r[3] = 5;
	op_map(w);
	w->r[1] = vi;		/* pick_ne_vm: this one */
	w->r[2] = 0;		/* NE_EIF_IMAGE */
	w->r[3] = 1;
	op_ne_info(w);
	w->r[2] = mi;		/* pick_mem: this one */
	w->r[3] = 0;		/* valid */
	w->r[4] = 1 | 1ULL << 40;	/* all of it */
	op_ne_set_mem(w);
	for (i = 0; i < 2; i++) {	/* a whole core, the driver's pick */
		w->r[2] = 0;
		w->r[3] = 1;
		op_ne_add_vcpu(w);
	}
	w->r[2] = r6 & 0x100;	/* flags 0 or debug */
	w->r[3] = r6 >> 16;	/* cid 0 or 4.. */
	w->r[5] = 0;		/* valid */
	start_vm(w, &w->vm[vi]);
	w->prefix = "";
}

static void op_poll(struct worker *w)
{
	struct pollfd p[3];
	int i, rc;

	for (i = 0; i < 3; i++) {
		uint64_t r = w->r[1 + i];

		p[i].fd = r % 3 == 0 ? w->sys[r / 3 % NSYS] : r % 3 == 1 ?
			  *vm_fd(w, r / 3) : *vcpu_fd(w, r / 3);
		p[i].events = POLLIN | POLLOUT | POLLPRI | POLLHUP | POLLERR;
	}
	op_begin(w, "poll %d %d %d", p[0].fd, p[1].fd, p[2].fd);
	rc = poll(p, 3, w->r[4] % 20);
	op_end(w, rc, errno);
}

static void op_epoll(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLET };
	int fd = w->r[1] % 2 ? *vm_fd(w, w->r[2]) : *vcpu_fd(w, w->r[2]), rc;

	op_begin(w, "epoll add %d, wait", fd);
	epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
	rc = epoll_wait(w->epfd, &ev, 1, w->r[3] % 10);
	op_end(w, rc, errno);
}

static void op_rw(struct worker *w)
{
	int fd = w->r[1] % 2 ? *vm_fd(w, w->r[2]) : *vcpu_fd(w, w->r[2]);
	char buf[16] = { 0 };
	void *p;
	long rc;

	switch (w->r[3] % 3) {
	case 0:
		op_begin(w, "read fd %d", fd);
		rc = read(fd, buf, sizeof(buf));
		break;
	case 1:
		op_begin(w, "write fd %d", fd);
		rc = write(fd, buf, sizeof(buf));
		break;
	default:
		op_begin(w, "mmap fd %d", fd);
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		rc = p == MAP_FAILED ? -1 : 0;
		if (p != MAP_FAILED)
			munmap(p, 4096);
		break;
	}
	op_end(w, rc, errno);
	if (rc >= 0 && fd >= 0)
		violation(w, "%s on an enclave fd succeeded",
			  w->r[3] % 3 == 0 ? "read" : w->r[3] % 3 == 1 ? "write" : "mmap");
}

static void op_fdinfo(struct worker *w)
{
	int fd = w->r[1] % 2 ? *vm_fd(w, w->r[2]) : *vcpu_fd(w, w->r[2]), f;
	char path[64], buf[1024];
	long n;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	op_begin(w, "read %s", path);
	f = open(path, O_RDONLY | O_CLOEXEC);
	n = f < 0 ? -1 : read(f, buf, sizeof(buf));
	op_end(w, n, errno);
	if (f >= 0)
		close(f);
}

/* Another thread's VM or vCPU fd, duplicated into this thread's table. */
static void op_dup(struct worker *w)
{
	bool vm = w->r[1] % 2;
	int di = vm ? (int)(w->r[3] % NVM) : (int)(w->r[3] % NVCPU), si, src, fd = -1;
	int *dst = vm ? &w->vm[di].fd : &w->vcpu[di];
	struct worker *o;

	table_close(dst);
	if (vm)
		w->vm[di] = (struct vmrec){ .fd = -1 };
	pthread_mutex_lock(&tab_lock);
	o = proc_workers[w->r[2] % proc_nworkers];
	si = vm ? pick_vm(o, w->r[4]) : pick_vcpu(o, w->r[4]);
	src = vm ? o->vm[si].fd : o->vcpu[si];
	op_begin(w, "dup %s fd %d of worker %d", vm ? "vm" : "vcpu", src, o->idx);
	if (src >= 0)
		fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
	op_end(w, fd, errno);
	if (vm && fd >= 0)
		w->vm[di] = o->vm[si];
	*dst = fd;
	pthread_mutex_unlock(&tab_lock);
}

/* Arguments for the child's ioctls on inherited fds. */
struct child_args {
	struct kvm_userspace_memory_region reg;
	struct ne_user_memory_region nreg;
	struct ne_image_load_info info;
	struct ne_enclave_start s;
	uint32_t id;
};

/* The child's ioctl number for inherited fd @i (a VM fd below NVM). */
static unsigned long child_cmd(struct worker *w, int i)
{
	uint64_t r = w->r[3] + i;

	if (i >= NVM)
		return PICK(r, KVM_RUN, KVM_GET_REGS, KVM_GET_TSC_KHZ, 0xAE99);
	if (w->vm[i].ne)
		return PICK(r, NE_ADD_VCPU, NE_SET_USER_MEMORY_REGION, NE_GET_IMAGE_LOAD_INFO,
			    NE_START_ENCLAVE, KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, 0xAE99);
	return PICK(r, KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION,
		    NE_ENCLAVE_START, 0xAE99, NE_ADD_VCPU);
}

/*
 * What @cmd on an inherited fd must give in another process: EIO on a
 * KVM-family fd (as KVM's); on an NE VM fd EIO from NE_ADD_VCPU and
 * NE_SET_USER_MEMORY_REGION, ENOTTY from any other family's, and 0 for
 * NE_GET_IMAGE_LOAD_INFO and NE_START_ENCLAVE, which upstream lets any
 * holder make: whatever an NE VM fd may answer.
 */
static int child_wants(bool ne, unsigned long cmd)
{
	if (!ne || cmd == NE_ADD_VCPU || cmd == NE_SET_USER_MEMORY_REGION)
		return EIO;
	return is_ne_cmd(cmd) ? 0 : ENOTTY;
}

/* One ioctl on inherited fd @i; the first wrong result goes to the parent. */
static void child_try(struct worker *w, int i, int fd, struct child_args *a)
{
	unsigned long cmd = child_cmd(w, i);
	bool ne = i < NVM && w->vm[i].ne;
	unsigned long arg = cmd == KVM_SET_USER_MEMORY_REGION ? (unsigned long)&a->reg :
			    cmd == NE_SET_USER_MEMORY_REGION ? (unsigned long)&a->nreg :
			    cmd == NE_GET_IMAGE_LOAD_INFO ? (unsigned long)&a->info :
			    cmd == NE_ENCLAVE_START ? (unsigned long)&a->s :
			    cmd == NE_ADD_VCPU ? (unsigned long)&a->id :
			    cmd == KVM_CHECK_EXTENSION ? KVM_CAP_USER_MEMORY : 0;
	int want = child_wants(ne, cmd);
	long rc;
	bool bad;

	errno = 0;
	rc = ioctl(fd, cmd, arg);
	bad = want ? rc != -1 || errno != want : rc < 0 && !ne_errno_ok(cmd, errno);
	if (bad && !w->ws->child_bad_cmd) {
		w->ws->child_bad_rc = rc;
		w->ws->child_bad_errno = errno;
		w->ws->child_bad_want = want;
		w->ws->child_bad_cmd = cmd;
	}
	if (rc >= 0 && cmd == KVM_CREATE_VCPU)
		close(rc);
}

/*
 * A child with this thread's fds: every ioctl on an inherited VM or vCPU fd
 * must fail with EIO (another mm), or as child_wants() says on an NE VM
 * fd; the child may also be the last holder.
 */
static void op_fork(struct worker *w)
{
	uint64_t deadline;
	int status = 0, i;
	pid_t pid;

	op_begin(w, "fork: the child tries the inherited fds, %s them, %s",
		 w->r[1] % 2 ? "closes" : "keeps", w->r[2] % 2 ? "sleeps" : "exits");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct child_args a = {
			.reg = { .memory_size = HPAGE },
			.nreg = { .memory_size = HPAGE },
			.info = { .flags = NE_EIF_IMAGE },
		};
		int fds[NVM + NVCPU], n = 0;
		uint64_t uid;

		alarm(30);
		for (i = 0; i < NVM; i++)
			fds[n++] = w->vm[i].fd;
		for (i = 0; i < NVCPU; i++)
			fds[n++] = w->vcpu[i];
		for (i = 0; i < n; i++) {
			if (fds[i] < 0)
				continue;
			child_try(w, i, fds[i], &a);
			if (w->r[1] % 2)
				close(fds[i]);
		}
		/* The system fd is not bound to a process: a VM of our own. */
		if (w->r[4] % 2 && w->sys[0] >= 0)
			ioctl(w->sys[0], w->r[4] % 4 == 1 ? KVM_CREATE_VM : NE_CREATE_VM,
			      w->r[4] % 4 == 1 ? 0UL : (unsigned long)&uid);
		if (w->r[2] % 2)
			msleep(w->r[2] % 200);
		_exit(0);
	}
	if (pid < 0) {
		op_end(w, -1, errno);
		return;
	}
	__atomic_add_fetch(&sh->n_fork, 1, __ATOMIC_RELAXED);
	w->ws->aux_pid = pid;
	deadline = now_ns() + 60ULL * 1000000000ULL;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ns() > deadline) {
			/* The watchdog reports it; do not wait forever. */
			msleep(1000 * (opt_hang + 5));
			break;
		}
		msleep(5);
	}
	w->ws->aux_pid = 0;
	op_end(w, pid, 0);
	if (w->ws->child_bad_cmd) {
		violation(w, "ioctl %#x on an inherited enclave fd in another process returned "
			  "%d, errno %s (not %s)", w->ws->child_bad_cmd, w->ws->child_bad_rc,
			  w->ws->child_bad_errno ? err_name(w->ws->child_bad_errno) : "0",
			  w->ws->child_bad_want ? err_name(w->ws->child_bad_want) :
			  "an NE VM fd's answer");
		w->ws->child_bad_cmd = 0;
	}
}

static const unsigned int op_weight[NR_OPS] = {
	[OP_OPEN_SYS] = 4, [OP_CLOSE] = 8, [OP_SYS_IOCTL] = 5, [OP_CREATE_VM] = 6,
	[OP_SET_MEM] = 12, [OP_CREATE_VCPU] = 8, [OP_START] = 5, [OP_VM_IOCTL] = 5,
	[OP_VCPU_IOCTL] = 4, [OP_POLL] = 3, [OP_EPOLL] = 2, [OP_RW] = 2,
	[OP_FDINFO] = 3, [OP_DUP] = 2, [OP_FORK] = 2, [OP_MAP] = 7, [OP_UNMAP] = 3,
	[OP_ENCLAVE] = 4,
	[OP_NE_CREATE_VM] = 5, [OP_NE_ADD_VCPU] = 6, [OP_NE_INFO] = 3, [OP_NE_SET_MEM] = 9,
	[OP_NE_START] = 4, [OP_CROSS] = 4, [OP_NE_ENCLAVE] = 3,
};

/* For the counts printed after the run. */
static const char *const op_names[NR_OPS] = {
	"open_sys", "close", "sys_ioctl", "create_vm", "set_mem", "create_vcpu", "start",
	"vm_ioctl", "vcpu_ioctl", "poll", "epoll", "rw", "fdinfo", "dup", "fork", "map",
	"unmap", "enclave", "ne_create_vm", "ne_add_vcpu", "ne_info", "ne_set_mem",
	"ne_start", "cross", "ne_enclave",
};

static void worker_step(struct worker *w)
{
	unsigned int total = 0, i, x;

	w->ws->steps++;
	for (i = 0; i < 8; i++)
		w->r[i] = rng_next(&w->rng);
	for (i = 0; i < NR_OPS; i++)
		total += op_weight[i];
	x = w->r[0] % total;
	for (i = 0; x >= op_weight[i]; i++)
		x -= op_weight[i];
	__atomic_add_fetch(&sh->op_count[i], 1, __ATOMIC_RELAXED);
	switch (i) {
	case OP_OPEN_SYS:
		op_open_sys(w);
		break;
	case OP_CLOSE:
		op_close(w);
		break;
	case OP_SYS_IOCTL:
		op_any_ioctl(w, 0);
		break;
	case OP_CREATE_VM:
		op_create_vm(w);
		break;
	case OP_SET_MEM:
		op_set_mem(w);
		break;
	case OP_CREATE_VCPU:
		op_create_vcpu(w);
		break;
	case OP_START:
		op_start(w);
		break;
	case OP_VM_IOCTL:
		op_any_ioctl(w, 1);
		break;
	case OP_VCPU_IOCTL:
		op_any_ioctl(w, 2);
		break;
	case OP_POLL:
		op_poll(w);
		break;
	case OP_EPOLL:
		op_epoll(w);
		break;
	case OP_RW:
		op_rw(w);
		break;
	case OP_FDINFO:
		op_fdinfo(w);
		break;
	case OP_DUP:
		op_dup(w);
		break;
	case OP_FORK:
		if (opt_fork)
			op_fork(w);
		break;
	case OP_MAP:
		op_map(w);
		break;
	case OP_UNMAP:
		op_unmap(w);
		break;
	case OP_ENCLAVE:
		op_enclave(w);
		break;
	case OP_NE_CREATE_VM:
		op_ne_create_vm(w);
		break;
	case OP_NE_ADD_VCPU:
		op_ne_add_vcpu(w);
		break;
	case OP_NE_INFO:
		op_ne_info(w);
		break;
	case OP_NE_SET_MEM:
		op_ne_set_mem(w);
		break;
	case OP_NE_START:
		op_ne_start(w);
		break;
	case OP_CROSS:
		op_cross(w);
		break;
	case OP_NE_ENCLAVE:
		op_ne_enclave(w);
		break;
	}
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	uint64_t end = now_ns() + opt_seconds * 1000000000ULL;
	int i;

	w->ws->pid = getpid();
	w->ws->tid = syscall(SYS_gettid);
	while (!sh->stop && now_ns() < end && (!opt_ops || w->ws->steps < opt_ops))
		worker_step(w);
	/* Everything back, in a random order of kinds. */
	for (i = 0; i < NVCPU; i++)
		table_close(&w->vcpu[i]);
	for (i = 0; i < NVM; i++)
		table_close(&w->vm[i].fd);
	for (i = 0; i < NSYS; i++)
		table_close(&w->sys[i]);
	for (i = 0; i < NMEM; i++)
		mem_unmap(&w->mem[i]);
	return NULL;
}

static void worker_init(struct worker *w, int idx)
{
	int i;

	memset(w, 0, sizeof(*w));
	w->idx = idx;
	w->ws = &sh->w[idx];
	w->prefix = "";
	rng_init(&w->rng, opt_seed, idx + 1);
	for (i = 0; i < NSYS; i++)
		w->sys[i] = -1;
	for (i = 0; i < NVM; i++)
		w->vm[i].fd = -1;
	for (i = 0; i < NVCPU; i++)
		w->vcpu[i] = -1;
	w->page_rw = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->page_rw == MAP_FAILED) {
		perror("ne_fuzz: mmap");
		exit(EXIT_ENV);
	}
	w->page_none = w->page_rw + 4096;
	w->page_ro = w->page_rw + 8192;
	mprotect(w->page_none, 4096, PROT_NONE);
	mprotect(w->page_ro, 4096, PROT_READ);	/* zeroes: a valid-looking argument */
}

/* A worker process: --threads threads, then its own fd check. */
static int worker_process(int proc)
{
	static struct worker ws[MAXTHREADS];
	pthread_t th[MAXTHREADS];
	unsigned int i;
	int fds, leak = 0;

	fds = count_fds();
	proc_nworkers = opt_threads;
	for (i = 0; i < opt_threads; i++) {
		worker_init(&ws[i], proc * opt_threads + i);
		ws[i].epfd = epoll_create1(EPOLL_CLOEXEC);
		proc_workers[i] = &ws[i];
	}
	fds = count_fds();	/* the epoll fds belong to the baseline */
	if (opt_self_test && !strcmp(opt_self_test, "fd") && proc == 0)
		leak = open(NE_DEV_PATH, O_RDWR);	/* kept on purpose */
	for (i = 0; i < opt_threads; i++)
		pthread_create(&th[i], NULL, worker_thread, &ws[i]);
	for (i = 0; i < opt_threads; i++)
		pthread_join(th[i], NULL);
	sh->w[proc * opt_threads].fd_leak = count_fds() - fds;
	for (i = 0; i < opt_threads; i++) {
		close(ws[i].epfd);
		sh->w[ws[i].idx].done = 1;
	}
	(void)leak;
	return 0;
}

/* ---- the chaos process: device faults, events, pool, hotplug, PCI remove --- */

static volatile uint32_t *chaos_tc;

/* The slot uids of the workers' VM fds, read from their fdinfo. */
static int worker_slot_uids(uint64_t *uids, int max)
{
	char path[PATH_MAX], target[64], line[256];
	int n = 0, i;

	for (i = 0; i < sh->nworkers - 1 && n < max; i++) {
		struct dirent *de;
		DIR *d;

		if (i % opt_threads)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", sh->w[i].pid);
		d = sh->w[i].pid ? opendir(path) : NULL;
		if (!d)
			continue;
		while ((de = readdir(d)) && n < max) {
			ssize_t len;
			FILE *f;

			snprintf(path, sizeof(path), "/proc/%d/fd/%s", sh->w[i].pid, de->d_name);
			len = readlink(path, target, sizeof(target) - 1);
			if (len < 0)
				continue;
			target[len] = '\0';
			if (strcmp(target, "anon_inode:ne-vm"))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", sh->w[i].pid, de->d_name);
			f = fopen(path, "re");
			if (!f)
				continue;
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, "ne_slot_uid:", 12))
					uids[n++] = strtoull(line + 12, NULL, 0);
			fclose(f);
		}
		closedir(d);
	}
	return n;
}

static void chaos_remove_rescan(struct worker *w)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	int rc, tries;

	if (ne_find_pci_device(dir, sizeof(dir)))
		dir[0] = '\0';
	snprintf(path, sizeof(path), "%s/remove", dir);
	/*
	 * A device that does not turn off at remove: its slots stay, the
	 * enclaves released meanwhile are zombies, and the probe after the
	 * rescan, which turns it off, must free them.
	 */
	if (opt_faults && chaos_tc && w->r[3] % 3 == 0) {
		op_begin(w, "arm STUCK");
		chaos_tc[NE_TESTCTL_STUCK_ARM / 4] = 1;
		op_end(w, 0, 0);
	}
	ne_testctl_unmap(chaos_tc);
	chaos_tc = NULL;
	op_begin(w, "PCI remove %s", dir);
	rc = dir[0] ? ne_write_file(path, "1") : -ENODEV;
	op_end(w, rc, -rc);
	if (!rc)
		sh->n_remove++;
	msleep(w->r[2] % 1500);
	for (tries = 0; tries < 20 && !chaos_tc; tries++) {
		op_begin(w, "PCI rescan");
		rc = ne_write_file("/sys/bus/pci/rescan", "1");
		op_end(w, rc, -rc);
		chaos_tc = ne_testctl_map();
		if (!chaos_tc)
			msleep(200);
	}
	if (!chaos_tc)
		violation(w, "the device (or its test controls) did not come back after a rescan");
}

/*
 * Without the PCI remove stage nothing resets the device at the end, so no
 * fault that can leave a zombie (a SLOT_FREE or STOP that fails or times
 * out) is armed.
 */
static uint32_t chaos_type(uint32_t type)
{
	if (!opt_remove && (type == NE_TESTCTL_ANY_TYPE || type == 3 || type == 5))
		return 4;
	return type;
}

static void chaos_step(struct worker *w)
{
	static const char *const pools[] = {
		"", "2-3", "2-3", "2-3", "2", "3", "1", "0-1", "1-2", "0-3", "2-3,2-3",
		"3,2", "7", "99999", "a", "-1", "2-", "1-3", "2-3\n",
	};
	volatile uint32_t *tc = chaos_tc;
	uint64_t *r = w->r, uids[32];
	int i, rc, n;
	char path[128], val[32];

	w->ws->steps++;
	for (i = 0; i < 8; i++)
		r[i] = rng_next(&w->rng);
	msleep(20 + r[7] % 250);
	switch (r[0] % 32) {
	case 0 ... 5: {	/* FAIL the next matching commands */
		uint32_t type = chaos_type(PICK(r[1], NE_TESTCTL_ANY_TYPE, NE_TESTCTL_ANY_TYPE,
						1, 3, 4, 5, 6, 7, 10, r[1] >> 8 & 63));
		/*
		 * Negative only: the fault replies without running the
		 * command, and a reply with rc >= 0 is a success by the
		 * protocol (the upstream driver's rule, which ne_kvm follows),
		 * so a positive rc would be a device that lies about, say, a
		 * SLOT_FREE it never did: no driver can see that, and the
		 * post-run checks would report the slot it keeps.
		 */
		int32_t frc = fault_rcs[r[2] % ARRAY_SIZE(fault_rcs)];
		/* several in a row: a retry refused again (layout 4) */
		uint32_t times = PICK(r[3], 1, 1, 1, 2, 3, 8);

		if (!opt_faults || !tc)
			break;
		if (tc[NE_TESTCTL_LAYOUT / 4] < 4)
			times = 1;
		op_begin(w, "arm FAIL type %#x rc %d x%u", type, frc, times);
		tc[NE_TESTCTL_FAIL_TYPE / 4] = type;
		tc[NE_TESTCTL_FAIL_RC / 4] = frc;
		tc[NE_TESTCTL_FAIL_ARM / 4] = times;
		op_end(w, 0, 0);
		break;
	}
	case 6 ... 10: {
		uint32_t type = chaos_type(PICK(r[1], NE_TESTCTL_ANY_TYPE, 1, 3, 4, 5, 6, 7,
						10));
		uint32_t ms = PICK(r[2], 1, 10, 100, 500, 1000, 2500);
		uint32_t times = PICK(r[3], 1, 1, 1, 2, 3);

		if (!opt_faults || !tc)
			break;
		if (tc[NE_TESTCTL_LAYOUT / 4] < 4)
			times = 1;
		op_begin(w, "arm DELAY type %#x %u ms x%u", type, ms, times);
		tc[NE_TESTCTL_DELAY_TYPE / 4] = type;
		tc[NE_TESTCTL_DELAY_MS / 4] = ms;
		tc[NE_TESTCTL_DELAY_ARM / 4] = times;
		op_end(w, 0, 0);
		break;
	}
	case 11 ... 12: {
		uint32_t type = chaos_type(PICK(r[1], NE_TESTCTL_ANY_TYPE, 1, 3, 4, 5, 6, 7,
						10));

		if (!opt_faults || !tc)
			break;
		op_begin(w, "arm NOREPLY type %#x", type);
		tc[NE_TESTCTL_NOREPLY_TYPE / 4] = type;
		tc[NE_TESTCTL_NOREPLY_ARM / 4] = 1;
		op_end(w, 0, 0);
		break;
	}
	case 13 ... 14:
		if (!tc)
			break;
		op_begin(w, "disarm all");
		ne_tc_disarm_all(tc);
		op_end(w, 0, 0);
		break;
	case 15 ... 21: {	/* an enclave "stopped on its own" */
		uint64_t uid;

		if (!tc)
			break;
		n = worker_slot_uids(uids, 32);
		uid = r[1] % 8 == 0 ? 0 : r[1] % 8 == 1 ? r[2] : n ? uids[r[2] % n] : 0;
		op_begin(w, "event: slot %#llx stopped (%d VM fds seen)",
			 (unsigned long long)uid, n);
		tc[NE_TESTCTL_EVENT_SLOT / 4] = (uint32_t)uid;
		tc[NE_TESTCTL_EVENT_SLOT / 4 + 1] = uid >> 32;
		tc[NE_TESTCTL_EVENT_RAISE / 4] = 1;
		rc = (int32_t)tc[NE_TESTCTL_EVENT_STATUS / 4];
		op_end(w, rc, -rc);
		if (!rc && uid)
			sh->n_event++;
		break;
	}
	case 22 ... 26: {
		const char *p = pools[r[1] % (ARRAY_SIZE(pools))];

		if (!opt_pool)
			break;
		op_begin(w, "ne_cpus = \"%.*s%s\"", (int)strcspn(p, "\n"), p,
			 strchr(p, '\n') ? "\\n" : "");
		rc = ne_write_file(NE_CPUS_PARAM, p);
		op_end(w, rc, -rc);
		if (!rc)
			sh->n_pool++;
		break;
	}
	case 27 ... 28:
		if (!opt_hotplug)
			break;
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/online",
			 1 + (unsigned int)(r[1] % (sh->ncpus - 1)));
		snprintf(val, sizeof(val), "%u", (unsigned int)(r[2] % 2));
		op_begin(w, "%s = %s", path, val);
		rc = ne_write_file(path, val);
		op_end(w, rc, -rc);
		break;
	case 29:
		if (opt_remove)
			chaos_remove_rescan(w);
		break;
	default:
		op_begin(w, "read counters");
		op_end(w, tc ? (long)tc[NE_TESTCTL_SLOTS / 4] : -1, 0);
		break;
	}
}

static int chaos_process(int idx)
{
	struct worker w;
	uint64_t end = now_ns() + opt_seconds * 1000000000ULL;

	worker_init(&w, idx);
	w.ws->pid = getpid();
	w.ws->tid = getpid();
	chaos_tc = ne_testctl_map();
	while (!sh->stop && now_ns() < end && (!opt_ops || w.ws->steps < opt_ops))
		chaos_step(&w);
	/* Leave the device present, every knob disarmed, CPUs 1.. online. */
	if (!chaos_tc) {
		ne_write_file("/sys/bus/pci/rescan", "1");
		chaos_tc = ne_testctl_map();
	}
	if (chaos_tc)
		ne_tc_disarm_all(chaos_tc);
	sh->w[idx].done = 1;
	return 0;
}

/* ---- the supervisor ------------------------------------------------------ */

static pid_t *children;
static int nchildren;
static int kmsg_fd = -1;
static int kernel_reports;
static bool rings_dumped;

static const char *const report_patterns[] = {
	"WARNING:", "BUG:", "BUG ", "KASAN", "UBSAN", "Oops", "general protection",
	"kernel BUG", "Call Trace", "possible circular locking", "inconsistent lock state",
	"possible recursive locking", "lock held when returning", "suspicious RCU",
	"DEBUG_LOCKS_WARN", "INFO: task", "blocked for more than", "list_add corruption",
	"list_del corruption", "refcount_t", "kmemleak", "sleeping function called",
	"scheduling while atomic", "ODEBUG", "Unable to handle", "stack-protector",
};

static void dump_rings(const char *why)
{
	int i;

	printf("# the last operations of every worker (%s):\n", why);
	for (i = 0; i < sh->nworkers; i++)
		print_ring(i);
}

/* Reads the kernel log since the start; prints and counts reports. */
static void read_kmsg(void)
{
	char rec[2048];
	ssize_t n;
	static int context;
	static bool in_known;

	if (kmsg_fd < 0)
		return;
	for (;;) {
		char *msg;
		size_t i;
		bool hit = false;

		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = '\0';
		/*
		 * A known defect of Debian's 6.1 kernel, not of ne_kvm (as
		 * tools/klog-check lists it): its hugetlb_split() asserts a
		 * lock that munmap of part of a hugetlb mapping does not hold,
		 * so lockdep WARNs.  That splat, up to its end marker, is
		 * not counted; a report after it is.
		 */
		if (strstr(msg, "WARNING:") && strstr(msg, " at include/linux/fs.h:") &&
		    strstr(msg, " hugetlb_split+"))
			in_known = true;
		if (in_known) {
			if (strstr(msg, "---[ end trace"))
				in_known = false;
			continue;
		}
		for (i = 0; i < ARRAY_SIZE(report_patterns); i++)
			if (strstr(msg, report_patterns[i]))
				hit = true;
		if (hit) {
			if (!kernel_reports)
				printf("# FINDING (seed %" PRIu64 "): kernel report:\n", opt_seed);
			kernel_reports++;
			context = 60;
		}
		if (context > 0) {
			printf("# kernel: %s\n", msg);
			context--;
		}
	}
	if (kernel_reports && !rings_dumped) {
		rings_dumped = true;
		dump_rings("at the first kernel report");
	}
}

static void print_stacks_of(pid_t pid)
{
	char path[PATH_MAX], buf[8192];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		ssize_t n;
		char *l;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", pid, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (n < 0)
			continue;
		buf[n] = '\0';
		printf("# kernel stack of task %s (process %d):\n", de->d_name, pid);
		for (l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
			printf("#   %s\n", l);
	}
	closedir(d);
}

static void kill_children(void)
{
	int i;

	for (i = 0; i < nchildren; i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
}

/* A hung operation: its stacks, every ring, and out, without waiting. */
static void __attribute__((noreturn)) hang(int idx, const char *what)
{
	int i;

	printf("# FINDING (seed %" PRIu64 "): HANG: %s\n", opt_seed, what);
	if (idx >= 0) {
		printf("# worker %d stuck in: %s\n", idx,
		       sh->w[idx].ring[sh->w[idx].head % RING].text);
		if (sh->w[idx].aux_pid)
			print_stacks_of(sh->w[idx].aux_pid);
	}
	for (i = 0; i < nchildren; i++)
		print_stacks_of(children[i]);
	read_kmsg();
	dump_rings("at the hang");
	printf("not ok 1 - ne_fuzz seed %" PRIu64 ": hung (%s)\n", opt_seed, what);
	fflush(stdout);
	kill_children();
	_exit(EXIT_HANG);
}

/* Runs @fn in a child, killed and reported as a hang after @secs. */
static int timed(const char *what, unsigned int secs, int (*fn)(void *), void *arg)
{
	uint64_t deadline = now_ns() + secs * 1000000000ULL;
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(fn(arg) & 0xff);
	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ns() > deadline) {
			char buf[256];

			printf("# %s did not return within %u s\n", what, secs);
			print_stacks_of(pid);
			snprintf(buf, sizeof(buf), "%s", what);
			hang(-1, buf);
		}
		msleep(10);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int write_fn(void *arg)
{
	const char **kv = arg;

	return -ne_write_file(kv[0], kv[1]);
}

static int timed_write(const char *path, const char *val)
{
	const char *kv[2] = { path, val };
	char what[PATH_MAX + 320];

	snprintf(what, sizeof(what), "writing \"%s\" to %s", val, path);
	return -timed(what, opt_hang, write_fn, kv);
}

/* KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS) of a new VM: what the pool can give. */
static int pool_free_fn(void *arg)
{
	int sys = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC), vm, n;

	(void)arg;
	vm = sys < 0 ? -1 : ioctl(sys, KVM_CREATE_VM, 0);
	if (vm < 0)
		return 255;
	n = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	close(vm);
	close(sys);
	return n < 0 ? 254 : n;
}

static int caps_fn(void *arg)
{
	int sys = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC), vm, n;
	long which = (long)arg;

	vm = sys < 0 ? -1 : ioctl(sys, KVM_CREATE_VM, 0);
	if (vm < 0)
		return 255;
	n = ioctl(vm, KVM_CHECK_EXTENSION, which);
	close(vm);
	close(sys);
	sh->cap_value = n;
	return n < 0 ? 254 : 0;
}

/*
 * The "leaker" of --self-test pin: an enclave with memory, kept open.  One
 * byte on @ready once the memory is donated (the run's checks must not
 * start before), none if it could not be.
 */
static void self_test_pin(int ready)
{
	struct kvm_userspace_memory_region r = { .memory_size = 4 * HPAGE };
	int sys = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC), vm;
	void *p = mmap(NULL, 4 * HPAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB | MAP_POPULATE,
		       -1, 0);

	vm = ioctl(sys, KVM_CREATE_VM, 0);
	r.userspace_addr = (uintptr_t)p;
	if (vm < 0 || p == MAP_FAILED || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r)) {
		printf("# self-test: the leaker could not donate memory: %s\n", strerror(errno));
		_exit(1);
	}
	printf("# self-test: a process keeps an enclave with 8 MiB donated\n");
	fflush(stdout);
	if (write(ready, "1", 1) != 1)
		_exit(1);
	munmap(p, 4 * HPAGE);
	pause();
	_exit(0);
}

struct baseline {
	long pins, huge_free;
	int fds;
	char pool[256];
	char timeout[32];
	char online[256];	/* '1': online or in the pool at the start */
	bool kmemleak;
};

static int ntap;
static int nfail;

static void tap(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++ntap);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		nfail++;
}

/*
 * The memory model's own check, on the layout of a false finding (seed
 * 1828151582255): a 2 MiB shmem mapping right below a hugetlb one, so
 * that it has no guard page.  The driver must refuse the shmem and donate
 * the hugetlb page 2 MiB past the shmem's start; set_mem_must_fail() must
 * agree with both.  Single-threaded, before the workers: the layout is
 * made with MAP_FIXED inside a reservation of its own.
 */
static void check_model(void)
{
	struct kvm_userspace_memory_region in = { .memory_size = HPAGE }, past = in;
	struct memrec m = { .size = HPAGE, .len = HPAGE, .kind = 5 };
	int sys = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC), vm = -1, mfd = -1;
	long rc_in = 0, rc_past = -1;
	int err_in = 0, err_past = 0;
	char *res, *r, *h = MAP_FAILED, *shm = MAP_FAILED;

	res = mmap(NULL, 3 * HPAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	r = (char *)(((uintptr_t)res + HPAGE - 1) & ~(HPAGE - 1));
	if (res != MAP_FAILED) {
		h = mmap(r + HPAGE, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_HUGETLB | MAP_HUGE_2MB | MAP_POPULATE | MAP_FIXED, -1, 0);
		mfd = memfd_create("ne_fuzz_model", MFD_CLOEXEC);
	}
	if (h != MAP_FAILED && mfd >= 0 && !ftruncate(mfd, HPAGE))
		shm = mmap(r, HPAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE |
			   MAP_FIXED, mfd, 0);
	if (sys >= 0)
		vm = ioctl(sys, KVM_CREATE_VM, 0);
	if (shm == MAP_FAILED || vm < 0) {
		tap(false, "the memory model's check: no layout or VM (%s)", strerror(errno));
		goto out;
	}
	m.addr = shm;
	mem_guard(&m);
	in.userspace_addr = (uintptr_t)shm;
	rc_in = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &in);
	err_in = errno;
	past.userspace_addr = (uintptr_t)shm + HPAGE;
	rc_past = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &past);
	err_past = errno;
	tap(!m.guarded && rc_in == -1 && err_in == EINVAL &&
	    set_mem_must_fail(&in, &m, 0, PTR_OK) && rc_past == 0 &&
	    !set_mem_must_fail(&past, &m, HPAGE, PTR_OK),
	    "the memory model: shmem below hugetlb (guard %s) is refused (%s) and must be, "
	    "2 MiB on is donated (%s) and may be", m.guarded ? "placed" : "refused",
	    rc_in ? err_name(err_in) : "success", rc_past ? err_name(err_past) : "success");
out:
	if (vm >= 0)
		close(vm);
	if (sys >= 0)
		close(sys);
	if (mfd >= 0)
		close(mfd);
	if (res != MAP_FAILED)
		munmap(res, 3 * HPAGE);
}

static bool self_test_caught;

/*
 * The enclaves the driver keeps because the device did not confirm their
 * slot freed (ne_kvm/zombies in debugfs, one line each with
 * "pinned_pages: N" and "free_rc: RC"); their count, their pinned pages
 * into @pages, and into @timed_out how many had their SLOT_FREE time out.
 */
static int zombies(long *pages, int *timed_out, bool print)
{
	char line[512];
	FILE *f = fopen(ZOMBIES, "re");
	int n = 0;

	*pages = 0;
	*timed_out = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "pinned_pages:");
		char *rc = strstr(line, "free_rc:");

		if (print)
			printf("# zombie: %s", line);
		n++;
		if (p)
			*pages += atol(p + strlen("pinned_pages:"));
		if (rc && atoi(rc + strlen("free_rc:")) == -ETIMEDOUT)
			(*timed_out)++;
	}
	fclose(f);
	return n;
}

/*
 * The slots nobody owns that the driver still tries to free (ne_kvm/orphans),
 * printed if @print; their count, -1 without the file.
 */
static int orphans(bool print)
{
	char line[512];
	FILE *f = fopen(ORPHANS, "re");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (print)
			printf("# orphan: %s", line);
		n++;
	}
	fclose(f);
	return n;
}

/*
 * Once the faults are disarmed, the tidy work frees every orphan within a
 * few seconds (its retries back off to 2 s): the number left after up to
 * --settle seconds.
 */
static int orphans_left(void)
{
	uint64_t deadline = now_ns() + opt_settle * 1000000000ULL;
	int n;

	while ((n = orphans(false)) > 0 && now_ns() < deadline)
		msleep(250);
	return n > 0 ? orphans(true) : n;
}

/* A zombie's retries back off up to a minute (the driver's NE_ZOMBIE_RETRY_MAX_MS). */
#define ZOMBIE_RETRY_MAX_S	60

/*
 * Once the faults are disarmed, the tidy work frees the zombies of a device
 * that answers too (it sends their SLOT_FREE again): the number of those it
 * still retries ("retry_in_ms: -1" says it does not) left after up to
 * --settle seconds, and at least the longest delay between two retries.
 */
static int zombies_left(void)
{
	unsigned int wait_s = opt_settle > ZOMBIE_RETRY_MAX_S + 5 ? opt_settle
								 : ZOMBIE_RETRY_MAX_S + 5;
	uint64_t deadline = now_ns() + wait_s * 1000000000ULL;
	char line[512];
	int n;

	do {
		FILE *f = fopen(ZOMBIES, "re");

		n = 0;
		while (f && fgets(line, sizeof(line), f))
			n += !strstr(line, "retry_in_ms: -1 ");
		if (f)
			fclose(f);
		if (n)
			msleep(250);
	} while (n && now_ns() < deadline);
	return n;
}

/*
 * Whether the driver found the device broken (it did not turn off at a
 * reset): KVM_CREATE_VM then says ENODEV until the device is removed.
 */
static bool device_broken(void)
{
	int vm = ne_create_vm();

	if (vm >= 0)
		close(vm);
	return vm < 0 && errno == ENODEV;
}

/*
 * Does the device hold as many slots as the zombies, give or take the
 * @late zombies whose SLOT_FREE timed out?  Such a SLOT_FREE may still
 * have freed its slot: the zombie lets go only once the driver has read
 * that late reply (or a reset confirms the slot gone).
 */
static bool slots_owned(uint32_t slots, int nz, int late)
{
	return slots <= (uint32_t)nz && slots + late >= (uint32_t)nz;
}

/* Waits up to --settle for pins, free hugepages and slots to be as wanted. */
static void settle(volatile uint32_t *tc, long want_pins, long want_huge, long *pins,
		   long *huge, uint32_t *slots, bool with_zombies, int *nz)
{
	uint64_t deadline = now_ns() + opt_settle * 1000000000ULL;
	long zpages = 0;
	int late = 0;
	bool ok;

	do {
		*nz = with_zombies ? zombies(&zpages, &late, false) : 0;
		*pins = ne_pins_held();
		*huge = ne_meminfo("HugePages_Free");
		*slots = tc ? tc[NE_TESTCTL_SLOTS / 4] : 0;
		ok = *pins == want_pins + zpages && (want_huge < 0 || *huge == want_huge) &&
		     slots_owned(*slots, *nz, late);
		if (!ok)
			msleep(250);
	} while (!ok && now_ns() < deadline);
}

/* After the run: everything the driver held must be back. */
static void post_checks(struct baseline *b)
{
	uint64_t deadline;
	long pins, huge_free, zpages;
	uint32_t slots = 0;
	char pool[256], path[PATH_MAX + 16], on[8], dir[PATH_MAX];
	int cpus[256], n, i, offline_bad, free_cpus, nz, late;
	volatile uint32_t *tc;

	/* The device must be there (the chaos process rescanned last). */
	if (ne_find_pci_device(dir, sizeof(dir))) {
		timed_write("/sys/bus/pci/rescan", "1");
		msleep(500);
	}
	tc = ne_testctl_map();
	if (tc)
		ne_tc_disarm_all(tc);
	if (b->timeout[0])
		timed_write(NE_TIMEOUT_PARAM, b->timeout);

	/*
	 * First as the run left it (teardown may be asynchronous): every pin
	 * and slot belongs to an enclave the driver admits to keeping, once
	 * its retries of the zombies' SLOT_FREE are over.
	 */
	zombies_left();
	settle(tc, b->pins, -1, &pins, &huge_free, &slots, true, &nz);
	nz = zombies(&zpages, &late, true);
	tap(pins == b->pins + zpages, "no page left pinned but by the %d zombie enclaves "
	    "(pinned %ld, at the start %ld, zombies' %ld)", nz, pins, b->pins, zpages);
	tap(tc && slots_owned(slots, nz, late), "the device holds no slot but the zombies' "
	    "(%u slots, %d zombies, %d of them after a SLOT_FREE that timed out)",
	    slots, nz, late);
	n = orphans_left();
	if (n < 0)
		tap(false, "the driver lists no orphan slot: cannot read %s (is debugfs mounted?)",
		    ORPHANS);
	else
		tap(!n, "the driver lists no orphan slot (%d)", n);
	if (opt_self_test && !strcmp(opt_self_test, "pin") && pins != b->pins + zpages)
		self_test_caught = true;
	n = zombies_left();
	if (n > 0 && device_broken())
		printf("# %d zombies stay: the device is broken (KVM_CREATE_VM: ENODEV); "
		       "the final remove must free them\n", n);
	else
		tap(!n, "every zombie still retried is freed once SLOT_FREE works again "
		    "(%d left of %d)", n, zombies(&zpages, &late, n > 0));

	/*
	 * Then after a device reset (PCI remove and rescan: the device turns
	 * off and forgets every slot), which must free the zombies too.
	 */
	if (opt_remove && !ne_find_pci_device(dir, sizeof(dir))) {
		ne_testctl_unmap(tc);
		tc = NULL;
		snprintf(path, sizeof(path), "%s/remove", dir);
		printf("# a final PCI remove and rescan\n");
		timed_write(path, "1");
		timed_write("/sys/bus/pci/rescan", "1");
		deadline = now_ns() + opt_settle * 1000000000ULL;
		while (!(tc = ne_testctl_map()) && now_ns() < deadline)
			msleep(200);
		deadline = now_ns() + opt_settle * 1000000000ULL;
		while (access(NE_DEV_PATH, F_OK) && now_ns() < deadline)
			msleep(200);
	}
	settle(tc, b->pins, b->huge_free, &pins, &huge_free, &slots, false, &nz);
	tap(pins == b->pins, "no page left pinned%s (pinned now %ld, at the start %ld)",
	    opt_remove ? " after a device reset" : "", pins, b->pins);
	tap(huge_free == b->huge_free, "HugePages_Free back to its start value (%ld, was %ld)",
	    huge_free, b->huge_free);
	tap(tc != NULL, "the device and its test controls are there");
	tap(tc && !slots, "the device holds no slot (%u)", slots);
	nz = zombies(&zpages, &late, true);
	tap(!nz, "no zombie enclave is left (%d)", nz);

	/* The pool the run started with, its CPUs online first as then. */
	deadline = now_ns() + opt_settle * 1000000000ULL;
	if (ne_read_file(NE_CPUS_PARAM, pool, sizeof(pool)) || strcmp(pool, b->pool)) {
		int rc;

		n = ne_cpulist(pool, cpus, 256);
		for (i = 1; i < (int)sh->ncpus && i < 256; i++) {
			bool pooled = false;
			int j;

			for (j = 0; j < n; j++)
				pooled |= cpus[j] == i;
			if (pooled || b->online[i] != '1')
				continue;
			snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", i);
			if (!ne_read_file(path, on, sizeof(on)) && on[0] == '0') {
				printf("# CPU %d back online before ne_cpus is restored\n", i);
				timed_write(path, "1");
			}
		}
		do {
			rc = timed_write(NE_CPUS_PARAM, b->pool);
			if (rc == -EBUSY)
				msleep(200);
		} while (rc == -EBUSY && now_ns() < deadline);
		if (rc)
			printf("# restoring ne_cpus \"%s\": %s\n", b->pool, strerror(-rc));
	}

	ne_read_file(NE_CPUS_PARAM, pool, sizeof(pool));
	tap(!strcmp(pool, b->pool), "ne_cpus is \"%s\" (was \"%s\")", pool, b->pool);
	n = ne_cpulist(pool, cpus, 256);
	offline_bad = 0;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpus[i]);
		if (ne_read_file(path, on, sizeof(on)) || on[0] != '0') {
			printf("# pool CPU %d is online\n", cpus[i]);
			offline_bad++;
		}
	}
	tap(n > 0 && !offline_bad, "every pool CPU (%d) is offline", n);
	free_cpus = n > 0 ? timed("KVM_CREATE_VM for the pool check", opt_hang,
				  pool_free_fn, NULL) : -1;
	tap(free_cpus == n, "the pool owns all its CPUs (a new VM can get %d of %d)",
	    free_cpus, n);
	/* That VM's slot must be gone too. */
	if (tc) {
		deadline = now_ns() + opt_settle * 1000000000ULL;
		while (tc[NE_TESTCTL_SLOTS / 4] && now_ns() < deadline)
			msleep(100);
		tap(!tc[NE_TESTCTL_SLOTS / 4], "no slot after the pool check's VM");
	}
	ne_testctl_unmap(tc);

	if (b->kmemleak) {
		char buf[4096];
		ssize_t len;
		int fd;

		ne_write_file(KMEMLEAK, "scan");
		msleep(1000);
		ne_write_file(KMEMLEAK, "scan");
		fd = open(KMEMLEAK, O_RDONLY | O_CLOEXEC);
		len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (len > 0) {
			char *l;

			buf[len] = '\0';
			for (l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
				printf("# kmemleak: %s\n", l);
		}
		tap(len == 0, "kmemleak reports nothing after a scan");
	} else if (opt_kmemleak) {
		printf("# no %s in this kernel: no leak scan\n", KMEMLEAK);
	} else {
		printf("# no kmemleak scan (--no-kmemleak): the caller scans\n");
	}
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ne_fuzz [OPTIONS]\n"
"\n"
"An ioctl fuzzer for ne_kvm.ko; run it as root in the parent VM with the\n"
"device's test controls (tools/ne-vm --ne-pci test-controls=on,boot-enclaves=off,\n"
"or `make fuzz SECONDS=N`).  Worker processes, each with worker threads, send\n"
"random sequences of every ioctl of /dev/nitro_enclaves, VM and vCPU fds with\n"
"random and edge-case arguments, KVM's and upstream's (the NE_* ioctls of\n"
"<linux/nitro_enclaves.h>), each also on the other family's VM fds, where it\n"
"must be ENOTTY; an NE VM fd may refuse only with the errnos and NE_ERR_*\n"
"values upstream-api.rst lists for the call.  They map memory of every kind\n"
"(hugetlb, hugetlbfs files, THP, 4 KiB pages, shmem) and unmap it while\n"
"donated, close fds at random, poll, dup fds between threads and fork\n"
"children that try inherited fds (they must get EIO, or what the upstream\n"
"family lets another process do).  A chaos process arms the device's FAIL,\n"
"DELAY and NOREPLY faults, raises \"enclave stopped\" events, writes ne_cpus,\n"
"takes CPUs on and offline, and removes and rescans the PCI device, sometimes\n"
"with its STUCK fault armed (a device that does not turn off at remove).\n"
"\n"
"The seed is printed first.  --seed N replays every worker's sequence of\n"
"operations exactly; the interleaving of threads and processes, and the\n"
"arguments derived from earlier results (the next guest-physical address),\n"
"are not reproducible.  In the log, #N is the worker's N-th operation\n"
"(the steps of a whole enclave share one N); --ops N stops every worker\n"
"after N operations.\n"
"\n"
"After the run it checks, waiting up to --settle seconds for the teardown:\n"
"no page left pinned (nr_foll_pin_acquired - nr_foll_pin_released as at the\n"
"start), HugePages_Free as at the start, no slot in the device and none\n"
"listed in debugfs ne_kvm/orphans (slots nobody owns), ne_cpus as\n"
"at the start with every pool CPU offline and owned by the pool, no fd left\n"
"open by a worker, nothing in kmemleak after a scan (when the kernel has\n"
"it), and no warning, BUG, KASAN, UBSAN or lockdep report in the kernel log.\n"
"\n"
"Options:\n"
"  --seed N           the seed (default: from the clock)\n"
"  --seconds N        how long the workers run (default 60)\n"
"  --ops N            at most N operations per worker (default: no limit);\n"
"                     with --seed, replays a finding's first N operations\n"
"  --verbose          print every operation as it ends\n"
"  --threads N        threads per worker process (default 3, at most %d)\n"
"  --procs N          worker processes (default 2, at most %d)\n"
"  --hang-timeout N   an operation that takes longer than N s is a hang\n"
"                     (default 60; while the fuzzer's processes keep using\n"
"                     CPU time, 5 times as long)\n"
"  --settle N         seconds the driver gets to give everything back\n"
"                     after the run (default 30)\n"
"  --cmd-timeout-ms N the driver's cmd_timeout_ms during the run (default\n"
"                     2000, so that NOREPLY costs 2 s; 0 leaves it)\n"
"  --no-pci-remove    no PCI remove/rescan (on by default)\n"
"  --no-faults        no FAIL/DELAY/NOREPLY/STUCK faults (on by default)\n"
"  --no-pool          no ne_cpus writes (on by default)\n"
"  --no-hotplug       no CPU online/offline writes (on by default)\n"
"  --no-fork          no forked children with inherited fds (on by default)\n"
"  --no-kmemleak      no kmemleak scan after the run (a scan takes minutes\n"
"                     under TCG: for callers that scan once after several\n"
"                     runs, as tools/vm/debug-suite's boot does)\n"
"  --self-test KIND   make sure the checks can fail: 'fd' keeps an fd open in\n"
"                     a worker, 'pin' keeps an enclave with donated memory in\n"
"                     a process; exits 0 only if the checks caught it\n"
"  -h, --help         this text\n"
"\n"
"Output: TAP lines, one per check, and \"# FINDING\" lines with the seed, the\n"
"worker and the operation, followed by the last %d operations of every\n"
"worker.  Exit status: 0 clean, 1 a finding (a failed check, a kernel\n"
"report, a result the spec rules out, a crashed worker), 2 usage, 3 cannot\n"
"run here (not root, no device, no hugepages), 5 an operation hung (the\n"
"stacks of the fuzzer's tasks are printed).\n",
		MAXTHREADS, MAXPROCS, RING);
}

/* What the workers did in @ns: per worker, per operation, what succeeded. */
static void print_counts(uint64_t ns)
{
	uint64_t total = 0;
	int i;

	printf("# operations:");
	for (i = 0; i < sh->nworkers; i++) {
		printf(" w%d=%" PRIu64, i, sh->w[i].steps);
		total += i < sh->nworkers - 1 ? sh->w[i].steps : 0;
	}
	printf("\n# %" PRIu64 " worker operations in %.1f s: %.1f/s\n# drawn:", total,
	       ns / 1e9, total * 1e9 / (ns ?: 1));
	for (i = 0; i < NR_OPS; i++)
		printf(" %s=%" PRIu64, op_names[i], sh->op_count[i]);
	printf("\n# succeeded: %" PRIu64 " KVM_CREATE_VM, %" PRIu64 " memory regions, %" PRIu64
	       " KVM_CREATE_VCPU, %" PRIu64 " NE_ENCLAVE_START, %" PRIu64 " forks, %" PRIu64
	       " PCI removes, %" PRIu64 " stop events on a slot, %" PRIu64 " ne_cpus writes\n",
	       sh->n_vm, sh->n_mem, sh->n_vcpu, sh->n_start, sh->n_fork, sh->n_remove,
	       sh->n_event, sh->n_pool);
	printf("# succeeded, upstream family: %" PRIu64 " NE_CREATE_VM, %" PRIu64
	       " NE_ADD_VCPU, %" PRIu64 " NE_GET_IMAGE_LOAD_INFO, %" PRIu64
	       " NE_SET_USER_MEMORY_REGION, %" PRIu64 " NE_START_ENCLAVE; %" PRIu64
	       " mixing-rule calls on a live VM fd\n", sh->n_ne_vm, sh->n_ne_vcpu,
	       sh->n_ne_info, sh->n_ne_mem, sh->n_ne_start, sh->n_cross);
}

static unsigned int num_arg(const char *s, const char *opt)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (!*s || *end || v > UINT_MAX) {
		fprintf(stderr, "ne_fuzz: %s wants a number, not '%s'\n", opt, s);
		exit(EXIT_USAGE);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "procs", required_argument, NULL, 'p' },
		{ "hang-timeout", required_argument, NULL, 'H' },
		{ "settle", required_argument, NULL, 'W' },
		{ "cmd-timeout-ms", required_argument, NULL, 'C' },
		{ "no-pci-remove", no_argument, NULL, 'R' },
		{ "no-faults", no_argument, NULL, 'F' },
		{ "no-pool", no_argument, NULL, 'P' },
		{ "no-hotplug", no_argument, NULL, 'O' },
		{ "no-fork", no_argument, NULL, 'K' },
		{ "no-kmemleak", no_argument, NULL, 'L' },
		{ "self-test", required_argument, NULL, 'T' },
		{ "ops", required_argument, NULL, 'N' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct baseline b = { 0 };
	bool have_seed = false, worker_failed = false;
	int c, i, nw, running, sys;
	pid_t leaker = 0;
	char dir[PATH_MAX], buf[64];
	uint64_t end, busy_until, last_cpu = 0, t0;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 's': {
			char *e;

			opt_seed = strtoull(optarg, &e, 0);
			if (!*optarg || *e) {
				fprintf(stderr, "ne_fuzz: --seed wants a number\n");
				return EXIT_USAGE;
			}
			have_seed = true;
			break;
		}
		case 'S':
			opt_seconds = num_arg(optarg, "--seconds");
			break;
		case 't':
			opt_threads = num_arg(optarg, "--threads");
			break;
		case 'p':
			opt_procs = num_arg(optarg, "--procs");
			break;
		case 'H':
			opt_hang = num_arg(optarg, "--hang-timeout");
			break;
		case 'W':
			opt_settle = num_arg(optarg, "--settle");
			break;
		case 'C':
			opt_cmd_timeout = num_arg(optarg, "--cmd-timeout-ms");
			break;
		case 'R':
			opt_remove = false;
			break;
		case 'F':
			opt_faults = false;
			break;
		case 'P':
			opt_pool = false;
			break;
		case 'O':
			opt_hotplug = false;
			break;
		case 'K':
			opt_fork = false;
			break;
		case 'L':
			opt_kmemleak = false;
			break;
		case 'T':
			opt_self_test = optarg;
			if (strcmp(optarg, "fd") && strcmp(optarg, "pin")) {
				fprintf(stderr, "ne_fuzz: --self-test is 'fd' or 'pin'\n");
				return EXIT_USAGE;
			}
			break;
		case 'N':
			opt_ops = num_arg(optarg, "--ops");
			break;
		case 'v':
			opt_verbose = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_CLEAN;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc || !opt_threads || opt_threads > MAXTHREADS || !opt_procs ||
	    opt_procs > MAXPROCS || !opt_hang) {
		usage(stderr);
		return EXIT_USAGE;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!have_seed)
		opt_seed = now_ns() ^ ((uint64_t)getpid() << 32);
	printf("# ne_fuzz seed %" PRIu64 " (replay: --seed %" PRIu64 " --seconds %u --threads %u"
	       " --procs %u)\n", opt_seed, opt_seed, opt_seconds, opt_threads, opt_procs);

	if (geteuid()) {
		printf("# ne_fuzz needs root\n");
		return EXIT_ENV;
	}
	if (ne_find_pci_device(dir, sizeof(dir)) || access(NE_DEV_PATH, R_OK | W_OK)) {
		printf("# no Nitro Enclaves device (or no %s)\n", NE_DEV_PATH);
		return EXIT_ENV;
	}
	{
		volatile uint32_t *tc = ne_testctl_map();

		if (!tc) {
			printf("# the device has no test controls (ne-pci test-controls=on)\n");
			return EXIT_ENV;
		}
		ne_tc_disarm_all(tc);
		ne_testctl_unmap(tc);
	}

	nw = opt_procs * opt_threads + 1;
	sh = mmap(NULL, sizeof(*sh) + nw * sizeof(struct wstate), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return EXIT_ENV;
	sh->nworkers = nw;
	sh->ncpus = sysconf(_SC_NPROCESSORS_CONF);

	/* The baseline. */
	if (ne_read_file(NE_CPUS_PARAM, b.pool, sizeof(b.pool)) || !b.pool[0]) {
		if (timed_write(NE_CPUS_PARAM, "2-3")) {
			printf("# the CPU pool is empty and cannot be set to 2-3\n");
			return EXIT_ENV;
		}
		ne_read_file(NE_CPUS_PARAM, b.pool, sizeof(b.pool));
	}
	ne_read_file(NE_TIMEOUT_PARAM, b.timeout, sizeof(b.timeout));
	{
		int cpus[256], n = ne_cpulist(b.pool, cpus, 256);

		sh->pool_cpu[0] = n > 0 ? cpus[0] : 2;
		sh->pool_cpu[1] = n > 1 ? cpus[1] : 3;
		for (i = 1; i < (int)sh->ncpus && i < 256; i++) {
			char path[128], on[8];

			snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", i);
			b.online[i] = !ne_read_file(path, on, sizeof(on)) && on[0] == '1' ? '1' : '0';
		}
		for (i = 0; i < n; i++)
			if (cpus[i] > 0 && cpus[i] < 256)
				b.online[cpus[i]] = '1';
	}
	if (opt_cmd_timeout) {
		snprintf(buf, sizeof(buf), "%u", opt_cmd_timeout);
		timed_write(NE_TIMEOUT_PARAM, buf);
	}
	c = timed("KVM_CHECK_EXTENSION(KVM_CAP_NR_MEMSLOTS)", opt_hang, caps_fn,
		  (void *)(long)KVM_CAP_NR_MEMSLOTS);
	sh->nr_memslots = c == 0 && sh->cap_value > 0 && sh->cap_value <= 65536 ?
			  sh->cap_value : 32;
	c = timed("KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPU_ID)", opt_hang, caps_fn,
		  (void *)(long)KVM_CAP_MAX_VCPU_ID);
	sh->max_vcpu_id = c == 0 && sh->cap_value >= 0 && sh->cap_value <= 4096 ?
			  sh->cap_value : 2;
	b.huge_free = ne_meminfo("HugePages_Free");
	sh->huge_budget = b.huge_free * HPAGE * 6 / 10;
	if (b.huge_free < 64) {
		printf("# only %ld free 2 MiB hugepages: 64 or more wanted\n", b.huge_free);
		return EXIT_ENV;
	}
	b.pins = ne_pins_held();
	b.kmemleak = opt_kmemleak && !access(KMEMLEAK, R_OK);
	if (b.kmemleak)
		ne_write_file(KMEMLEAK, "clear");
	if (opt_kmsg) {
		kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (kmsg_fd >= 0)
			lseek(kmsg_fd, 0, SEEK_END);
	}
	b.fds = count_fds();
	printf("# pool \"%s\", %u memslots, max vCPU id %u, %ld free hugepages, %ld pins, "
	       "kmemleak %s, cmd_timeout_ms %s -> %u\n", b.pool, sh->nr_memslots,
	       sh->max_vcpu_id, b.huge_free, b.pins, b.kmemleak ? "yes" : "no", b.timeout,
	       opt_cmd_timeout);

	if (!opt_self_test)
		check_model();
	if (opt_self_test && !strcmp(opt_self_test, "pin")) {
		int ready[2] = { -1, -1 };
		char c;

		/*
		 * The run starts once the leaker's memory is donated.  Without
		 * a leaker (EOF: it exited), the checks find no kept pin and
		 * the self-test fails, after the run has restored everything.
		 */
		fflush(stdout);
		if (!pipe2(ready, O_CLOEXEC)) {
			leaker = fork();
			if (leaker == 0) {
				close(ready[0]);
				self_test_pin(ready[1]);
			}
			close(ready[1]);
		}
		if (leaker <= 0 || read(ready[0], &c, 1) != 1)
			printf("# self-test: no leaker with donated memory\n");
		if (ready[0] >= 0)
			close(ready[0]);
	}

	/* The workers and the chaos process. */
	t0 = now_ns();
	children = calloc(opt_procs + 1, sizeof(*children));
	fflush(stdout);
	for (i = 0; i <= (int)opt_procs; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("ne_fuzz: fork");
			sh->stop = 1;
			kill_children();
			return EXIT_ENV;
		}
		if (pid == 0) {
			if (kmsg_fd >= 0)
				close(kmsg_fd);
			_exit(i < (int)opt_procs ? worker_process(i) : chaos_process(nw - 1));
		}
		children[nchildren++] = pid;
	}

	/* Watch them: hangs, crashes, kernel reports. */
	end = now_ns() + (opt_seconds + opt_hang + 30ULL) * 1000000000ULL;
	running = nchildren;
	busy_until = now_ns() + opt_hang * 1000000000ULL;
	while (running) {
		uint64_t limit, cpu = cpu_ticks(children, nchildren);
		int status;
		pid_t pid;

		/* busy: CPU time went on in the last second */
		if (cpu != last_cpu) {
			last_cpu = cpu;
			busy_until = now_ns() + 1000000000ULL;
		}
		limit = opt_hang * 1000000000ULL;
		if (now_ns() < busy_until)
			limit *= HANG_BUSY_FACTOR;

		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < nchildren; i++) {
				if (children[i] != pid)
					continue;
				running--;
				if (!WIFEXITED(status) || WEXITSTATUS(status)) {
					printf("# FINDING (seed %" PRIu64 "): worker process %d "
					       "ended with status %#x\n", opt_seed, i, status);
					worker_failed = true;
				}
				children[i] = -children[i];
			}
		}
		read_kmsg();
		for (i = 0; i < nw; i++) {
			uint64_t t = sh->w[i].op_start_ns;
			char what[TEXT + 64];

			if (t && now_ns() > t + limit) {
				snprintf(what, sizeof(what), "worker %d: %s", i,
					 sh->w[i].ring[sh->w[i].head % RING].text);
				hang(i, what);
			}
		}
		if (running && now_ns() > end + limit - opt_hang * 1000000000ULL)
			hang(-1, "the workers did not finish in time");
		msleep(100);
	}
	for (i = 0; i < nchildren; i++)
		children[i] = 0;

	if (worker_failed)
		dump_rings("a worker process crashed");
	print_counts(now_ns() - t0);

	post_checks(&b);
	if (leaker > 0) {
		kill(leaker, SIGKILL);
		waitpid(leaker, NULL, 0);
	}

	for (i = 0; i < (int)opt_procs; i++) {
		int leak = sh->w[i * opt_threads].fd_leak;

		tap(!leak, "worker process %d left no fd open (%d left)", i, leak);
		if (leak && opt_self_test && !strcmp(opt_self_test, "fd"))
			self_test_caught = true;
	}
	read_kmsg();
	if (kmsg_fd >= 0)
		close(kmsg_fd);
	c = count_fds();
	tap(c == b.fds - (kmsg_fd >= 0), "the supervisor left no fd open (%d, was %d)", c,
	    b.fds - (kmsg_fd >= 0));
	tap(!kernel_reports, "no warning, BUG, KASAN, UBSAN or lockdep report in the kernel "
	    "log (%d lines)", kernel_reports);
	tap(!sh->findings, "no result that the spec rules out (%d)", sh->findings);
	tap(!worker_failed, "every worker process ended normally");
	sys = nfail;
	printf("1..%d\n", ntap);
	if (nfail && !rings_dumped && !opt_self_test)
		dump_rings("a check failed");
	if (opt_self_test) {
		printf("# self-test %s: the checks %s the deliberate leak\n", opt_self_test,
		       self_test_caught ? "caught" : "did NOT catch");
		return self_test_caught ? EXIT_CLEAN : EXIT_FINDING;
	}
	printf("# ne_fuzz seed %" PRIu64 ": %s\n", opt_seed, sys ? "FAILED" : "clean");
	return sys ? EXIT_FINDING : EXIT_CLEAN;
}
