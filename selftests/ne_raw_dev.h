/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Driving the NE PCI device from userspace, without its driver: BAR 3
 * (registers) and BAR 2 (test controls, ne-pci test-controls=on only) are
 * mapped through sysfs, commands complete by polling a reply counter:
 * EVTCNT[15:0], or with test controls their REPLIES counter, so that the
 * tests also run on a device whose EVTCNT is frozen (ne-pci
 * reply-counter=off).  Used by the device conformance tests; needs root.
 */
#ifndef NE_RAW_DEV_H
#define NE_RAW_DEV_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hw/ne/ne-testctl.h"
#include "ne_test_util.h"

/* BAR 3 register map (ne-device-protocol.md section 1). */
#define NE_BAR_SIZE		0x1000
#define NE_REG_ENABLE		0x000
#define NE_REG_VERSION		0x002
#define NE_REG_COMMAND		0x004
#define NE_REG_EVTCNT		0x00c
#define NE_REG_SEND_DATA	0x010
#define NE_REG_RECV_DATA	0x100
#define NE_DATA_SIZE		240
#define NE_REPLY_SIZE		72

enum ne_cmd {
	NE_CMD_INVALID = 0,
	NE_CMD_ENCLAVE_START = 1,
	NE_CMD_ENCLAVE_GET_SLOT = 2,
	NE_CMD_ENCLAVE_STOP = 3,
	NE_CMD_SLOT_ALLOC = 4,
	NE_CMD_SLOT_FREE = 5,
	NE_CMD_SLOT_ADD_MEM = 6,
	NE_CMD_SLOT_ADD_VCPU = 7,
	NE_CMD_SLOT_COUNT = 8,
	NE_CMD_NEXT_SLOT = 9,
	NE_CMD_SLOT_INFO = 10,
	NE_CMD_SLOT_ADD_BULK_VCPUS = 11,
	NE_CMD_MAX = 12,
};

#define NE_STATE_INIT		0
#define NE_STATE_RUNNING	2
#define NE_STATE_STOPPED	0xffff

#define NE_HUGE_SIZE		(2UL << 20)
#define NE_MIN_ENCLAVE_MEM	(64UL << 20)

/* How long a command may take before the helper gives up (wall time). */
#define NE_RAW_TIMEOUT_MS	5000

struct ne_raw_reply {
	int32_t rc;
	uint8_t padding0[4];
	uint64_t slot_uid;
	uint64_t enclave_cid;
	uint64_t slot_count;
	uint64_t mem_regions;
	uint64_t mem_size;
	uint64_t nr_vcpus;
	uint64_t flags;
	uint16_t state;
	uint8_t padding1[6];
};

_Static_assert(sizeof(struct ne_raw_reply) == NE_REPLY_SIZE, "reply size");

struct ne_raw {
	int regs_fd;
	int tc_fd;
	volatile uint8_t *regs;
	volatile uint8_t *tc;		/* NULL without test controls */
};

static inline uint8_t ne_rd8(struct ne_raw *r, unsigned int off)
{
	return *(volatile uint8_t *)(r->regs + off);
}

static inline uint16_t ne_rd16(struct ne_raw *r, unsigned int off)
{
	return *(volatile uint16_t *)(r->regs + off);
}

static inline uint32_t ne_rd32(struct ne_raw *r, unsigned int off)
{
	return *(volatile uint32_t *)(r->regs + off);
}

static inline void ne_wr8(struct ne_raw *r, unsigned int off, uint8_t v)
{
	*(volatile uint8_t *)(r->regs + off) = v;
}

static inline void ne_wr16(struct ne_raw *r, unsigned int off, uint16_t v)
{
	*(volatile uint16_t *)(r->regs + off) = v;
}

static inline void ne_wr32(struct ne_raw *r, unsigned int off, uint32_t v)
{
	*(volatile uint32_t *)(r->regs + off) = v;
}

static inline uint32_t ne_tc_rd(struct ne_raw *r, unsigned int off)
{
	return *(volatile uint32_t *)(r->tc + off);
}

static inline void ne_tc_wr(struct ne_raw *r, unsigned int off, uint32_t v)
{
	*(volatile uint32_t *)(r->tc + off) = v;
}

static inline long ne_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline int ne_sysfs_write(const char *dir, const char *file,
				 const char *val)
{
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return ne_write_file(path, val);
}

/* Name of the driver bound to @dev ("" if none), in @name. */
static inline void ne_bound_driver(const char *dev, char *name, size_t len)
{
	char link[PATH_MAX + 16], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "%s/driver", dev);
	n = readlink(link, target, sizeof(target) - 1);
	name[0] = '\0';
	if (n <= 0)
		return;
	target[n] = '\0';
	snprintf(name, len, "%s", strrchr(target, '/') + 1);
}

/* Unbinds the driver from the device and enables it; see ne_raw_release. */
static inline int ne_raw_take_device(char *dev, size_t dev_len,
				     char *drv, size_t drv_len)
{
	char path[PATH_MAX];
	const char *bdf;

	if (ne_find_pci_device(dev, dev_len))
		return -ENODEV;
	bdf = strrchr(dev, '/') + 1;
	ne_bound_driver(dev, drv, drv_len);
	if (drv[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s", drv);
		if (ne_sysfs_write(path, "unbind", bdf))
			return -EIO;
	}
	return ne_sysfs_write(dev, "enable", "1");
}

/* Gives the device back: disabled, and rebound to @drv if it had one. */
static inline void ne_raw_release_device(const char *dev, const char *drv)
{
	char path[PATH_MAX];

	ne_sysfs_write(dev, "enable", "0");
	if (drv[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s", drv);
		ne_sysfs_write(path, "bind", strrchr(dev, '/') + 1);
	}
}

static inline volatile uint8_t *ne_map_bar(const char *dev, int bar, int *fd)
{
	char path[PATH_MAX + 64];
	void *p;

	snprintf(path, sizeof(path), "%s/resource%d", dev, bar);
	*fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (*fd < 0)
		return NULL;
	p = mmap(NULL, NE_BAR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (p == MAP_FAILED) {
		close(*fd);
		*fd = -1;
		return NULL;
	}
	return p;
}

#ifdef __KSELFTEST_HARNESS_H
/*
 * The main() of a raw-device test program: takes the device from its
 * driver for the whole run (skip without a device or without root) and
 * gives it back at exit, from the main process only (tests fork).
 */
static char ne_raw_dev_dir[PATH_MAX];
static char ne_raw_orig_driver[64];
static pid_t ne_raw_main_pid;

static void ne_raw_give_device_back(void)
{
	if (getpid() == ne_raw_main_pid)
		ne_raw_release_device(ne_raw_dev_dir, ne_raw_orig_driver);
}

static inline int ne_raw_test_main(int argc, char **argv)
{
	int rc;

	ne_require_device();
	if (geteuid() != 0)
		ksft_exit_skip("needs root to map the device's BARs\n");
	rc = ne_raw_take_device(ne_raw_dev_dir, sizeof(ne_raw_dev_dir),
				ne_raw_orig_driver, sizeof(ne_raw_orig_driver));
	if (rc)
		ksft_exit_fail_msg("cannot take the device from its driver: %s\n",
				   strerror(-rc));
	ne_raw_main_pid = getpid();
	atexit(ne_raw_give_device_back);
	return test_harness_run(argc, argv);
}
#endif

/* Maps BAR 3 (required) and BAR 2 (if the device has test controls). */
static inline int ne_raw_open(struct ne_raw *r)
{
	char dev[PATH_MAX];

	memset(r, 0, sizeof(*r));
	r->tc_fd = -1;
	if (ne_find_pci_device(dev, sizeof(dev)))
		return -ENODEV;
	r->regs = ne_map_bar(dev, 3, &r->regs_fd);
	if (!r->regs)
		return -errno;
	r->tc = ne_map_bar(dev, NE_TESTCTL_BAR, &r->tc_fd);
	if (r->tc && ne_tc_rd(r, NE_TESTCTL_MAGIC) != NE_TESTCTL_MAGIC_VALUE) {
		munmap((void *)r->tc, NE_BAR_SIZE);
		close(r->tc_fd);
		r->tc = NULL;
		r->tc_fd = -1;
	}
	return 0;
}

static inline void ne_raw_close(struct ne_raw *r)
{
	if (r->tc) {
		munmap((void *)r->tc, NE_BAR_SIZE);
		close(r->tc_fd);
	}
	if (r->regs) {
		munmap((void *)r->regs, NE_BAR_SIZE);
		close(r->regs_fd);
	}
	memset(r, 0, sizeof(*r));
}

/* ENABLE off (polled), VERSION 1, ENABLE on, as the protocol says. */
static inline int ne_raw_handshake(struct ne_raw *r)
{
	long deadline = ne_now_ms() + NE_RAW_TIMEOUT_MS;

	ne_wr8(r, NE_REG_ENABLE, 0);
	while (ne_rd8(r, NE_REG_ENABLE) != 0) {
		if (ne_now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(1000);
	}
	ne_wr16(r, NE_REG_VERSION, 1);
	if (ne_rd16(r, NE_REG_VERSION) != 1)
		return -EIO;
	ne_wr8(r, NE_REG_ENABLE, 1);
	if (ne_rd8(r, NE_REG_ENABLE) != 1)
		return -EIO;
	return 0;
}

/* Rings the doorbell: payload (rest of the window zeroed), then COMMAND. */
static inline void ne_raw_ring(struct ne_raw *r, uint32_t type,
			       const void *req, size_t len)
{
	uint8_t buf[NE_DATA_SIZE] = { 0 };
	uint32_t word;
	size_t i;

	memcpy(buf, req, len < sizeof(buf) ? len : sizeof(buf));
	for (i = 0; i < sizeof(buf); i += 4) {
		memcpy(&word, buf + i, 4);
		ne_wr32(r, NE_REG_SEND_DATA + i, word);
	}
	ne_wr32(r, NE_REG_COMMAND, type);
}

/*
 * The replies posted so far (16 bits): the test controls' REPLIES counter
 * when the device has them, else EVTCNT[15:0].
 */
static inline uint16_t ne_raw_replies(struct ne_raw *r)
{
	if (r->tc)
		return ne_tc_rd(r, NE_TESTCTL_REPLIES);
	return ne_rd32(r, NE_REG_EVTCNT);
}

/*
 * Whether EVTCNT is frozen at 0 while the device posts replies (ne-pci
 * reply-counter=off); only knowable with test controls.
 */
static inline bool ne_raw_evtcnt_frozen(struct ne_raw *r)
{
	return r->tc && !ne_rd32(r, NE_REG_EVTCNT) &&
	       ne_tc_rd(r, NE_TESTCTL_REPLIES);
}

/* Waits until ne_raw_replies() moves away from @before; 0 or -ETIMEDOUT. */
static inline int ne_raw_wait_reply(struct ne_raw *r, uint16_t before,
				    long timeout_ms)
{
	long deadline = ne_now_ms() + timeout_ms;

	while (ne_raw_replies(r) == before) {
		if (ne_now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(50);
	}
	return 0;
}

static inline void ne_raw_read_reply(struct ne_raw *r,
				     struct ne_raw_reply *rep)
{
	uint32_t words[NE_REPLY_SIZE / 4];
	size_t i;

	for (i = 0; i < NE_REPLY_SIZE / 4; i++)
		words[i] = ne_rd32(r, NE_REG_RECV_DATA + 4 * i);
	memcpy(rep, words, sizeof(*rep));
}

/*
 * Sends one command and waits for its reply.  Returns the reply's rc, or
 * -ETIMEDOUT (and rep->rc = INT32_MIN) if the device did not answer.
 */
static inline int ne_raw_cmd(struct ne_raw *r, uint32_t type, const void *req,
			     size_t len, struct ne_raw_reply *rep)
{
	uint16_t before = ne_raw_replies(r);

	ne_raw_ring(r, type, req, len);
	if (ne_raw_wait_reply(r, before, NE_RAW_TIMEOUT_MS)) {
		memset(rep, 0, sizeof(*rep));
		rep->rc = INT32_MIN;
		return -ETIMEDOUT;
	}
	ne_raw_read_reply(r, rep);
	return rep->rc;
}

/* Commands with one u64 argument (slot uid or CID) or none. */
static inline int ne_raw_cmd_u64(struct ne_raw *r, uint32_t type,
				 uint64_t arg, struct ne_raw_reply *rep)
{
	return ne_raw_cmd(r, type, &arg, sizeof(arg), rep);
}

static inline int ne_raw_slot_alloc(struct ne_raw *r, uint64_t *uid)
{
	struct ne_raw_reply rep;
	uint8_t unused = 0;
	int rc = ne_raw_cmd(r, NE_CMD_SLOT_ALLOC, &unused, 1, &rep);

	*uid = rc ? 0 : rep.slot_uid;
	return rc;
}

static inline int ne_raw_add_mem(struct ne_raw *r, uint64_t uid,
				 uint64_t gpa, uint64_t size)
{
	uint64_t req[3] = { uid, gpa, size };
	struct ne_raw_reply rep;

	return ne_raw_cmd(r, NE_CMD_SLOT_ADD_MEM, req, sizeof(req), &rep);
}

static inline int ne_raw_add_vcpu(struct ne_raw *r, uint64_t uid,
				  uint32_t apic_id)
{
	struct { uint64_t uid; uint32_t id; uint8_t pad[4]; } req = { uid, apic_id, { 0 } };
	struct ne_raw_reply rep;

	return ne_raw_cmd(r, NE_CMD_SLOT_ADD_VCPU, &req, sizeof(req), &rep);
}

static inline int ne_raw_add_bulk(struct ne_raw *r, uint64_t uid,
				  uint64_t nr)
{
	uint64_t req[2] = { uid, nr };
	struct ne_raw_reply rep;

	return ne_raw_cmd(r, NE_CMD_SLOT_ADD_BULK_VCPUS, req, sizeof(req),
			  &rep);
}

static inline int ne_raw_start(struct ne_raw *r, uint64_t uid, uint64_t cid,
			       uint64_t flags, uint64_t *cid_out)
{
	uint64_t req[3] = { uid, cid, flags };
	struct ne_raw_reply rep;
	int rc = ne_raw_cmd(r, NE_CMD_ENCLAVE_START, req, sizeof(req), &rep);

	if (cid_out)
		*cid_out = rep.enclave_cid;
	return rc;
}

static inline int ne_raw_slot_info(struct ne_raw *r, uint64_t uid,
				   struct ne_raw_reply *rep)
{
	return ne_raw_cmd_u64(r, NE_CMD_SLOT_INFO, uid, rep);
}

/* Frees every slot the device has; returns how many, or a negative rc. */
static inline int ne_raw_free_all(struct ne_raw *r)
{
	struct ne_raw_reply rep;
	int n = 0, rc;

	while ((rc = ne_raw_cmd_u64(r, NE_CMD_NEXT_SLOT, 0, &rep)) == 0) {
		rc = ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, rep.slot_uid, &rep);
		if (rc)
			return rc;
		n++;
	}
	return rc == -ENOENT ? n : rc;
}

/* Hugepage memory and its guest-physical addresses, for SLOT_ADD_MEM. */
struct ne_mem {
	uint8_t *va;
	size_t nr_pages;
	uint64_t *gpa;		/* one per 2 MiB page */
};

static inline uint64_t ne_virt_to_phys(const void *va)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t off = (uintptr_t)va / getpagesize() * sizeof(entry);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry), off) != sizeof(entry))
		entry = 0;
	close(fd);
	if (!(entry & (1ULL << 63)))
		return 0;
	return (entry & ((1ULL << 55) - 1)) * getpagesize();
}

/* Maps @nr_pages hugepages, fills each with a pattern, finds their gpas. */
static inline int ne_mem_alloc(struct ne_mem *m, size_t nr_pages)
{
	size_t i;

	m->nr_pages = 0;
	m->gpa = calloc(nr_pages, sizeof(*m->gpa));
	if (!m->gpa)
		return -ENOMEM;
	m->va = mmap(NULL, nr_pages * NE_HUGE_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE,
		     -1, 0);
	if (m->va == MAP_FAILED) {
		free(m->gpa);
		m->gpa = NULL;
		m->va = NULL;
		return -ENOMEM;
	}
	m->nr_pages = nr_pages;
	for (i = 0; i < nr_pages; i++) {
		/* The carve-out test looks at the first 8 KiB of each page. */
		memset(m->va + i * NE_HUGE_SIZE, 0x5a + (int)i, 8192);
		m->gpa[i] = ne_virt_to_phys(m->va + i * NE_HUGE_SIZE);
		if (!m->gpa[i])
			return -EFAULT;
	}
	return 0;
}

/*
 * The kernel's free hugepages form a stack: unmapping the pages last to
 * first puts them back in the order they were taken, so that tests which
 * run after this one still find physically contiguous runs.
 */
static inline void ne_mem_free(struct ne_mem *m)
{
	size_t i;

	for (i = m->nr_pages; m->va && i > 0; i--)
		munmap(m->va + (i - 1) * NE_HUGE_SIZE, NE_HUGE_SIZE);
	free(m->gpa);
	memset(m, 0, sizeof(*m));
}

static inline int ne_raw_cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Donates pages [first, first + n) of @m to @uid, one range each: highest
 * address first, since the device merges a range that continues the last
 * one (physically contiguous huge pages are common).
 */
static inline int ne_raw_add_pages(struct ne_raw *r, uint64_t uid,
				   const struct ne_mem *m, size_t first,
				   size_t n)
{
	uint64_t *gpa = calloc(n ? n : 1, sizeof(*gpa));
	size_t i;
	int rc = 0;

	if (!gpa)
		return -ENOMEM;
	memcpy(gpa, &m->gpa[first], n * sizeof(*gpa));
	qsort(gpa, n, sizeof(*gpa), ne_raw_cmp_desc);
	for (i = 0; i < n && !rc; i++)
		rc = ne_raw_add_mem(r, uid, gpa[i], NE_HUGE_SIZE);
	free(gpa);
	return rc;
}

/*
 * The parent's CPUs, as APIC ids: on the project's q35 parent VM they are
 * the CPU indexes 0..N-1 (offline CPUs included, so sysfs, not cpuinfo).
 */
static inline int ne_nr_parent_cpus(void)
{
	return (int)sysconf(_SC_NPROCESSORS_CONF);
}

#endif /* NE_RAW_DEV_H */
