/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the selftests: finding the device, skipping without it,
 * reading and writing sysfs and procfs files.
 */
#ifndef NE_TEST_UTIL_H
#define NE_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"

#define NE_DEV_PATH		"/dev/nitro_enclaves"
#define NE_PCI_VENDOR		0x1d0f
#define NE_PCI_DEVICE		0xe4c1
#define NE_SYSFS_PCI		"/sys/bus/pci/devices"

static inline unsigned long ne_read_sysfs_hex(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	unsigned long val = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%lx", &val) != 1)
		val = 0;
	fclose(f);
	return val;
}

/* Writes @val to the file @path (sysfs, procfs); 0 or -errno. */
static inline int ne_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Reads the file @path, every byte, into @buf; the length or -errno. */
static inline ssize_t ne_read_raw(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

/* Reads the file @path, without its newline, into @buf; 0 or -errno. */
static inline int ne_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n = ne_read_raw(path, buf, len);

	if (n < 0)
		return n;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The value of @key in /proc/meminfo (kB for sizes), or -1. */
static inline long ne_meminfo(const char *key)
{
	char line[256];
	size_t len = strlen(key);
	long val = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':')
			val = atol(line + len + 1);
	fclose(f);
	return val;
}

/*
 * Parses a cpu list such as "2-3,6-7" into @cpus, at most @max of them;
 * returns how many, or -1 if malformed.
 */
static inline int ne_cpulist(const char *list, int *cpus, int max)
{
	const char *s = list;
	int n = 0;

	while (*s) {
		char *end;
		long lo = strtol(s, &end, 10), hi = lo;

		if (end == s)
			return -1;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		for (; lo <= hi && n < max; lo++)
			cpus[n++] = lo;
		s = *end == ',' ? end + 1 : end;
		if (*s == '\n')
			break;
	}
	return n;
}

/*
 * The sysfs directory of the first PCI device @vendor:@device in @dir (an
 * empty string when there is none), or -1.
 */
static inline int ne_find_pci_by_id(unsigned long vendor, unsigned long device,
				    char *dir, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(NE_SYSFS_PCI);
	int rc = -1;

	dir[0] = '\0';
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, len, NE_SYSFS_PCI "/%s", de->d_name);
		if (ne_read_sysfs_hex(dir, "vendor") == vendor &&
		    ne_read_sysfs_hex(dir, "device") == device) {
			rc = 0;
			break;
		}
	}
	closedir(d);
	if (rc)
		dir[0] = '\0';
	return rc;
}

/* Finds the NE PCI device; as ne_find_pci_by_id(). */
static inline int ne_find_pci_device(char *dir, size_t len)
{
	return ne_find_pci_by_id(NE_PCI_VENDOR, NE_PCI_DEVICE, dir, len);
}

/* No NE device on this machine: the whole program skips. */
static inline void ne_require_device(void)
{
	char dir[PATH_MAX];

	if (ne_find_pci_device(dir, sizeof(dir)))
		ksft_exit_skip("no Nitro Enclaves PCI device (1d0f:e4c1) here\n");
}

/*
 * The seed of a random test: $NE_SEED when set (to replay a run), else one
 * made from the clock and the pid.  Printed as a TAP comment either way, so
 * that every failing run can be replayed with NE_SEED=<seed>.
 */
static inline unsigned int ne_test_seed(const char *test)
{
	const char *env = getenv("NE_SEED");
	struct timespec ts;
	unsigned int seed;
	char *end;

	if (env && *env) {
		errno = 0;
		seed = strtoul(env, &end, 0);
		if (errno || *end)
			ksft_exit_fail_msg("NE_SEED=%s is not a number\n", env);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (unsigned int)(ts.tv_nsec ^ ts.tv_sec ^ getpid());
	}
	printf("# %s: seed %u (replay with NE_SEED=%u)\n", test, seed, seed);
	fflush(stdout);
	return seed;
}

#endif /* NE_TEST_UTIL_H */
