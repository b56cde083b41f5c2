// SPDX-License-Identifier: GPL-2.0
/*
 * tools/vm/rtc-clock: keeps a parent VM's wall clock on the host's, as
 * an EC2 parent's is kept by its time sync service.  The guest's RTC is
 * QEMU's, which counts the host's own seconds; the guest's clock is set
 * from it once at boot, to the whole second, and then runs on its own
 * clocksource, which under TCG on a loaded host loses time (seen: 8 s
 * behind after four minutes, enough for a fresh attestation leaf, valid
 * from 3 s before its issue, to be refused as not yet valid).
 *
 * The RTC only counts whole seconds, so its tick is found by reading it
 * every millisecond until the second changes: the guest's clock is then
 * compared with that second to within about a millisecond.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* the RTC's seconds since 1970 (not /dev/rtc0: that opens once at a time) */
#define RTC_SECONDS	"/sys/class/rtc/rtc0/since_epoch"
#define POLL_NS		1000000L	/* the tick found to within this */
#define TICK_WAIT_S	3		/* one tick must come by then */
#define STEP_OVER_S	0.005		/* smaller offsets are left alone */
#define CHECK_EVERY_S	1		/* keep: one RTC read a second */
#define SYNC_EVERY_S	60		/* keep: a full measure at least this often */

static const char usage[] =
	"usage: rtc-clock offset | sync | keep\n"
	"Compares the system clock with the RTC (rtc0) at the RTC's tick.\n"
	"  offset  prints the system clock's offset from the RTC in seconds\n"
	"          (+ ahead, - behind)\n"
	"  sync    steps the system clock onto the RTC's (when off by over 5 ms)\n"
	"  keep    sync, then check the clock against the RTC every second and\n"
	"          sync again when it is off by 1.5 s or more, and every minute\n"
	"          anyway; runs until killed\n"
	"Exit status: 0 done; 1 no RTC, or it never ticked, or the clock cannot\n"
	"be set (why on stderr); 2 usage.\n";

static double ts_sec(const struct timespec *t)
{
	return t->tv_sec + t->tv_nsec / 1e9;
}

/* Opened for each read: sysfs makes the value when a read starts at 0. */
static int rtc_seconds(time_t *out)
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
 * The system clock's offset from the RTC: the RTC is read every POLL_NS
 * until its second changes; the tick came between the last read that saw
 * the old second and the first that saw the new one, taken as their
 * midpoint on the system clock.
 */
static int rtc_offset(double *offset)
{
	struct timespec poll = { 0, POLL_NS }, before, after;
	time_t first, now;
	double last_old;
	int i, rc;

	rc = rtc_seconds(&first);
	clock_gettime(CLOCK_REALTIME, &after);
	if (rc)
		return rc;
	last_old = ts_sec(&after);
	for (i = 0; i < TICK_WAIT_S * 1000000000L / POLL_NS; i++) {
		nanosleep(&poll, NULL);
		clock_gettime(CLOCK_REALTIME, &before);
		rc = rtc_seconds(&now);
		clock_gettime(CLOCK_REALTIME, &after);
		if (rc)
			return rc;
		if (now != first) {
			/* the tick: between last_old and after */
			*offset = (last_old + ts_sec(&after)) / 2 - now;
			return 0;
		}
		last_old = ts_sec(&before);
	}
	return -ETIME;
}

static int clock_step(double offset)
{
	struct timespec now;
	double t;

	clock_gettime(CLOCK_REALTIME, &now);
	t = ts_sec(&now) - offset;
	now.tv_sec = (time_t)t;
	now.tv_nsec = (long)((t - now.tv_sec) * 1e9);
	return clock_settime(CLOCK_REALTIME, &now) ? -errno : 0;
}

static int clock_sync(void)
{
	double offset;
	int rc = rtc_offset(&offset);

	if (!rc && (offset > STEP_OVER_S || offset < -STEP_OVER_S))
		rc = clock_step(offset);
	return rc;
}

/*
 * Right after a read of the RTC, a clock on it is within the second read
 * (its fraction not known from one read): half a second outside it is a
 * clock gone off by at least that, synced again at once.  So the clock is
 * never off by 1.5 s or more for longer than a second.
 */
static int clock_keep(void)
{
	time_t rtc, last_sync;
	struct timespec now;
	double t;
	int rc;

	rc = clock_sync();
	if (rc)
		return rc;
	last_sync = time(NULL);
	for (;;) {
		sleep(CHECK_EVERY_S);
		rc = rtc_seconds(&rtc);
		clock_gettime(CLOCK_REALTIME, &now);
		if (rc)
			return rc;
		t = ts_sec(&now);
		if (t < rtc - 0.5 || t > rtc + 1.5 ||
		    t - last_sync > SYNC_EVERY_S || t < last_sync) {
			rc = clock_sync();
			if (rc)
				return rc;
			last_sync = time(NULL);
		}
	}
}

int main(int argc, char **argv)
{
	double offset;
	int rc;

	if (argc != 2 || (strcmp(argv[1], "offset") && strcmp(argv[1], "sync") &&
			  strcmp(argv[1], "keep"))) {
		int help = argc == 2 && (!strcmp(argv[1], "--help") ||
					 !strcmp(argv[1], "-h"));

		fputs(usage, help ? stdout : stderr);
		return help ? 0 : 2;
	}
	if (!strcmp(argv[1], "offset")) {
		rc = rtc_offset(&offset);
		if (!rc)
			printf("%+.3f\n", offset);
	} else if (!strcmp(argv[1], "sync")) {
		rc = clock_sync();
	} else {
		rc = clock_keep();
	}
	if (rc)
		fprintf(stderr, "rtc-clock: %s: %s: %s\n", argv[1], RTC_SECONDS,
			rc == -ETIME ? "the RTC did not tick in 3 s" :
			strerror(-rc));
	return rc ? 1 : 0;
}
