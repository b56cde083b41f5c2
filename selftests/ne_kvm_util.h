/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the ne_kvm selftests, in the style of KVM's selftests:
 * __vm_ioctl() returns the raw result for negative tests, vm_ioctl() asserts
 * success.  The asserting helpers are macros so that they report the test's
 * own line and use its _metadata.
 */
#ifndef NE_KVM_UTIL_H
#define NE_KVM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/mman.h>
#include <linux/ne_kvm.h>

#include "hw/ne/ne-testctl.h"
#include "ne_test_util.h"

#define MIB			(1ULL << 20)
#define HPAGE			(2 * MIB)
#define NE_CPUS_PARAM		"/sys/module/ne_kvm/parameters/ne_cpus"
#define NE_TIMEOUT_PARAM	"/sys/module/ne_kvm/parameters/cmd_timeout_ms"
#define NE_TEST_POOL		"2-3"	/* the guest's one core that is not CPU 0's */

/* ---- ioctls ------------------------------------------------------------ */

static inline int __vm_ioctl(int fd, unsigned long cmd, unsigned long arg)
{
	return ioctl(fd, cmd, arg);
}

/* Asserts that an ioctl succeeds and yields its result. */
#define vm_ioctl(fd, cmd, arg) ({					\
	int __r = __vm_ioctl(fd, cmd, (unsigned long)(arg));		\
	ASSERT_LE(0, __r) {						\
		TH_LOG("%s failed: %s", #cmd, strerror(errno));		\
	}								\
	__r; })

/* Asserts that an ioctl fails with exactly @err. */
#define ASSERT_IOCTL_ERRNO(err, fd, cmd, arg) do {			\
	errno = 0;							\
	ASSERT_EQ(-1, __vm_ioctl(fd, cmd, (unsigned long)(arg)));	\
	ASSERT_EQ(err, errno) {						\
		TH_LOG("%s: errno %d (%s), wanted %d", #cmd, errno,	\
		       strerror(errno), err);				\
	}								\
} while (0)

static inline int ne_open_sys(void)
{
	return open(NE_DEV_PATH, O_RDWR | O_CLOEXEC);
}

/* A new VM fd, or -1. */
static inline int ne_create_vm(void)
{
	int sys = ne_open_sys(), vm;

	if (sys < 0)
		return -1;
	vm = ioctl(sys, KVM_CREATE_VM, 0);
	close(sys);
	return vm;
}

static inline int ne_set_region(int vm, uint32_t slot, uint64_t gpa,
				void *addr, uint64_t size, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)addr,
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);
}

static inline int ne_start(int vm, uint64_t flags, uint64_t *cid)
{
	struct ne_enclave_start s = { .flags = flags, .enclave_cid = *cid };
	int rc = ioctl(vm, NE_ENCLAVE_START, &s);

	*cid = s.enclave_cid;
	return rc;
}

/* ---- memory ------------------------------------------------------------ */

/* @size bytes of 2 MiB hugepages, faulted in; MAP_FAILED on failure. */
static inline void *ne_huge_alloc(uint64_t size)
{
	return mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB |
		    MAP_POPULATE, -1, 0);
}

/* The physical address behind @addr (root only), or 0. */
static inline uint64_t ne_phys(void *addr)
{
	uint64_t entry = 0;
	long psize = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry),
		  (uintptr_t)addr / psize * sizeof(entry)) != sizeof(entry))
		entry = 0;
	close(fd);
	if (!(entry & (1ULL << 63)))
		return 0;
	return (entry & ((1ULL << 55) - 1)) * psize +
	       (uintptr_t)addr % psize;
}

/* How many ranges the driver makes of @size bytes at @addr (ascending runs). */
static inline unsigned int ne_count_runs(char *addr, uint64_t size)
{
	unsigned int runs = 0;
	uint64_t off, prev_end = 0;

	for (off = 0; off < size; off += HPAGE) {
		uint64_t p = ne_phys(addr + off);

		if (!runs || p != prev_end)
			runs++;
		prev_end = p + HPAGE;
	}
	return runs;
}

static inline long ne_vmstat(const char *key)
{
	char line[256];
	long val = -1;
	size_t len = strlen(key);
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ' ')
			val = atol(line + len + 1);
	fclose(f);
	return val;
}

/* Pages pinned and not yet released, system wide (exact: stats folded). */
static inline long ne_pins_held(void)
{
	ne_write_file("/proc/sys/vm/stat_refresh", "1");
	return ne_vmstat("nr_foll_pin_acquired") -
	       ne_vmstat("nr_foll_pin_released");
}

/* Pins held once they reach @want, or after 10 s of waiting for it. */
static inline long ne_pins_reach(long want)
{
	long held = ne_pins_held();
	int i;

	for (i = 0; i < 200 && held != want; i++) {
		usleep(50 * 1000);
		held = ne_pins_held();
	}
	return held;
}

/* Whether child @pid ended within @ms, its status then in @status. */
static inline bool ne_reaped_within(pid_t pid, int *status, int ms)
{
	int i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/* ---- fdinfo -------------------------------------------------------------- */

/* The value of @key in @fd's fdinfo, into @buf; 0 when found. */
static inline int ne_fdinfo(int fd, const char *key, char *buf, size_t len)
{
	char path[64], line[512];
	size_t klen = strlen(key);
	int rc = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		v = line + klen + 1;
		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = '\0';
		snprintf(buf, len, "%s", v);
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

static inline long long ne_fdinfo_num(int fd, const char *key)
{
	char buf[128];

	if (ne_fdinfo(fd, key, buf, sizeof(buf)))
		return -1;
	return strtoull(buf, NULL, 0);
}

/* ---- module parameters ------------------------------------------------------ */


/* Sets ne_cpus; 0 or -errno. */
static inline int ne_set_pool(const char *cpus)
{
	return ne_write_file(NE_CPUS_PARAM, cpus);
}

/* The pool the tests use, set if it is not already. */
static inline int ne_ensure_pool(void)
{
	char cur[256];

	if (!ne_read_file(NE_CPUS_PARAM, cur, sizeof(cur)) &&
	    !strcmp(cur, NE_TEST_POOL))
		return 0;
	return ne_set_pool(NE_TEST_POOL);
}

static inline int ne_set_timeout_ms(unsigned int ms)
{
	char val[32];

	snprintf(val, sizeof(val), "%u", ms);
	return ne_write_file(NE_TIMEOUT_PARAM, val);
}

/* ---- test controls (BAR 2 of the emulated device) ---------------------------- */

/* BAR 2 mapped, or NULL when the device has no test controls. */
static inline volatile uint32_t *ne_testctl_map(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	volatile uint32_t *regs;
	int fd;

	if (ne_find_pci_device(dir, sizeof(dir)))
		return NULL;
	snprintf(path, sizeof(path), "%s/resource%d", dir, NE_TESTCTL_BAR);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	regs = mmap(NULL, NE_TESTCTL_BAR_SIZE, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	close(fd);
	if (regs == MAP_FAILED)
		return NULL;
	if (regs[NE_TESTCTL_MAGIC / 4] != NE_TESTCTL_MAGIC_VALUE) {
		munmap((void *)regs, NE_TESTCTL_BAR_SIZE);
		return NULL;
	}
	return regs;
}

/* Unmaps what ne_testctl_map() mapped (NULL: nothing). */
static inline void ne_testctl_unmap(volatile uint32_t *tc)
{
	if (tc)
		munmap((void *)tc, NE_TESTCTL_BAR_SIZE);
}

static inline uint32_t ne_tc_read(volatile uint32_t *tc, unsigned int off)
{
	return tc[off / 4];
}

static inline void ne_tc_write(volatile uint32_t *tc, unsigned int off,
			       uint32_t val)
{
	tc[off / 4] = val;
}

/* Arms a one-shot knob (FAIL, DELAY or NOREPLY) for command @type. */
static inline void ne_tc_arm(volatile uint32_t *tc, unsigned int arm,
			     uint32_t type, unsigned int param, uint32_t val)
{
	ne_tc_write(tc, arm + 4, type);
	if (param)
		ne_tc_write(tc, param, val);
	ne_tc_write(tc, arm, 1);
}

static inline void ne_tc_disarm_all(volatile uint32_t *tc)
{
	ne_tc_write(tc, NE_TESTCTL_FAIL_ARM, 0);
	ne_tc_write(tc, NE_TESTCTL_DELAY_ARM, 0);
	ne_tc_write(tc, NE_TESTCTL_NOREPLY_ARM, 0);
	ne_tc_write(tc, NE_TESTCTL_STUCK_ARM, 0);
	ne_tc_write(tc, NE_TESTCTL_OFF_STAYS_ARM, 0);
}

static inline uint32_t ne_tc_cmds(volatile uint32_t *tc, unsigned int type)
{
	return ne_tc_read(tc, NE_TESTCTL_CMD_COUNT(type));
}

/* Device command types, as on the wire. */
enum {
	NE_WIRE_ENCLAVE_START = 1,
	NE_WIRE_ENCLAVE_STOP = 3,
	NE_WIRE_SLOT_ALLOC = 4,
	NE_WIRE_SLOT_FREE = 5,
	NE_WIRE_SLOT_ADD_MEM = 6,
	NE_WIRE_SLOT_ADD_VCPU = 7,
	NE_WIRE_SLOT_INFO = 10,
};

#endif /* NE_KVM_UTIL_H */
