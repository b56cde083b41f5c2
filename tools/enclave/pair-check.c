// SPDX-License-Identifier: GPL-2.0
/*
 * pair-check: the parent's side of tools/enclave/try-pair (runs in the
 * parent VM, CID 3).  Steps, each printed as it passes:
 *   1. listen on port 9000, accept the enclave's heartbeat (0xB7) and echo
 *      it, checking the peer is the expected CID;
 *   2. read the hello line from the enclave's port 5000;
 *   3. stream N MiB to the echo service (port 5005) while reading the echo
 *      back in another thread; every byte is checked against the generator;
 *   4. connect to an unused CID: must fail with ECONNRESET at once;
 *   5. ask the enclave to exit (control port 5009).
 * Exit status: 0 when every step passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK (64 * 1024)

static unsigned int enclave_cid = 16;
static uint64_t total_bytes = 64ull << 20;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "pair-check: FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int vsock_connect(unsigned int cid, unsigned int port)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * The enclave's init sends the heartbeat before it starts the app (as on
 * Nitro), so a service may not listen yet: its port answers RST for a
 * moment.  Retry for a while; anything but a reset is final.
 */
static int service_connect(unsigned int cid, unsigned int port)
{
	int tries, fd = -1;

	for (tries = 0; tries < 100; tries++) {
		fd = vsock_connect(cid, port);
		if (fd >= 0 || errno != ECONNRESET)
			break;
		usleep(100 * 1000);
	}
	return fd;
}

/* A byte stream both sides can regenerate: xorshift64 from a seed. */
static void fill(uint64_t *state, unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!(i & 7)) {
			*state ^= *state << 13;
			*state ^= *state >> 7;
			*state ^= *state << 17;
		}
		buf[i] = *state >> ((i & 7) * 8);
	}
}

static void *writer(void *arg)
{
	int fd = *(int *)arg;
	static unsigned char buf[CHUNK];
	uint64_t state = 0x9e3779b97f4a7c15ull, sent = 0;

	while (sent < total_bytes) {
		size_t len = CHUNK, off = 0;

		fill(&state, buf, len);
		while (off < len) {
			ssize_t n = write(fd, buf + off, len - off);

			if (n <= 0)
				die("echo write");
			off += n;
		}
		sent += len;
	}
	shutdown(fd, SHUT_WR);
	return NULL;
}

static void heartbeat(void)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = 9000,
	};
	socklen_t alen = sizeof(addr);
	struct pollfd pfd;
	unsigned char beat;
	double t0;
	int lfd, fd;

	lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lfd, 1))
		die("listen on port 9000");
	printf("ready: listening on port 9000\n");
	fflush(stdout);
	t0 = now();
	pfd.fd = lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 180 * 1000) != 1) {
		errno = ETIMEDOUT;
		die("no heartbeat within 180 s");
	}
	fd = accept4(lfd, (struct sockaddr *)&addr, &alen, SOCK_CLOEXEC);
	if (fd < 0)
		die("accept");
	if (read(fd, &beat, 1) != 1 || beat != 0xB7) {
		errno = EPROTO;
		die("heartbeat byte");
	}
	if (write(fd, &beat, 1) != 1)
		die("heartbeat echo");
	if (addr.svm_cid != enclave_cid) {
		errno = EPROTO;
		die("heartbeat from an unexpected CID");
	}
	printf("ok: heartbeat from CID %u after %.1f s\n", addr.svm_cid,
	       now() - t0);
	close(fd);
	close(lfd);
}

static void hello(void)
{
	char line[128] = "";
	ssize_t n, got = 0;
	int fd = service_connect(enclave_cid, 5000);

	if (fd < 0)
		die("connect to the hello service");
	while ((n = read(fd, line + got, sizeof(line) - 1 - got)) > 0)
		got += n;
	close(fd);
	if (!strstr(line, "hello from enclave")) {
		errno = EPROTO;
		die("hello line");
	}
	printf("ok: %s", line);
}

static void echo(void)
{
	static unsigned char buf[CHUNK], want[CHUNK];
	uint64_t state = 0x9e3779b97f4a7c15ull, got = 0;
	size_t have = 0;
	pthread_t thread;
	double t0 = now();
	int fd = service_connect(enclave_cid, 5005);

	if (fd < 0)
		die("connect to the echo service");
	if (pthread_create(&thread, NULL, writer, &fd))
		die("pthread_create");
	fill(&state, want, CHUNK);
	for (;;) {
		ssize_t n = read(fd, buf + have, CHUNK - have);

		if (n < 0)
			die("echo read");
		if (n == 0)
			break;
		have += n;
		if (have == CHUNK) {
			if (memcmp(buf, want, CHUNK)) {
				errno = EILSEQ;
				die("echoed data differs");
			}
			got += CHUNK;
			have = 0;
			fill(&state, want, CHUNK);
		}
	}
	pthread_join(thread, NULL);
	close(fd);
	if (got != total_bytes || have) {
		errno = EPROTO;
		die("echo stream length");
	}
	printf("ok: %llu MiB each way through the echo service, intact, in %.1f s\n",
	       (unsigned long long)(total_bytes >> 20), now() - t0);
}

static void unused_cid(void)
{
	double t0 = now();
	int fd = vsock_connect(enclave_cid + 1000, 5005);

	if (fd >= 0 || errno != ECONNRESET) {
		fprintf(stderr, "pair-check: FAIL: connect to an unused CID: %s\n",
			fd >= 0 ? "succeeded" : strerror(errno));
		exit(1);
	}
	printf("ok: connect to unused CID %u: ECONNRESET in %.3f s\n",
	       enclave_cid + 1000, now() - t0);
}

static void stop_enclave(void)
{
	char reply[16] = "";
	int fd = service_connect(enclave_cid, 5009);

	if (fd < 0)
		die("connect to the control service");
	if (write(fd, "exit\n", 5) != 5 || read(fd, reply, sizeof(reply) - 1) <= 0)
		die("exit command");
	close(fd);
	printf("ok: enclave asked to exit (%s)\n", strtok(reply, "\n"));
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: pair-check [ENCLAVE_CID [MIB]]\n"
		       "Parent side of tools/enclave/try-pair (see its --help).\n");
		return 0;
	}
	if (argc > 1)
		enclave_cid = strtoul(argv[1], NULL, 0);
	if (argc > 2)
		total_bytes = strtoull(argv[2], NULL, 0) << 20;
	heartbeat();
	hello();
	echo();
	unused_cid();
	stop_enclave();
	return 0;
}
