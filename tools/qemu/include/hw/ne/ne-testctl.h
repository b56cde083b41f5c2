/*
 * Test controls of the emulated Nitro Enclaves device (ne-pci).
 *
 * Present only with the property test-controls=on: then BAR 2 of the device
 * is a 4 KiB MMIO window that guest userspace maps through sysfs
 * (/sys/bus/pci/devices/<bdf>/resource2).  It lets a test inject faults into
 * the device's command path and read what the device has seen.  Nothing
 * here exists on the real device; a driver must never depend on it.
 *
 * Every register is 32 bits wide and must be accessed with 32-bit accesses
 * (the 64-bit NE_TESTCTL_EVENT_SLOT also accepts one 64-bit access);
 * other accesses read as 0 and are ignored.  Values are little endian.
 *
 * Fault knobs.  Write a knob's parameters, then the number of commands it
 * is for to its ARM register (1: one-shot; 0xffffffff is a count too, not
 * "forever").  Each command whose type matches the knob's TYPE register
 * (NE_TESTCTL_ANY_TYPE: any command) consumes one, with the parameters as
 * they are then, and ARM reads how many are left: 0 once the last one
 * fired.  Writing 0 to ARM disarms it.  When several knobs match the same
 * command, NOREPLY wins and the others stay armed; otherwise DELAY adds to
 * FAIL.
 *   FAIL     the command is not carried out; its reply has rc = FAIL_RC
 *            (a negative Linux errno, as a two's complement u32) and
 *            every other reply field 0.
 *   DELAY    the reply comes DELAY_MS milliseconds (virtual clock) later
 *            than the device's normal latency.
 *   NOREPLY  the command is not carried out and never answered: it stays
 *            in flight (later commands are ignored) until the driver
 *            writes ENABLE = 0 (one that turns the device off: see
 *            STUCK) or the device is reset, as a hung real device would
 *            behave.
 * A fourth knob has no TYPE and no count: STUCK, armed by writing 1 (any
 * value but 0; it reads back 1) to NE_TESTCTL_STUCK_ARM, makes the next
 * write of ENABLE = 0 have no effect: ENABLE keeps its value (1 when the
 * device was on) and the device keeps every slot and the command in
 * flight (and the uid FORGET_SLOT left to give), as a device that does not
 * turn off would.  The write after it turns the device off as usual.  That
 * write consumes the knob (and counts in FAULTS_FIRED) even if the device
 * was already off.
 *
 * A fifth, OFF_STAYS (NE_TESTCTL_OFF_STAYS_ARM, armed as STUCK is), makes
 * the next write of ENABLE = 1 have no effect: ENABLE keeps its value (0
 * when the device was off), as a device that does not turn on again would;
 * the write after it turns the device on.  That write consumes the knob
 * even if the device was already on.
 *
 * A reset of the device (a machine reset, or a reset of its PCI bus)
 * disarms every knob and zeroes every counter.  A reset, or ENABLE = 0,
 * forgets the uid FORGET_SLOT left to give.
 *
 * Events.  Write a slot uid to NE_TESTCTL_EVENT_SLOT (one 64-bit write, or
 * the low then the high half), then 1 to NE_TESTCTL_EVENT_RAISE: the device
 * behaves as if that slot's enclave stopped on its own: a RUNNING slot
 * becomes STOPPED, the event counter (EVTCNT[31:16]) goes up and MSI-X
 * vector 1 fires.  For a slot in another state the event is raised and the
 * state stays (a spurious event, which drivers must tolerate).  Slot uid 0
 * raises an event that concerns no slot.  NE_TESTCTL_EVENT_STATUS then
 * reads 0, or -ENOENT (as u32) if no such slot exists (no event raised).
 *
 * A misbehaving device.  Write a slot uid to NE_TESTCTL_EVENT_SLOT, then 1
 * to NE_TESTCTL_FORGET_SLOT: the device loses that slot without a word (its
 * enclave stops, its memory, CPUs and CID are let go, as at SLOT_FREE; no
 * reply, no event), and the next successful SLOT_ALLOC gives the new slot
 * the same uid (only the last forgotten uid is kept).
 * NE_TESTCTL_EVENT_STATUS then reads 0, or (as u32) -ENOENT (no such slot;
 * uid 0 too, unlike EVENT_RAISE) or -EBUSY (the enclave of its
 * ENCLAVE_START is booting), and then nothing changed.
 *
 * Counters.  They count from device reset, or from the last write of 1 to
 * NE_TESTCTL_COUNTERS_RESET; they wrap at 2^32.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_TESTCTL_H
#define HW_NE_NE_TESTCTL_H

#include <stdint.h>

#define NE_TESTCTL_BAR                  2
#define NE_TESTCTL_BAR_SIZE             0x1000

/* Identity, read-only: MAGIC reads MAGIC_VALUE, LAYOUT LAYOUT_VERSION. */
#define NE_TESTCTL_MAGIC                0x000
#define NE_TESTCTL_LAYOUT               0x004
#define NE_TESTCTL_MAGIC_VALUE          0x4c54454eu     /* "NETL" */
/* 2: STUCK, 3: OFF_STAYS, 4: ARM counts commands, 5: FORGET_SLOT */
#define NE_TESTCTL_LAYOUT_VERSION       5

/* The value of a TYPE register that matches every command type. */
#define NE_TESTCTL_ANY_TYPE             0xffffffffu

/*
 * Fail the next [matching] commands: ARM (how many, 0 = disarmed), TYPE (a
 * command type or NE_TESTCTL_ANY_TYPE), RC (the int32_t rc to answer, e.g.
 * -EIO).
 */
#define NE_TESTCTL_FAIL_ARM             0x010
#define NE_TESTCTL_FAIL_TYPE            0x014
#define NE_TESTCTL_FAIL_RC              0x018

/* Delay the replies of the next ARM [matching] commands by DELAY_MS ms more. */
#define NE_TESTCTL_DELAY_ARM            0x020
#define NE_TESTCTL_DELAY_TYPE           0x024
#define NE_TESTCTL_DELAY_MS             0x028

/*
 * Never answer the next [matching] command; with ARM > 1, the next ones
 * after each reset of the channel (ENABLE = 0) too.
 */
#define NE_TESTCTL_NOREPLY_ARM          0x030
#define NE_TESTCTL_NOREPLY_TYPE         0x034

/*
 * Raise an "enclave stopped on its own" event: EVENT_SLOT is the u64 slot
 * uid (low half at 0x040, high half at 0x044), writing 1 to EVENT_RAISE
 * raises the event, EVENT_STATUS then reads 0 or -ENOENT (int32_t); it
 * also reports FORGET_SLOT's result (0, -ENOENT or -EBUSY).
 */
#define NE_TESTCTL_EVENT_SLOT           0x040
#define NE_TESTCTL_EVENT_RAISE          0x048
#define NE_TESTCTL_EVENT_STATUS         0x04c

/* Ignore the next write of ENABLE = 0 (1 = armed). */
#define NE_TESTCTL_STUCK_ARM            0x050

/* Ignore the next write of ENABLE = 1 (1 = armed). */
#define NE_TESTCTL_OFF_STAYS_ARM        0x054

/* Lose the slot EVENT_SLOT names, and give its uid next (write 1). */
#define NE_TESTCTL_FORGET_SLOT          0x058

/*
 * Counters, read-only; writing 1 to COUNTERS_RESET zeroes all of them.
 *   CMDS_TOTAL     commands accepted (rung while no command was in flight)
 *   CMDS_IGNORED   commands rung while one was in flight
 *   REPLIES        replies posted
 *   EVENTS         out-of-band events raised
 *   FAULTS_FIRED   knob firings: one per knob per command it fired for
 *                  (FAIL and DELAY on one command: 2), each STUCK and
 *                  OFF_STAYS
 *   CARVE_READS    parent reads of carved-out RAM (they read all-ones)
 *   CARVE_WRITES   parent writes to carved-out RAM (dropped)
 * SLOTS is not a counter: the number of slots that exist now.
 */
#define NE_TESTCTL_COUNTERS_RESET       0x080
#define NE_TESTCTL_CMDS_TOTAL           0x084
#define NE_TESTCTL_CMDS_IGNORED         0x088
#define NE_TESTCTL_REPLIES              0x08c
#define NE_TESTCTL_EVENTS               0x090
#define NE_TESTCTL_FAULTS_FIRED         0x094
#define NE_TESTCTL_CARVE_READS          0x098
#define NE_TESTCTL_CARVE_WRITES         0x09c
#define NE_TESTCTL_SLOTS                0x0a0

/*
 * Commands accepted, by type: u32 at NE_TESTCTL_CMD_COUNT(type) for
 * type < NE_TESTCTL_CMD_TYPES - 1; every type >= NE_TESTCTL_CMD_TYPES - 1
 * is counted at NE_TESTCTL_CMD_COUNT(NE_TESTCTL_CMD_TYPES - 1).
 */
#define NE_TESTCTL_CMD_COUNT_BASE       0x100
#define NE_TESTCTL_CMD_TYPES            64
#define NE_TESTCTL_CMD_COUNT(type)      (NE_TESTCTL_CMD_COUNT_BASE + 4 * (type))

#endif /* HW_NE_NE_TESTCTL_H */
