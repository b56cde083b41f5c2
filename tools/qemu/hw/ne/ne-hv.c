/*
 * The emulated Nitro hypervisor: what each NE command does to slots,
 * donated memory, donated vCPUs, CIDs and enclave states.
 *
 * Refusals (rc, as negative Linux errno values on the wire):
 *
 *   rc           when
 *   -EOPNOTSUPP  unknown command type (0, or >= 12)
 *   -ENOENT      no slot with that uid (every command naming a slot);
 *                GET_SLOT: no slot holds that CID;
 *                NEXT_SLOT: no slot uid >= the one given
 *   -EINVAL      SLOT_ALLOC: request byte 0 (payload version) not 0;
 *                ADD_MEM: size 0, address or size not 2 MiB aligned,
 *                  wraps around, or not wholly inside one RAM region
 *                  of the machine's own RAM (never a device's memory:
 *                  ivshmem, virtio-mem, pmem, pc-dimm, VRAM, ROM);
 *                ADD_VCPU: CPU 0 (the parent's boot CPU) or no such CPU;
 *                BULK_VCPUS: nr_vcpus 0;
 *                START: flags other than bit 0 (debug), CID 1, 2, 3 or
 *                  >= U32_MAX, no memory, memory < 64 MiB, no vCPU
 *   -EPERM       wrong state: ADD_MEM, ADD_VCPU, BULK_VCPUS or START on a
 *                slot that is not INIT; STOP on a slot that is INIT
 *   -EBUSY       ADD_MEM: the range overlaps a range of any slot;
 *                ADD_VCPU: the CPU already belongs to a slot
 *   -ENOSPC      SLOT_ALLOC: max-slots slots exist;
 *                ADD_MEM: the slot already has max-mem-regions ranges (a
 *                  range that continues the last one, at the next address
 *                  of the same RAM, extends it instead and always fits);
 *                BULK_VCPUS: fewer free CPUs than asked for;
 *                START with CID 0: no free CID left
 *   -EADDRINUSE  START: another slot holds that CID
 *   (launcher)   START: whatever the launcher's start() returned; the
 *                ne-pci launcher (ne-launcher.c) answers -ENOEXEC for an
 *                image at 8 MiB that is not a bootable EIF, -ENODEV when
 *                this QEMU cannot boot enclaves (no vsock relay, no
 *                microvm firmware, parent RAM not a shared file), -ENOMEM
 *                when the enclave VM process cannot be created,
 *                -EADDRINUSE when an enclave QEMU started by hand holds
 *                the CID at the relay, and -EAGAIN while 4 abandoned
 *                starts are still winding down
 *
 * STOP on a STOPPED slot succeeds and changes nothing.  SLOT_FREE works in
 * any state.  A CID stays taken from START until SLOT_FREE (or the test
 * controls' FORGET_SLOT).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/guest-random.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/address-spaces.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "ne-hv.h"
#include "trace.h"

#define NE_CID_INVALID_MAX      3               /* 1 and 2 reserved, 3 parent */
#define NE_CID_LIMIT            0xffffffffULL   /* U32_MAX and above invalid */
#define NE_CARVE_PRIORITY       100

/*
 * A parent-invisible window over one donated range.  Overlays are never
 * freed while the device lives: a flat view that a vCPU may still hold
 * refers to them, and it only pins the owner (the device), not them.  So
 * overlays that are given back go to hv->carve_pool for reuse, and
 * ne_hv_finalize() frees them with the device.
 */
struct NECarveOut {
    QSLIST_ENTRY(NECarveOut) next;
    MemoryRegion mr;
    NEHv *hv;
    uint64_t gpa;
};

static const char *const ne_cmd_names[NE_CMD_MAX] = {
    [NE_CMD_INVALID] = "INVALID",
    [NE_CMD_ENCLAVE_START] = "ENCLAVE_START",
    [NE_CMD_ENCLAVE_GET_SLOT] = "ENCLAVE_GET_SLOT",
    [NE_CMD_ENCLAVE_STOP] = "ENCLAVE_STOP",
    [NE_CMD_SLOT_ALLOC] = "SLOT_ALLOC",
    [NE_CMD_SLOT_FREE] = "SLOT_FREE",
    [NE_CMD_SLOT_ADD_MEM] = "SLOT_ADD_MEM",
    [NE_CMD_SLOT_ADD_VCPU] = "SLOT_ADD_VCPU",
    [NE_CMD_SLOT_COUNT] = "SLOT_COUNT",
    [NE_CMD_NEXT_SLOT] = "NEXT_SLOT",
    [NE_CMD_SLOT_INFO] = "SLOT_INFO",
    [NE_CMD_SLOT_ADD_BULK_VCPUS] = "SLOT_ADD_BULK_VCPUS",
};

const char *ne_hv_cmd_name(uint32_t type)
{
    return type < NE_CMD_MAX ? ne_cmd_names[type] : "UNKNOWN";
}

/* Logs why a command is refused and returns the rc for the reply. */
static int ne_hv_refuse(uint32_t type, uint64_t uid, int errno_val,
                        const char *why)
{
    trace_ne_hv_refuse(ne_hv_cmd_name(type), uid, -errno_val, why);
    return -errno_val;
}

/* ---- the carve-out ----------------------------------------------------- */

static uint64_t ne_carve_read(void *opaque, hwaddr addr, unsigned size)
{
    NECarveOut *c = opaque;

    c->hv->carve_reads++;
    trace_ne_hv_carve_read(c->gpa + addr, size);
    return ~0ULL;
}

static void ne_carve_write(void *opaque, hwaddr addr, uint64_t val,
                           unsigned size)
{
    NECarveOut *c = opaque;

    c->hv->carve_writes++;
    trace_ne_hv_carve_write(c->gpa + addr, size, val);
}

static const MemoryRegionOps ne_carve_ops = {
    .read = ne_carve_read,
    .write = ne_carve_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* The parent loses the range: its accesses now hit the overlay. */
static void ne_hv_carve_out(NEHv *hv, NEMemRange *range)
{
    NECarveOut *c = QSLIST_FIRST(&hv->carve_pool);

    if (c) {
        QSLIST_REMOVE_HEAD(&hv->carve_pool, next);
        memory_region_set_size(&c->mr, range->size);
    } else {
        c = g_new0(NECarveOut, 1);
        c->hv = hv;
        memory_region_init_io(&c->mr, hv->owner, &ne_carve_ops, c,
                              "ne-carve-out", range->size);
    }
    c->gpa = range->gpa;
    memory_region_add_subregion_overlap(get_system_memory(), range->gpa,
                                        &c->mr, NE_CARVE_PRIORITY);
    range->carve = c;
    trace_ne_hv_carve_out(range->gpa, range->size);
}

/* The parent gets the range back. */
static void ne_hv_carve_back(NEMemRange *range)
{
    NECarveOut *c = range->carve;

    if (!c) {
        return;
    }
    memory_region_del_subregion(get_system_memory(), &c->mr);
    QSLIST_INSERT_HEAD(&c->hv->carve_pool, c, next);
    range->carve = NULL;
    trace_ne_hv_carve_back(range->gpa, range->size);
}

void ne_hv_finalize(NEHv *hv)
{
    NECarveOut *c;

    ne_hv_free_all(hv);
    while ((c = QSLIST_FIRST(&hv->carve_pool))) {
        QSLIST_REMOVE_HEAD(&hv->carve_pool, next);
        object_unparent(OBJECT(&c->mr));
        g_free(c);
    }
}

/* ---- slots --------------------------------------------------------------- */

NESlot *ne_hv_find_slot(NEHv *hv, uint64_t uid)
{
    NESlot *slot;

    QTAILQ_FOREACH(slot, &hv->slots, next) {
        if (slot->uid == uid) {
            return slot;
        }
    }
    return NULL;
}

/*
 * Opaque ids: random, non-zero, unique among live slots; never derived
 * from a counter.  But the uid of a slot the test controls made the device
 * forget goes first (checked against the live slots only defensively: no
 * other path creates a slot).
 */
static uint64_t ne_hv_new_uid(NEHv *hv)
{
    uint64_t uid = hv->reuse_uid;

    hv->reuse_uid = 0;
    if (uid && !ne_hv_find_slot(hv, uid)) {
        return uid;
    }

    do {
        qemu_guest_getrandom_nofail(&uid, sizeof(uid));
    } while (uid == 0 || ne_hv_find_slot(hv, uid));
    return uid;
}

static void ne_hv_slot_stop(NESlot *slot)
{
    NEHv *hv = slot->hv;

    if (slot->state != NE_STATE_RUNNING) {
        return;
    }
    /* first: whatever the launcher does cannot stop this slot twice */
    slot->state = NE_STATE_STOPPED;
    trace_ne_hv_state(slot->uid, slot->state);
    if (hv->launcher && hv->launcher->stop) {
        hv->launcher->stop(slot, hv->launcher_opaque);
    }
}

static void ne_hv_slot_destroy(NESlot *slot)
{
    NEHv *hv = slot->hv;
    uint32_t i;

    if (slot->starting) {
        /* its START is dropped with the command in flight */
        slot->starting = false;
        hv->pending_reply = NULL;
        hv->pending_opaque = NULL;
        if (hv->launcher && hv->launcher->cancel) {
            hv->launcher->cancel(slot, hv->launcher_opaque);
        }
    }
    ne_hv_slot_stop(slot);
    for (i = 0; i < slot->nr_ranges; i++) {
        ne_hv_carve_back(&slot->ranges[i]);
        memory_region_unref(slot->ranges[i].ram);
    }
    QTAILQ_REMOVE(&hv->slots, slot, next);
    hv->nr_slots--;
    trace_ne_hv_slot_free(slot->uid);
    g_array_free(slot->vcpus, true);
    g_free(slot->ranges);
    g_free(slot);
}

void ne_hv_free_all(NEHv *hv)
{
    while (!QTAILQ_EMPTY(&hv->slots)) {
        ne_hv_slot_destroy(QTAILQ_FIRST(&hv->slots));
    }
    hv->reuse_uid = 0;
}

static bool ne_hv_cpu_donated(NEHv *hv, uint32_t cpu)
{
    NESlot *slot;
    guint i;

    QTAILQ_FOREACH(slot, &hv->slots, next) {
        for (i = 0; i < slot->vcpus->len; i++) {
            if (g_array_index(slot->vcpus, uint32_t, i) == cpu) {
                return true;
            }
        }
    }
    return false;
}

static bool ne_hv_mem_donated(NEHv *hv, uint64_t gpa, uint64_t size)
{
    NESlot *slot;
    uint32_t i;

    QTAILQ_FOREACH(slot, &hv->slots, next) {
        for (i = 0; i < slot->nr_ranges; i++) {
            NEMemRange *r = &slot->ranges[i];

            if (gpa < r->gpa + r->size && r->gpa < gpa + size) {
                return true;
            }
        }
    }
    return false;
}

static bool ne_hv_cid_taken(NEHv *hv, uint64_t cid)
{
    NESlot *slot;

    QTAILQ_FOREACH(slot, &hv->slots, next) {
        if (slot->cid == cid) {
            return true;
        }
    }
    return false;
}

/* Is @mr the machine's RAM, or one of the pieces it is made of (NUMA)? */
static bool ne_hv_is_machine_ram(MemoryRegion *mr)
{
    MachineState *ms = MACHINE(qdev_get_machine());

    for (; mr && ms->ram; mr = mr->container) {
        if (mr == ms->ram) {
            return true;
        }
    }
    return false;
}

/*
 * Finds the RAM under [gpa, gpa + size): one plain RAM region of the
 * machine's own RAM (not ROM, not a device's RAM or BAR, not hotplugged
 * or device memory) must cover all of it.  Returns it referenced, or NULL.
 */
static MemoryRegion *ne_hv_find_ram(uint64_t gpa, uint64_t size,
                                    hwaddr *offset)
{
    MemoryRegionSection sec = memory_region_find(get_system_memory(), gpa,
                                                  size);

    if (!sec.mr) {
        return NULL;
    }
    if (!memory_region_is_ram(sec.mr) || memory_region_is_ram_device(sec.mr) ||
        !ne_hv_is_machine_ram(sec.mr) ||
        memory_region_is_rom(sec.mr) || sec.readonly ||
        sec.offset_within_address_space != gpa ||
        int128_ne(sec.size, int128_make64(size))) {
        memory_region_unref(sec.mr);
        return NULL;
    }
    *offset = sec.offset_within_region;
    return sec.mr;
}

/* ---- commands ------------------------------------------------------------ */

static int ne_hv_slot_alloc(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    NESlot *slot;

    /* Byte 0 is a payload version on newer devices; only 0 exists here. */
    if (req[0] != 0) {
        return ne_hv_refuse(NE_CMD_SLOT_ALLOC, 0, NE_ERRNO_EINVAL,
                            "unknown payload version");
    }
    if (hv->nr_slots >= hv->max_slots) {
        return ne_hv_refuse(NE_CMD_SLOT_ALLOC, 0, NE_ERRNO_ENOSPC,
                            "max-slots reached");
    }
    slot = g_new0(NESlot, 1);
    slot->hv = hv;
    slot->uid = ne_hv_new_uid(hv);
    slot->state = NE_STATE_INIT;
    slot->ranges = g_new0(NEMemRange, hv->max_mem_regions);
    slot->vcpus = g_array_new(false, false, sizeof(uint32_t));
    QTAILQ_INSERT_TAIL(&hv->slots, slot, next);
    hv->nr_slots++;
    trace_ne_hv_slot_alloc(slot->uid);

    reply->slot_uid = slot->uid;
    reply->mem_regions = hv->max_mem_regions;
    return 0;
}

/* The slot named by the request's first u64, or NULL (and the rc). */
static NESlot *ne_hv_req_slot(NEHv *hv, uint32_t type, const uint8_t *req,
                              bool init_only, int *rc)
{
    uint64_t uid = ldq_le_p(req);
    NESlot *slot = ne_hv_find_slot(hv, uid);

    if (!slot) {
        *rc = ne_hv_refuse(type, uid, NE_ERRNO_ENOENT, "no such slot");
        return NULL;
    }
    if (init_only && slot->state != NE_STATE_INIT) {
        *rc = ne_hv_refuse(type, uid, NE_ERRNO_EPERM, "slot not in INIT");
        return NULL;
    }
    return slot;
}

static int ne_hv_slot_free(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    int rc = 0;
    NESlot *slot = ne_hv_req_slot(hv, NE_CMD_SLOT_FREE, req, false, &rc);

    if (!slot) {
        return rc;
    }
    reply->slot_uid = slot->uid;
    ne_hv_slot_destroy(slot);
    return 0;
}

/*
 * A range that starts where the slot's last one ends, in the same RAM,
 * extends it: ranges are counted merged, as the driver merges physically
 * contiguous memory (also across calls), so both count the same.
 */
static bool ne_hv_extend_last_range(NESlot *slot, uint64_t gpa, uint64_t size,
                                    MemoryRegion *ram, hwaddr offset)
{
    NEMemRange *last = slot->nr_ranges ?
                       &slot->ranges[slot->nr_ranges - 1] : NULL;

    if (!last || last->gpa + last->size != gpa || last->ram != ram ||
        last->ram_offset + last->size != offset) {
        return false;
    }
    last->size += size;
    slot->mem_size += size;
    return true;
}

static int ne_hv_add_mem(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    const uint32_t type = NE_CMD_SLOT_ADD_MEM;
    uint64_t gpa = ldq_le_p(req + 8);
    uint64_t size = ldq_le_p(req + 16);
    NEMemRange *range;
    MemoryRegion *ram;
    hwaddr offset;
    int rc = 0;
    NESlot *slot = ne_hv_req_slot(hv, type, req, true, &rc);

    if (!slot) {
        return rc;
    }
    trace_ne_hv_add_mem(slot->uid, gpa, size);
    if (size == 0 || !QEMU_IS_ALIGNED(gpa, NE_MEM_GRANULE) ||
        !QEMU_IS_ALIGNED(size, NE_MEM_GRANULE)) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL,
                            "range empty or not 2 MiB aligned");
    }
    if (gpa + size < gpa) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL,
                            "range wraps around");
    }
    if (ne_hv_mem_donated(hv, gpa, size)) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EBUSY,
                            "range already donated");
    }
    ram = ne_hv_find_ram(gpa, size, &offset);
    if (!ram) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL,
                            "range not wholly in parent RAM");
    }
    reply->slot_uid = slot->uid;
    if (ne_hv_extend_last_range(slot, gpa, size, ram, offset)) {
        memory_region_unref(ram);
        return 0;
    }
    if (slot->nr_ranges >= hv->max_mem_regions) {
        memory_region_unref(ram);
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_ENOSPC,
                            "max-mem-regions reached");
    }
    range = &slot->ranges[slot->nr_ranges++];
    range->gpa = gpa;
    range->size = size;
    range->ram = ram;
    range->ram_offset = offset;
    slot->mem_size += size;
    return 0;
}

/*
 * SLOT_ADD_VCPU's vcpu_id names a parent CPU as Linux numbers it: the
 * upstream driver sends its logical CPU number.  (Its uapi says "apic id
 * on x86"; where the two differ, it is still the logical number that
 * parents send.)  Linux numbers the CPUs present at boot in the MADT's
 * order, QEMU's cpu_index order, so the id is that index (a CPU hot-added
 * later may get another number).  With 3 threads a core the two differ:
 * APIC ids 0-2, then 4-6.
 */
static bool ne_hv_parent_cpu_exists(uint32_t cpu)
{
    return cpu <= INT_MAX && qemu_get_cpu(cpu);
}

static int ne_hv_add_vcpu(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    const uint32_t type = NE_CMD_SLOT_ADD_VCPU;
    uint32_t cpu = ldl_le_p(req + 8);
    int rc = 0;
    NESlot *slot = ne_hv_req_slot(hv, type, req, true, &rc);

    if (!slot) {
        return rc;
    }
    trace_ne_hv_add_vcpu(slot->uid, cpu);
    if (cpu == 0) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL,
                            "CPU 0 stays with the parent");
    }
    if (!ne_hv_parent_cpu_exists(cpu)) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL, "no such CPU");
    }
    if (ne_hv_cpu_donated(hv, cpu)) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EBUSY,
                            "CPU already donated");
    }
    g_array_append_val(slot->vcpus, cpu);
    reply->slot_uid = slot->uid;
    reply->nr_vcpus = slot->vcpus->len;
    return 0;
}

static int ne_hv_add_bulk_vcpus(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    const uint32_t type = NE_CMD_SLOT_ADD_BULK_VCPUS;
    uint64_t wanted = ldq_le_p(req + 8);
    g_autoptr(GArray) picked = g_array_new(false, false, sizeof(uint32_t));
    CPUState *cpu;
    int rc = 0;
    NESlot *slot = ne_hv_req_slot(hv, type, req, true, &rc);

    if (!slot) {
        return rc;
    }
    trace_ne_hv_add_bulk_vcpus(slot->uid, wanted);
    if (wanted == 0) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL, "nr_vcpus 0");
    }
    CPU_FOREACH(cpu) {
        uint32_t id = cpu->cpu_index;

        if (picked->len == wanted) {
            break;
        }
        if (id != 0 && !ne_hv_cpu_donated(hv, id)) {
            g_array_append_val(picked, id);
        }
    }
    if (picked->len < wanted) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_ENOSPC,
                            "not enough free CPUs");
    }
    g_array_append_vals(slot->vcpus, picked->data, picked->len);
    reply->slot_uid = slot->uid;
    reply->nr_vcpus = slot->vcpus->len;
    return 0;
}

static int ne_hv_pick_cid(NEHv *hv, uint64_t *cid)
{
    uint64_t c;

    for (c = hv->first_cid; c < NE_CID_LIMIT; c++) {
        if (!ne_hv_cid_taken(hv, c)) {
            *cid = c;
            return 0;
        }
    }
    return -NE_ERRNO_ENOSPC;
}

static void ne_hv_undo_carve_out(NESlot *slot)
{
    uint32_t i;

    for (i = 0; i < slot->nr_ranges; i++) {
        ne_hv_carve_back(&slot->ranges[i]);
    }
}

static int ne_hv_start_finish(NESlot *slot, int rc, NEReply *reply);

static int ne_hv_enclave_start(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    const uint32_t type = NE_CMD_ENCLAVE_START;
    uint64_t cid = ldq_le_p(req + 8);
    uint64_t flags = ldq_le_p(req + 16);
    uint32_t i;
    int rc = 0;
    NESlot *slot = ne_hv_req_slot(hv, type, req, true, &rc);

    if (!slot) {
        return rc;
    }
    trace_ne_hv_start(slot->uid, cid, flags);
    if (flags & ~NE_START_FLAG_DEBUG) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL, "unknown flags");
    }
    if ((cid != 0 && cid <= NE_CID_INVALID_MAX) || cid >= NE_CID_LIMIT) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL, "invalid CID");
    }
    if (slot->nr_ranges == 0 || slot->mem_size < NE_MIN_ENCLAVE_MEM) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL,
                            "less than 64 MiB of memory");
    }
    if (slot->vcpus->len == 0) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EINVAL, "no vCPU");
    }
    if (cid == 0) {
        if (ne_hv_pick_cid(hv, &cid)) {
            return ne_hv_refuse(type, slot->uid, NE_ERRNO_ENOSPC,
                                "no free CID");
        }
    } else if (ne_hv_cid_taken(hv, cid)) {
        return ne_hv_refuse(type, slot->uid, NE_ERRNO_EADDRINUSE,
                            "CID in use");
    }

    for (i = 0; i < slot->nr_ranges; i++) {
        ne_hv_carve_out(hv, &slot->ranges[i]);
    }
    slot->cid = cid;
    slot->flags = flags;
    rc = 0;
    if (hv->launcher && hv->launcher->start) {
        rc = hv->launcher->start(slot, hv->launcher_opaque);
        if (rc == NE_HV_START_PENDING) {
            slot->starting = true;
            return rc;
        }
    }
    return ne_hv_start_finish(slot, rc, reply);
}

/* The end of ENCLAVE_START, with the launcher's answer @rc. */
static int ne_hv_start_finish(NESlot *slot, int rc, NEReply *reply)
{
    if (rc < 0) {
        slot->cid = 0;
        slot->flags = 0;
        ne_hv_undo_carve_out(slot);
        return ne_hv_refuse(NE_CMD_ENCLAVE_START, slot->uid, -rc,
                            "launcher failed");
    }
    slot->state = NE_STATE_RUNNING;
    trace_ne_hv_state(slot->uid, slot->state);

    reply->slot_uid = slot->uid;
    reply->enclave_cid = slot->cid;
    return 0;
}

void ne_hv_start_done(NESlot *slot, int rc)
{
    NEHv *hv = slot->hv;
    NEHvReplyFn *fn = hv->pending_reply;
    void *opaque = hv->pending_opaque;
    NEReply reply = { 0 };

    assert(slot->starting);
    slot->starting = false;
    hv->pending_reply = NULL;
    hv->pending_opaque = NULL;
    rc = ne_hv_start_finish(slot, rc, &reply);
    if (rc < 0) {
        /* A refused command reports nothing but its rc. */
        memset(&reply, 0, sizeof(reply));
    }
    reply.rc = rc;
    trace_ne_hv_start_done(slot->uid, rc);
    if (fn) {
        fn(opaque, &reply);
    }
}

static int ne_hv_enclave_stop(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    int rc = 0;
    NESlot *slot = ne_hv_req_slot(hv, NE_CMD_ENCLAVE_STOP, req, false, &rc);

    if (!slot) {
        return rc;
    }
    if (slot->state == NE_STATE_INIT) {
        return ne_hv_refuse(NE_CMD_ENCLAVE_STOP, slot->uid, NE_ERRNO_EPERM,
                            "enclave not started");
    }
    ne_hv_slot_stop(slot);
    reply->slot_uid = slot->uid;
    return 0;
}

static int ne_hv_get_slot(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    uint64_t cid = ldq_le_p(req);
    NESlot *slot;

    if (cid != 0) {
        QTAILQ_FOREACH(slot, &hv->slots, next) {
            if (slot->cid == cid) {
                reply->slot_uid = slot->uid;
                return 0;
            }
        }
    }
    return ne_hv_refuse(NE_CMD_ENCLAVE_GET_SLOT, cid, NE_ERRNO_ENOENT,
                        "no slot holds that CID");
}

static int ne_hv_next_slot(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    uint64_t from = ldq_le_p(req);
    NESlot *slot, *best = NULL;

    QTAILQ_FOREACH(slot, &hv->slots, next) {
        if (slot->uid >= from && (!best || slot->uid < best->uid)) {
            best = slot;
        }
    }
    if (!best) {
        return ne_hv_refuse(NE_CMD_NEXT_SLOT, from, NE_ERRNO_ENOENT,
                            "no slot uid at or above");
    }
    reply->slot_uid = best->uid;
    return 0;
}

static int ne_hv_slot_info(NEHv *hv, const uint8_t *req, NEReply *reply)
{
    int rc = 0;
    NESlot *slot = ne_hv_req_slot(hv, NE_CMD_SLOT_INFO, req, false, &rc);

    if (!slot) {
        return rc;
    }
    reply->slot_uid = slot->uid;
    reply->enclave_cid = slot->cid;
    reply->mem_regions = slot->nr_ranges;
    reply->mem_size = slot->mem_size;
    reply->nr_vcpus = slot->vcpus->len;
    reply->flags = slot->flags;
    reply->state = slot->state;
    return 0;
}

bool ne_hv_execute(NEHv *hv, uint32_t type, const uint8_t *req,
                   NEReply *reply, NEHvReplyFn *later, void *opaque)
{
    int rc;

    memset(reply, 0, sizeof(*reply));
    switch (type) {
    case NE_CMD_ENCLAVE_START:
        rc = ne_hv_enclave_start(hv, req, reply);
        if (rc == NE_HV_START_PENDING) {
            hv->pending_reply = later;
            hv->pending_opaque = opaque;
            return false;
        }
        break;
    case NE_CMD_ENCLAVE_GET_SLOT:
        rc = ne_hv_get_slot(hv, req, reply);
        break;
    case NE_CMD_ENCLAVE_STOP:
        rc = ne_hv_enclave_stop(hv, req, reply);
        break;
    case NE_CMD_SLOT_ALLOC:
        rc = ne_hv_slot_alloc(hv, req, reply);
        break;
    case NE_CMD_SLOT_FREE:
        rc = ne_hv_slot_free(hv, req, reply);
        break;
    case NE_CMD_SLOT_ADD_MEM:
        rc = ne_hv_add_mem(hv, req, reply);
        break;
    case NE_CMD_SLOT_ADD_VCPU:
        rc = ne_hv_add_vcpu(hv, req, reply);
        break;
    case NE_CMD_SLOT_COUNT:
        reply->slot_count = hv->nr_slots;
        rc = 0;
        break;
    case NE_CMD_NEXT_SLOT:
        rc = ne_hv_next_slot(hv, req, reply);
        break;
    case NE_CMD_SLOT_INFO:
        rc = ne_hv_slot_info(hv, req, reply);
        break;
    case NE_CMD_SLOT_ADD_BULK_VCPUS:
        rc = ne_hv_add_bulk_vcpus(hv, req, reply);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "ne-pci: unknown command type %u\n",
                      type);
        rc = ne_hv_refuse(type, 0, NE_ERRNO_EOPNOTSUPP,
                          "unknown command type");
        break;
    }
    if (rc < 0) {
        /* A refused command reports nothing but its rc. */
        memset(reply, 0, sizeof(*reply));
    }
    reply->rc = rc;
    return true;
}

void ne_hv_encode_reply(const NEReply *reply, uint8_t *buf)
{
    memset(buf, 0, NE_REPLY_SIZE);
    stl_le_p(buf + 0, reply->rc);
    stq_le_p(buf + 8, reply->slot_uid);
    stq_le_p(buf + 16, reply->enclave_cid);
    stq_le_p(buf + 24, reply->slot_count);
    stq_le_p(buf + 32, reply->mem_regions);
    stq_le_p(buf + 40, reply->mem_size);
    stq_le_p(buf + 48, reply->nr_vcpus);
    stq_le_p(buf + 56, reply->flags);
    stw_le_p(buf + 64, reply->state);
}

int ne_hv_enclave_exited(NEHv *hv, uint64_t uid)
{
    NESlot *slot = NULL;

    if (uid != 0) {
        slot = ne_hv_find_slot(hv, uid);
        if (!slot) {
            return -NE_ERRNO_ENOENT;
        }
        ne_hv_slot_stop(slot);
    }
    trace_ne_hv_event(uid, slot ? slot->state : 0);
    hv->raise_event(hv->event_opaque);
    return 0;
}

int ne_hv_forget_slot(NEHv *hv, uint64_t uid)
{
    NESlot *slot = uid ? ne_hv_find_slot(hv, uid) : NULL;

    if (!slot) {
        return -NE_ERRNO_ENOENT;
    }
    if (slot->starting) {
        return -NE_ERRNO_EBUSY;
    }
    trace_ne_hv_forget(uid, hv->reuse_uid);
    ne_hv_slot_destroy(slot);
    hv->reuse_uid = uid;
    return 0;
}

void *ne_hv_range_host_ptr(const NEMemRange *range)
{
    return (uint8_t *)memory_region_get_ram_ptr(range->ram) +
           range->ram_offset;
}

bool ne_hv_slot_read(NESlot *slot, uint64_t addr, void *buf, uint64_t len)
{
    uint8_t *out = buf;
    uint64_t base = 0;
    uint32_t i;

    for (i = 0; i < slot->nr_ranges && len; i++) {
        const NEMemRange *r = &slot->ranges[i];

        if (addr < base + r->size) {
            uint64_t off = addr - base;
            uint64_t n = MIN(len, r->size - off);

            memcpy(out, (uint8_t *)ne_hv_range_host_ptr(r) + off, n);
            out += n;
            addr += n;
            len -= n;
        }
        base += r->size;
    }
    return len == 0;
}

void ne_hv_set_launcher(NEHv *hv, const NEHvLauncherOps *ops, void *opaque)
{
    hv->launcher = ops;
    hv->launcher_opaque = opaque;
}

bool ne_hv_init(NEHv *hv, Object *owner, void (*raise_event)(void *),
                void *opaque, Error **errp)
{
    if (hv->max_slots < 1 || hv->max_slots > 1024) {
        error_setg(errp, "max-slots must be 1..1024");
        return false;
    }
    if (hv->max_mem_regions < 1 || hv->max_mem_regions > 65536) {
        error_setg(errp, "max-mem-regions must be 1..65536");
        return false;
    }
    if (hv->first_cid <= NE_CID_INVALID_MAX || hv->first_cid >= NE_CID_LIMIT) {
        error_setg(errp, "first-cid must be 4..4294967294");
        return false;
    }
    hv->owner = owner;
    QTAILQ_INIT(&hv->slots);
    QSLIST_INIT(&hv->carve_pool);
    hv->nr_slots = 0;
    hv->raise_event = raise_event;
    hv->event_opaque = opaque;
    return true;
}
