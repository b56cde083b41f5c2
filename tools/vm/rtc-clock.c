// SPDX-License-Identifier: GPL-2.0
/*
 * tools/vm/rtc-clock: keeps a parent VM's wall clock on the host's, as
 * an EC2 parent's is kept by its time sync service.  The guest's RTC is
 * QEMU's, which counts the host's seconds from the host's own tick
 * (tools/qemu/patches/rtc-host-seconds.patch); the guest's clock is set
 * from it once at boot, to within half a second, and then runs on its own
 * clocksource, which under TCG on a loaded host loses time (seen: 8 s
 * behind after four minutes, enough for a fresh attestation leaf, valid
 * from 3 s before its issue, to be refused as not yet valid).
 *
 * The RTC only counts whole seconds, so its tick is found by reading it
 * every millisecond until the second changes: a tick is taken only when
 * the two reads around it are at most WINDOW_MAX_NS apart and the system
 * clock was not stepped meanwhile (a stalled vCPU, a concurrent `date
 * -s`), else the next tick is measured.  (A loaded TCG guest takes 1 to
 * 10 ms a read, and sometimes more: a 4 ms bound failed all 5 tries.)
 */
#define _GNU_SOURCE			/* clock_adjtime() */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

/* the RTC's seconds since 1970 (not /dev/rtc0: that opens once at a time) */
#define RTC_SECONDS	"/sys/class/rtc/rtc0/since_epoch"
#define NSEC		1000000000LL
#define POLL_NS		1000000L	/* the RTC read every millisecond */
#define WINDOW_MAX_NS	30000000LL	/* a tick placed to within 15 ms */
#define TICK_WAIT_NS	(2 * NSEC)	/* one tick comes within a second */
#define TICK_TRIES	5		/* ticks measured before giving up */
#define STEPPED_NS	100000000LL	/* the clock stepped meanwhile */
#define STEP_OVER_NS	5000000LL	/* smaller offsets are left alone */
#define CHECK_AT_NS	(NSEC / 2)	/* keep: checks mid-second */
#define SYNC_EVERY_NS	(60 * NSEC)	/* keep: a full measure this often */
#define REPORT_EVERY_NS	(60 * NSEC)	/* keep: an error said this often */
#define RETRY_MAX_NS	(8 * NSEC)	/* keep: a failed sync retried by then */

static const char usage[] =
	"usage: rtc-clock offset | sync | keep\n"
	"Compares the system clock with the RTC (rtc0) at the RTC's tick.\n"
	"  offset  prints the system clock's offset from the RTC in seconds\n"
	"          (+ ahead, - behind)\n"
	"  sync    steps the system clock onto the RTC's (when off by over 5 ms)\n"
	"  keep    sync, then check the clock against the RTC in the middle of\n"
	"          every second, which shows an offset of half a second or more,\n"
	"          and sync again then, and every minute anyway; errors are said\n"
	"          (at most once a minute) and retried; runs until killed\n"
	"Exit status: 0 done; 1 no RTC, no clean tick in 5 tries, or the clock\n"
	"cannot be set (why on stderr); 2 usage.\n";

static int64_t now_ns(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return t.tv_sec * NSEC + t.tv_nsec;
}

/* Opened for each read: sysfs makes the value when a read starts at 0. */
static int rtc_seconds(int64_t *out)
{
	char buf[32];
	ssize_t n;
	char *end;
	int fd;

	fd = open(RTC_SECONDS, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	*out = strtoll(buf, &end, 10);
	return end == buf ? -EIO : 0;
}

/*
 * One tick of the RTC: the system clock's offset from it, the tick taken
 * as the middle of the two reads around it (the one before taken from its
 * start, the one after to its end).  -EAGAIN when those are too far apart,
 * the second moved by more than one, or the clock was stepped meanwhile.
 */
static int measure_tick(int64_t *offset_ns)
{
	int64_t deadline = now_ns(CLOCK_MONOTONIC) + TICK_WAIT_NS;
	int64_t skew = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
	struct timespec poll = { 0, POLL_NS };
	int64_t first, sec, before, after, last_old;
	int rc;

	last_old = now_ns(CLOCK_REALTIME);
	rc = rtc_seconds(&first);
	if (rc)
		return rc;
	while (now_ns(CLOCK_MONOTONIC) < deadline) {
		nanosleep(&poll, NULL);
		before = now_ns(CLOCK_REALTIME);
		rc = rtc_seconds(&sec);
		after = now_ns(CLOCK_REALTIME);
		if (rc)
			return rc;
		if (sec == first) {
			last_old = before;
			continue;
		}
		if (sec != first + 1 || after - last_old > WINDOW_MAX_NS ||
		    llabs(now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC) -
			  skew) > STEPPED_NS)
			return -EAGAIN;
		*offset_ns = (last_old + after) / 2 - sec * NSEC;
		return 0;
	}
	return -EAGAIN;
}

static int rtc_offset(int64_t *offset_ns)
{
	int i, rc = -EAGAIN;

	for (i = 0; i < TICK_TRIES && rc == -EAGAIN; i++)
		rc = measure_tick(offset_ns);
	return rc == -EAGAIN ? -ETIME : rc;
}

/* The offset taken off the clock in the kernel, where no delay can add. */
static int clock_step(int64_t offset_ns)
{
	struct timex tx = { .modes = ADJ_SETOFFSET | ADJ_NANO };
	int64_t delta = -offset_ns;

	tx.time.tv_sec = delta / NSEC;
	tx.time.tv_usec = delta % NSEC;		/* nanoseconds: ADJ_NANO */
	if (tx.time.tv_usec < 0) {
		tx.time.tv_sec--;
		tx.time.tv_usec += NSEC;
	}
	return clock_adjtime(CLOCK_REALTIME, &tx) < 0 ? -errno : 0;
}

static void say(const char *what, int rc)
{
	fprintf(stderr, "rtc-clock: %s: %s\n", what,
		rc == -ETIME ? "no clean tick of the RTC in 5 tries" :
		strerror(-rc));
}

/* Measures the offset and steps it off; errors said if @verbose. */
static int clock_sync(bool verbose)
{
	int64_t offset;
	int rc = rtc_offset(&offset);

	if (rc) {
		if (verbose)
			say("measuring the RTC's tick (" RTC_SECONDS ")", rc);
		return rc;
	}
	if (llabs(offset) <= STEP_OVER_NS)
		return 0;
	rc = clock_step(offset);
	if (rc && verbose)
		say("stepping the clock", rc);
	return rc;
}

/*
 * In the middle of a second of a clock on the RTC, the RTC reads that
 * second: another one shows the clock off by half a second or more (less
 * the read's own time), synced again at once.  So the clock is off by half
 * a second or more for a second or two at most (the check, then the
 * measure, up to a second), bar a vCPU stalled longer.  Errors are
 * retried (a failed measure after 1, 2, 4, then every 8 s) and said at
 * most once a minute.
 */
static void clock_keep(void)
{
	int64_t last_sync = 0, last_report = -REPORT_EVERY_NS;
	int64_t t, rtc, mono, retry = 0;
	struct timespec nap;
	int rc;

	for (;;) {
		mono = now_ns(CLOCK_MONOTONIC);
		if (!last_sync || mono - last_sync >= (retry ?: SYNC_EVERY_NS)) {
			rc = clock_sync(mono - last_report >= REPORT_EVERY_NS);
			last_sync = mono;
			/* a failed one again in 1, 2, 4, 8, 8... s */
			retry = !rc ? 0 : !retry ? NSEC :
				retry < RETRY_MAX_NS ? 2 * retry : RETRY_MAX_NS;
			if (rc && mono - last_report >= REPORT_EVERY_NS)
				last_report = mono;
		}
		/* (relative, on the monotonic clock: a step cannot stretch it) */
		t = now_ns(CLOCK_REALTIME);
		t = (t / NSEC + 1) * NSEC + CHECK_AT_NS - t;
		nap.tv_sec = t / NSEC;
		nap.tv_nsec = t % NSEC;
		clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL);
		t = now_ns(CLOCK_REALTIME);
		rc = rtc_seconds(&rtc);
		if (rc) {
			if (now_ns(CLOCK_MONOTONIC) - last_report >= REPORT_EVERY_NS) {
				say("reading " RTC_SECONDS, rc);
				last_report = now_ns(CLOCK_MONOTONIC);
			}
			continue;
		}
		if (rtc != t / NSEC && !retry)
			last_sync = 0;
	}
}

int main(int argc, char **argv)
{
	int64_t offset, sec;
	int rc;

	if (argc != 2 || (strcmp(argv[1], "offset") && strcmp(argv[1], "sync") &&
			  strcmp(argv[1], "keep"))) {
		int help = argc == 2 && (!strcmp(argv[1], "--help") ||
					 !strcmp(argv[1], "-h"));

		fputs(usage, help ? stdout : stderr);
		return help ? 0 : 2;
	}
	/* no RTC at all: said once, whatever the mode */
	rc = rtc_seconds(&sec);
	if (rc) {
		say("reading " RTC_SECONDS, rc);
		return 1;
	}
	if (!strcmp(argv[1], "keep")) {
		clock_keep();		/* (it does not return) */
		return 1;
	}
	if (!strcmp(argv[1], "sync"))
		return clock_sync(true) ? 1 : 0;
	rc = rtc_offset(&offset);
	if (rc) {
		say("measuring the RTC's tick (" RTC_SECONDS ")", rc);
		return 1;
	}
	printf("%+.3f\n", offset / 1e9);
	return 0;
}
