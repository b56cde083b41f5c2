// SPDX-License-Identifier: GPL-2.0
/*
 * The sample enclave application: small vsock services.
 *
 *   port 5000  hello:   writes one line ("hello from enclave CID <cid>")
 *                       and closes
 *   port 5005  echo:    writes back every byte it reads until EOF, then
 *                       closes (several connections at once: one process
 *                       each)
 *   port 5009  control: reads one line: "exit" ends the app (and so the
 *                       enclave: init powers off), "panic" panics the
 *                       enclave kernel; used by the tests of enclave exit
 *   port 5010  attest:  reads one request line and answers with an
 *                       attestation document from the NSM (attest.c has
 *                       the format)
 *   port 5011  nsm-check: runs /nsm-check, the NSM's acceptance test, with
 *                       its TAP output going to the connection
 *   port 5012  nsm-fuzz: runs /nsm-fuzz, which reads one line
 *                       "SEED COUNT [LIMIT]" from the connection (COUNT
 *                       at most 100000, LIMIT 1 to 10 s; a bad
 *                       line gets one "error ..." line) and sends its TAP
 *                       back: a seeded fuzz of malformed NSM requests that
 *                       must leave the device answering.  It may extend and
 *                       lock PCR16-31: after nsm-check, or alone
 *
 * It also prints the hello line on the console when it starts, after
 * making its P-384 key pair (key.h), whose public key the attest service
 * puts in a document on request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
#include "attest.h"
#include "io.h"
#include "key.h"

#define HELLO_PORT	5000
#define ECHO_PORT	5005
#define CONTROL_PORT	5009
#define ATTEST_PORT	5010
#define NSM_CHECK_PORT	5011
#define NSM_FUZZ_PORT	5012
#define NSM_CHECK	"/nsm-check"
#define NSM_FUZZ	"/nsm-fuzz"

enum { HELLO, ECHO, CONTROL, ATTEST, NSM_CHECK_SVC, NSM_FUZZ_SVC, NR_SERVICES };
static const unsigned int ports[NR_SERVICES] = {
	[HELLO] = HELLO_PORT,
	[ECHO] = ECHO_PORT,
	[CONTROL] = CONTROL_PORT,
	[ATTEST] = ATTEST_PORT,
	[NSM_CHECK_SVC] = NSM_CHECK_PORT,
	[NSM_FUZZ_SVC] = NSM_FUZZ_PORT,
};

static unsigned int my_cid(void)
{
	unsigned int cid = VMADDR_CID_ANY;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid);
		close(fd);
	}
	return cid;
}

static int listen_on(unsigned int port)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = port,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(fd, 16)) {
		fprintf(stderr, "app: cannot listen on vsock port %u: %s\n",
			port, strerror(errno));
		exit(1);
	}
	return fd;
}

static void serve_echo(int fd)
{
	static char buf[64 * 1024];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write_all(fd, buf, n))
			break;
	}
}

/* Returns 1 when the app should end. */
static int serve_control(int fd)
{
	char cmd[32] = "";
	ssize_t n = read(fd, cmd, sizeof(cmd) - 1);

	if (n <= 0)
		return 0;
	cmd[strcspn(cmd, "\r\n")] = 0;
	if (!strcmp(cmd, "exit")) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char drain[16];

		write_all(fd, "ok\n", 3);
		/*
		 * Leave only once the parent has the answer and closed: powering
		 * off at once could lose "ok" in the not yet drained TX queue,
		 * and the parent would see a reset instead.
		 */
		shutdown(fd, SHUT_WR);
		while (poll(&p, 1, 5000) == 1 && read(fd, drain, sizeof(drain)) > 0)
			;
		return 1;
	}
	if (!strcmp(cmd, "panic")) {
		int t = open("/proc/sysrq-trigger", O_WRONLY);

		write_all(fd, "ok\n", 3);
		if (t >= 0)
			write_all(t, "c", 1);
		return 0;
	}
	write_all(fd, "unknown command\n", 16);
	return 0;
}

/*
 * In a child: the program @path with the connection as its stdout and
 * stderr, and as its stdin when it reads a request there (@input), then
 * one line saying how it ended when that was not a normal exit, so that a
 * crash reads as one on the parent's side rather than as truncated output.
 */
static void __attribute__((noreturn)) run_tool(int conn, const char *path,
					       bool input)
{
	char *argv[] = { (char *)path, NULL };
	int status;
	pid_t pid;

	signal(SIGCHLD, SIG_DFL);	/* the app ignores it: wait here */
	pid = fork();
	if (pid == 0) {
		int in = input ? conn : open("/dev/null", O_RDONLY);

		if (in >= 0)
			dup2(in, 0);
		dup2(conn, 1);
		dup2(conn, 2);
		execv(argv[0], argv);
		dprintf(1, "error cannot run %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	if (pid < 0)
		dprintf(conn, "error cannot fork %s: %s\n", path, strerror(errno));
	else if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status))
		dprintf(conn, "Bail out! %s killed by signal %d (%s)\n", path,
			WTERMSIG(status), strsignal(WTERMSIG(status)));
	_exit(0);
}

int main(void)
{
	static uint8_t spki[KEY_SPKI_SIZE];
	struct pollfd fds[NR_SERVICES];
	const uint8_t *public_key = spki;
	char hello[64];
	int i;

	signal(SIGPIPE, SIG_IGN);
	/* children are reaped by the kernel: nobody waits for them */
	signal(SIGCHLD, SIG_IGN);
	if (key_generate(spki)) {
		/* the other services still work; attest says why it cannot */
		fprintf(stderr, "app: cannot make the P-384 key pair: %s\n",
			strerror(errno));
		public_key = NULL;
	}
	snprintf(hello, sizeof(hello), "hello from enclave CID %u\n", my_cid());
	fputs(hello, stdout);
	fflush(stdout);

	for (i = 0; i < NR_SERVICES; i++) {
		fds[i].fd = listen_on(ports[i]);
		fds[i].events = POLLIN;
	}

	for (;;) {
		if (poll(fds, NR_SERVICES, -1) < 0)
			continue;
		for (i = 0; i < NR_SERVICES; i++) {
			int conn;

			if (!(fds[i].revents & POLLIN))
				continue;
			conn = accept4(fds[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (conn < 0)
				continue;
			switch (i) {
			case HELLO:
				write_all(conn, hello, strlen(hello));
				break;
			case ECHO:
				if (fork() == 0) {
					serve_echo(conn);
					_exit(0);
				}
				break;
			case CONTROL:
				if (serve_control(conn)) {
					close(conn);
					return 0;
				}
				break;
			case ATTEST:
				/* the NSM may take up to 120 s: not in this loop */
				if (fork() == 0) {
					serve_attest(conn, public_key,
						     public_key ? KEY_SPKI_SIZE : 0);
					_exit(0);
				}
				break;
			case NSM_CHECK_SVC:
				if (fork() == 0)
					run_tool(conn, NSM_CHECK, false);
				break;
			case NSM_FUZZ_SVC:
				if (fork() == 0)
					run_tool(conn, NSM_FUZZ, true);
				break;
			}
			close(conn);
		}
	}
}
