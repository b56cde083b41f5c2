// SPDX-License-Identifier: GPL-2.0
/*
 * ne_kvm_events_test: out-of-band events and device faults, driven by the
 * emulated device's test controls (BAR 2).  An enclave that stops on its own
 * gives EPOLLHUP and then EIO; a device error comes back as its errno; a
 * late reply is never taken for the next command's; a device that never
 * replies gives ETIMEDOUT within the (lowered) timeout and the driver
 * recovers; SLOT_FREE's -EAGAIN is retried; a SLOT_INFO that fails or
 * times out is asked again, so no stop goes unseen; one that says a
 * running enclave is in another state, or that its slot is unknown, is a
 * stop.  Nothing leaks meanwhile.
 */
#include <time.h>

#include "kselftest_harness.h"
#include "ne_kvm_util.h"

#define ENCLAVE_MEM	(64 * MIB)
#define TEST_TIMEOUT_MS	400

FIXTURE(ev) {
	volatile uint32_t *tc;
	char *mem;
	long pins;
	uint32_t slots;
	char timeout[32];
};

FIXTURE_SETUP(ev)
{
	ASSERT_EQ(0, ne_ensure_pool());
	self->tc = ne_testctl_map();
	ASSERT_TRUE(self->tc != NULL) {
		TH_LOG("no test controls: BAR 2 missing (tools/ne-vm --ne-pci test-controls=on)");
	}
	ne_tc_disarm_all(self->tc);
	ASSERT_EQ(0, ne_read_file(NE_TIMEOUT_PARAM, self->timeout,
				  sizeof(self->timeout)));
	self->mem = ne_huge_alloc(ENCLAVE_MEM);
	ASSERT_NE(MAP_FAILED, self->mem);
	self->pins = ne_pins_held();
	self->slots = ne_tc_read(self->tc, NE_TESTCTL_SLOTS);
}

FIXTURE_TEARDOWN(ev)
{
	if (!self->tc)
		return;
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

static void raise_event(volatile uint32_t *tc, uint64_t uid)
{
	ne_tc_write(tc, NE_TESTCTL_EVENT_SLOT, (uint32_t)uid);
	ne_tc_write(tc, NE_TESTCTL_EVENT_SLOT + 4, (uint32_t)(uid >> 32));
	ne_tc_write(tc, NE_TESTCTL_EVENT_RAISE, 1);
}

static short poll_vm(int vm, int ms)
{
	struct pollfd p = { .fd = vm, .events = POLLIN };

	return poll(&p, 1, ms) == 1 ? p.revents : 0;
}

#define ASSERT_NOTHING_HELD(self) do {					\
	ASSERT_EQ((self)->slots, ne_tc_read((self)->tc, NE_TESTCTL_SLOTS)); \
	ASSERT_EQ((self)->pins, ne_pins_held());			\
} while (0)

TEST_F(ev, stopped_on_its_own_gives_hup_then_eio)
{
	uint32_t stops = ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP);
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);
	uint64_t cid = 0;
	char state[32];

	ASSERT_LE(0, vm);
	ASSERT_EQ(0, ne_start(vm, 0, &cid));
	EXPECT_EQ(0, poll_vm(vm, 0));
	raise_event(self->tc, slot_uid(vm));
	ASSERT_EQ(0, (int)ne_tc_read(self->tc, NE_TESTCTL_EVENT_STATUS));
	EXPECT_EQ(POLLHUP, poll_vm(vm, 5000) & POLLHUP);
	/* Never cleared. */
	EXPECT_EQ(POLLHUP, poll_vm(vm, 0) & POLLHUP);
	ASSERT_EQ(0, ne_fdinfo(vm, "ne_state", state, sizeof(state)));
	EXPECT_STREQ("stopped", state);
	ASSERT_IOCTL_ERRNO(EIO, vm, KVM_CREATE_VCPU, 3);
	ASSERT_IOCTL_ERRNO(EIO, vm, NE_ENCLAVE_START, &cid);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(vm, 1, ENCLAVE_MEM, self->mem, HPAGE, 0));
	EXPECT_EQ(EIO, errno);
	close(v0);
	close(v1);
	close(vm);
	/* A stopped enclave is freed, not stopped again. */
	EXPECT_EQ(stops, ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP));
	ASSERT_NOTHING_HELD(self);
}

/*
 * Starts an enclave (its VM and vCPU fds in @fds), arms @knob for SLOT_INFO
 * (@what = @value), and raises the enclave's stop event: within @hup_ms its
 * poller gets EPOLLHUP, and the enclave reads stopped.
 */
static void stop_with_a_slot_info_fault(struct __test_metadata *_metadata,
					FIXTURE_DATA(ev) *self, int fds[3],
					uint32_t knob, uint32_t what,
					int32_t value, int hup_ms)
{
	uint64_t cid = 0;
	char state[32];

	fds[0] = build_enclave(self->mem, &fds[1], &fds[2]);
	ASSERT_LE(0, fds[0]);
	ASSERT_EQ(0, ne_start(fds[0], 0, &cid));
	ne_tc_arm(self->tc, knob, NE_WIRE_SLOT_INFO, what, value);
	raise_event(self->tc, slot_uid(fds[0]));
	ASSERT_EQ(0, (int)ne_tc_read(self->tc, NE_TESTCTL_EVENT_STATUS));
	EXPECT_EQ(POLLHUP, poll_vm(fds[0], hup_ms) & POLLHUP);
	ASSERT_EQ(0, ne_fdinfo(fds[0], "ne_state", state, sizeof(state)));
	EXPECT_STREQ("stopped", state);
}

static void close_all(const int fds[3])
{
	close(fds[1]);
	close(fds[2]);
	close(fds[0]);
}

/*
 * The event work asks the device (SLOT_INFO) which running enclave
 * stopped; a SLOT_INFO that fails or times out is asked again later, not
 * taken for "still running": the device raises an event once, and a lost
 * one left the enclave RUNNING and its poller waiting for good.
 */
static void stop_is_seen_despite(struct __test_metadata *_metadata,
				 FIXTURE_DATA(ev) *self, uint32_t knob,
				 uint32_t what, int32_t value)
{
	uint32_t infos = ne_tc_cmds(self->tc, NE_WIRE_SLOT_INFO);
	int fds[3];

	stop_with_a_slot_info_fault(_metadata, self, fds, knob, what, value,
				    10000);
	/* seen stopped (not lost to a device reset) by a second SLOT_INFO */
	EXPECT_LE(infos + 2, ne_tc_cmds(self->tc, NE_WIRE_SLOT_INFO));
	close_all(fds);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(ev, stop_seen_after_a_failed_slot_info)
{
	stop_is_seen_despite(_metadata, self, NE_TESTCTL_FAIL_ARM,
			     NE_TESTCTL_FAIL_RC, -EIO);
}

/* (late, but within the timeout the next command waits for it: no reset) */
TEST_F(ev, stop_seen_after_a_slot_info_timeout)
{
	ASSERT_EQ(0, ne_set_timeout_ms(TEST_TIMEOUT_MS));
	stop_is_seen_despite(_metadata, self, NE_TESTCTL_DELAY_ARM,
			     NE_TESTCTL_DELAY_MS, 3 * TEST_TIMEOUT_MS / 2);
}

/*
 * A started enclave never goes back: whatever state other than RUNNING a
 * SLOT_INFO reply claims (here INIT, a reply of rc 0 and nothing else), the
 * enclave has stopped.  The old driver stored the state as is, and an
 * enclave back in INIT took memory, vCPUs and a second START again.
 */
TEST_F(ev, a_stop_reported_as_init_is_a_stop)
{
	uint32_t starts = ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_START);
	uint32_t stops = ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP);
	uint64_t cid = 0;
	int fds[3];

	stop_with_a_slot_info_fault(_metadata, self, fds, NE_TESTCTL_FAIL_ARM,
				    NE_TESTCTL_FAIL_RC, 0, 5000);
	ASSERT_EQ(0, (int)ne_tc_read(self->tc, NE_TESTCTL_FAIL_ARM));
	ASSERT_IOCTL_ERRNO(EIO, fds[0], NE_ENCLAVE_START, &cid);
	ASSERT_IOCTL_ERRNO(EIO, fds[0], KVM_CREATE_VCPU, 3);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(fds[0], 1, ENCLAVE_MEM, self->mem, HPAGE, 0));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(starts + 1, ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_START));
	close_all(fds);
	/* A stop the device did not report as such is made sure of. */
	EXPECT_EQ(stops + 1, ne_tc_cmds(self->tc, NE_WIRE_ENCLAVE_STOP));
	ASSERT_NOTHING_HELD(self);
}

/*
 * A running enclave whose slot the device no longer knows (SLOT_INFO
 * -ENOENT) is not running: its pollers get EPOLLHUP at once.  The old
 * driver took -ENOENT for a query that failed and asked again every 2 s,
 * for good, while the poller waited.
 */
TEST_F(ev, a_slot_the_device_does_not_know_has_stopped)
{
	uint32_t infos = ne_tc_cmds(self->tc, NE_WIRE_SLOT_INFO);
	int fds[3];

	stop_with_a_slot_info_fault(_metadata, self, fds, NE_TESTCTL_FAIL_ARM,
				    NE_TESTCTL_FAIL_RC, -ENOENT, 5000);
	/* asked once: -ENOENT is an answer, not a failure to retry */
	EXPECT_EQ(infos + 1, ne_tc_cmds(self->tc, NE_WIRE_SLOT_INFO));
	close_all(fds);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(ev, events_about_other_slots_change_nothing)
{
	int v0, v1, vm = build_enclave(self->mem, &v0, &v1);
	int idle = ne_create_vm();
	uint64_t cid = 0;

	ASSERT_LE(0, vm);
	ASSERT_LE(0, idle);
	ASSERT_EQ(0, ne_start(vm, 0, &cid));
	raise_event(self->tc, 0);
	raise_event(self->tc, slot_uid(idle));
	EXPECT_EQ(0, poll_vm(vm, 300));
	EXPECT_EQ(0, poll_vm(idle, 0));
	/* Still running: a second start is refused as for any live enclave. */
	EXPECT_EQ(-1, ne_start(vm, 0, &cid));
	EXPECT_EQ(EBUSY, errno);
	close(idle);
	close(v0);
	close(v1);
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(ev, device_errors_come_back_as_is)
{
	static const int rcs[] = { -EIO, -ENOMEM, -EINVAL, -EPERM, -ENOSPC };
	unsigned int i;
	int vm, v;

	for (i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
		ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_ALLOC,
			  NE_TESTCTL_FAIL_RC, rcs[i]);
		errno = 0;
		EXPECT_EQ(-1, ne_create_vm());
		EXPECT_EQ(-rcs[i], errno);
	}
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	for (i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
		ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_ADD_MEM,
			  NE_TESTCTL_FAIL_RC, rcs[i]);
		errno = 0;
		EXPECT_EQ(-1, ne_set_region(vm, 0, 0, self->mem, ENCLAVE_MEM, 0));
		EXPECT_EQ(-rcs[i], errno);
		/* The device held nothing: the call pinned nothing. */
		EXPECT_EQ(self->pins, ne_pins_held());
	}
	ASSERT_EQ(0, ne_set_region(vm, 0, 0, self->mem, ENCLAVE_MEM, 0));

	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_ADD_VCPU,
		  NE_TESTCTL_FAIL_RC, -EBUSY);
	ASSERT_IOCTL_ERRNO(EBUSY, vm, KVM_CREATE_VCPU, 0);
	/* The core went back to the pool. */
	EXPECT_EQ(0, ne_fdinfo_num(vm, "ne_vcpus"));
	v = vm_ioctl(vm, KVM_CREATE_VCPU, 0);
	EXPECT_EQ(2, ne_fdinfo_num(v, "ne_parent_cpu"));
	close(v);
	v = vm_ioctl(vm, KVM_CREATE_VCPU, 1);
	close(v);

	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_ENCLAVE_START,
		  NE_TESTCTL_FAIL_RC, -EADDRINUSE);
	ASSERT_IOCTL_ERRNO(EADDRINUSE, vm, NE_ENCLAVE_START,
			   &(struct ne_enclave_start){ 0 });
	/* Still not started: a second try works. */
	ASSERT_EQ(0, ioctl(vm, NE_ENCLAVE_START, &(struct ne_enclave_start){ 0 }));
	close(vm);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(ev, slot_free_eagain_is_retried)
{
	uint32_t frees = ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE);
	int vm = ne_create_vm();

	ASSERT_LE(0, vm);
	ne_tc_arm(self->tc, NE_TESTCTL_FAIL_ARM, NE_WIRE_SLOT_FREE,
		  NE_TESTCTL_FAIL_RC, -EAGAIN);
	close(vm);
	EXPECT_EQ(frees + 2, ne_tc_cmds(self->tc, NE_WIRE_SLOT_FREE));
	ASSERT_NOTHING_HELD(self);
}

TEST_F(ev, late_reply_is_not_taken_for_the_next)
{
	uint32_t replies;
	double t;
	int vm, vm2;

	ASSERT_EQ(0, ne_set_timeout_ms(TEST_TIMEOUT_MS));
	/*
	 * SLOT_ALLOC answers after the timeout, but within the one more
	 * timeout the next command waits for it: the slot it made is freed.
	 */
	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_ALLOC,
		  NE_TESTCTL_DELAY_MS, 3 * TEST_TIMEOUT_MS / 2);
	t = now();
	errno = 0;
	EXPECT_EQ(-1, ne_create_vm());
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_GT(3.0, now() - t);

	/* The next command waits for the late reply, then gets its own. */
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	vm2 = ne_create_vm();
	ASSERT_LE(0, vm2);
	EXPECT_NE(slot_uid(vm), slot_uid(vm2));
	ASSERT_EQ(self->slots + 2, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));

	/* A late SLOT_ADD_MEM: the enclave is unusable, nothing leaks. */
	ne_tc_arm(self->tc, NE_TESTCTL_DELAY_ARM, NE_WIRE_SLOT_ADD_MEM,
		  NE_TESTCTL_DELAY_MS, 2 * TEST_TIMEOUT_MS);
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(vm, 0, 0, self->mem, HPAGE, 0));
	EXPECT_EQ(ETIMEDOUT, errno);
	ASSERT_IOCTL_ERRNO(EIO, vm, KVM_CREATE_VCPU, 0);
	replies = ne_tc_read(self->tc, NE_TESTCTL_REPLIES);
	close(vm);
	EXPECT_LT(replies, ne_tc_read(self->tc, NE_TESTCTL_REPLIES));
	close(vm2);
	ASSERT_NOTHING_HELD(self);
}

TEST_F(ev, never_reply_times_out_and_the_driver_recovers)
{
	int vm, bystander;
	double t;

	ASSERT_EQ(0, ne_set_timeout_ms(TEST_TIMEOUT_MS));
	bystander = ne_create_vm();
	ASSERT_LE(0, bystander);
	vm = ne_create_vm();
	ASSERT_LE(0, vm);

	ne_tc_arm(self->tc, NE_TESTCTL_NOREPLY_ARM, NE_WIRE_SLOT_ADD_MEM, 0, 0);
	t = now();
	errno = 0;
	EXPECT_EQ(-1, ne_set_region(vm, 0, 0, self->mem, HPAGE, 0));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_GT(3.0, now() - t);
	/* Closing it needs the device: the driver resets the channel. */
	t = now();
	close(vm);
	EXPECT_GT(5.0, now() - t);
	/* The reset took every slot: the bystander's fd says ENODEV. */
	EXPECT_EQ(POLLHUP, poll_vm(bystander, 0) & POLLHUP);
	ASSERT_IOCTL_ERRNO(ENODEV, bystander, KVM_CREATE_VCPU, 0);
	close(bystander);

	/* And the device works again. */
	vm = ne_create_vm();
	ASSERT_LE(0, vm);
	EXPECT_EQ(0, ne_set_region(vm, 0, 0, self->mem, HPAGE, 0));
	close(vm);
	EXPECT_EQ(0, ne_tc_read(self->tc, NE_TESTCTL_SLOTS));
	EXPECT_EQ(self->pins, ne_pins_held());
}

int main(int argc, char **argv)
{
	ne_require_device();
	if (access(NE_DEV_PATH, F_OK))
		ksft_exit_skip("no %s (module not loaded)\n", NE_DEV_PATH);
	return test_harness_run(argc, argv);
}
