// SPDX-License-Identifier: GPL-2.0
/*
 * ne_device_test: conformance of the (emulated) NE PCI device, driven from
 * userspace with the driver unbound: BAR 3 mapped through sysfs, commands
 * completed by polling EVTCNT.  Every test needs BAR 2 (ne-pci
 * test-controls=on: fault injection, counters) and fails without it, so
 * that losing the controls never weakens the suite.  At exit the device is
 * rebound to the driver it had, which handshakes again.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "ne_raw_dev.h"

/* Linux errno values the device answers with (its wire values). */
#define NE_U32_MAX		0xffffffffULL

/* The device's default properties (tools/qemu/hw/ne/ne-pci.c). */
#define NE_DEFAULT_MAX_SLOTS	8
#define NE_DEFAULT_FIRST_CID	16

/* 64 MiB = the smallest enclave, as 2 MiB pages. */
#define NE_MIN_PAGES		(NE_MIN_ENCLAVE_MEM / NE_HUGE_SIZE)


FIXTURE(dev) {
	struct ne_raw raw;
	struct ne_mem mem;
	int nr_cpus;
};

FIXTURE_SETUP(dev)
{
	ASSERT_EQ(0, ne_raw_open(&self->raw));
	ASSERT_TRUE(self->raw.tc != NULL) {
		TH_LOG("no test controls: BAR 2 missing (tools/ne-vm --ne-pci test-controls=on)");
	}
	ne_tc_wr(&self->raw, NE_TESTCTL_FAIL_ARM, 0);
	ne_tc_wr(&self->raw, NE_TESTCTL_DELAY_ARM, 0);
	ne_tc_wr(&self->raw, NE_TESTCTL_NOREPLY_ARM, 0);
	ne_tc_wr(&self->raw, NE_TESTCTL_STUCK_ARM, 0);
	ne_tc_wr(&self->raw, NE_TESTCTL_OFF_STAYS_ARM, 0);
	/* The handshake also frees whatever an earlier test left behind. */
	ASSERT_EQ(0, ne_raw_handshake(&self->raw));
	ne_tc_wr(&self->raw, NE_TESTCTL_COUNTERS_RESET, 1);
	self->nr_cpus = ne_nr_parent_cpus();
}

FIXTURE_TEARDOWN(dev)
{
	struct ne_raw_reply rep;

	if (self->raw.tc) {
		ne_tc_wr(&self->raw, NE_TESTCTL_FAIL_ARM, 0);
		ne_tc_wr(&self->raw, NE_TESTCTL_DELAY_ARM, 0);
		ne_tc_wr(&self->raw, NE_TESTCTL_NOREPLY_ARM, 0);
		ne_tc_wr(&self->raw, NE_TESTCTL_STUCK_ARM, 0);
		ne_tc_wr(&self->raw, NE_TESTCTL_OFF_STAYS_ARM, 0);
	}
	/* A command may be stuck (never-reply knob): re-handshake first. */
	EXPECT_EQ(0, ne_raw_handshake(&self->raw));
	EXPECT_LE(0, ne_raw_free_all(&self->raw));
	EXPECT_EQ(0, ne_raw_cmd(&self->raw, NE_CMD_SLOT_COUNT, "", 1, &rep));
	EXPECT_EQ(0, rep.slot_count);
	ne_mem_free(&self->mem);
	ne_raw_close(&self->raw);
}

#define NEED_MEM(n)							\
	do {								\
		int __rc = ne_mem_alloc(&self->mem, (n));		\
		ASSERT_EQ(0, __rc) {					\
			TH_LOG("cannot map %d hugepages: %s", (int)(n),	\
			       strerror(-__rc));			\
		}							\
	} while (0)

static int slot_count(struct ne_raw *r)
{
	struct ne_raw_reply rep;
	int rc = ne_raw_cmd(r, NE_CMD_SLOT_COUNT, "", 1, &rep);

	return rc ? rc : (int)rep.slot_count;
}

/* A slot with 64 MiB (pages [first, first + 32)) and CPU @cpu, started. */
static int start_min_enclave(struct ne_raw *r, const struct ne_mem *m,
			     size_t first, uint32_t cpu, uint64_t cid,
			     uint64_t *uid, uint64_t *cid_out)
{
	int rc = ne_raw_slot_alloc(r, uid);

	if (rc)
		return rc;
	rc = ne_raw_add_pages(r, *uid, m, first, NE_MIN_PAGES);
	if (rc)
		return rc;
	rc = ne_raw_add_vcpu(r, *uid, cpu);
	if (rc)
		return rc;
	return ne_raw_start(r, *uid, cid, 0, cid_out);
}

/* ---- registers and handshake ------------------------------------------ */

TEST_F(dev, handshake)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;

	EXPECT_EQ(1, ne_rd8(r, NE_REG_ENABLE));
	EXPECT_EQ(1, ne_rd16(r, NE_REG_VERSION));

	/* A version the device does not speak reads back as another one. */
	ne_wr16(r, NE_REG_VERSION, 2);
	EXPECT_NE(2, ne_rd16(r, NE_REG_VERSION));
	ne_wr16(r, NE_REG_VERSION, 1);
	EXPECT_EQ(1, ne_rd16(r, NE_REG_VERSION));

	/* Disabled, the device answers every command with -ENODEV. */
	ne_wr8(r, NE_REG_ENABLE, 0);
	EXPECT_EQ(0, ne_rd8(r, NE_REG_ENABLE));
	EXPECT_EQ(-ENODEV, ne_raw_cmd(r, NE_CMD_SLOT_COUNT, "", 1, &rep));

	/* ENABLE takes only 0 and 1. */
	ne_wr8(r, NE_REG_ENABLE, 7);
	EXPECT_EQ(0, ne_rd8(r, NE_REG_ENABLE));
	ASSERT_EQ(0, ne_raw_handshake(r));
	EXPECT_EQ(0, ne_raw_cmd(r, NE_CMD_SLOT_COUNT, "", 1, &rep));
}

TEST_F(dev, evtcnt_counts_each_reply)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint32_t before = ne_rd32(r, NE_REG_EVTCNT), after;
	uint32_t replies = r->tc ? ne_tc_rd(r, NE_TESTCTL_REPLIES) : 0;
	int i;

	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, ne_raw_cmd(r, NE_CMD_SLOT_COUNT, "", 1, &rep));
	after = ne_rd32(r, NE_REG_EVTCNT);
	if (ne_raw_evtcnt_frozen(r)) {
		/* reply-counter=off: 10 replies posted, EVTCNT still 0. */
		EXPECT_EQ(replies + 10, ne_tc_rd(r, NE_TESTCTL_REPLIES));
		EXPECT_EQ(0, before);
		EXPECT_EQ(0, after);
		return;
	}
	EXPECT_EQ((uint16_t)(before + 10), (uint16_t)after);
	EXPECT_EQ(before >> 16, after >> 16);	/* no event */
}

TEST_F(dev, unknown_commands_are_refused)
{
	static const uint32_t types[] = { NE_CMD_INVALID, NE_CMD_MAX, 13, 16,
					  27, 255, 0x10000, 0xffffffff };
	struct ne_raw_reply rep;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(types); i++) {
		EXPECT_EQ(-EOPNOTSUPP, ne_raw_cmd(&self->raw, types[i], "", 1,
						  &rep)) {
			TH_LOG("command type %u", types[i]);
		}
	}
	/* The device still works. */
	EXPECT_EQ(0, slot_count(&self->raw));
}

/* ---- slots ------------------------------------------------------------- */

TEST_F(dev, slot_alloc_and_info)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint8_t unused = 0;
	uint64_t uid;

	ASSERT_EQ(0, ne_raw_cmd(r, NE_CMD_SLOT_ALLOC, &unused, 1, &rep));
	uid = rep.slot_uid;
	EXPECT_NE(0, uid);
	EXPECT_LT(0, rep.mem_regions);

	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(uid, rep.slot_uid);
	EXPECT_EQ(NE_STATE_INIT, rep.state);
	EXPECT_EQ(0, rep.mem_size);
	EXPECT_EQ(0, rep.mem_regions);
	EXPECT_EQ(0, rep.nr_vcpus);
	EXPECT_EQ(0, rep.enclave_cid);
	EXPECT_EQ(0, rep.flags);
	EXPECT_EQ(1, slot_count(r));

	/* Only payload version 0 exists. */
	unused = 1;
	EXPECT_EQ(-EINVAL, ne_raw_cmd(r, NE_CMD_SLOT_ALLOC, &unused, 1, &rep));
	EXPECT_EQ(1, slot_count(r));

	EXPECT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));
	EXPECT_EQ(uid, rep.slot_uid);
	EXPECT_EQ(-ENOENT, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(-ENOENT, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));
	EXPECT_EQ(0, slot_count(r));
}

TEST_F(dev, slot_uids_are_opaque)
{
	uint64_t uids[NE_DEFAULT_MAX_SLOTS];
	int i, j, sequential = 0;

	for (i = 0; i < NE_DEFAULT_MAX_SLOTS; i++) {
		ASSERT_EQ(0, ne_raw_slot_alloc(&self->raw, &uids[i]));
		EXPECT_NE(0, uids[i]);
		for (j = 0; j < i; j++)
			EXPECT_NE(uids[j], uids[i]);
		if (i && (uids[i] - uids[i - 1] <= 16 ||
			  uids[i - 1] - uids[i] <= 16))
			sequential++;
	}
	/* Random 64-bit ids are essentially never within 16 of each other. */
	EXPECT_EQ(0, sequential);
}

TEST_F(dev, slot_limit)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, first = 0;
	int n;

	for (n = 0; n < 1024; n++) {
		if (ne_raw_slot_alloc(r, &uid))
			break;
		if (!first)
			first = uid;
	}
	EXPECT_EQ(NE_DEFAULT_MAX_SLOTS, n);
	EXPECT_EQ(-ENOSPC, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(n, slot_count(r));

	/* Freeing one makes room for exactly one. */
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, first, &rep));
	EXPECT_EQ(0, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(-ENOSPC, ne_raw_slot_alloc(r, &uid));
}

TEST_F(dev, unknown_slot_is_refused_by_every_command)
{
	static const uint32_t types[] = {
		NE_CMD_ENCLAVE_START, NE_CMD_ENCLAVE_STOP, NE_CMD_SLOT_FREE,
		NE_CMD_SLOT_ADD_MEM, NE_CMD_SLOT_ADD_VCPU, NE_CMD_SLOT_INFO,
		NE_CMD_SLOT_ADD_BULK_VCPUS,
	};
	struct ne_raw_reply rep;
	uint64_t uid, req[3];
	size_t i;

	ASSERT_EQ(0, ne_raw_slot_alloc(&self->raw, &uid));
	req[0] = uid ^ 1;
	req[1] = 0;
	req[2] = 0;
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		EXPECT_EQ(-ENOENT, ne_raw_cmd(&self->raw, types[i], req,
					      sizeof(req), &rep)) {
			TH_LOG("command type %u", types[i]);
		}
		EXPECT_EQ(0, rep.slot_uid);
	}
	req[0] = 0;
	EXPECT_EQ(-ENOENT, ne_raw_cmd(&self->raw, NE_CMD_SLOT_INFO, req,
				      sizeof(req), &rep));
}

TEST_F(dev, enumeration)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uids[4], seen[4], prev = 0, min = UINT64_MAX;
	int i, n = 0, found;

	EXPECT_EQ(-ENOENT, ne_raw_cmd_u64(r, NE_CMD_NEXT_SLOT, 0, &rep));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, ne_raw_slot_alloc(r, &uids[i]));
		if (uids[i] < min)
			min = uids[i];
	}
	EXPECT_EQ(4, slot_count(r));

	/* NEXT_SLOT(prev + 1) walks the slots in increasing uid order. */
	while (n < 5 && ne_raw_cmd_u64(r, NE_CMD_NEXT_SLOT, prev, &rep) == 0) {
		if (n)
			EXPECT_LT(seen[n - 1], rep.slot_uid);
		if (n < 4)
			seen[n] = rep.slot_uid;
		n++;
		if (rep.slot_uid == UINT64_MAX)
			break;
		prev = rep.slot_uid + 1;
	}
	ASSERT_EQ(4, n);
	EXPECT_EQ(min, seen[0]);
	for (i = 0; i < 4; i++) {
		found = (seen[0] == uids[i]) + (seen[1] == uids[i]) +
			(seen[2] == uids[i]) + (seen[3] == uids[i]);
		EXPECT_EQ(1, found);
	}
	/* The uid itself is included; one past the largest finds none. */
	EXPECT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_NEXT_SLOT, seen[2], &rep));
	EXPECT_EQ(seen[2], rep.slot_uid);
	if (seen[3] != UINT64_MAX)
		EXPECT_EQ(-ENOENT, ne_raw_cmd_u64(r, NE_CMD_NEXT_SLOT,
						  seen[3] + 1, &rep));

	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, seen[1], &rep));
	EXPECT_EQ(3, slot_count(r));
	EXPECT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_NEXT_SLOT, seen[0] + 1, &rep));
	EXPECT_EQ(seen[2], rep.slot_uid);
}

/* ---- memory ------------------------------------------------------------ */

TEST_F(dev, add_mem)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid;

	NEED_MEM(3);
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ASSERT_EQ(0, ne_raw_add_pages(r, uid, &self->mem, 0, 3));
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(3, rep.mem_regions);
	EXPECT_EQ(3 * NE_HUGE_SIZE, rep.mem_size);
	EXPECT_EQ(NE_STATE_INIT, rep.state);
}

TEST_F(dev, add_mem_refusals)
{
	struct ne_raw *r = &self->raw;
	uint64_t uid, other, gpa;
	int shift;

	NEED_MEM(2);
	gpa = self->mem.gpa[0];
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &other));

	/* Empty, misaligned, or not a multiple of 2 MiB. */
	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, gpa, 0));
	for (shift = 12; shift < 21; shift++) {
		EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, gpa + (1ULL << shift),
						  NE_HUGE_SIZE));
		EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, gpa, 1ULL << shift));
		EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, gpa,
						  NE_HUGE_SIZE + (1ULL << shift)));
	}
	/* Outside RAM: beyond it, wrapping, or over MMIO (the LAPIC/IOAPIC). */
	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, 1ULL << 46, NE_HUGE_SIZE));
	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, -NE_HUGE_SIZE,
					  2 * NE_HUGE_SIZE));
	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, 0xfec00000ULL, NE_HUGE_SIZE));
	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, uid, 0, 1ULL << 40));

	/* Never donated twice, to the same slot or another one. */
	ASSERT_EQ(0, ne_raw_add_mem(r, uid, gpa, NE_HUGE_SIZE));
	EXPECT_EQ(-EBUSY, ne_raw_add_mem(r, uid, gpa, NE_HUGE_SIZE));
	EXPECT_EQ(-EBUSY, ne_raw_add_mem(r, other, gpa, NE_HUGE_SIZE));
	/* A bigger range that overlaps it is refused too. */
	if (gpa >= NE_HUGE_SIZE)
		EXPECT_EQ(-EBUSY, ne_raw_add_mem(r, other, gpa - NE_HUGE_SIZE,
						 2 * NE_HUGE_SIZE));
	EXPECT_EQ(0, ne_raw_add_mem(r, other, self->mem.gpa[1], NE_HUGE_SIZE));
}

TEST_F(dev, too_many_ranges)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint8_t unused = 0;
	uint64_t uid, max;

	ASSERT_EQ(0, ne_raw_cmd(r, NE_CMD_SLOT_ALLOC, &unused, 1, &rep));
	uid = rep.slot_uid;
	max = rep.mem_regions;
	/* the parent VM has 512 hugepages; the default (256) fits */
	if (max > 448)
		SKIP(return, "max-mem-regions %llu is too many hugepages to fill",
		     (unsigned long long)max);
	NEED_MEM(max + 1);
	/* Pages go highest first, so the last one continues nothing. */
	EXPECT_EQ(-ENOSPC, ne_raw_add_pages(r, uid, &self->mem, 0, max + 1));
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(max, rep.mem_regions);
	EXPECT_EQ(max * NE_HUGE_SIZE, rep.mem_size);
}

TEST_F(dev, continuing_range_extends_the_last_one)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, lo = 0, hi = 0;
	size_t i, j;

	/* 32 pages of the boot-time pool: two of them are adjacent. */
	NEED_MEM(32);
	for (i = 0; i < self->mem.nr_pages && !lo; i++)
		for (j = 0; j < self->mem.nr_pages; j++)
			if (self->mem.gpa[j] == self->mem.gpa[i] + NE_HUGE_SIZE) {
				lo = self->mem.gpa[i];
				hi = self->mem.gpa[j];
				break;
			}
	ASSERT_NE(0, lo) {
		TH_LOG("no two physically adjacent huge pages among %zu",
		       self->mem.nr_pages);
	}
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ASSERT_EQ(0, ne_raw_add_mem(r, uid, lo, NE_HUGE_SIZE));
	ASSERT_EQ(0, ne_raw_add_mem(r, uid, hi, NE_HUGE_SIZE));
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(1, rep.mem_regions);
	EXPECT_EQ(2 * NE_HUGE_SIZE, rep.mem_size);

	/* The other way round, it is a second range. */
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ASSERT_EQ(0, ne_raw_add_mem(r, uid, hi, NE_HUGE_SIZE));
	ASSERT_EQ(0, ne_raw_add_mem(r, uid, lo, NE_HUGE_SIZE));
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(2, rep.mem_regions);
}

/* ---- vCPUs ------------------------------------------------------------- */

TEST_F(dev, add_vcpu)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, other;
	int cpu;

	if (self->nr_cpus < 3)
		SKIP(return, "needs 3 parent CPUs");
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &other));

	EXPECT_EQ(-EINVAL, ne_raw_add_vcpu(r, uid, 0));	/* the boot CPU */
	EXPECT_EQ(-EINVAL, ne_raw_add_vcpu(r, uid, self->nr_cpus));
	EXPECT_EQ(-EINVAL, ne_raw_add_vcpu(r, uid, 0xffffffff));

	for (cpu = 1; cpu < self->nr_cpus - 1; cpu++)
		EXPECT_EQ(0, ne_raw_add_vcpu(r, uid, cpu));
	EXPECT_EQ(-EBUSY, ne_raw_add_vcpu(r, uid, 1));
	EXPECT_EQ(-EBUSY, ne_raw_add_vcpu(r, other, 1));
	EXPECT_EQ(0, ne_raw_add_vcpu(r, other, self->nr_cpus - 1));

	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ((uint64_t)self->nr_cpus - 2, rep.nr_vcpus);
	ASSERT_EQ(0, ne_raw_slot_info(r, other, &rep));
	EXPECT_EQ(1, rep.nr_vcpus);

	/* Freeing a slot gives its CPUs back. */
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));
	EXPECT_EQ(0, ne_raw_add_vcpu(r, other, 1));
}

TEST_F(dev, add_bulk_vcpus)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, other, free_cpus = self->nr_cpus - 1;

	if (self->nr_cpus < 3)
		SKIP(return, "needs 3 parent CPUs");
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &other));

	EXPECT_EQ(-EINVAL, ne_raw_add_bulk(r, uid, 0));
	EXPECT_EQ(-ENOSPC, ne_raw_add_bulk(r, uid, free_cpus + 1));
	EXPECT_EQ(-ENOSPC, ne_raw_add_bulk(r, uid, UINT64_MAX));

	/* One CPU by id, the rest in bulk: then none is left. */
	ASSERT_EQ(0, ne_raw_add_vcpu(r, other, 1));
	ASSERT_EQ(0, ne_raw_add_bulk(r, uid, free_cpus - 1));
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(free_cpus - 1, rep.nr_vcpus);
	EXPECT_EQ(-ENOSPC, ne_raw_add_bulk(r, other, 1));
	EXPECT_EQ(-EBUSY, ne_raw_add_vcpu(r, other, 2));
}

/* ---- start, stop, free ------------------------------------------------- */

TEST_F(dev, start_and_get_slot)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, uid2, cid, cid2;

	if (self->nr_cpus < 3)
		SKIP(return, "needs 3 parent CPUs");
	NEED_MEM(2 * NE_MIN_PAGES);
	ASSERT_EQ(0, start_min_enclave(r, &self->mem, 0, 1, 0, &uid, &cid));
	/* CID 0: the device picks the first free one from first-cid. */
	EXPECT_EQ(NE_DEFAULT_FIRST_CID, cid);

	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(NE_STATE_RUNNING, rep.state);
	EXPECT_EQ(cid, rep.enclave_cid);
	EXPECT_EQ(NE_MIN_ENCLAVE_MEM, rep.mem_size);
	EXPECT_EQ(NE_MIN_PAGES, rep.mem_regions);
	EXPECT_EQ(1, rep.nr_vcpus);
	EXPECT_EQ(0, rep.flags);

	EXPECT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_GET_SLOT, cid, &rep));
	EXPECT_EQ(uid, rep.slot_uid);
	EXPECT_EQ(-ENOENT, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_GET_SLOT, cid + 1,
					  &rep));
	EXPECT_EQ(-ENOENT, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_GET_SLOT, 0, &rep));

	/* A CID in use is refused; an explicit free one is taken as is. */
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid2));
	ASSERT_EQ(0, ne_raw_add_pages(r, uid2, &self->mem, NE_MIN_PAGES,
				      NE_MIN_PAGES));
	ASSERT_EQ(0, ne_raw_add_vcpu(r, uid2, 2));
	EXPECT_EQ(-EADDRINUSE, ne_raw_start(r, uid2, cid, 0, NULL));
	ASSERT_EQ(0, ne_raw_start(r, uid2, 1000, 1, &cid2));
	EXPECT_EQ(1000, cid2);
	ASSERT_EQ(0, ne_raw_slot_info(r, uid2, &rep));
	EXPECT_EQ(1, rep.flags);	/* debug */
	EXPECT_EQ(NE_STATE_RUNNING, rep.state);
	EXPECT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_GET_SLOT, 1000, &rep));
	EXPECT_EQ(uid2, rep.slot_uid);
}

TEST_F(dev, start_refusals)
{
	static const uint64_t bad_cids[] = { 1, 2, 3, NE_U32_MAX,
					     NE_U32_MAX + 1, UINT64_MAX };
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, cid;
	size_t i;
	int bit;

	NEED_MEM(NE_MIN_PAGES);

	/* Nothing donated; then 64 MiB but no vCPU. */
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(-EINVAL, ne_raw_start(r, uid, 0, 0, NULL));
	ASSERT_EQ(0, ne_raw_add_pages(r, uid, &self->mem, 0, NE_MIN_PAGES));
	EXPECT_EQ(-EINVAL, ne_raw_start(r, uid, 0, 0, NULL));
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));

	/* A vCPU but 2 MiB short of 64 MiB. */
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ASSERT_EQ(0, ne_raw_add_pages(r, uid, &self->mem, 0, NE_MIN_PAGES - 1));
	ASSERT_EQ(0, ne_raw_add_vcpu(r, uid, 1));
	EXPECT_EQ(-EINVAL, ne_raw_start(r, uid, 0, 0, NULL));
	ASSERT_EQ(0, ne_raw_add_pages(r, uid, &self->mem, NE_MIN_PAGES - 1, 1));

	/* Every flag but bit 0 (debug) is refused. */
	for (bit = 1; bit < 64; bit++) {
		EXPECT_EQ(-EINVAL, ne_raw_start(r, uid, 0, 1ULL << bit, NULL)) {
			TH_LOG("flag bit %d", bit);
		}
	}
	for (i = 0; i < ARRAY_SIZE(bad_cids); i++) {
		EXPECT_EQ(-EINVAL, ne_raw_start(r, uid, bad_cids[i], 0, NULL)) {
			TH_LOG("cid %llu", (unsigned long long)bad_cids[i]);
		}
	}
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(NE_STATE_INIT, rep.state);
	EXPECT_EQ(0, rep.enclave_cid);

	/* The same slot starts once the request is right. */
	EXPECT_EQ(0, ne_raw_start(r, uid, 4, 0, &cid));
	EXPECT_EQ(4, cid);
}

TEST_F(dev, no_resources_after_start)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, cid;

	if (self->nr_cpus < 3)
		SKIP(return, "needs 3 parent CPUs");
	NEED_MEM(NE_MIN_PAGES + 1);
	ASSERT_EQ(0, start_min_enclave(r, &self->mem, 0, 1, 0, &uid, &cid));

	EXPECT_EQ(-EPERM, ne_raw_add_mem(r, uid, self->mem.gpa[NE_MIN_PAGES],
					 NE_HUGE_SIZE));
	EXPECT_EQ(-EPERM, ne_raw_add_vcpu(r, uid, 2));
	EXPECT_EQ(-EPERM, ne_raw_add_bulk(r, uid, 1));
	EXPECT_EQ(-EPERM, ne_raw_start(r, uid, 0, 0, NULL));

	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(NE_MIN_ENCLAVE_MEM, rep.mem_size);
	EXPECT_EQ(1, rep.nr_vcpus);
	EXPECT_EQ(cid, rep.enclave_cid);
}

TEST_F(dev, stop_and_free)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, uid2, cid;

	if (self->nr_cpus < 3)
		SKIP(return, "needs 3 parent CPUs");
	NEED_MEM(NE_MIN_PAGES);
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(-EPERM, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_STOP, uid, &rep));
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));

	ASSERT_EQ(0, start_min_enclave(r, &self->mem, 0, 1, 0, &uid, &cid));
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_STOP, uid, &rep));
	EXPECT_EQ(uid, rep.slot_uid);
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(NE_STATE_STOPPED, rep.state);
	/* Stopped keeps its resources and CID until freed. */
	EXPECT_EQ(NE_MIN_ENCLAVE_MEM, rep.mem_size);
	EXPECT_EQ(1, rep.nr_vcpus);
	EXPECT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_GET_SLOT, cid, &rep));
	EXPECT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_STOP, uid, &rep));
	EXPECT_EQ(-EPERM, ne_raw_start(r, uid, 0, 0, NULL));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid2));
	EXPECT_EQ(-EBUSY, ne_raw_add_mem(r, uid2, self->mem.gpa[0],
					 NE_HUGE_SIZE));
	EXPECT_EQ(-EBUSY, ne_raw_add_vcpu(r, uid2, 1));

	/* Free gives back memory, vCPU and CID. */
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));
	EXPECT_EQ(-ENOENT, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(-ENOENT, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_GET_SLOT, cid,
					  &rep));
	ASSERT_EQ(0, ne_raw_add_pages(r, uid2, &self->mem, 0, NE_MIN_PAGES));
	ASSERT_EQ(0, ne_raw_add_vcpu(r, uid2, 1));
	EXPECT_EQ(0, ne_raw_start(r, uid2, cid, 0, NULL));
	EXPECT_EQ(1, slot_count(r));
}

TEST_F(dev, disable_frees_every_slot)
{
	struct ne_raw *r = &self->raw;
	uint64_t uid, cid;
	volatile uint8_t *p;

	if (self->nr_cpus < 2)
		SKIP(return, "needs 2 parent CPUs");
	NEED_MEM(NE_MIN_PAGES);
	ASSERT_EQ(0, start_min_enclave(r, &self->mem, 0, 1, 0, &uid, &cid));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(2, slot_count(r));

	ASSERT_EQ(0, ne_raw_handshake(r));
	EXPECT_EQ(0, slot_count(r));
	/* The carve-out ended with the slot: the data is visible again. */
	p = self->mem.va;
	EXPECT_EQ(0x5a, p[0]);
}

/* ---- carve-out ---------------------------------------------------------- */

TEST_F(dev, carve_out)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, cid, *q;
	volatile uint8_t *p, *last;
	uint32_t reads = 0, writes = 0;

	if (self->nr_cpus < 2)
		SKIP(return, "needs 2 parent CPUs");
	NEED_MEM(NE_MIN_PAGES + 1);
	p = self->mem.va;
	last = self->mem.va + NE_MIN_PAGES * NE_HUGE_SIZE;	/* not donated */

	ASSERT_EQ(0, start_min_enclave(r, &self->mem, 0, 1, 0, &uid, &cid));
	reads = ne_tc_rd(r, NE_TESTCTL_CARVE_READS);
	writes = ne_tc_rd(r, NE_TESTCTL_CARVE_WRITES);
	/* Reads give all-ones, writes are dropped; other memory is not. */
	EXPECT_EQ(0xff, p[0]);
	EXPECT_EQ(0xff, p[NE_HUGE_SIZE + 4096]);
	q = (uint64_t *)(self->mem.va + 5 * NE_HUGE_SIZE);
	EXPECT_EQ(UINT64_MAX, *(volatile uint64_t *)q);
	p[0] = 0x11;
	EXPECT_EQ(0xff, p[0]);
	EXPECT_EQ(0x5a + NE_MIN_PAGES, last[0]);
	EXPECT_LE(reads + 4, ne_tc_rd(r, NE_TESTCTL_CARVE_READS));
	EXPECT_LE(writes + 1, ne_tc_rd(r, NE_TESTCTL_CARVE_WRITES));

	/* Stopping keeps the carve-out; freeing the slot ends it. */
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_ENCLAVE_STOP, uid, &rep));
	EXPECT_EQ(0xff, p[0]);
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, uid, &rep));
	EXPECT_EQ(0x5a, p[0]);		/* the dropped write left no trace */
	EXPECT_EQ(0x5b, p[NE_HUGE_SIZE + 4096]);
	EXPECT_EQ(0x5a + 5, self->mem.va[5 * NE_HUGE_SIZE]);
	p[0] = 0x11;
	EXPECT_EQ(0x11, p[0]);
}

/* ---- test controls ------------------------------------------------------ */

TEST_F(dev, testctl_identity_and_counters)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid;
	int i;

	EXPECT_EQ(NE_TESTCTL_LAYOUT_VERSION, ne_tc_rd(r, NE_TESTCTL_LAYOUT));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_CMDS_TOTAL));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_REPLIES));

	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(-EOPNOTSUPP, ne_raw_cmd(r, 200, "", 1, &rep));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_CMD_COUNT(NE_CMD_SLOT_ALLOC)));
	EXPECT_EQ(3, ne_tc_rd(r, NE_TESTCTL_CMD_COUNT(NE_CMD_SLOT_INFO)));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_CMD_COUNT(NE_CMD_SLOT_FREE)));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_CMD_COUNT(NE_TESTCTL_CMD_TYPES - 1)));
	EXPECT_EQ(5, ne_tc_rd(r, NE_TESTCTL_CMDS_TOTAL));
	EXPECT_EQ(5, ne_tc_rd(r, NE_TESTCTL_REPLIES));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_SLOTS));

	ne_tc_wr(r, NE_TESTCTL_COUNTERS_RESET, 1);
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_CMDS_TOTAL));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_REPLIES));
	for (i = 0; i < NE_TESTCTL_CMD_TYPES; i++)
		EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_CMD_COUNT(i)));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_SLOTS));	/* not a counter */
}

TEST_F(dev, fault_fail_next_command)
{
	struct ne_raw *r = &self->raw;
	uint64_t uid;

	/* Any type. */
	ne_tc_wr(r, NE_TESTCTL_FAIL_TYPE, NE_TESTCTL_ANY_TYPE);
	ne_tc_wr(r, NE_TESTCTL_FAIL_RC, (uint32_t)-EIO);
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, 1);
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_FAIL_ARM));
	EXPECT_EQ(-EIO, slot_count(r));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_FAIL_ARM));
	EXPECT_EQ(0, slot_count(r));		/* one-shot */
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));

	/* One type only: other commands pass; the failed one did nothing. */
	ne_tc_wr(r, NE_TESTCTL_FAIL_TYPE, NE_CMD_SLOT_ALLOC);
	ne_tc_wr(r, NE_TESTCTL_FAIL_RC, (uint32_t)-ENOSPC);
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, 1);
	EXPECT_EQ(0, slot_count(r));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_FAIL_ARM));
	EXPECT_EQ(-ENOSPC, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(0, slot_count(r));
	EXPECT_EQ(0, ne_raw_slot_alloc(r, &uid));

	/* Disarming works. */
	ne_tc_wr(r, NE_TESTCTL_FAIL_TYPE, NE_TESTCTL_ANY_TYPE);
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, 1);
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, 0);
	EXPECT_EQ(1, slot_count(r));
}

/* ARM counts commands (layout 4): each match takes one, others none. */
TEST_F(dev, fault_fail_next_commands_counted)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint32_t left;

	ASSERT_LE(4, ne_tc_rd(r, NE_TESTCTL_LAYOUT));
	ne_tc_wr(r, NE_TESTCTL_FAIL_TYPE, NE_CMD_SLOT_COUNT);
	ne_tc_wr(r, NE_TESTCTL_FAIL_RC, (uint32_t)-EBUSY);
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, 3);
	for (left = 3; left; left--) {
		EXPECT_EQ(left, ne_tc_rd(r, NE_TESTCTL_FAIL_ARM));
		EXPECT_EQ(-ENOENT, ne_raw_slot_info(r, 0, &rep));
		EXPECT_EQ(left, ne_tc_rd(r, NE_TESTCTL_FAIL_ARM));
		EXPECT_EQ(-EBUSY, slot_count(r));
	}
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_FAIL_ARM));
	EXPECT_EQ(3, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
	EXPECT_EQ(0, slot_count(r));

	/* The most a register holds is a count too; 0 disarms it. */
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, UINT32_MAX);
	EXPECT_EQ(-EBUSY, slot_count(r));
	EXPECT_EQ(UINT32_MAX - 1, ne_tc_rd(r, NE_TESTCTL_FAIL_ARM));
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, 0);
	EXPECT_EQ(0, slot_count(r));
	EXPECT_EQ(4, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
}

TEST_F(dev, fault_delay_next_command)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint16_t before;
	long t0;

	ne_tc_wr(r, NE_TESTCTL_DELAY_TYPE, NE_CMD_SLOT_COUNT);
	ne_tc_wr(r, NE_TESTCTL_DELAY_MS, 1000);
	ne_tc_wr(r, NE_TESTCTL_DELAY_ARM, 1);
	EXPECT_EQ(1000, ne_tc_rd(r, NE_TESTCTL_DELAY_MS));

	/* Another type is not delayed and leaves the knob armed. */
	t0 = ne_now_ms();
	EXPECT_EQ(-ENOENT, ne_raw_slot_info(r, 0, &rep));
	EXPECT_GT(800, ne_now_ms() - t0);
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_DELAY_ARM));

	before = ne_raw_replies(r);
	t0 = ne_now_ms();
	ne_raw_ring(r, NE_CMD_SLOT_COUNT, "", 1);
	/* No reply for half the delay, then one within the timeout. */
	EXPECT_EQ(-ETIMEDOUT, ne_raw_wait_reply(r, before, 500));
	ASSERT_EQ(0, ne_raw_wait_reply(r, before, NE_RAW_TIMEOUT_MS));
	EXPECT_LE(990, ne_now_ms() - t0);
	ne_raw_read_reply(r, &rep);
	EXPECT_EQ(0, rep.rc);
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_DELAY_ARM));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));

	/* The next one is prompt again. */
	t0 = ne_now_ms();
	EXPECT_EQ(0, slot_count(r));
	EXPECT_GT(800, ne_now_ms() - t0);

	/* Counted (layout 4): the next two are delayed, the third is not. */
	ASSERT_LE(4, ne_tc_rd(r, NE_TESTCTL_LAYOUT));
	ne_tc_wr(r, NE_TESTCTL_DELAY_ARM, 2);
	t0 = ne_now_ms();
	EXPECT_EQ(0, slot_count(r));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_DELAY_ARM));
	EXPECT_EQ(0, slot_count(r));
	EXPECT_LE(1990, ne_now_ms() - t0);
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_DELAY_ARM));
	EXPECT_EQ(3, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
	t0 = ne_now_ms();
	EXPECT_EQ(0, slot_count(r));
	EXPECT_GT(800, ne_now_ms() - t0);
}

TEST_F(dev, fault_never_reply)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint16_t before;
	uint64_t uid;

	ne_tc_wr(r, NE_TESTCTL_NOREPLY_TYPE, NE_CMD_SLOT_ALLOC);
	ne_tc_wr(r, NE_TESTCTL_NOREPLY_ARM, 1);
	EXPECT_EQ(0, slot_count(r));		/* not its type */

	before = ne_raw_replies(r);
	ne_raw_ring(r, NE_CMD_SLOT_ALLOC, "", 1);
	EXPECT_EQ(-ETIMEDOUT, ne_raw_wait_reply(r, before, 300));
	/* One command in flight: a second one is ignored. */
	ne_raw_ring(r, NE_CMD_SLOT_COUNT, "", 1);
	EXPECT_EQ(-ETIMEDOUT, ne_raw_wait_reply(r, before, 100));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_CMDS_IGNORED));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_SLOTS));

	/* Disabling the device abandons it; then it works again. */
	ASSERT_EQ(0, ne_raw_handshake(r));
	EXPECT_EQ(0, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(0, ne_raw_slot_info(r, uid, &rep));
}

/* Counted (layout 4): a hung command again after each turn off and on. */
TEST_F(dev, fault_never_reply_counted)
{
	struct ne_raw *r = &self->raw;
	uint16_t before;
	int i;

	ASSERT_LE(4, ne_tc_rd(r, NE_TESTCTL_LAYOUT));
	ne_tc_wr(r, NE_TESTCTL_NOREPLY_TYPE, NE_CMD_SLOT_COUNT);
	ne_tc_wr(r, NE_TESTCTL_NOREPLY_ARM, 2);
	for (i = 2; i > 0; i--) {
		EXPECT_EQ(i, ne_tc_rd(r, NE_TESTCTL_NOREPLY_ARM));
		before = ne_raw_replies(r);
		ne_raw_ring(r, NE_CMD_SLOT_COUNT, "", 1);
		EXPECT_EQ(-ETIMEDOUT, ne_raw_wait_reply(r, before, 300));
		/* One rung while it hangs is ignored: it takes no count. */
		ne_raw_ring(r, NE_CMD_SLOT_COUNT, "", 1);
		EXPECT_EQ(i - 1, ne_tc_rd(r, NE_TESTCTL_NOREPLY_ARM));
		ASSERT_EQ(0, ne_raw_handshake(r));
	}
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_NOREPLY_ARM));
	EXPECT_EQ(2, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
	EXPECT_EQ(0, slot_count(r));
}

/*
 * STUCK: the next ENABLE = 0 does nothing (the device stays on with its
 * slots and its command in flight); the one after it turns the device off.
 */
TEST_F(dev, fault_stuck_on)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint16_t before;
	uint64_t uid;

	ASSERT_EQ(0, ne_raw_slot_alloc(r, &uid));
	ne_tc_wr(r, NE_TESTCTL_NOREPLY_TYPE, NE_TESTCTL_ANY_TYPE);
	ne_tc_wr(r, NE_TESTCTL_NOREPLY_ARM, 1);
	before = ne_raw_replies(r);
	ne_raw_ring(r, NE_CMD_SLOT_COUNT, "", 1);
	EXPECT_EQ(-ETIMEDOUT, ne_raw_wait_reply(r, before, 100));

	ne_tc_wr(r, NE_TESTCTL_STUCK_ARM, 1);
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_STUCK_ARM));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));	/* NOREPLY */
	ne_wr8(r, NE_REG_ENABLE, 0);
	EXPECT_EQ(1, ne_rd8(r, NE_REG_ENABLE));
	usleep(100 * 1000);
	EXPECT_EQ(1, ne_rd8(r, NE_REG_ENABLE));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_STUCK_ARM));
	EXPECT_EQ(2, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_SLOTS));
	/* The command is still in flight: the next one is ignored. */
	ne_raw_ring(r, NE_CMD_SLOT_COUNT, "", 1);
	EXPECT_EQ(-ETIMEDOUT, ne_raw_wait_reply(r, before, 100));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_CMDS_IGNORED));

	/* Disarmed, it does nothing; the next ENABLE = 0 turns it off. */
	ne_tc_wr(r, NE_TESTCTL_STUCK_ARM, 1);
	ne_tc_wr(r, NE_TESTCTL_STUCK_ARM, 0);
	ASSERT_EQ(0, ne_raw_handshake(r));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_SLOTS));
	EXPECT_EQ(2, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
	EXPECT_EQ(0, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(0, ne_raw_slot_info(r, uid, &rep));
}

/* OFF_STAYS: the next ENABLE = 1 does nothing; the one after it turns on. */
TEST_F(dev, fault_off_stays)
{
	struct ne_raw *r = &self->raw;
	uint64_t uid;

	ne_tc_wr(r, NE_TESTCTL_OFF_STAYS_ARM, 1);
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_OFF_STAYS_ARM));
	EXPECT_EQ(-EIO, ne_raw_handshake(r));
	EXPECT_EQ(0, ne_rd8(r, NE_REG_ENABLE));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_OFF_STAYS_ARM));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
	/* Disarmed, it does nothing; then the device turns on. */
	ne_tc_wr(r, NE_TESTCTL_OFF_STAYS_ARM, 1);
	ne_tc_wr(r, NE_TESTCTL_OFF_STAYS_ARM, 0);
	ASSERT_EQ(0, ne_raw_handshake(r));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_FAULTS_FIRED));
	EXPECT_EQ(0, ne_raw_slot_alloc(r, &uid));
}

TEST_F(dev, fault_enclave_stopped_event)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, idle, cid;
	uint32_t evt;

	if (self->nr_cpus < 2)
		SKIP(return, "needs 2 parent CPUs");
	NEED_MEM(NE_MIN_PAGES);
	ASSERT_EQ(0, start_min_enclave(r, &self->mem, 0, 1, 0, &uid, &cid));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &idle));

	evt = ne_rd32(r, NE_REG_EVTCNT);
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT, (uint32_t)uid);
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT + 4, uid >> 32);
	ne_tc_wr(r, NE_TESTCTL_EVENT_RAISE, 1);
	EXPECT_EQ(0, (int32_t)ne_tc_rd(r, NE_TESTCTL_EVENT_STATUS));
	if (!ne_raw_evtcnt_frozen(r))
		EXPECT_EQ((evt >> 16) + 1, ne_rd32(r, NE_REG_EVTCNT) >> 16);
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_EVENTS));
	ASSERT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(NE_STATE_STOPPED, rep.state);

	/* A slot that is not running: the event comes, the state stays. */
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT, (uint32_t)idle);
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT + 4, idle >> 32);
	ne_tc_wr(r, NE_TESTCTL_EVENT_RAISE, 1);
	EXPECT_EQ(0, (int32_t)ne_tc_rd(r, NE_TESTCTL_EVENT_STATUS));
	ASSERT_EQ(0, ne_raw_slot_info(r, idle, &rep));
	EXPECT_EQ(NE_STATE_INIT, rep.state);
	EXPECT_EQ(2, ne_tc_rd(r, NE_TESTCTL_EVENTS));

	/* No such slot: no event. */
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT, (uint32_t)~idle);
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT + 4, ~idle >> 32);
	ne_tc_wr(r, NE_TESTCTL_EVENT_RAISE, 1);
	EXPECT_EQ(-ENOENT, (int32_t)ne_tc_rd(r, NE_TESTCTL_EVENT_STATUS));
	EXPECT_EQ(2, ne_tc_rd(r, NE_TESTCTL_EVENTS));
	/* With reply-counter=off EVTCNT reads 0: the events counter says it. */
	if (ne_raw_evtcnt_frozen(r))
		return;
	EXPECT_EQ((evt >> 16) + 2, ne_rd32(r, NE_REG_EVTCNT) >> 16);
	/* Events do not count as replies (two SLOT_INFO replies since). */
	EXPECT_EQ((uint16_t)(evt + 2), (uint16_t)ne_rd32(r, NE_REG_EVTCNT));
}

/* Writes @uid to EVENT_SLOT, 1 to FORGET_SLOT; the status it reads then. */
static int32_t forget_slot(struct ne_raw *r, uint64_t uid)
{
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT, (uint32_t)uid);
	ne_tc_wr(r, NE_TESTCTL_EVENT_SLOT + 4, uid >> 32);
	ne_tc_wr(r, NE_TESTCTL_FORGET_SLOT, 1);
	return (int32_t)ne_tc_rd(r, NE_TESTCTL_EVENT_STATUS);
}

/*
 * FORGET_SLOT: the device loses a running slot without a word (no event,
 * no reply), lets go of its memory, CPU and CID, and gives its uid to the
 * next SLOT_ALLOC only; an unknown uid changes nothing; a handshake (the
 * device turned off) forgets the uid to give.
 */
TEST_F(dev, fault_forget_slot)
{
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	uint64_t uid, again, other, cid, cid2;
	uint32_t replies, events;

	ASSERT_LE(5, ne_tc_rd(r, NE_TESTCTL_LAYOUT));
	if (self->nr_cpus < 2)
		SKIP(return, "needs 2 parent CPUs");
	NEED_MEM(NE_MIN_PAGES);
	ASSERT_EQ(0, start_min_enclave(r, &self->mem, 0, 1, 0, &uid, &cid));
	replies = ne_tc_rd(r, NE_TESTCTL_REPLIES);
	events = ne_tc_rd(r, NE_TESTCTL_EVENTS);

	EXPECT_EQ(-ENOENT, forget_slot(r, ~uid));
	EXPECT_EQ(1, ne_tc_rd(r, NE_TESTCTL_SLOTS));
	EXPECT_EQ(0, forget_slot(r, uid));
	EXPECT_EQ(0, ne_tc_rd(r, NE_TESTCTL_SLOTS));
	EXPECT_EQ(replies, ne_tc_rd(r, NE_TESTCTL_REPLIES));
	EXPECT_EQ(events, ne_tc_rd(r, NE_TESTCTL_EVENTS));
	EXPECT_EQ(-ENOENT, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(-ENOENT, forget_slot(r, uid));

	/* Its uid goes to the next slot... */
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &again));
	EXPECT_EQ(uid, again);
	/* ...whose memory, CPU and CID are free again... */
	ASSERT_EQ(0, ne_raw_add_pages(r, again, &self->mem, 0, NE_MIN_PAGES));
	ASSERT_EQ(0, ne_raw_add_vcpu(r, again, 1));
	ASSERT_EQ(0, ne_raw_start(r, again, cid, 0, &cid2));
	EXPECT_EQ(cid, cid2);
	/* ...and to that one only (freed, the uid is not given again). */
	ASSERT_EQ(0, ne_raw_cmd_u64(r, NE_CMD_SLOT_FREE, again, &rep));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &other));
	EXPECT_NE(uid, other);

	/* Turned off, the device forgets the uid it was to give. */
	EXPECT_EQ(0, forget_slot(r, other));
	ASSERT_EQ(0, ne_raw_handshake(r));
	ASSERT_EQ(0, ne_raw_slot_alloc(r, &again));
	EXPECT_NE(other, again);
}

/* ---- robustness --------------------------------------------------------- */

TEST_F_TIMEOUT(dev, random_register_writes, 60)
{
	static const unsigned int sizes[] = { 1, 2, 4, 8 };
	struct ne_raw *r = &self->raw;
	struct ne_raw_reply rep;
	long end = ne_now_ms() + 3000;
	unsigned long n = 0;
	uint64_t uid;

	srandom(ne_test_seed("random_register_writes"));
	while (ne_now_ms() < end) {
		unsigned int size = sizes[random() % 4];
		unsigned int off = (random() % NE_BAR_SIZE) & ~(size - 1);
		uint64_t val = ((uint64_t)random() << 33) ^ random();
		volatile uint8_t *a = r->regs + off;

		/* Aim a quarter of the writes at the live registers. */
		if (random() % 4 == 0)
			a = r->regs + (random() % 16 & ~(size - 1));
		switch (size) {
		case 1:
			*(volatile uint8_t *)a = val;
			break;
		case 2:
			*(volatile uint16_t *)a = val;
			break;
		case 4:
			*(volatile uint32_t *)a = val;
			break;
		default:
			*(volatile uint64_t *)a = val;
			break;
		}
		if (n++ % 8 == 0)
			(void)*(volatile uint32_t *)(r->regs + (off & ~3u));
	}
	TH_LOG("%lu random accesses to BAR 3", n);

	/* The test controls take garbage too; then every knob is disarmed. */
	end = ne_now_ms() + 1000;
	while (ne_now_ms() < end) {
		unsigned int off = random() % NE_TESTCTL_BAR_SIZE & ~3u;

		*(volatile uint32_t *)(r->tc + off) = random();
	}
	ne_tc_wr(r, NE_TESTCTL_FAIL_ARM, 0);
	ne_tc_wr(r, NE_TESTCTL_DELAY_ARM, 0);
	ne_tc_wr(r, NE_TESTCTL_NOREPLY_ARM, 0);
	ne_tc_wr(r, NE_TESTCTL_STUCK_ARM, 0);
	ne_tc_wr(r, NE_TESTCTL_OFF_STAYS_ARM, 0);

	/* Still alive and usable after a fresh handshake. */
	ASSERT_EQ(0, ne_raw_handshake(r));
	EXPECT_EQ(0, slot_count(r));
	EXPECT_EQ(0, ne_raw_slot_alloc(r, &uid));
	EXPECT_EQ(0, ne_raw_slot_info(r, uid, &rep));
	EXPECT_EQ(NE_STATE_INIT, rep.state);
}

int main(int argc, char **argv)
{
	return ne_raw_test_main(argc, argv);
}
