/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Driving the parent's vsock relay (virtio-vsock over virtio-pci, modern
 * interface) from userspace, the way a hostile parent kernel could: the
 * kernel's virtio driver is unbound from the function, the BAR holding the
 * virtio structures is mapped through sysfs, and the three split
 * virtqueues live in one 2 MiB hugepage whose physical address comes from
 * /proc/self/pagemap.  Interrupts are not used: completions are polled.
 * Needs root.
 */
#ifndef RELAY_RAW_H
#define RELAY_RAW_H

#include <dirent.h>
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

#define RR_SYSFS_PCI		"/sys/bus/pci/devices"
#define RR_VIRTIO_VENDOR	0x1af4
#define RR_VSOCK_MODERN		0x1053	/* 0x1040 + VIRTIO_ID_VSOCK */
#define RR_VSOCK_TRANS		0x1012

/* struct virtio_pci_common_cfg (virtio 1.x, 4.1.4.3) */
#define RR_CC_DFSELECT		0x00
#define RR_CC_DF		0x04
#define RR_CC_GFSELECT		0x08
#define RR_CC_GF		0x0c
#define RR_CC_MSIX		0x10
#define RR_CC_NUMQ		0x12
#define RR_CC_STATUS		0x14
#define RR_CC_Q_SELECT		0x16
#define RR_CC_Q_SIZE		0x18
#define RR_CC_Q_MSIX		0x1a
#define RR_CC_Q_ENABLE		0x1c
#define RR_CC_Q_NOFF		0x1e
#define RR_CC_Q_DESC		0x20
#define RR_CC_Q_AVAIL		0x28
#define RR_CC_Q_USED		0x30

#define RR_S_ACK		1
#define RR_S_DRIVER		2
#define RR_S_DRIVER_OK		4
#define RR_S_FEATURES_OK	8

#define RR_DESC_F_NEXT		1
#define RR_DESC_F_WRITE		2

#define RR_RXQ			0
#define RR_TXQ			1
#define RR_EVQ			2
#define RR_NQ			3
#define RR_QSIZE		16
#define RR_HUGE			(2UL << 20)
#define RR_QAREA		0x1000		/* per queue: desc, avail, used */
#define RR_BUF_BASE		0x10000		/* packet buffers from here */
#define RR_BUF_SIZE		0x1000

/* Linux's uapi names and values (include/uapi/linux/virtio_vsock.h). */
#define RR_OP_REQUEST		1
#define RR_OP_RESPONSE		2
#define RR_OP_RST		3
#define RR_OP_SHUTDOWN		4
#define RR_OP_RW		5
#define RR_OP_CREDIT_UPDATE	6
#define RR_TYPE_STREAM		1
#define RR_TYPE_SEQPACKET	2

struct rr_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct rr_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

struct rr_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct rr_queue {
	volatile struct rr_desc *desc;
	volatile uint16_t *avail;	/* flags, idx, ring[] */
	volatile uint16_t *used;	/* flags, idx, then {u32 id, u32 len}[] */
	volatile uint16_t *notify;
	uint16_t avail_idx;
	uint16_t used_seen;
	uint16_t next_desc;
};

struct relay_raw {
	char dev[PATH_MAX];		/* sysfs directory of the function */
	char drv[64];			/* driver it had ("" if none) */
	int bar_fd;
	volatile uint8_t *bar;		/* the BAR of the virtio structures */
	size_t bar_len;
	uint64_t bar_phys;
	volatile uint8_t *common;
	uint64_t common_phys;
	volatile uint8_t *notify_base;
	uint32_t notify_mult;
	uint8_t *mem;			/* the hugepage */
	uint64_t mem_phys;
	struct rr_queue q[RR_NQ];
	uint64_t guest_cid;
};

static inline long rr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline int rr_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static inline unsigned long rr_read_hex(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	unsigned long val = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%lx", &val) != 1)
		val = 0;
	fclose(f);
	return val;
}

/* The relay's PCI function (there is one virtio-vsock device per guest). */
static inline int rr_find(char *dir, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(RR_SYSFS_PCI);
	int rc = -ENODEV;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		unsigned long dev;

		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, len, RR_SYSFS_PCI "/%s", de->d_name);
		dev = rr_read_hex(dir, "device");
		if (rr_read_hex(dir, "vendor") == RR_VIRTIO_VENDOR &&
		    (dev == RR_VSOCK_MODERN || dev == RR_VSOCK_TRANS)) {
			rc = 0;
			break;
		}
	}
	closedir(d);
	return rc;
}

static inline void rr_driver_of(const char *dev, char *name, size_t len)
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

static inline int rr_cfg_read(const char *dev, unsigned int off, void *buf,
			      size_t len)
{
	char path[PATH_MAX + 16];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/config", dev);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static inline int rr_cfg_write(const char *dev, unsigned int off,
			       const void *buf, size_t len)
{
	char path[PATH_MAX + 16];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/config", dev);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pwrite(fd, buf, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* Start address and length of BAR @bar, from sysfs "resource". */
static inline int rr_bar_range(const char *dev, int bar, uint64_t *start,
			       uint64_t *len)
{
	char path[PATH_MAX + 16];
	unsigned long long s, e, fl;
	FILE *f;
	int i, rc = -EIO;

	snprintf(path, sizeof(path), "%s/resource", dev);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	for (i = 0; i <= bar; i++) {
		if (fscanf(f, "%llx %llx %llx", &s, &e, &fl) != 3)
			goto out;
	}
	if (!s || e < s)
		goto out;
	*start = s;
	*len = e - s + 1;
	rc = 0;
out:
	fclose(f);
	return rc;
}

static inline uint64_t rr_virt_to_phys(const void *p)
{
	uint64_t ent = 0;
	long psz = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent),
		  (uintptr_t)p / psz * sizeof(ent)) != sizeof(ent))
		ent = 0;
	close(fd);
	if (!(ent & (1ULL << 63)))
		return 0;
	return (ent & ((1ULL << 55) - 1)) * psz + (uintptr_t)p % psz;
}

static inline uint8_t rr_rd8(volatile uint8_t *b, unsigned int off)
{
	return *(volatile uint8_t *)(b + off);
}

static inline uint16_t rr_rd16(volatile uint8_t *b, unsigned int off)
{
	return *(volatile uint16_t *)(b + off);
}

static inline uint32_t rr_rd32(volatile uint8_t *b, unsigned int off)
{
	return *(volatile uint32_t *)(b + off);
}

static inline void rr_wr8(volatile uint8_t *b, unsigned int off, uint8_t v)
{
	*(volatile uint8_t *)(b + off) = v;
}

static inline void rr_wr16(volatile uint8_t *b, unsigned int off, uint16_t v)
{
	*(volatile uint16_t *)(b + off) = v;
}

static inline void rr_wr32(volatile uint8_t *b, unsigned int off, uint32_t v)
{
	*(volatile uint32_t *)(b + off) = v;
}

static inline void rr_wr64(volatile uint8_t *b, unsigned int off, uint64_t v)
{
	rr_wr32(b, off, (uint32_t)v);
	rr_wr32(b, off + 4, v >> 32);
}

/*
 * Walks the vendor capabilities: the common and notify structures must
 * live in one BAR, which is mapped whole.
 */
static inline int rr_map(struct relay_raw *r)
{
	uint8_t cfg[256];
	uint8_t pos;
	int bar = -1;
	uint32_t common_off = 0, notify_off = 0;
	bool have_common = false, have_notify = false;
	uint64_t start = 0, len = 0;
	char path[PATH_MAX + 32];
	void *p;

	if (rr_cfg_read(r->dev, 0, cfg, sizeof(cfg)))
		return -EIO;
	for (pos = cfg[0x34] & ~3; pos; pos = cfg[pos + 1] & ~3) {
		uint8_t type = cfg[pos + 3];
		uint32_t off;

		if (cfg[pos] != 0x09)	/* PCI_CAP_ID_VNDR */
			continue;
		memcpy(&off, &cfg[pos + 8], 4);
		if (type == 1) {	/* VIRTIO_PCI_CAP_COMMON_CFG */
			bar = cfg[pos + 4];
			common_off = off;
			have_common = true;
		} else if (type == 2) {	/* VIRTIO_PCI_CAP_NOTIFY_CFG */
			if (bar >= 0 && cfg[pos + 4] != bar)
				return -ENOTSUP;
			notify_off = off;
			memcpy(&r->notify_mult, &cfg[pos + 16], 4);
			have_notify = true;
		}
	}
	if (!have_common || !have_notify)
		return -ENOTSUP;
	if (rr_bar_range(r->dev, bar, &start, &len))
		return -EIO;
	snprintf(path, sizeof(path), "%s/resource%d", r->dev, bar);
	r->bar_fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (r->bar_fd < 0)
		return -errno;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->bar_fd, 0);
	if (p == MAP_FAILED) {
		close(r->bar_fd);
		r->bar_fd = -1;
		return -errno;
	}
	r->bar = p;
	r->bar_len = len;
	r->bar_phys = start;
	r->common = r->bar + common_off;
	r->common_phys = start + common_off;
	r->notify_base = r->bar + notify_off;
	return 0;
}

static inline void rr_unmap(struct relay_raw *r)
{
	if (r->bar) {
		munmap((void *)r->bar, r->bar_len);
		close(r->bar_fd);
		r->bar = NULL;
	}
	if (r->mem) {
		munmap(r->mem, RR_HUGE);
		r->mem = NULL;
	}
}

/* Phys address of offset @off of the hugepage. */
static inline uint64_t rr_phys(struct relay_raw *r, size_t off)
{
	return r->mem_phys + off;
}

static inline uint8_t *rr_buf(struct relay_raw *r, unsigned int i)
{
	return r->mem + RR_BUF_BASE + (size_t)i * RR_BUF_SIZE;
}

/* Resets the device; true once it reads back 0. */
static inline bool rr_reset(struct relay_raw *r)
{
	long deadline = rr_now_ms() + 5000;

	rr_wr8(r->common, RR_CC_STATUS, 0);
	while (rr_rd8(r->common, RR_CC_STATUS)) {
		if (rr_now_ms() > deadline)
			return false;
		usleep(1000);
	}
	return true;
}

/* The driver's side of initialisation (virtio 1.x, 3.1.1); 0 or -errno. */
static inline int rr_init(struct relay_raw *r)
{
	int q;

	if (!rr_reset(r))
		return -ETIMEDOUT;
	rr_wr8(r->common, RR_CC_STATUS, RR_S_ACK | RR_S_DRIVER);
	rr_wr32(r->common, RR_CC_GFSELECT, 0);
	rr_wr32(r->common, RR_CC_GF, 0);
	rr_wr32(r->common, RR_CC_GFSELECT, 1);
	rr_wr32(r->common, RR_CC_GF, 1);	/* VIRTIO_F_VERSION_1 */
	rr_wr8(r->common, RR_CC_STATUS,
	       RR_S_ACK | RR_S_DRIVER | RR_S_FEATURES_OK);
	if (!(rr_rd8(r->common, RR_CC_STATUS) & RR_S_FEATURES_OK))
		return -EPROTO;
	memset(r->mem, 0, RR_BUF_BASE);
	for (q = 0; q < RR_NQ; q++) {
		struct rr_queue *vq = &r->q[q];
		size_t base = (size_t)q * RR_QAREA;

		vq->desc = (void *)(r->mem + base);
		vq->avail = (void *)(r->mem + base + 0x400);
		vq->used = (void *)(r->mem + base + 0x800);
		vq->avail_idx = vq->used_seen = vq->next_desc = 0;
		rr_wr16(r->common, RR_CC_Q_SELECT, q);
		if (rr_rd16(r->common, RR_CC_Q_SIZE) < RR_QSIZE)
			return -ENOSPC;
		rr_wr16(r->common, RR_CC_Q_SIZE, RR_QSIZE);
		rr_wr16(r->common, RR_CC_Q_MSIX, 0xffff);
		rr_wr64(r->common, RR_CC_Q_DESC, rr_phys(r, base));
		rr_wr64(r->common, RR_CC_Q_AVAIL, rr_phys(r, base + 0x400));
		rr_wr64(r->common, RR_CC_Q_USED, rr_phys(r, base + 0x800));
		vq->notify = (void *)(r->notify_base +
				      rr_rd16(r->common, RR_CC_Q_NOFF) *
				      r->notify_mult);
		rr_wr16(r->common, RR_CC_Q_ENABLE, 1);
	}
	rr_wr8(r->common, RR_CC_STATUS, RR_S_ACK | RR_S_DRIVER |
	       RR_S_FEATURES_OK | RR_S_DRIVER_OK);
	return 0;
}

/*
 * Takes the function from its driver (the kernel's sockets over it are
 * reset), maps it and a hugepage, and initialises it; 0 or -errno.
 */
static inline int rr_open(struct relay_raw *r)
{
	char path[PATH_MAX + 32];
	uint16_t cmd;
	void *m;
	int rc;

	memset(r, 0, sizeof(*r));
	r->bar_fd = -1;
	rc = rr_find(r->dev, sizeof(r->dev));
	if (rc)
		return rc;
	rr_driver_of(r->dev, r->drv, sizeof(r->drv));
	if (r->drv[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/unbind",
			 r->drv);
		rc = rr_write_file(path, strrchr(r->dev, '/') + 1);
		if (rc)
			return rc;
	}
	snprintf(path, sizeof(path), "%s/enable", r->dev);
	rc = rr_write_file(path, "1");
	if (rc)
		return rc;
	/* memory space and bus mastering */
	if (rr_cfg_read(r->dev, 4, &cmd, 2))
		return -EIO;
	cmd |= 0x6;
	if (rr_cfg_write(r->dev, 4, &cmd, 2))
		return -EIO;
	rc = rr_map(r);
	if (rc)
		return rc;
	m = mmap(NULL, RR_HUGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE |
		 MAP_LOCKED, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	r->mem = m;
	r->mem_phys = rr_virt_to_phys(m);
	if (!r->mem_phys)
		return -EFAULT;
	return rr_init(r);
}

/* Resets the device and gives it back to its driver; 0 or -errno. */
static inline int rr_close(struct relay_raw *r)
{
	char path[PATH_MAX + 32];
	int rc = 0;

	if (r->bar && !rr_reset(r))
		rc = -ETIMEDOUT;
	rr_unmap(r);
	if (r->drv[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind",
			 r->drv);
		if (rr_write_file(path, strrchr(r->dev, '/') + 1) && !rc)
			rc = -EIO;
		r->drv[0] = '\0';
	}
	return rc;
}

/* Adds a chain of @n descriptors to queue @q and makes it available. */
static inline void rr_post(struct relay_raw *r, int q, const uint64_t *addr,
			   const uint32_t *len, int n, bool write)
{
	struct rr_queue *vq = &r->q[q];
	uint16_t head = vq->next_desc;
	int i;

	for (i = 0; i < n; i++) {
		uint16_t d = (vq->next_desc + i) % RR_QSIZE;

		vq->desc[d].addr = addr[i];
		vq->desc[d].len = len[i];
		vq->desc[d].flags = (write ? RR_DESC_F_WRITE : 0) |
				    (i + 1 < n ? RR_DESC_F_NEXT : 0);
		vq->desc[d].next = (d + 1) % RR_QSIZE;
	}
	vq->next_desc = (vq->next_desc + n) % RR_QSIZE;
	vq->avail[2 + vq->avail_idx % RR_QSIZE] = head;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->avail_idx++;
	vq->avail[1] = vq->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static inline void rr_kick(struct relay_raw *r, int q)
{
	*r->q[q].notify = q;
}

/*
 * Waits up to @ms for the next used element of queue @q; its length in
 * @len.  False on timeout.
 */
static inline bool rr_wait_used(struct relay_raw *r, int q, uint32_t *len,
				long ms)
{
	struct rr_queue *vq = &r->q[q];
	long deadline = rr_now_ms() + ms;

	while (vq->used[1] == vq->used_seen) {
		if (rr_now_ms() > deadline)
			return false;
		usleep(1000);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*len = *(volatile uint32_t *)((volatile uint8_t *)vq->used + 4 +
				      8 * (vq->used_seen % RR_QSIZE) + 4);
	vq->used_seen++;
	return true;
}

/* Sends one packet (header and @len payload bytes) and waits for TX. */
static inline bool rr_send(struct relay_raw *r, const struct rr_hdr *h,
			   const void *data, uint32_t len)
{
	uint8_t *b = rr_buf(r, RR_QSIZE + r->q[RR_TXQ].next_desc);
	uint64_t addr[2] = { rr_phys(r, b - r->mem),
			     rr_phys(r, b - r->mem + sizeof(*h)) };
	uint32_t lens[2] = { sizeof(*h), len };
	uint32_t used;

	if (len > RR_BUF_SIZE - sizeof(*h))
		return false;
	memcpy(b, h, sizeof(*h));
	if (len)
		memcpy(b + sizeof(*h), data, len);
	rr_post(r, RR_TXQ, addr, lens, len ? 2 : 1, false);
	rr_kick(r, RR_TXQ);
	return rr_wait_used(r, RR_TXQ, &used, 5000);
}

static inline struct rr_hdr rr_make(uint64_t src, uint32_t sport,
				    uint64_t dst, uint32_t dport,
				    uint16_t op, uint16_t type)
{
	struct rr_hdr h = {
		.src_cid = src, .dst_cid = dst,
		.src_port = sport, .dst_port = dport,
		.type = type, .op = op, .buf_alloc = 256 * 1024,
	};

	return h;
}

#endif /* RELAY_RAW_H */
