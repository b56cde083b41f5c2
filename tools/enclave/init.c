// SPDX-License-Identifier: GPL-2.0
/*
 * init for the project's enclave image (PID 1 in the enclave VM).
 *
 *  1. mounts /dev, /proc and /sys;
 *  2. loads the kernel modules listed in /modules.order, in that order
 *     (Debian's kernel has virtio-mmio, vsock and the NSM driver as
 *     modules, and there is no udev here to load them);
 *  3. sends the 0xB7 heartbeat to the parent (CID 3, port 9000) and waits
 *     for the echo, as the Nitro enclave init does;
 *  4. runs /app (its arguments come from the kernel command line after
 *     "--"), reaps every child, and powers the VM off when /app ends.
 *
 * Any failure before /app runs powers the enclave off too, after saying
 * why on the console: the parent then sees the enclave stop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define PARENT_CID	3
#define HEARTBEAT_PORT	9000
#define HEARTBEAT	0xB7
/* the relay answers an unreachable parent with RST: retry a little */
#define HEARTBEAT_TRIES	20

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("ne-init: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/*
 * A mark in the kernel log (KERN_NOTICE: shown on the console at the
 * image's loglevel=6), with the kernel's timestamp: `make bench` reads
 * where the boot's time goes from these, and detects the heartbeat's send
 * in a bare boot of the image from the last one.
 */
static void mark(const char *what)
{
	char line[128];
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	int n = snprintf(line, sizeof(line), "<5>ne-init: %s\n", what);

	/* one write() (dprintf would seek, which /dev/kmsg refuses) */
	if (fd < 0 || write(fd, line, n) != n)
		say("mark %s: %s", what, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void __attribute__((noreturn)) power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* no ACPI power-off? then a reboot, which -no-reboot turns into exit */
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void __attribute__((noreturn)) fail(const char *what)
{
	say("%s: %s; powering off", what, strerror(errno));
	power_off();
}

static void mount_or_die(const char *src, const char *dir, const char *type)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, 0, NULL) && errno != EBUSY)
		fail(dir);
}

static void setup_console(void)
{
	int fd = open("/dev/console", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

static void load_modules(void)
{
	char name[256], path[300];
	FILE *list = fopen("/modules.order", "r");

	if (!list)
		return;
	while (fgets(name, sizeof(name), list)) {
		int fd;

		name[strcspn(name, "\n")] = 0;
		if (!name[0])
			continue;
		snprintf(path, sizeof(path), "/modules/%s", name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail(path);
		if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
			fail(path);
		close(fd);
	}
	fclose(list);
}

/* One round of the Nitro boot check; returns 0 when the parent echoed. */
static int heartbeat_once(void)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = PARENT_CID,
		.svm_port = HEARTBEAT_PORT,
	};
	struct timeval tv = { .tv_sec = 10 };
	unsigned char beat = HEARTBEAT;
	int fd, ok = -1;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!connect(fd, (struct sockaddr *)&addr, sizeof(addr)) &&
	    write(fd, &beat, 1) == 1 && read(fd, &beat, 1) == 1) {
		ok = beat == HEARTBEAT ? 0 : -1;
		if (ok)
			errno = EPROTO;
	}
	close(fd);
	return ok;
}

static void heartbeat(void)
{
	int i;

	mark("sending the heartbeat");
	for (i = 0; i < HEARTBEAT_TRIES; i++) {
		if (!heartbeat_once()) {
			say("heartbeat acknowledged by the parent");
			return;
		}
		usleep(250 * 1000);
	}
	fail("heartbeat to CID 3 port 9000");
}

/* /app's arguments: what follows "--" on the kernel command line. */
static char **app_argv(int argc, char **argv)
{
	static char *none[] = { "/app", NULL };
	char **args;
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--"))
			break;
	if (i >= argc)
		return none;
	args = calloc(argc - i + 1, sizeof(*args));
	if (!args)
		return none;
	args[0] = "/app";
	memcpy(&args[1], &argv[i + 1], (argc - i - 1) * sizeof(*args));
	return args;
}

int main(int argc, char **argv)
{
	pid_t app, pid;
	int status;

	mount_or_die("devtmpfs", "/dev", "devtmpfs");
	mark("init started");
	setup_console();
	mount_or_die("proc", "/proc", "proc");
	mount_or_die("sysfs", "/sys", "sysfs");
	load_modules();
	mark("modules loaded");
	heartbeat();

	app = fork();
	if (app < 0)
		fail("fork");
	if (app == 0) {
		char **args = app_argv(argc, argv);

		setsid();
		execv(args[0], args);
		fail("/app");
	}
	/* PID 1 adopts orphans: reap them all until the app itself ends */
	do {
		pid = wait(&status);
	} while (pid != app && !(pid < 0 && errno == ECHILD));
	if (WIFEXITED(status))
		say("/app exited with status %d; powering off",
		    WEXITSTATUS(status));
	else
		say("/app ended by signal %d; powering off", WTERMSIG(status));
	power_off();
}
