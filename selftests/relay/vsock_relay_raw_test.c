// SPDX-License-Identifier: GPL-2.0
/*
 * The parent's vsock relay against a hostile parent kernel: the relay's
 * virtqueues are driven from userspace (relay_raw.h), next to a real
 * enclave (the sample image).
 *
 *   selftests/relay/run EIF      (inside tools/ne-vm --cores 3)
 *
 * The re-entrancy regression (issue 12, item 1): an RX buffer whose last
 * writable byte is the relay's own virtio device_status register.  When the
 * relay fills it, the write-back of that byte is a write of 0 to
 * device_status, a device reset, in the middle of the relay's delivery.  The
 * old relay freed the packet it was delivering there and then used it
 * (QEMU crashed: the guest and this test vanish, ne-vm reports QEMU's
 * death).  Now guest memory is only written from a bottom half under the
 * transport's re-entrancy guard: the register write is refused, the buffer
 * completes, and the device keeps working.
 *
 * Environment: NE_RELAY_EIF (the sample enclave image), NE_NECTL (nectl),
 * NE_RELAY_CID_A (an enclave of that image already running; without it
 * the program launches and terminates its own).
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/vm_sockets.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "relay_raw.h"

#define PARENT_CID	3
#define HELLO_PORT	5000		/* the sample app: one line naming its CID */
#define CLOSED_PORT	7777		/* nobody listens there in the enclave */
#define UNUSED_CID	99
#define ANSWER_MS	20000		/* an RST from the enclave under TCG */
#define SPOOF_PORT	40023		/* the spoofed packet's: never answered */
#define MAX_LATE	16		/* late packets skipped in one wait */

static uint64_t enclave_cid;

/* Runs nectl with @args; its stdout in @out.  Exit status or -errno. */
static int nectl(const char *const *args, char *out, size_t len)
{
	const char *nectl_path = getenv("NE_NECTL");
	char cmd[4096];
	size_t n = 0;
	FILE *p;
	int i, st;

	snprintf(cmd, sizeof(cmd), "%s", nectl_path ? nectl_path : "nectl");
	for (i = 0; args[i]; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " '%s'",
			 args[i]);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	if (out) {
		n = fread(out, 1, len - 1, p);
		out[n] = '\0';
	} else {
		char sink[256];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -EINTR;
}

/* Connects to @cid:@port and reads what it says first; bytes or -errno. */
static int vsock_hello(uint64_t cid, uint32_t port, char *buf, size_t len,
		       int timeout_s)
{
	struct sockaddr_vm a = {
		.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port,
	};
	struct timeval tv = { .tv_sec = timeout_s };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD, &tv,
		   sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		n = -errno;
		close(fd);
		return n;
	}
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

/* The kernel's driver is back and vsock to the enclave works (~20 s). */
static bool vsock_works_again(void)
{
	char buf[256], want[32];
	long deadline = rr_now_ms() + 20000;

	snprintf(want, sizeof(want), "%llu", (unsigned long long)enclave_cid);
	while (rr_now_ms() < deadline) {
		if (vsock_hello(enclave_cid, HELLO_PORT, buf, sizeof(buf), 5) > 0 &&
		    strstr(buf, want))
			return true;
		usleep(200 * 1000);
	}
	return false;
}

FIXTURE(raw) {
	struct relay_raw r;
};

FIXTURE_SETUP(raw)
{
	int rc = rr_open(&self->r);

	ASSERT_EQ(0, rc) TH_LOG("taking the relay's PCI function: %s",
				strerror(-rc));
	TH_LOG("relay %s (driver %s), common cfg at 0x%llx, hugepage at 0x%llx",
	       self->r.dev, self->r.drv,
	       (unsigned long long)self->r.common_phys,
	       (unsigned long long)self->r.mem_phys);
	/* an event buffer, so a TRANSPORT_RESET would have somewhere to go */
	{
		uint64_t a = rr_phys(&self->r, RR_BUF_BASE + 40 * RR_BUF_SIZE);
		uint32_t l = 4;

		rr_post(&self->r, RR_EVQ, &a, &l, 1, true);
		rr_kick(&self->r, RR_EVQ);
	}
}

FIXTURE_TEARDOWN(raw)
{
	EXPECT_EQ(0, rr_close(&self->r));
}

/*
 * Posts the hostile RX buffer: 43 bytes of RAM, then the 1 byte of the
 * relay's device_status register, so the last byte of a header lands on it.
 */
static void post_rx_on_status(struct relay_raw *r)
{
	uint64_t a[2] = { rr_phys(r, RR_BUF_BASE),
			  r->common_phys + RR_CC_STATUS };
	uint32_t l[2] = { 43, 1 };

	memset(rr_buf(r, 0), 0xa5, RR_BUF_SIZE);
	rr_post(r, RR_RXQ, a, l, 2, true);
	rr_kick(r, RR_RXQ);
}

/* Posts one RX buffer (at RR_BUF_BASE) for an answer. */
static void post_rx(struct relay_raw *r)
{
	uint64_t a = rr_phys(r, RR_BUF_BASE);
	uint32_t l = RR_BUF_SIZE;

	rr_post(r, RR_RXQ, &a, &l, 1, true);
	rr_kick(r, RR_RXQ);
}

/*
 * A packet that is not the answer waited for, but may come while a test
 * waits: a late one of an earlier test's connection (the enclave's TCG
 * vCPUs answer a closed connection when they get to it, seconds later on a
 * loaded host), from one of the suite's enclaves or the relay itself (its
 * RSTs for UNUSED_CID), to the parent.  Nothing may ever answer SPOOF_PORT.
 */
static bool late_packet(const struct rr_hdr *h)
{
	const char *cid_b = getenv("NE_RELAY_CID_B");

	if (h->dst_cid != PARENT_CID || h->dst_port == SPOOF_PORT)
		return false;
	return h->src_cid == enclave_cid || h->src_cid == UNUSED_CID ||
	       (cid_b && h->src_cid == strtoull(cid_b, NULL, 0));
}

/*
 * Waits up to @ms for the answer to a packet sent from @port: a packet the
 * relay put in the buffer at RR_BUF_BASE for PARENT_CID:@port, its length
 * in @used.  A late packet (late_packet()) is printed and skipped, and
 * @post posts the buffer again, at most MAX_LATE times.  1 for the answer,
 * 0 when none came in time, -1 for any other packet (printed).
 */
static int wait_answer(struct relay_raw *r, uint32_t port, long ms,
			void (*post)(struct relay_raw *r), uint32_t *used)
{
	long deadline = rr_now_ms() + ms;
	struct rr_hdr h;
	int late = 0;

	for (;;) {
		long left = deadline - rr_now_ms();

		if (left < 0 || !rr_wait_used(r, RR_RXQ, used, left))
			return 0;
		/*
		 * The addresses only: in the hostile buffer the header's last
		 * byte went to device_status, not here.
		 */
		memcpy(&h, rr_buf(r, 0), offsetof(struct rr_hdr, len));
		if (h.dst_cid == PARENT_CID && h.dst_port == port)
			return 1;
		fprintf(stderr,
			"# %s from CID %llu port %u to CID %llu port %u\n",
			!late_packet(&h) ? "a stray packet" :
			late < MAX_LATE ? "skipped a late packet" :
			"one late packet too many",
			(unsigned long long)h.src_cid, h.src_port,
			(unsigned long long)h.dst_cid, h.dst_port);
		if (!late_packet(&h) || ++late > MAX_LATE)
			return -1;
		post(r);
	}
}

/* The header the relay delivered into the hostile buffer (43 bytes of it). */
static struct rr_hdr delivered(struct relay_raw *r)
{
	struct rr_hdr h;

	memset(&h, 0, sizeof(h));
	memcpy(&h, rr_buf(r, 0), 43);
	return h;
}

/*
 * The exact trigger: the enclave's kernel answers a REQUEST to a closed port
 * with an RST, which reaches the parent's QEMU on the link's fd handler
 * (outside any MMIO access of the relay) and is delivered into the buffer
 * that ends on device_status.
 */
TEST_F(raw, rx_buffer_ending_on_device_status_gets_enclave_rst)
{
	struct rr_hdr req = rr_make(PARENT_CID, 40001, enclave_cid, CLOSED_PORT,
				    RR_OP_REQUEST, RR_TYPE_STREAM);
	struct rr_hdr got;
	uint32_t used;

	post_rx_on_status(&self->r);
	ASSERT_TRUE(rr_send(&self->r, &req, NULL, 0));
	ASSERT_EQ(1, wait_answer(&self->r, req.src_port, ANSWER_MS,
				 post_rx_on_status, &used))
		TH_LOG("no answer from enclave CID %llu in %d ms",
		       (unsigned long long)enclave_cid, ANSWER_MS);
	EXPECT_EQ(sizeof(struct rr_hdr), used);
	got = delivered(&self->r);
	EXPECT_EQ(RR_OP_RST, got.op);
	EXPECT_EQ(enclave_cid, got.src_cid);
	EXPECT_EQ(PARENT_CID, got.dst_cid);
	EXPECT_EQ(CLOSED_PORT, got.src_port);
	EXPECT_EQ(req.src_port, got.dst_port);
	/* the write of the header's last byte to device_status was refused */
	EXPECT_TRUE(rr_rd8(self->r.common, RR_CC_STATUS) & RR_S_DRIVER_OK);
	ASSERT_EQ(0, rr_close(&self->r));
	EXPECT_TRUE(vsock_works_again())
		TH_LOG("vsock to enclave CID %llu port %d does not work after "
		       "the driver was rebound",
		       (unsigned long long)enclave_cid, HELLO_PORT);
}

/*
 * The same buffer filled by the relay's own RST for a CID nobody has (on
 * the TX path, inside the notify write).
 */
TEST_F(raw, rx_buffer_ending_on_device_status_gets_relay_rst)
{
	struct rr_hdr req = rr_make(PARENT_CID, 40002, UNUSED_CID, 1234,
				    RR_OP_REQUEST, RR_TYPE_STREAM);
	struct rr_hdr got;
	uint32_t used;

	post_rx_on_status(&self->r);
	ASSERT_TRUE(rr_send(&self->r, &req, NULL, 0));
	ASSERT_EQ(1, wait_answer(&self->r, req.src_port, 5000,
				 post_rx_on_status, &used));
	EXPECT_EQ(sizeof(struct rr_hdr), used);
	got = delivered(&self->r);
	EXPECT_EQ(RR_OP_RST, got.op);
	EXPECT_EQ(UNUSED_CID, got.src_cid);
	EXPECT_EQ(req.src_port, got.dst_port);
	EXPECT_TRUE(rr_rd8(self->r.common, RR_CC_STATUS) & RR_S_DRIVER_OK);
}

/*
 * Sends @h with @len bytes of @data, and waits up to @ms for the answer in
 * the posted RX buffer (wait_answer()): 1 and its header in @got, 0 when
 * none came, -1 when another packet came, -2 when the packet could not be
 * sent.
 */
static int exchange(struct relay_raw *r, const struct rr_hdr *h,
		    const void *data, uint32_t len, long ms, struct rr_hdr *got)
{
	uint32_t used;
	int ret;

	if (!rr_send(r, h, data, len))
		return -2;
	ret = wait_answer(r, h->src_port, ms, post_rx, &used);
	if (ret == 1)
		memcpy(got, rr_buf(r, 0), sizeof(*got));
	return ret;
}

/*
 * A parent that lies about its CID is not forwarded (and not answered);
 * the same REQUEST with the right CID is.  A decoy REQUEST to a CID nobody
 * has goes first: the relay's RST for it is in the buffer before the
 * spoofed packet is sent, as a late packet of an earlier test can be (in
 * CI, one was taken for an answer to the spoofed packet).  The spoofed
 * packet has a port of its own: an answer to it, however late, fails the
 * wait for the real REQUEST's (late_packet()).
 */
TEST_F(raw, spoofed_source_cid_is_dropped)
{
	struct rr_hdr decoy = rr_make(PARENT_CID, 40013, UNUSED_CID, 1234,
				      RR_OP_REQUEST, RR_TYPE_STREAM);
	struct rr_hdr spoof = rr_make(17, SPOOF_PORT, enclave_cid,
				      CLOSED_PORT, RR_OP_REQUEST,
				      RR_TYPE_STREAM);
	struct rr_hdr req = rr_make(PARENT_CID, 40003, enclave_cid,
				    CLOSED_PORT, RR_OP_REQUEST,
				    RR_TYPE_STREAM);
	struct rr_hdr got = { 0 };

	post_rx(&self->r);
	ASSERT_TRUE(rr_send(&self->r, &decoy, NULL, 0));
	EXPECT_EQ(0, exchange(&self->r, &spoof, NULL, 0, 3000, &got))
		TH_LOG("answered, or another packet came: op %u %llu:%u to %llu:%u",
		       got.op, (unsigned long long)got.src_cid, got.src_port,
		       (unsigned long long)got.dst_cid, got.dst_port);
	ASSERT_EQ(1, exchange(&self->r, &req, NULL, 0, ANSWER_MS, &got));
	EXPECT_EQ(RR_OP_RST, got.op);
	EXPECT_EQ(enclave_cid, got.src_cid);
	EXPECT_EQ(PARENT_CID, got.dst_cid);
	EXPECT_EQ(req.src_port, got.dst_port);
}

/*
 * A REQUEST with a payload (only data packets carry one) is refused by the
 * relay with an RST, not passed on: the enclave's device would have cut it
 * into one REQUEST per RX buffer of the enclave, whose hello port then
 * accepted the connection.  A REQUEST without one still reaches the
 * enclave.
 */
TEST_F(raw, control_packet_with_payload_is_refused)
{
	static const uint8_t payload[2048];
	struct rr_hdr bad = rr_make(PARENT_CID, 40004, enclave_cid,
				    HELLO_PORT, RR_OP_REQUEST,
				    RR_TYPE_STREAM);
	struct rr_hdr req = rr_make(PARENT_CID, 40005, enclave_cid,
				    CLOSED_PORT, RR_OP_REQUEST,
				    RR_TYPE_STREAM);
	struct rr_hdr got;

	bad.len = sizeof(payload);
	post_rx(&self->r);
	ASSERT_EQ(1, exchange(&self->r, &bad, payload, sizeof(payload),
			      ANSWER_MS, &got));
	EXPECT_EQ(RR_OP_RST, got.op)
		TH_LOG("a REQUEST with a payload got op %u, not an RST",
		       got.op);
	EXPECT_EQ(40004, got.dst_port);

	post_rx(&self->r);
	ASSERT_EQ(1, exchange(&self->r, &req, NULL, 0, ANSWER_MS, &got));
	EXPECT_EQ(RR_OP_RST, got.op);
	EXPECT_EQ(enclave_cid, got.src_cid);
	EXPECT_EQ(40005, got.dst_port);
}

/* Launches the sample enclave (debug mode); its CID, or 0. */
static uint64_t launch_enclave(const char *eif)
{
	const char *args[] = { "run", "--eif-path", eif, "--memory", "128",
			       "--cpu-count", "2", "--enclave-name",
			       "relay-raw", NULL };
	char out[4096];
	char *p;
	int rc = nectl(args, out, sizeof(out));

	if (rc) {
		ksft_print_msg("nectl run exited %d: %s\n", rc, out);
		return 0;
	}
	p = strstr(out, "\"EnclaveCID\":");
	return p ? strtoull(p + strlen("\"EnclaveCID\":"), NULL, 10) : 0;
}

int main(int argc, char **argv)
{
	const char *eif = getenv("NE_RELAY_EIF");
	const char *given;
	const char *term[] = { "terminate-enclave", "--enclave-name",
			       "relay-raw", NULL };
	char dev[PATH_MAX];
	int rc;

	if (getuid())
		ksft_exit_skip("needs root\n");
	if (rr_find(dev, sizeof(dev)))
		ksft_exit_skip("no virtio-vsock PCI function (the relay) here\n");
	if (access("/dev/nitro_enclaves", F_OK))
		ksft_exit_skip("/dev/nitro_enclaves is missing\n");
	if (!eif || access(eif, R_OK)) {
		/* run by selftests/relay/run, which always gives one */
		ksft_print_msg("NE_RELAY_EIF=%s: no enclave image\n",
			       eif ? eif : "");
		return KSFT_FAIL;
	}
	/* selftests/relay/run boots the suite's enclaves */
	given = getenv("NE_RELAY_CID_A");
	enclave_cid = given ? strtoull(given, NULL, 10) : launch_enclave(eif);
	if (!enclave_cid) {
		ksft_print_msg("the sample enclave did not start\n");
		return KSFT_FAIL;
	}
	ksft_print_msg("enclave CID %llu\n", (unsigned long long)enclave_cid);
	rc = test_harness_run(argc, argv);
	if (!given)
		nectl(term, NULL, 0);
	return rc;
}
