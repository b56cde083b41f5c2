// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_teardown_test: what the driver gives back, and when (issue 11).
 *
 * Memory is unpinned and cores return to the pool only once the device has
 * confirmed that the enclave's slot is gone; otherwise the enclave is a
 * zombie (debugfs ne_kvm/zombies) that keeps them, the pool and the module.
 * Exactly one command is in flight whatever times out; a slot allocated
 * across a reset is not leaked, nor one that no enclave owns (the probe's, a
 * late SLOT_ALLOC's) whose SLOT_FREE is refused; a reset wakes every
 * poller; a user blocked in userfaultfd inside an ioctl blocks nobody else,
 * nor PCI remove; PCI remove does not wait for a command in flight; device
 * rc values that are not plain errnos come back as EIO.
 *
 * Needs the emulated device's test controls (ne-pci test-controls=on).
 */
#include <dirent.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>

#include "kselftest_harness.h"
#include "ne_kvm_util.h"

#define ENCLAVE_MEM	(64 * MIB)
#define SHORT_MS	1000	/* margins of SHORT_MS / 2 either way, loaded TCG included */
#define ZOMBIES		"/sys/kernel/debug/ne_kvm/zombies"
#define ORPHANS		"/sys/kernel/debug/ne_kvm/orphans"
#define MAX_ORPHANS	8	/* the driver's NE_PCI_MAX_ORPHANS */
#define PREEMPT_MODE	"/sys/kernel/debug/sched/preempt"

FIXTURE(td) {
	volatile uint32_t *tc;
	char *mem;
	long pins;
	uint32_t slots;
	char timeout[32];
	char preempt[32];	/* the kernel's preemption mode, to restore */
};

FIXTURE_SETUP(td)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->tc = ne_testctl_map();
	ASSERT_NE(NULL, self->tc) {
		TH_LOG("needs the device's test controls (ne-pci test-controls=on)");
	}
	ne_tc_disarm_all(self->tc);
	ASSERT_EQ(0, ne_read_file(NE_TIMEOUT_PARAM, self->timeout,
				  sizeof(self->timeout)));
	self->mem = ne_huge_alloc(ENCLAVE_MEM);
	ASSERT_NE(MAP_FAILED, self->mem);
	self->pins = ne_pins_held();
	self->slots = ne_tc_read(self->tc, NE_TESTCTL_SLOTS);
}

static int wait_for_node(void)
{
	struct stat st;
	int i;

	for (i = 0; i < 200; i++) {
		if (!stat(NE_DEV_PATH, &st))
			return 0;
		usleep(50 * 1000);
	}
	return -1;
}

/* PCI remove of the NE device; 0 or -1. */
static int pci_remove(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];

	if (ne_find_pci_device(dir, sizeof(dir)))
		return -1;
	snprintf(path, sizeof(path), "%s/remove", dir);
	return ne_write_file(path, "1") ? -1 : 0;
}

/* Brings the device back (after a remove) and waits for its node. */
static int pci_rescan(void)
{
	char dir[PATH_MAX];

	if (ne_find_pci_device(dir, sizeof(dir)) &&
	    ne_write_file("/sys/bus/pci/rescan", "1"))
		return -1;
	return wait_for_node();
}

/* After a rescan BAR 2 may have moved: map it again. */
static int remap_testctl(FIXTURE_DATA(td) *self)
{
	munmap((void *)self->tc, NE_TESTCTL_BAR_SIZE);
	self->tc = ne_testctl_map();
	return self->tc ? 0 : -1;
}

/*
 * A failed test may leave a slot on the device: remove and rescan turn the
 * device off and on, so that the next test starts clean.
 */
FIXTURE_TEARDOWN(td)
{
	if (self->preempt[0])
		ne_write_file(PREEMPT_MODE, self->preempt);
	pci_rescan();
	if (!self->tc || remap_testctl(self))
		return;
	/* (first: an armed STUCK would keep the remove below from working) */
	ne_tc_disarm_all(self->tc);
	/*
	 * a slot left, a device left unbound by a failed probe, or pins kept
	 * by a zombie whose slot the device lost (FORGET_SLOT)
	 */
	if ((ne_tc_read(self->tc, NE_TESTCTL_SLOTS) != self->slots ||
	     access(NE_DEV_PATH, F_OK) || ne_pins_held() != self->pins) &&
	    !pci_remove() && !pci_rescan())
		remap_testctl(self);
	ne_tc_disarm_all(self->tc);
	ne_write_file(NE_TIMEOUT_PARAM, self->timeout);
	munmap(self->mem, ENCLAVE_MEM);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An enclave with ENCLAVE_MEM at @mem and vCPUs 0 and 1 (the pool's core). */
static int build_enclave(char *mem, int *v0, int *v1)
{
	int vm = ne_create_vm();

	if (vm < 0 || ne_set_region(vm, 0, 0, mem, ENCLAVE_MEM, 0))
		return -1;
	*v0 = ioctl(vm, KVM_CREATE_VCPU, 0);
	*v1 = ioctl(vm, KVM_CREATE_VCPU, 1);
	return *v0 < 0 || *v1 < 0 ? -1 : vm;
}

static uint64_t slot_uid(int vm)
{
	return (uint64_t)ne_fdinfo_num(vm, "ne_slot_uid");
}

/* Whether debugfs lists a zombie with slot @uid. */
static int zombie_listed(uint64_t uid)
{
	char line[512], want[64];
	FILE *f = fopen(ZOMBIES, "r");
	int found = 0;

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "slot_uid: %#llx ", (unsigned long long)uid);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)))
			found = 1;
	fclose(f);
	return found;
}

/*
 * The number after @field ("free_tries:", "free_rc:") on the zombie line of
 * slot @uid; @missing when no zombie has that slot.
 */
static long zombie_field(uint64_t uid, const char *field, long missing)
{
	char line[512], want[64];
	FILE *f = fopen(ZOMBIES, "r");
	long val = missing;
	char *p;

	if (!f)
		return missing;
	snprintf(want, sizeof(want), "slot_uid: %#llx ", (unsigned long long)uid);
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, field);
		if (!strncmp(line, want, strlen(want)) && p)
			val = strtol(p + strlen(field), NULL, 0);
	}
	fclose(f);
	return val;
}

/* Polls zombie_field() for up to 10 s until it is at least @want. */
static long zombie_reach(uint64_t uid, const char *field, long want)
{
	long val = zombie_field(uid, field, -1);
	int i;

	for (i = 0; i < 200 && val < want; i++) {
		usleep(50 * 1000);
		val = zombie_field(uid, field, -1);
	}
	return val;
}

/*
 * Unloads ne_kvm as rmmod does; a module in use answers EWOULDBLOCK (rmmod
 * then says "in use").
 */
static int try_rmmod(void)
{
	return syscall(SYS_delete_module, "ne_kvm", O_NONBLOCK);
}

/* The module was unloaded when it must not have been: load it again. */
static void reload_module(void)
{
	const char *ko = getenv("NE_KVM_KO");
	int fd = ko ? open(ko, O_RDONLY | O_CLOEXEC) : -1;

	if (fd >= 0) {
		syscall(SYS_finit_module, fd, "", 0);
		close(fd);
	}
	wait_for_node();
}

/* STUCK (test-control layout 2) is there. */
static int has_stuck(volatile uint32_t *tc)
{
	return ne_tc_read(tc, NE_TESTCTL_LAYOUT) >= 2;
}

/* The test controls still answer (BAR 2 read after a PCI remove). */
static int tc_alive(volatile uint32_t *tc)
{
	return ne_tc_read(tc, NE_TESTCTL_MAGIC) == NE_TESTCTL_MAGIC_VALUE;
}

/*
 * Sets the pool, retrying EBUSY for up to 5 s: the last enclave's teardown
 * gives its cores back just after its pages.
 */
static int set_pool_soon(const char *pool)
{
	int rc, i;

	for (i = 0; i < 100; i++) {
		rc = ne_set_pool(pool);
		if (rc != -EBUSY)
			break;
		usleep(50 * 1000);
	}
	return rc;
}

#define ASSERT_NOTHING_HELD(self) do {					\
	ASSERT_EQ((self)->slots, ne_tc_read((self)->tc, NE_TESTCTL_SLOTS)); \
	ASSERT_EQ((self)->pins, ne_pins_held());			\
} while (0)

/*
 * Defects 1 and 3: SLOT_FREE fails.  Whatever the rc (-ENODEV included, which
 * the old driver took for "freed"), the device still holds the slot, so the
 * enclave keeps its pins and its core: it is a zombie, listed in debugfs,
 * the pool cannot change and the module cannot be unloaded.  Once the device
 * confirms it is off (PCI remove), everything comes back.
 */
TEST_F_TIMEOUT(td, slot_free_fails_makes_a_zombie, 90)
{
	static const int32_t rcs[] = { -ENODEV, -EIO };
	unsigned int i;

	for (i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
		int v0, v1, vm2, vm = build_enclave(self->mem, &v0, &v1);
		uint64_t uid, cid = 0;
		long held;

		TH_LOG("SLOT_FREE fails with %d", rcs[i]);
		ASSERT_LE(0, vm);
		ASSERT_EQ(0, ne_start(vm, 0, &cid));
		uid = slot_uid(vm);
		held = ne_pins_held();
		ASSERT_LT(self->pins, held);

		/* every SLOT_FREE: the driver tries again while it lasts */
		ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
			  NE_TESTCTL_FAIL_RC, (uint32_t)rcs[i]);
		ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, UINT32_MAX);
		close(v0);
		close(v1);
		ASSERT_EQ(0, close(vm));

		/* The device still holds the slot: nothing is given back. */
		EXPECT_EQ(self->slots + 1,
			  ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
		EXPECT_EQ(held, ne_pins_held());
		EXPECT_EQ(1, zombie_listed(uid));
		/*
		 * Its core stays out of the pool: a new VM can get none of
		 * the pool's one core (NE_TEST_POOL), so even id 0 is past
		 * its KVM_CAP_MAX_VCPU_ID...
		 */
		vm2 = ne_create_vm();
		ASSERT_LE(0, vm2);
		EXPECT_EQ(0, ioctl(vm2, KVM_CHECK_EXTENSION,
				   KVM_CAP_MAX_VCPU_ID));
		ASSERT_IOCTL_ERRNO(EINVAL, vm2, KVM_CREATE_VCPU, 0);
		close(vm2);
		/* ...which cannot change, and the module cannot go. */
		EXPECT_EQ(-EBUSY, ne_set_pool(NE_TEST_POOL));
		errno = 0;
		if (try_rmmod() == 0) {
			reload_module();
			ASSERT_TRUE(0) TH_LOG("ne_kvm unloaded with a zombie");
		}
		EXPECT_EQ(EWOULDBLOCK, errno);

		/* The device confirms it is off: the zombie lets go. */
		EXPECT_NE(0, ne_tc_read(self->tc, NE_TESTCTL_FAIL_ARM));
		ASSERT_EQ(0, pci_remove());
		EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
		EXPECT_EQ(0, zombie_listed(uid));
		/* disarmed before the probe's own SLOT_FREE */
		ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, 0);
		ASSERT_EQ(0, pci_rescan());
		ASSERT_EQ(0, remap_testctl(self));
		EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
		ASSERT_NOTHING_HELD(self);
	}
}

/*
 * A device that does not turn off at PCI remove (STUCK) keeps its slots: an
 * enclave released then is a zombie.  When the same device comes back, its
 * probe turns it off (ENABLE reads 0), and with it every slot of its
 * earlier instance: the zombie lets go.  The old driver freed only the
 * zombies of the current instance: this one kept its pins and core, the
 * pool and the module, for good.
 */
TEST_F_TIMEOUT(td, zombie_of_a_removed_device_goes_when_it_comes_back, 60)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);
	uint64_t uid, cid = 0;
	long held;

	ASSERT_LE(0, vm);
	ASSERT_EQ(0, ne_start(vm, 0, &cid));
	uid = slot_uid(vm);
	held = ne_pins_held();
	ASSERT_LT(self->pins, held);
	ASSERT_TRUE(has_stuck(self->tc));
	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));

	ne_tc_write(self->tc, NE_TESTCTL_STUCK_ARM, 1);
	ASSERT_EQ(0, pci_remove());
	ASSERT_TRUE(tc_alive(self->tc));
	EXPECT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_STUCK_ARM));
	EXPECT_EQ(self->slots + 1, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
	close(v0);
	close(v1);
	ASSERT_EQ(0, close(vm));
	EXPECT_EQ(held, ne_pins_held());
	EXPECT_EQ(1, zombie_listed(uid));
	EXPECT_EQ(-EBUSY, ne_set_pool(NE_TEST_POOL));

	ASSERT_EQ(0, pci_rescan());
	ASSERT_EQ(0, remap_testctl(self));
	EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
	EXPECT_EQ(0, zombie_listed(uid));
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
	ASSERT_NOTHING_HELD(self);
}

/*
 * The same, but the device, turned off by its probe, then does not turn on
 * (OFF_STAYS): the probe fails, yet its ENABLE = 0 read back 0 already
 * confirmed the earlier instance's slots gone, so the zombie lets go then.
 * (Freed only once the probe registered, it kept everything.)
 */
TEST_F_TIMEOUT(td, zombie_goes_when_a_failed_probe_turned_the_device_off, 60)
{
	uint64_t uid, cid = 0;
	int v0, v1, vm;
	struct stat st;

	ASSERT_LE(3, (int)ne_tc_read(self->tc, NE_TESTCTL_LAYOUT));	/* OFF_STAYS */
	vm = build_enclave(self->mem, &v0, &v1);
	ASSERT_LE(0, vm);
	ASSERT_EQ(0, ne_start(vm, 0, &cid));
	uid = slot_uid(vm);
	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));

	ne_tc_write(self->tc, NE_TESTCTL_STUCK_ARM, 1);
	ASSERT_EQ(0, pci_remove());
	close(v0);
	close(v1);
	ASSERT_EQ(0, close(vm));
	EXPECT_EQ(1, zombie_listed(uid));

	ASSERT_TRUE(tc_alive(self->tc));
	ne_tc_write(self->tc, NE_TESTCTL_OFF_STAYS_ARM, 1);
	ASSERT_EQ(0, ne_write_file("/sys/bus/pci/rescan", "1"));
	ASSERT_EQ(0, remap_testctl(self));	/* (BAR 2 may have moved) */
	EXPECT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_OFF_STAYS_ARM));
	EXPECT_NE(0, stat(NE_DEV_PATH, &st));	/* the probe failed */
	EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
	EXPECT_EQ(0, zombie_listed(uid));

	/* Probed again (remove the unbound device, rescan): it works. */
	ASSERT_EQ(0, pci_remove());
	ASSERT_EQ(0, pci_rescan());
	ASSERT_EQ(0, remap_testctl(self));
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
	ASSERT_NOTHING_HELD(self);
}

/*
 * Defect 1: PCI remove while an enclave runs; its owner closes as soon as
 * poll says EPOLLHUP.  By then the device must be off (no slot left), and the
 * pins go only after that.
 *
 * The old driver woke the pollers before it turned the device off, and took
 * the -ENODEV of the SLOT_FREE that a close then sent for "freed": the window
 * was a few instructions of the remover, which always won it from a poller
 * on another CPU, so the test passed on the old driver too.  Here the window
 * is made certain: the poller runs SCHED_FIFO on the remover's CPU, and the
 * kernel is switched to full preemption (PREEMPT_DYNAMIC, debugfs
 * sched/preempt), so the remover's wake-up of the poller hands it the CPU at
 * once, and the remover goes on only when the poller, having closed, sleeps.
 * Nothing the poller does between the wake-up and its checks after close
 * sleeps but the close itself.  A kernel without preemption (the debug
 * kernel: PREEMPT_NONE) cannot be switched: the test still runs, with the
 * window left to chance, and says so.
 */
struct hup_closer {
	int vm, v0, v1;
	volatile uint32_t *tc;
	int cpu;
	int rt_err;
	short revents;
	uint32_t magic_at_hup;
	uint32_t slots_at_hup;
	uint32_t slots_after_close;
	long pins_after_close;
};

static void *close_on_hup(void *arg)
{
	struct hup_closer *c = arg;
	struct pollfd p = { .fd = c->vm, .events = POLLIN };

	if (poll(&p, 1, 20000) == 1)
		c->revents = p.revents;
	/* MMIO reads: nothing here sleeps until the close. */
	c->slots_at_hup = ne_tc_read(c->tc, NE_TESTCTL_SLOTS);
	c->magic_at_hup = ne_tc_read(c->tc, NE_TESTCTL_MAGIC);
	close(c->v0);
	close(c->v1);
	close(c->vm);
	c->slots_after_close = ne_tc_read(c->tc, NE_TESTCTL_SLOTS);
	c->pins_after_close = ne_pins_held();
	return NULL;
}

/* The mode in "none voluntary (full)" into @mode; 0, or -1 without one. */
static int preempt_mode(char *mode, size_t len)
{
	char buf[128], *open_paren, *close_paren;

	if (ne_read_file(PREEMPT_MODE, buf, sizeof(buf)))
		return -1;
	open_paren = strchr(buf, '(');
	close_paren = open_paren ? strchr(open_paren, ')') : NULL;
	if (!close_paren)
		return -1;
	*close_paren = '\0';
	snprintf(mode, len, "%s", open_paren + 1);
	return 0;
}

/*
 * The limit is a hang detector: each switch of the preemption mode patches
 * kernel text, which TCG then retranslates: 8-36 s a switch in a parent VM
 * on a loaded 2-core host (measured), and the test switches twice.
 */
TEST_F_TIMEOUT(td, remove_while_running_owner_closes_on_hup, 300)
{
	struct hup_closer c = { .tc = self->tc };
	struct sched_param sp = { .sched_priority = 1 };
	char mode[32] = "";
	pthread_attr_t attr;
	uint64_t cid = 0;
	cpu_set_t cpus;
	pthread_t t;

	c.vm = build_enclave(self->mem, &c.v0, &c.v1);
	ASSERT_LE(0, c.vm);
	ASSERT_EQ(0, ne_start(c.vm, 0, &cid));
	ASSERT_LT(self->pins, ne_pins_held());

	/*
	 * Only when needed: each switch patches every preemption static
	 * call, which on 6.12 under TCG takes 10 to 40 s (tools/ne-vm boots
	 * 6.12 with preempt=full).  Already full: nothing to restore.
	 */
	if (!preempt_mode(self->preempt, sizeof(self->preempt))) {
		if (!strcmp(self->preempt, "full"))
			self->preempt[0] = '\0';
		else
			ne_write_file(PREEMPT_MODE, "full");
		preempt_mode(mode, sizeof(mode));
	}
	if (strcmp(mode, "full"))
		TH_LOG("no full preemption (%s): the window is left to chance",
		       self->preempt[0] ? self->preempt : PREEMPT_MODE " missing");

	/* The remover (this thread) and the poller share one CPU. */
	c.cpu = sched_getcpu();
	ASSERT_LE(0, c.cpu);
	CPU_ZERO(&cpus);
	CPU_SET(c.cpu, &cpus);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));
	ASSERT_EQ(0, pthread_attr_init(&attr));
	ASSERT_EQ(0, pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus));
	ASSERT_EQ(0, pthread_attr_setinheritsched(&attr,
						  PTHREAD_EXPLICIT_SCHED));
	ASSERT_EQ(0, pthread_attr_setschedpolicy(&attr, SCHED_FIFO));
	ASSERT_EQ(0, pthread_attr_setschedparam(&attr, &sp));
	ASSERT_EQ(0, pthread_create(&t, &attr, close_on_hup, &c));
	pthread_attr_destroy(&attr);
	usleep(100 * 1000);

	ASSERT_EQ(0, pci_remove());
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(POLLHUP, c.revents & POLLHUP);
	/* Woken only once the device was off: it held no slot any more. */
	ASSERT_EQ(NE_TESTCTL_MAGIC_VALUE, c.magic_at_hup);
	EXPECT_EQ(0, c.slots_at_hup);
	/* The close gave the pins back only with the slot gone. */
	if (c.pins_after_close == self->pins)
		EXPECT_EQ(0, c.slots_after_close);
	EXPECT_EQ(self->pins, ne_pins_held());
	ASSERT_EQ(0, pci_rescan());
}

/*
 * Defect 2: two timeouts in a row.  A SLOT_ALLOC times out, then the
 * SLOT_FREE that gives back its late slot times out too: the next command
 * must still wait for that late reply, never be rung while one is in flight
 * nor take the SLOT_FREE's reply for its own.
 */
TEST_F(td, two_timeouts_in_a_row)
{
	uint32_t ignored = ne_tc_read(self->tc, NE_TESTCTL_CMDS_IGNORED);
	uint32_t frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);
	int v0, v1, sys, vm;

	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	sys = ne_open_sys();
	ASSERT_LE(0, sys);

	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_ALLOC,
		  NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);
	ASSERT_IOCTL_ERRNO(ETIMEDOUT, sys, KVM_CREATE_VM, 0);
	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);

	vm = ioctl(sys, KVM_CREATE_VM, 0);
	ASSERT_LE(0, vm) {
		TH_LOG("KVM_CREATE_VM: %s", strerror(errno));
	}
	/* The late slot was freed, and no command was rung over another. */
	EXPECT_EQ(frees + 1, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	EXPECT_EQ(ignored, ne_tc_read(self->tc, NE_TESTCTL_CMDS_IGNORED));
	EXPECT_EQ(self->slots + 1, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
	EXPECT_NE(0, slot_uid(vm));
	close(vm);
	close(sys);

	/* The channel works: a whole enclave, then nothing left. */
	vm = build_enclave(self->mem, &v0, &v1);
	ASSERT_LE(0, vm);
	close(v0);
	close(v1);
	close(vm);
	EXPECT_EQ(ignored, ne_tc_read(self->tc, NE_TESTCTL_CMDS_IGNORED));
	ASSERT_NOTHING_HELD(self);
}

/*
 * The teardown's SLOT_FREE times out, so the enclave becomes a zombie; its
 * late reply then says the slot is freed.  That is the device confirming the
 * slot gone: settling the late reply (the tidy work does, or the next
 * command) lets the zombie go (pins, core, debugfs entry) without resetting
 * the device, which a bystander's slot, still held by the device, proves.
 */
TEST_F(td, late_slot_free_success_lets_the_zombie_go)
{
	int v0, v1, vm, vm2, bystander;
	uint64_t uid;
	long held;

	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	bystander = ne_create_vm();
	ASSERT_LE(0, bystander);
	vm = build_enclave(self->mem, &v0, &v1);
	ASSERT_LE(0, vm);
	uid = slot_uid(vm);
	held = ne_pins_held();
	ASSERT_LT(self->pins, held);

	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);
	close(v0);
	close(v1);
	ASSERT_EQ(0, close(vm));
	/* The SLOT_FREE is unanswered: a zombie that keeps everything. */
	EXPECT_EQ(1, zombie_listed(uid));
	EXPECT_EQ(held, ne_pins_held());

	/* The late reply is settled by now, or by this command. */
	vm2 = ne_create_vm();
	ASSERT_LE(0, vm2) {
		TH_LOG("KVM_CREATE_VM: %s", strerror(errno));
	}
	EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
	EXPECT_EQ(0, zombie_listed(uid));
	EXPECT_EQ(self->slots + 2, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
	close(vm2);
	close(bystander);
	ASSERT_NOTHING_HELD(self);
	/* No enclave is left, the zombie included, so the pool may change. */
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
}

/*
 * A command that never gets its reply makes the next one reset the device:
 * every poller is woken (the enclaves are lost), and the slot that the next
 * KVM_CREATE_VM allocates after the reset is a working slot, freed at close,
 * not leaked.
 */
struct poller {
	int vm;
	short revents;
	double woken;
};

static void *poll_vm(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = p->vm, .events = POLLIN };

	if (poll(&pfd, 1, 15000) == 1)
		p->revents = pfd.revents;
	p->woken = now();
	return NULL;
}

TEST_F_TIMEOUT(td, reset_wakes_pollers_and_keeps_the_new_slot, 60)
{
	struct poller p = { 0 };
	pthread_t t;
	double reset;
	int vm2;

	p.vm = ne_create_vm();
	ASSERT_LE(0, p.vm);
	ASSERT_EQ(0, pthread_create(&t, NULL, poll_vm, &p));
	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	ne_tc_arm(self->tc, NE_TESTCTL_NOREPLY_ARM, NE_WIRE_SLOT_ADD_MEM, 0, 0);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(p.vm, 0, 0, self->mem, ENCLAVE_MEM, 0));
	EXPECT_EQ(ETIMEDOUT, errno);

	/* This one settles the stale command: no reply, so a reset. */
	vm2 = ne_create_vm();
	reset = now();
	ASSERT_LE(0, vm2) {
		TH_LOG("KVM_CREATE_VM after a reset: %s", strerror(errno));
	}
	EXPECT_EQ(self->slots + 1, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));

	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(POLLHUP, p.revents & POLLHUP);
	EXPECT_GT(5.0, p.woken - reset);
	close(p.vm);
	close(vm2);
	ASSERT_NOTHING_HELD(self);
}

/*
 * Defect 4: a user whose ioctl is blocked in userfaultfd (its argument is in
 * a page that a userfaultfd handles, and nobody does) blocks nobody else:
 * events are handled, other processes create and close VMs, and PCI remove
 * completes.
 */
struct blocked {
	int vm;
	void *addr;
	int rc, err;
};

static void *set_blocked_region(void *arg)
{
	struct blocked *b = arg;

	errno = 0;
	b->rc = ioctl(b->vm, KVM_SET_USER_MEMORY_REGION, b->addr);
	b->err = errno;
	return NULL;
}

/* A child that creates and closes @n VMs; 0 when it did within @secs. */
static int others_create_and_close(int n, int secs)
{
	pid_t pid = fork();
	int status, i;

	if (pid < 0)
		return -1;
	if (!pid) {
		for (i = 0; i < n; i++) {
			int vm = ne_create_vm();

			if (vm < 0)
				_exit(2);
			close(vm);
		}
		_exit(0);
	}
	if (!ne_reaped_within(pid, &status, secs * 1000))
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * A thread blocked in userfaultfd in KVM_SET_USER_MEMORY_REGION, reading its
 * argument; returns the uffd, whose closing unblocks it.
 */
static int block_in_uffd(struct blocked *b, pthread_t *t)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	long psize = sysconf(_SC_PAGESIZE);
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
		return -1;
	b->addr = mmap(NULL, psize, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->addr == MAP_FAILED)
		return -1;
	reg.range.start = (uintptr_t)b->addr;
	reg.range.len = psize;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return -1;
	if (pthread_create(t, NULL, set_blocked_region, b))
		return -1;
	return uffd;
}

/* Whether the fault of the blocked thread reached the uffd within 5 s. */
static int uffd_faulted(int uffd)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };

	return poll(&p, 1, 5000) == 1;
}

static void raise_event(volatile uint32_t *tc, uint64_t uid)
{
	ne_tc_write(tc, NE_TESTCTL_EVENT_SLOT, (uint32_t)uid);
	ne_tc_write(tc, NE_TESTCTL_EVENT_SLOT + 4, (uint32_t)(uid >> 32));
	ne_tc_write(tc, NE_TESTCTL_EVENT_RAISE, 1);
}

TEST_F_TIMEOUT(td, uffd_blocked_ioctl_blocks_nobody, 60)
{
	struct blocked b = { .rc = -2 };
	pthread_t t;
	int uffd, rc;

	b.vm = ne_create_vm();
	ASSERT_LE(0, b.vm);
	uffd = block_in_uffd(&b, &t);
	ASSERT_LE(0, uffd);
	if (!uffd_faulted(uffd)) {
		close(uffd);
		pthread_join(t, NULL);
		ASSERT_TRUE(0) TH_LOG("no fault in the uffd: ioctl %d errno %d",
				      b.rc, b.err);
	}

	/* An event, handled while that enclave's ioctl is blocked. */
	raise_event(self->tc, 0);
	usleep(200 * 1000);
	rc = others_create_and_close(20, 10);
	/* Unblock the ioctl whatever happened (the region has no pages). */
	close(uffd);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(0, rc) {
		TH_LOG("another process could not create and close VMs");
	}
	/* The argument page, once unblocked, reads 0: memory_size 0. */
	EXPECT_EQ(-1, b.rc);
	EXPECT_EQ(EINVAL, b.err);
	close(b.vm);
	munmap(b.addr, sysconf(_SC_PAGESIZE));
	ASSERT_NOTHING_HELD(self);
}

struct remover {
	int rc;
	double took;
};

static void *remove_device(void *arg)
{
	struct remover *r = arg;
	double start = now();

	r->rc = pci_remove();
	r->took = now() - start;
	return NULL;
}

TEST_F_TIMEOUT(td, remove_with_a_uffd_blocked_ioctl, 60)
{
	struct remover r = { .rc = -2 };
	struct blocked b = { .rc = -2 };
	pthread_t t, tr;
	int uffd;

	b.vm = ne_create_vm();
	ASSERT_LE(0, b.vm);
	uffd = block_in_uffd(&b, &t);
	ASSERT_LE(0, uffd);
	if (!uffd_faulted(uffd)) {
		close(uffd);
		pthread_join(t, NULL);
		ASSERT_TRUE(0) TH_LOG("no fault in the uffd: ioctl %d errno %d",
				      b.rc, b.err);
	}
	raise_event(self->tc, 0);
	usleep(200 * 1000);

	ASSERT_EQ(0, pthread_create(&tr, NULL, remove_device, &r));
	usleep(5000 * 1000);
	close(uffd);
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, pthread_join(tr, NULL));
	EXPECT_EQ(0, r.rc);
	EXPECT_GT(5.0, r.took) {
		TH_LOG("PCI remove waited for the blocked ioctl");
	}
	close(b.vm);
	munmap(b.addr, sysconf(_SC_PAGESIZE));
	EXPECT_EQ(self->pins, ne_pins_held());
	ASSERT_EQ(0, pci_rescan());
}

/*
 * PCI remove while a command is in flight (the device never answers it):
 * remove does not wait for the command timeout; the ioctl fails with
 * ETIMEDOUT (its effect unknown), and the pages go back once the device
 * was turned off.
 */
static void *set_region(void *arg)
{
	struct blocked *b = arg;

	errno = 0;
	b->rc = ne_set_region(b->vm, 0, 0, b->addr, ENCLAVE_MEM, 0);
	b->err = errno;
	return NULL;
}

TEST_F_TIMEOUT(td, remove_with_a_command_in_flight, 90)
{
	struct blocked b = { .rc = -2, .addr = self->mem };
	uint32_t adds = ne_tc_cmds(self->tc, NE_WIRE_SLOT_ADD_MEM);
	double start;
	pthread_t t;

	ASSERT_EQ(0, ne_set_timeout_ms(30000));
	b.vm = ne_create_vm();
	ASSERT_LE(0, b.vm);
	ne_tc_arm(self->tc, NE_TESTCTL_NOREPLY_ARM, NE_WIRE_SLOT_ADD_MEM, 0, 0);
	ASSERT_EQ(0, pthread_create(&t, NULL, set_region, &b));
	while (ne_tc_cmds(self->tc, NE_WIRE_SLOT_ADD_MEM) == adds)
		usleep(10 * 1000);

	start = now();
	ASSERT_EQ(0, pci_remove());
	EXPECT_GT(5.0, now() - start) {
		TH_LOG("PCI remove waited %.1f s for the command in flight",
		       now() - start);
	}
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(-1, b.rc);
	EXPECT_EQ(ETIMEDOUT, b.err);
	close(b.vm);
	EXPECT_EQ(self->pins, ne_pins_held());
	ASSERT_EQ(0, pci_rescan());
}

struct creator {
	int sys, vm, err;
	pid_t tid;
};

static void *create_vm(void *arg)
{
	struct creator *c = arg;
	int vm;

	__atomic_store_n(&c->tid, syscall(SYS_gettid), __ATOMIC_RELEASE);
	errno = 0;
	vm = ioctl(c->sys, KVM_CREATE_VM, 0);
	c->err = errno;
	__atomic_store_n(&c->vm, vm, __ATOMIC_RELEASE);
	return NULL;
}

/* Waits up to @ms for thread @tid to sleep (state S or D); 0 when it does. */
static int wait_asleep(pid_t tid, int ms)
{
	char path[64], buf[256], *p;
	int i;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	for (i = 0; i < ms / 10; i++) {
		p = ne_read_file(path, buf, sizeof(buf)) ? NULL : strrchr(buf, ')');
		if (p && (p[2] == 'S' || p[2] == 'D'))
			return 0;
		usleep(10 * 1000);
	}
	return -1;
}

#define SETTLE_WAIT_MS	3000
#define RESET_WAIT_MS	20000

/*
 * PCI remove while a channel reset waits for a device that does not turn
 * off (STUCK): the reset stops waiting and the remove turns the device off
 * itself.  The old driver's remove first waited out the reset's whole
 * timeout (RESET_WAIT_MS).
 */
TEST_F_TIMEOUT(td, remove_during_a_reset_does_not_wait_for_it, 90)
{
	static struct creator c;	/* (the thread outlives a failed ASSERT) */
	double start;
	pthread_t t;
	int vm;

	ASSERT_TRUE(has_stuck(self->tc));
	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	c = (struct creator){ .vm = -2, .sys = ne_open_sys() };
	ASSERT_LE(0, c.sys);
	ne_tc_arm(self->tc, NE_TESTCTL_NOREPLY_ARM, NE_WIRE_SLOT_ADD_MEM, 0, 0);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(vm, 0, 0, self->mem, HPAGE, 0));
	EXPECT_EQ(ETIMEDOUT, errno);

	/*
	 * The next command waits SETTLE_WAIT_MS for the late reply (the
	 * thread sleeps in that wait), then resets the channel: ENABLE = 0,
	 * which STUCK ignores, and RESET_WAIT_MS of waiting for it to read 0.
	 */
	ASSERT_EQ(0, ne_set_timeout_ms(SETTLE_WAIT_MS));
	ne_tc_write(self->tc, NE_TESTCTL_STUCK_ARM, 1);
	ASSERT_EQ(0, pthread_create(&t, NULL, create_vm, &c));
	while (!__atomic_load_n(&c.tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	ASSERT_EQ(0, wait_asleep(c.tid, SETTLE_WAIT_MS / 2));
	ASSERT_EQ(0, ne_set_timeout_ms(RESET_WAIT_MS));
	start = now();
	while (ne_tc_read(self->tc, NE_TESTCTL_STUCK_ARM) && now() - start < 10)
		usleep(10 * 1000);
	ASSERT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_STUCK_ARM));
	usleep(200 * 1000);
	/* the remove lands during the reset's wait: the thread still waits */
	ASSERT_EQ(-2, __atomic_load_n(&c.vm, __ATOMIC_ACQUIRE));

	start = now();
	ASSERT_EQ(0, pci_remove());
	EXPECT_GT(5.0, now() - start) {
		TH_LOG("PCI remove waited %.1f s for the channel reset",
		       now() - start);
	}
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(-1, c.vm);
	EXPECT_EQ(ENODEV, c.err);
	/* The remove turned the device off: nothing is held. */
	ASSERT_TRUE(tc_alive(self->tc));
	EXPECT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
	close(vm);
	close(c.sys);
	EXPECT_EQ(self->pins, ne_pins_held());
	ASSERT_EQ(0, pci_rescan());
}

/* The module stays while a VM fd, then only a vCPU fd, is open. */
TEST_F(td, rmmod_with_vm_and_vcpu_fds_open)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);

	ASSERT_LE(0, vm);
	errno = 0;
	if (try_rmmod() == 0) {
		reload_module();
		ASSERT_TRUE(0) TH_LOG("ne_kvm unloaded with a VM fd open");
	}
	EXPECT_EQ(EWOULDBLOCK, errno);
	close(vm);
	close(v1);
	errno = 0;
	if (try_rmmod() == 0) {
		reload_module();
		ASSERT_TRUE(0) TH_LOG("ne_kvm unloaded with a vCPU fd open");
	}
	EXPECT_EQ(EWOULDBLOCK, errno);
	close(v0);
	ASSERT_NOTHING_HELD(self);
}

/* Device rc values that are not plain errnos come back as EIO. */
TEST_F(td, device_rc_not_an_errno_is_eio)
{
	static const int32_t rcs[] = { -4096, -5000, -512, -517, -529,
				       INT32_MIN };
	unsigned int i;
	int vm;

	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	for (i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
		ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_ADD_VCPU,
			  NE_TESTCTL_FAIL_RC, (uint32_t)rcs[i]);
		errno = 0;
		EXPECT_EQ(-1, ioctl(vm, KVM_CREATE_VCPU, 0)) {
			TH_LOG("device rc %d", rcs[i]);
		}
		EXPECT_EQ(EIO, errno) {
			TH_LOG("device rc %d gave errno %d", rcs[i], errno);
		}
	}
	/* A plain errno is passed through. */
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_ADD_VCPU,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-EPERM);
	ASSERT_IOCTL_ERRNO(EPERM, vm, KVM_CREATE_VCPU, 0);
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

/*
 * Only the owner (the creator's mm) changes ne_last_error: another process's
 * refused ioctl gets EIO and leaves no trace there.
 */
TEST_F(td, another_process_leaves_last_error_alone)
{
	char before[256], after[256];
	int vm = ne_create_vm(), status;
	pid_t pid;

	ASSERT_LE(0, vm);
	ASSERT_IOCTL_ERRNO(ENOTTY, vm, _IO(0xAE, 0x7f), 0);
	ASSERT_EQ(0, ne_fdinfo(vm, "ne_last_error", before, sizeof(before)));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		errno = 0;
		if (ioctl(vm, KVM_CREATE_VCPU, 0) != -1 || errno != EIO)
			_exit(1);
		errno = 0;
		if (ioctl(vm, _IO(0xAE, 0x7e), 0) != -1 || errno != EIO)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, ne_fdinfo(vm, "ne_last_error", after, sizeof(after)));
	EXPECT_STREQ(before, after);
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

/* A started enclave answers EBUSY to NE_ENCLAVE_START, whatever its flags. */
TEST_F(td, second_start_is_ebusy_first)
{
	struct ne_enclave_start s = { .flags = ~0ULL, .enclave_cid = 1 };
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);
	uint64_t cid = 0;

	ASSERT_LE(0, vm);
	ASSERT_EQ(0, ne_start(vm, 0, &cid));
	ASSERT_IOCTL_ERRNO(EBUSY, vm, NE_ENCLAVE_START, &s);
	close(v0);
	close(v1);
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

/*
 * KVM_CAP_NR_MEMSLOTS on the system fd is the device's limit of memory
 * ranges, which only a SLOT_ALLOC reply tells.  When the SLOT_ALLOC the
 * driver sends at probe fails, the limit is unknown (0) until the next
 * SLOT_ALLOC that succeeds, whose reply must be learnt from: it used to
 * stay 0 until the next probe.
 */
static long nr_memslots(void)
{
	int sys = ne_open_sys();
	long n;

	if (sys < 0)
		return -1;
	n = ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	close(sys);
	return n;
}

TEST_F(td, nr_memslots_learnt_after_a_failed_probe)
{
	long want = nr_memslots();
	uint32_t allocs;
	int vm;

	ASSERT_LT(0, want);
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_ALLOC,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-EIO);
	ASSERT_EQ(0, pci_remove());
	ASSERT_EQ(0, pci_rescan());
	ASSERT_EQ(0, remap_testctl(self));
	/* The probe's SLOT_ALLOC met the fault. */
	ASSERT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_FAIL_ARM));
	EXPECT_EQ(0, nr_memslots());

	allocs = ne_tc_cmds(self->tc, NE_WIRE_SLOT_ALLOC);
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	EXPECT_EQ(allocs + 1, ne_tc_cmds(self->tc, NE_WIRE_SLOT_ALLOC));
	EXPECT_EQ(want, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS));
	EXPECT_EQ(want, nr_memslots());
	close(vm);
	EXPECT_EQ(want, nr_memslots());
	ASSERT_NOTHING_HELD(self);
}

/*
 * Waits up to 10 s for test-control register @off to read @want (a count:
 * at least @want); returns what it reads then.
 */
static uint32_t tc_reach(volatile uint32_t *tc, unsigned int off, uint32_t want,
			 bool count)
{
	uint32_t val = ne_tc_read(tc, off);
	int i;

	for (i = 0; i < 200 && (count ? val < want : val != want); i++) {
		usleep(50 * 1000);
		val = ne_tc_read(tc, off);
	}
	return val;
}

/*
 * A slot that no enclave owns (the probe's, which only teaches the limit of
 * memory ranges) must not stay on the device when its SLOT_FREE is refused
 * or unanswered, with no user command needed: refused (FAIL), the driver
 * keeps it as an orphan and sends SLOT_FREE again; unanswered (NOREPLY),
 * the command is settled, and with no late reply the channel reset frees
 * it.  The old driver logged "cannot free the probe's slot" and left it
 * there for good, a slot short; ne_fuzz found it (a FAIL armed for
 * SLOT_FREE across a PCI remove).
 */
TEST_F_TIMEOUT(td, probe_slot_refused_its_slot_free_is_freed_later, 60)
{
	static const uint32_t knobs[] = { NE_TESTCTL_FAIL_ARM, NE_TESTCTL_NOREPLY_ARM };
	static const uint32_t sent[] = { 2, 1 };	/* SLOT_FREEs */
	uint32_t frees;
	unsigned int i;
	int vm;

	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		/* Armed once removed: only the probe's SLOT_FREE can meet it. */
		ASSERT_EQ(0, pci_remove());
		ASSERT_TRUE(tc_alive(self->tc));
		frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);
		ne_tc_arm(self->tc, knobs[i], NE_WIRE_SLOT_FREE,
			  knobs[i] == NE_TESTCTL_FAIL_ARM ? NE_TESTCTL_FAIL_RC : 0,
			  (uint32_t)-EIO);
		ASSERT_EQ(0, pci_rescan());
		ASSERT_EQ(0, remap_testctl(self));
		ASSERT_EQ(0, ne_tc_read(self->tc, knobs[i]));
		EXPECT_EQ(self->slots,
			  tc_reach(self->tc, NE_TESTCTL_SLOTS, self->slots, false)) {
			TH_LOG("knob %#x: the probe's slot stayed on the device",
			       knobs[i]);
		}
		EXPECT_EQ(frees + sent[i], ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	}
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

/*
 * The same for the slot of a SLOT_ALLOC that timed out: its late reply is
 * settled without waiting for another user command, and when the SLOT_FREE
 * that gives it back is refused, it is tried again until the device frees
 * it.  The old driver settled it only at the next command, then left the
 * refused slot on the device for good.
 */
TEST_F_TIMEOUT(td, late_slot_alloc_refused_its_slot_free_is_freed_later, 60)
{
	uint32_t frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);
	int sys = ne_open_sys(), vm;

	ASSERT_LE(0, sys);
	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_ALLOC,
		  NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);
	/* The next SLOT_FREE is the one that gives back the late slot. */
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-EIO);
	ASSERT_IOCTL_ERRNO(ETIMEDOUT, sys, KVM_CREATE_VM, 0);

	/* The late reply comes SHORT_MS / 2 later: refused, then freed. */
	tc_reach(self->tc, NE_TESTCTL_CMD_COUNT(NE_WIRE_SLOT_FREE), frees + 2,
		 true);
	EXPECT_EQ(frees + 2, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	EXPECT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_FAIL_ARM));
	EXPECT_EQ(self->slots,
		  tc_reach(self->tc, NE_TESTCTL_SLOTS, self->slots, false));

	vm = ioctl(sys, KVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	close(vm);
	close(sys);
	ASSERT_NOTHING_HELD(self);
}

/* One line of debugfs ne_kvm/orphans. */
struct orphan {
	unsigned long long uid;
	unsigned int epoch;
	unsigned int tries;
	int rc;
};

/*
 * Reads debugfs ne_kvm/orphans into @o (up to @max lines, in order);
 * returns how many lines it has, or -1 (no file, or a line not as
 * documented).
 */
static int read_orphans(struct orphan *o, int max)
{
	struct orphan one;
	unsigned int dev;
	char line[256];
	int n = 0;
	FILE *f = fopen(ORPHANS, "r");

	if (!f)
		return -1;
	while (n >= 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "slot_uid: %llx device: %u epoch: %u free_tries: %u free_rc: %d",
			   &one.uid, &dev, &one.epoch, &one.tries, &one.rc) != 5) {
			n = -1;
			break;
		}
		if (n < max)
			o[n] = one;
		n++;
	}
	fclose(f);
	return n;
}

/* Polls ne_kvm/orphans until it lists @want lines (10 s at most). */
static int orphans_reach(int want)
{
	int n = read_orphans(NULL, 0), i;

	for (i = 0; i < 200 && n != want; i++) {
		usleep(50 * 1000);
		n = read_orphans(NULL, 0);
	}
	return n;
}

/*
 * Polls ne_kvm/orphans (@n lines into @now) until each of the @n orphans
 * of @then was tried at least @more times since, for @limit_s seconds at
 * most; returns how many of them were not.
 */
static int orphans_tried(const struct orphan *then, struct orphan *now,
			 int n, unsigned int more, unsigned int limit_s)
{
	time_t end = time(NULL) + limit_s;
	int behind, i, j;

	do {
		usleep(250 * 1000);
		behind = n;
		if (read_orphans(now, n) != n)
			continue;
		for (i = 0; i < n; i++)
			for (j = 0; j < n; j++)
				if (now[j].uid == then[i].uid &&
				    now[j].tries >= then[i].tries + more)
					behind--;
	} while (behind && time(NULL) < end);
	return behind;
}

/*
 * Polls ne_kvm/orphans (@n lines into @now) until at least @want of them
 * show @rc, for @limit_s seconds at most; returns how many do.
 */
static int orphans_with_rc(struct orphan *now, int n, int rc, int want,
			   unsigned int limit_s)
{
	time_t end = time(NULL) + limit_s;
	int got, i;

	do {
		usleep(250 * 1000);
		got = 0;
		if (read_orphans(now, n) != n)
			continue;
		for (i = 0; i < n; i++)
			got += now[i].rc == rc;
	} while (got < want && time(NULL) < end);
	return got;
}

/*
 * How many more slots the device takes now, up to 64: VMs are created
 * until the device refuses one (ENOSPC) or 64 exist, then closed; -1 if
 * another error came.
 */
static int device_room(int sys)
{
	int fds[64], n = 0, err, i;

	while (n < 64 && (fds[n] = ioctl(sys, KVM_CREATE_VM, 0)) >= 0)
		n++;
	err = n < 64 ? errno : ENOSPC;
	for (i = 0; i < n; i++)
		close(fds[i]);
	return err == ENOSPC ? n : -1;
}

/*
 * Slots nobody owns whose SLOT_FREE the device keeps refusing (a FAIL knob
 * armed for every SLOT_FREE, test-control layout 4): each is listed in
 * debugfs ne_kvm/orphans, in the order the driver tries them, and each is
 * tried again at every round, whether the device refuses at once or only
 * after the SLOT_FREE timed out, which ends a round: the next one goes on
 * with the orphans it did not try, so no slot is tried alone for ever.
 * The driver keeps MAX_ORPHANS; when the device has room for one more (the
 * 6.12 stage's max-slots=9), that one is only named in the kernel log, and
 * the device keeps it until it is turned off.  Once SLOT_FREE works again,
 * the list empties by itself.
 */
TEST_F_TIMEOUT(td, orphans_listed_and_each_tried_again_in_turn, 150)
{
	struct orphan first[MAX_ORPHANS + 1], later[MAX_ORPHANS + 1];
	int sys = ne_open_sys(), room, want, kept, n, i, j;

	ASSERT_LE(0, sys);
	ASSERT_LE(4, (int)ne_tc_read(self->tc, NE_TESTCTL_LAYOUT));
	ASSERT_EQ(0, read_orphans(NULL, 0));
	room = device_room(sys);
	ASSERT_LE(3, room);		/* three orphans at least: see below */
	/* (their teardown runs after the close) */
	ASSERT_EQ(self->slots,
		  tc_reach(self->tc, NE_TESTCTL_SLOTS, self->slots, false));
	want = room < MAX_ORPHANS + 1 ? room : MAX_ORPHANS + 1;
	kept = want < MAX_ORPHANS ? want : MAX_ORPHANS;
	TH_LOG("the device has room for %d slots: %d orphans, %d kept",
	       room, want, kept);

	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_TYPE, NE_WIRE_SLOT_FREE);
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_RC, (uint32_t)-EBUSY);
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, UINT32_MAX);
	for (i = 0; i < want; i++) {
		/* A SLOT_ALLOC answered late: its slot is nobody's. */
		ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_ALLOC,
			  NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);
		ASSERT_IOCTL_ERRNO(ETIMEDOUT, sys, KVM_CREATE_VM, 0);
		ASSERT_EQ(self->slots + i + 1,
			  tc_reach(self->tc, NE_TESTCTL_SLOTS,
				   self->slots + i + 1, false));
		n = i < kept ? i + 1 : kept;
		ASSERT_EQ(n, orphans_reach(n));
	}
	/* The device is full now, or the driver's list is. */
	ASSERT_EQ(kept, read_orphans(first, MAX_ORPHANS + 1));
	for (i = 0; i < kept; i++) {
		EXPECT_EQ(-EBUSY, first[i].rc);
		EXPECT_LE(1, first[i].tries);
		for (j = 0; j < i; j++)
			EXPECT_NE(first[j].uid, first[i].uid);
	}

	/* Refused at once: every one is tried twice more, in order. */
	EXPECT_EQ(0, orphans_tried(first, later, kept, 2, 20));
	for (i = 0; i < kept; i++) {
		EXPECT_EQ(first[i].uid, later[i].uid);
		EXPECT_LE(first[i].tries + 2, later[i].tries) {
			TH_LOG("orphan %d of %d (slot %#llx) tried %u times, then %u",
			       i + 1, kept, later[i].uid, first[i].tries,
			       later[i].tries);
		}
	}

	/*
	 * Refused late, after each SLOT_FREE timed out: each round ends at
	 * its first SLOT_FREE, and the next begins with the next orphan.  The
	 * refusal's rc changes once every SLOT_FREE is delayed, so an orphan
	 * showing the new one had a SLOT_FREE time out and its late answer
	 * read (within the timeout: no reset).  Three of them within about
	 * three rounds; an order that began each round with the same orphan
	 * would show two at most (that one, and one a round cut short when
	 * the delay began).
	 */
	ASSERT_EQ(kept, read_orphans(first, MAX_ORPHANS + 1));
	ne_tc_write(self->tc, NE_TESTCTL_DELAY_TYPE, NE_WIRE_SLOT_FREE);
	ne_tc_write(self->tc, NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);
	ne_tc_write(self->tc, NE_TESTCTL_DELAY_ARM, UINT32_MAX);
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_RC, (uint32_t)-EPERM);
	EXPECT_LE(3, orphans_with_rc(later, kept, -EPERM, 3, 40)) {
		for (i = 0; i < kept; i++)
			TH_LOG("orphan %d: slot %#llx tried %u times, rc %d",
			       i + 1, later[i].uid, later[i].tries,
			       later[i].rc);
	}
	ne_tc_write(self->tc, NE_TESTCTL_DELAY_ARM, 0);
	ASSERT_EQ(kept, read_orphans(later, MAX_ORPHANS + 1));
	EXPECT_EQ(first[0].epoch, later[0].epoch);

	/* SLOT_FREE works again: every orphan is freed, the untracked not. */
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, 0);
	EXPECT_EQ(0, orphans_reach(0));
	EXPECT_EQ(self->slots + want - kept,
		  tc_reach(self->tc, NE_TESTCTL_SLOTS, self->slots + want - kept,
			   false));
	if (want > kept) {
		/* Turning the device off frees it. */
		ASSERT_EQ(0, pci_remove());
		ASSERT_EQ(0, pci_rescan());
		ASSERT_EQ(0, remap_testctl(self));
	}
	close(sys);
	ASSERT_NOTHING_HELD(self);
}

/*
 * Whether the kernel stack of task @dir (/proc/PID/task/TID) holds @fn;
 * -1 when it cannot be read (the file opens, but reading it wants
 * CAP_SYS_ADMIN) or is empty (a running task's).
 */
static int stack_holds(const char *dir, const char *fn)
{
	char path[700], line[256];
	int found = 0, lines = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/stack", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f)) {
		lines++;
		found = !!strstr(line, fn);
	}
	if (ferror(f) || !lines)
		found = -1;
	fclose(f);
	return found;
}

/* Tasks of the system whose kernel stack holds @fn; -1 if none was read. */
static int tasks_in(const char *fn)
{
	char dir[300], task[600];
	struct dirent *p, *t;
	int n = 0, read = 0, r;
	DIR *procs = opendir("/proc"), *tasks;

	if (!procs)
		return -1;
	while ((p = readdir(procs))) {
		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		snprintf(dir, sizeof(dir), "/proc/%s/task", p->d_name);
		tasks = opendir(dir);
		if (!tasks)
			continue;
		while ((t = readdir(tasks))) {
			if (t->d_name[0] == '.')
				continue;
			snprintf(task, sizeof(task), "%s/%s", dir, t->d_name);
			r = stack_holds(task, fn);
			read += r >= 0;
			n += r > 0;
		}
		closedir(tasks);
	}
	closedir(procs);
	return read ? n : -1;
}

/* io_uring_setup(4), with its rings mapped: the ring fd, or -1. */
struct ring {
	int fd;
	struct io_uring_params p;
	void *sq;
	size_t sq_size;
	struct io_uring_sqe *sqes;
};

static int ring_open(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = syscall(__NR_io_uring_setup, 4, &r->p);
	if (r->fd < 0)
		return -1;
	r->sq_size = r->p.sq_off.array + r->p.sq_entries * sizeof(__u32);
	r->sq = mmap(NULL, r->sq_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		     r->fd, IORING_OFF_SQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(*r->sqes),
		       PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQES);
	if (r->sq == MAP_FAILED || r->sqes == MAP_FAILED) {
		if (r->sq != MAP_FAILED)
			munmap(r->sq, r->sq_size);
		if (r->sqes != MAP_FAILED)
			munmap(r->sqes, r->p.sq_entries * sizeof(*r->sqes));
		close(r->fd);
		return -1;
	}
	return r->fd;
}

static void ring_close(struct ring *r)
{
	munmap(r->sqes, r->p.sq_entries * sizeof(*r->sqes));
	munmap(r->sq, r->sq_size);
	close(r->fd);
}

/* Submits IORING_OP_CLOSE of @fd, run by an io-wq worker (IOSQE_ASYNC). */
static int ring_close_async(struct ring *r, int fd)
{
	__u32 *tail = r->sq + r->p.sq_off.tail;
	__u32 *array = r->sq + r->p.sq_off.array;
	__u32 mask = *(__u32 *)(r->sq + r->p.sq_off.ring_mask);
	struct io_uring_sqe *sqe = &r->sqes[0];

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_CLOSE;
	sqe->fd = fd;
	sqe->flags = IOSQE_ASYNC;
	array[*tail & mask] = 0;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	return syscall(__NR_io_uring_enter, r->fd, 1, 0, 0, NULL, 0) == 1 ? 0 : -1;
}

/*
 * The VM's last reference goes (@last_ref) while its SLOT_FREE answers
 * 3 s late: once the teardown has sent it, no task may sit in the release
 * (ne_vm_release) waiting for it, and the teardown still completes.
 */
static void no_release_waits(struct __test_metadata *_metadata,
			     FIXTURE_DATA(td) *self, int (*last_ref)(int vm))
{
	uint32_t frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);
	int vm, waiting, i;

	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	ASSERT_EQ(0, ne_set_region(vm, 0, 0, self->mem, ENCLAVE_MEM, 0));
	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_DELAY_MS, 3000);
	ASSERT_EQ(0, last_ref(vm)) {
		TH_LOG("io_uring: %s", strerror(errno));
	}
	/* the release ran once the teardown has sent its SLOT_FREE */
	for (i = 0; i < 500 && ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE) == frees; i++)
		usleep(10 * 1000);
	ASSERT_EQ(frees + 1, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	/* its reply is 3 s away: nothing may sit in the release meanwhile */
	waiting = tasks_in("ne_vm_release");
	ASSERT_LE(0, waiting) {
		TH_LOG("no task's kernel stack could be read (/proc/PID/task/TID/stack)");
	}
	EXPECT_EQ(0, waiting) {
		TH_LOG("%d tasks wait in ne_vm_release for the teardown", waiting);
	}
	for (i = 0; i < 1000 && ne_pins_held() != self->pins; i++)
		usleep(10 * 1000);
	ASSERT_NOTHING_HELD(self);
}

/*
 * Held only by an io_uring's table of registered files, the VM fd is
 * released from the ring's exit work, and its __fput() then runs in the
 * kworker that serves every deferred close of the system: a kernel thread,
 * which no signal ends the wait of (it waited for the whole teardown, and
 * every other deferred close waited behind it).
 */
static int last_ref_in_a_kernel_thread(int vm)
{
	struct ring r;

	if (ring_open(&r) < 0 ||
	    syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_FILES, &vm, 1))
		return -1;
	close(vm);
	ring_close(&r);
	return 0;
}

TEST_F_TIMEOUT(td, last_close_in_a_kernel_thread_does_not_wait, 60)
{
	no_release_waits(_metadata, self, last_ref_in_a_kernel_thread);
}

/*
 * Closed by IORING_OP_CLOSE run async, the VM fd's __fput() runs in an
 * io_uring worker (a thread of this process that blocks every signal but
 * SIGKILL): it waited for the whole teardown, and the ring's other
 * requests behind it.
 */
static struct ring async_ring;

static int last_ref_in_an_io_uring_worker(int vm)
{
	if (ring_open(&async_ring) < 0)
		return -1;
	return ring_close_async(&async_ring, vm);
}

TEST_F_TIMEOUT(td, last_close_in_an_io_uring_worker_does_not_wait, 60)
{
	no_release_waits(_metadata, self, last_ref_in_an_io_uring_worker);
	ring_close(&async_ring);
}

/*
 * A refused SLOT_FREE is not the device's last word: the driver sends it
 * again (after 100 ms, doubling up to a minute) for as long as it lasts,
 * and lets go as soon as the device accepts it: pins, core and slot come
 * back without a reset, which a bystander's slot, still held, proves.  The
 * old driver tried once and kept everything until the device was turned
 * off.  Refused three times, it is freed by the fourth SLOT_FREE, and no
 * SLOT_FREE follows.
 */
TEST_F_TIMEOUT(td, zombie_freed_once_its_slot_free_is_accepted, 90)
{
	static const uint32_t refusals[] = { UINT32_MAX, 3 };
	int v0, v1, vm, bystander = ne_create_vm();
	long held, tries;
	uint32_t frees;
	uint64_t uid;
	unsigned int i;
	uint64_t cid;

	ASSERT_LE(0, bystander);
	for (i = 0; i < ARRAY_SIZE(refusals); i++) {
		TH_LOG("SLOT_FREE refused %u times", refusals[i]);
		vm = build_enclave(self->mem, &v0, &v1);
		ASSERT_LE(0, vm);
		cid = 0;
		ASSERT_EQ(0, ne_start(vm, 0, &cid));
		uid = slot_uid(vm);
		held = ne_pins_held();
		frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);

		ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
			  NE_TESTCTL_FAIL_RC, (uint32_t)-EIO);
		ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, refusals[i]);
		close(v0);
		close(v1);
		ASSERT_EQ(0, close(vm));

		if (refusals[i] == UINT32_MAX) {
			/* Tried again and again while refused... */
			tries = zombie_reach(uid, "free_tries:", 4);
			EXPECT_LE(4, tries);
			EXPECT_LE(frees + tries,
				  ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
			EXPECT_EQ(-EIO, zombie_field(uid, "free_rc:", 0));
			EXPECT_LE(0, zombie_field(uid, "retry_in_ms:", -1));
			EXPECT_EQ(held, ne_pins_held());
			EXPECT_EQ(self->slots + 2,
				  ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
			/* ...until the device accepts it. */
			ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, 0);
		}
		EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
		EXPECT_EQ(0, zombie_listed(uid));
		EXPECT_EQ(self->slots + 1,
			  tc_reach(self->tc, NE_TESTCTL_SLOTS, self->slots + 1,
				   false));
		if (refusals[i] != UINT32_MAX) {
			EXPECT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_FAIL_ARM));
			EXPECT_EQ(frees + refusals[i] + 1,
				  ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
		}
	}
	close(bystander);
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
	ASSERT_NOTHING_HELD(self);
}

/*
 * The teardown's ENCLAVE_STOP timed out, then its SLOT_FREE was refused: the
 * device never confirmed the enclave stopped, so each retry sends
 * ENCLAVE_STOP again before SLOT_FREE (a device that will not free a
 * running slot would otherwise refuse for good).
 */
TEST_F(td, zombie_retry_stops_the_enclave_first)
{
	uint32_t stops, frees;
	int v0, v1, vm;
	uint64_t cid = 0;

	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	vm = build_enclave(self->mem, &v0, &v1);
	ASSERT_LE(0, vm);
	ASSERT_EQ(0, ne_start(vm, 0, &cid));
	stops = ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP);
	frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);

	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_ENCLAVE_STOP,
		  NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-EIO);
	close(v0);
	close(v1);
	ASSERT_EQ(0, close(vm));

	EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
	EXPECT_EQ(stops + 2, ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP));
	EXPECT_EQ(frees + 2, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
	ASSERT_NOTHING_HELD(self);
}

/*
 * A retry round stops at the first SLOT_FREE that times out; the zombie it
 * tried goes to the end of the list, so that the next round begins with
 * the others.  Every SLOT_FREE here times out and is then refused: each of
 * two zombies must be tried again, in turn.  Kept first, the first one
 * would be the only one ever tried again.
 */
TEST_F_TIMEOUT(td, zombies_each_tried_again_in_turn, 90)
{
	int vm[2] = { ne_create_vm(), ne_create_vm() };
	long tries[2] = { 0, 0 };
	uint64_t uid[2];
	unsigned int i;
	double end;

	ASSERT_LE(0, vm[0]);
	ASSERT_LE(0, vm[1]);
	ASSERT_EQ(0, ne_set_timeout_ms(SHORT_MS));
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-EIO);
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, UINT32_MAX);
	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_DELAY_MS, 3 * SHORT_MS / 2);
	ne_tc_write(self->tc, NE_TESTCTL_DELAY_ARM, UINT32_MAX);
	for (i = 0; i < 2; i++) {
		uid[i] = slot_uid(vm[i]);
		ASSERT_EQ(0, close(vm[i]));
		EXPECT_EQ(1, zombie_listed(uid[i]));
	}

	/* A round costs the timeout and the backoff (2 s at most). */
	end = now() + 60;
	while (now() < end && (tries[0] < 3 || tries[1] < 3)) {
		usleep(250 * 1000);
		for (i = 0; i < 2; i++)
			tries[i] = zombie_field(uid[i], "free_tries:", -1);
	}
	TH_LOG("SLOT_FREEs sent: %ld and %ld", tries[0], tries[1]);
	EXPECT_LE(3, tries[0]);
	EXPECT_LE(3, tries[1]);
	EXPECT_EQ(self->slots + 2, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));

	ne_tc_write(self->tc, NE_TESTCTL_DELAY_ARM, 0);
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, 0);
	EXPECT_EQ(self->slots,
		  tc_reach(self->tc, NE_TESTCTL_SLOTS, self->slots, false));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, zombie_listed(uid[i]));
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
	ASSERT_NOTHING_HELD(self);
}

/*
 * SLOT_FREE answered ENOENT: the device no longer knows the slot by that
 * uid, and may give it to a new slot, which a SLOT_FREE sent again would
 * free.  The zombie is not retried (nor let go: the device did not say
 * it let go of the memory) until the device is turned off.
 */
TEST_F_TIMEOUT(td, zombie_disowned_by_the_device_is_not_retried, 60)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);
	uint32_t frees;
	uint64_t uid;
	long held;

	ASSERT_LE(0, vm);
	uid = slot_uid(vm);
	held = ne_pins_held();
	frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-ENOENT);
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, UINT32_MAX);
	close(v0);
	close(v1);
	ASSERT_EQ(0, close(vm));
	EXPECT_EQ(-ENOENT, zombie_field(uid, "free_rc:", 0));
	EXPECT_EQ(-1, zombie_field(uid, "retry_in_ms:", 0));

	/* A retry would come after 0.1, 0.3, 0.7 and 1.5 s. */
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, 0);
	usleep(3 * 1000 * 1000);
	EXPECT_EQ(frees + 1, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	EXPECT_EQ(1, zombie_field(uid, "free_tries:", -1));
	EXPECT_EQ(held, ne_pins_held());

	ASSERT_EQ(0, pci_remove());
	EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
	EXPECT_EQ(0, zombie_listed(uid));
	ASSERT_EQ(0, pci_rescan());
	ASSERT_EQ(0, remap_testctl(self));
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
	ASSERT_NOTHING_HELD(self);
}

/*
 * A device that loses a zombie's slot without a word and gives its uid to a
 * new slot (FORGET_SLOT, test-control layout 5): a SLOT_FREE sent again for
 * the zombie would free the new enclave's slot.  The SLOT_ALLOC that hands
 * the uid out marks the zombie stale, before any other command: it is not
 * retried (nor let go: the device never confirmed its memory released),
 * the new enclave keeps its slot, and its own SLOT_FREE at close does not
 * release the zombie either.  PCI remove does.
 */
TEST_F_TIMEOUT(td, zombie_whose_uid_goes_to_a_new_slot_is_left_alone, 60)
{
	int v0, v1, vm, vm2;
	uint32_t frees;
	uint64_t uid;
	long held;

	ASSERT_LE(5, (int)ne_tc_read(self->tc, NE_TESTCTL_LAYOUT));
	vm = build_enclave(self->mem, &v0, &v1);
	ASSERT_LE(0, vm);
	uid = slot_uid(vm);
	held = ne_pins_held();
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_FAIL_RC, (uint32_t)-EIO);
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, UINT32_MAX);
	close(v0);
	close(v1);
	ASSERT_EQ(0, close(vm));
	EXPECT_LE(2, zombie_reach(uid, "free_tries:", 2));

	/* The device loses the slot; the next one gets its uid. */
	ne_tc_write(self->tc, NE_TESTCTL_EVENT_SLOT, (uint32_t)uid);
	ne_tc_write(self->tc, NE_TESTCTL_EVENT_SLOT + 4, uid >> 32);
	ne_tc_write(self->tc, NE_TESTCTL_FORGET_SLOT, 1);
	ASSERT_EQ(0, (int32_t)ne_tc_read(self->tc, NE_TESTCTL_EVENT_STATUS));
	vm2 = ne_create_vm();
	ASSERT_LE(0, vm2);
	ASSERT_EQ(uid, slot_uid(vm2));
	EXPECT_EQ(-1, zombie_field(uid, "retry_in_ms:", 0));

	/* SLOT_FREE would work now: it is not sent for the zombie. */
	ne_tc_write(self->tc, NE_TESTCTL_FAIL_ARM, 0);
	frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);
	usleep(3 * 1000 * 1000);
	EXPECT_EQ(frees, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	EXPECT_EQ(self->slots + 1, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
	EXPECT_EQ(1, zombie_listed(uid));
	EXPECT_EQ(held, ne_pins_held());

	/* The new enclave's own SLOT_FREE frees its slot, not the zombie. */
	ASSERT_EQ(0, close(vm2));
	EXPECT_EQ(frees + 1, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	EXPECT_EQ(self->slots, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
	EXPECT_EQ(1, zombie_listed(uid));
	EXPECT_EQ(held, ne_pins_held());

	ASSERT_EQ(0, pci_remove());
	EXPECT_EQ(self->pins, ne_pins_reach(self->pins));
	EXPECT_EQ(0, zombie_listed(uid));
	ASSERT_EQ(0, pci_rescan());
	ASSERT_EQ(0, remap_testctl(self));
	EXPECT_EQ(0, set_pool_soon(NE_TEST_POOL));
	ASSERT_NOTHING_HELD(self);
}

int main(int argc, char **argv)
{
	ne_require_device();
	return test_harness_run(argc, argv);
}
