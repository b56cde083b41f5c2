// SPDX-License-Identifier: GPL-2.0
/*
 * ne_foreign_ram_test: SLOT_ADD_MEM takes only the machine's RAM.  Memory
 * that the parent sees as RAM but that belongs to a device is refused
 * with -EINVAL, however plain it is: the shared memory BAR of an
 * ivshmem-plain device, and a pc-dimm's memory (the memory blocks of an
 * ACPI memory device).  Machine RAM is accepted beside them.
 *
 * Driven from userspace with the driver unbound, as ne_device_test.  The
 * parent VM must have both devices (selftests/sanitize boots it so):
 *
 *   tools/ne-vm --qemu-arg -m --qemu-arg slots=2,maxmem=8G \
 *     --qemu-arg -object --qemu-arg memory-backend-memfd,id=shm,size=4M,share=on \
 *     --qemu-arg -device --qemu-arg ivshmem-plain,memdev=shm \
 *     --qemu-arg -object --qemu-arg memory-backend-ram,id=dimm,size=128M \
 *     --qemu-arg -device --qemu-arg pc-dimm,memdev=dimm \
 *     -- selftests/run ne_foreign_ram_test
 *
 * A missing device fails its test (the suite must not weaken silently).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "ne_raw_dev.h"

#define IVSHMEM_VENDOR		0x1af4
#define IVSHMEM_DEVICE		0x1110
#define IVSHMEM_SHM_BAR		2


FIXTURE(foreign) {
	struct ne_raw raw;
	struct ne_mem mem;
	uint64_t uid;
};

FIXTURE_SETUP(foreign)
{
	ASSERT_EQ(0, ne_raw_open(&self->raw));
	ASSERT_EQ(0, ne_raw_handshake(&self->raw));
	ASSERT_EQ(0, ne_raw_slot_alloc(&self->raw, &self->uid));
	ASSERT_EQ(0, ne_mem_alloc(&self->mem, 1)) {
		TH_LOG("cannot map a hugepage");
	}
}

FIXTURE_TEARDOWN(foreign)
{
	EXPECT_LE(0, ne_raw_free_all(&self->raw));
	ne_mem_free(&self->mem);
	ne_raw_close(&self->raw);
}

/* BAR @bar of the device in @dir, from its resource file: [start, end]. */
static int pci_bar(const char *dir, int bar, uint64_t *start, uint64_t *end)
{
	char path[PATH_MAX + 16], line[128];
	unsigned long long s, e, flags;
	FILE *f;
	int i, rc = -1;

	snprintf(path, sizeof(path), "%s/resource", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	for (i = 0; i <= bar && fgets(line, sizeof(line), f); i++) {
		if (i == bar && sscanf(line, "%llx %llx %llx", &s, &e, &flags) == 3 &&
		    e > s) {
			*start = s;
			*end = e;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

/*
 * The first memory block the kernel bound to an ACPI memory device
 * (PNP0C80, a pc-dimm's slot): its physical_node links name memory blocks
 * (/sys/devices/system/memory/memoryN, N block sizes from 0).  [start, end]
 */
static int dimm_ram(uint64_t *start, uint64_t *end)
{
	char link[PATH_MAX], target[PATH_MAX];
	unsigned long block = ne_read_sysfs_hex("/sys/devices/system/memory",
						"block_size_bytes");
	struct dirent *de;
	DIR *d = opendir("/sys/bus/acpi/devices");
	unsigned long nr;
	ssize_t n;
	int rc = -1;

	if (!d || !block) {
		if (d)
			closedir(d);
		return -1;
	}
	while (rc && (de = readdir(d))) {
		if (strncmp(de->d_name, "PNP0C80:", 8))
			continue;
		snprintf(link, sizeof(link), "/sys/bus/acpi/devices/%s/physical_node",
			 de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;	/* an empty slot */
		target[n] = '\0';
		if (sscanf(strrchr(target, '/') + 1, "memory%lu", &nr) == 1) {
			*start = (uint64_t)nr * block;
			*end = *start + block - 1;
			rc = 0;
		}
	}
	closedir(d);
	return rc;
}

TEST_F(foreign, ivshmem_bar_is_refused)
{
	struct ne_raw *r = &self->raw;
	char dir[PATH_MAX], path[PATH_MAX + 16];
	uint64_t start = 0, end = 0, size;
	volatile uint32_t *shm;
	int fd;

	ASSERT_EQ(0, ne_find_pci_by_id(IVSHMEM_VENDOR, IVSHMEM_DEVICE, dir, sizeof(dir))) {
		TH_LOG("no ivshmem-plain device (1af4:1110) in the parent VM");
	}
	/* memory decoding on: the BAR is in the parent's physical map */
	ASSERT_EQ(0, ne_sysfs_write(dir, "enable", "1"));
	ASSERT_EQ(0, pci_bar(dir, IVSHMEM_SHM_BAR, &start, &end));
	size = end - start + 1;
	TH_LOG("ivshmem shared memory BAR at 0x%" PRIx64 ", %" PRIu64 " MiB",
	       start, size >> 20);
	ASSERT_GE(size, NE_HUGE_SIZE);
	ASSERT_EQ(0, start % NE_HUGE_SIZE);

	/* It is memory at that address: what is written there reads back. */
	snprintf(path, sizeof(path), "%s/resource%d", dir, IVSHMEM_SHM_BAR);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	ASSERT_LE(0, fd);
	shm = mmap(NULL, NE_HUGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, shm);
	shm[0] = 0x6e655f72;
	shm[1] = ~0x6e655f72U;
	EXPECT_EQ(0x6e655f72, shm[0]);
	EXPECT_EQ(~0x6e655f72U, shm[1]);
	munmap((void *)shm, NE_HUGE_SIZE);
	close(fd);

	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, self->uid, start, NE_HUGE_SIZE));
	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, self->uid, start, size));
	/* the machine's RAM, beside it, is taken */
	EXPECT_EQ(0, ne_raw_add_mem(r, self->uid, self->mem.gpa[0], NE_HUGE_SIZE));
	ne_sysfs_write(dir, "enable", "0");
}

TEST_F(foreign, dimm_memory_is_refused)
{
	struct ne_raw *r = &self->raw;
	uint64_t start = 0, end = 0, gpa;

	ASSERT_EQ(0, dimm_ram(&start, &end)) {
		TH_LOG("no memory bound to an ACPI memory device: no pc-dimm in the parent VM");
	}
	gpa = (start + NE_HUGE_SIZE - 1) & ~(NE_HUGE_SIZE - 1);
	TH_LOG("pc-dimm memory block at 0x%" PRIx64 "-0x%" PRIx64, start, end);
	ASSERT_LE(gpa + NE_HUGE_SIZE - 1, end);

	EXPECT_EQ(-EINVAL, ne_raw_add_mem(r, self->uid, gpa, NE_HUGE_SIZE));
	EXPECT_EQ(0, ne_raw_add_mem(r, self->uid, self->mem.gpa[0], NE_HUGE_SIZE));
}

int main(int argc, char **argv)
{
	return ne_raw_test_main(argc, argv);
}
