// SPDX-License-Identifier: GPL-2.0
/*
 * ne_tcg_remap_test: a vCPU that reads the device's registers while another
 * vCPU changes the machine's memory map reads the register it asked for,
 * and the parent QEMU survives.
 *
 * ENCLAVE_START and the end of an enclave change the parent's memory map
 * (the carve-out over donated memory) while its vCPUs run.  Under TCG a
 * vCPU's TLB keeps, for each MMIO page, a section number of the dispatch
 * table it was filled from; QEMU 7.2 switched the other vCPUs to the new
 * table at once and only queued their TLB flush, so a vCPU could look an
 * old number up in the new table: another device's region, or past the
 * table's end (the fuzzer saw the parent QEMU crash in
 * memory_region_dispatch_read).  tools/qemu/patches makes each vCPU switch
 * and flush together, on its own thread.
 *
 * Here one process on CPU 1 reads the test-control BAR's magic register
 * in a loop, while this one, on CPU 0, turns an ivshmem-plain device's
 * memory decoding off and on (each toggle removes or adds two sections of
 * the map).  Every read must return the magic.  The parent VM needs
 * ne-pci test-controls=on and an ivshmem-plain device (selftests/sanitize
 * boots it so, on the ASan QEMU, which also reports any out-of-bounds
 * lookup).  NE_REMAP_SECONDS (default 10) sets how long it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "ne_raw_dev.h"

#define IVSHMEM_VENDOR		0x1af4
#define IVSHMEM_DEVICE		0x1110
#define PCI_COMMAND		0x04
#define PCI_COMMAND_MEMORY	0x2

struct remap_counts {
	uint64_t reads;
	uint64_t wrong;
	uint32_t first_wrong;
};

static int pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* The reader: the magic register, as fast as the vCPU goes, until killed. */
static void __attribute__((noreturn)) read_magic(volatile uint32_t *magic,
						 struct remap_counts *c)
{
	if (pin_to_cpu(1))
		_exit(2);
	for (;;) {
		uint32_t v = *magic;

		if (v != NE_TESTCTL_MAGIC_VALUE && !c->wrong++)
			c->first_wrong = v;
		__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
	}
}

static int set_command(int cfg, uint16_t cmd)
{
	return pwrite(cfg, &cmd, sizeof(cmd), PCI_COMMAND) == sizeof(cmd) ? 0 : -1;
}

TEST(reads_hit_their_register_while_the_map_changes)
{
	char ne_dir[PATH_MAX], shm_dir[PATH_MAX], path[PATH_MAX + 16];
	const char *env = getenv("NE_REMAP_SECONDS");
	long seconds = env ? atol(env) : 10;
	volatile uint8_t *tc;
	struct remap_counts *c;
	uint64_t toggles = 0;
	uint16_t cmd;
	long deadline;
	int tc_fd, cfg, status;
	pid_t reader;

	ASSERT_LT(1, sysconf(_SC_NPROCESSORS_ONLN)) {
		TH_LOG("one CPU online: the reader needs CPU 1");
	}
	ASSERT_EQ(0, ne_find_pci_device(ne_dir, sizeof(ne_dir)));
	tc = ne_map_bar(ne_dir, NE_TESTCTL_BAR, &tc_fd);
	ASSERT_NE(NULL, tc) {
		TH_LOG("no test-control BAR: boot with --ne-pci test-controls=on");
	}
	ASSERT_EQ(NE_TESTCTL_MAGIC_VALUE,
		  *(volatile uint32_t *)(tc + NE_TESTCTL_MAGIC));
	ASSERT_EQ(0, ne_find_pci_by_id(IVSHMEM_VENDOR, IVSHMEM_DEVICE, shm_dir,
				       sizeof(shm_dir))) {
		TH_LOG("no ivshmem-plain device (1af4:1110) in the parent VM");
	}
	snprintf(path, sizeof(path), "%s/config", shm_dir);
	cfg = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, cfg);
	ASSERT_EQ(sizeof(cmd), pread(cfg, &cmd, sizeof(cmd), PCI_COMMAND));

	c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, c);
	memset(c, 0, sizeof(*c));
	reader = fork();
	ASSERT_LE(0, reader);
	if (!reader)
		read_magic((volatile uint32_t *)(tc + NE_TESTCTL_MAGIC), c);
	ASSERT_EQ(0, pin_to_cpu(0));

	deadline = ne_now_ms() + seconds * 1000;
	while (ne_now_ms() < deadline) {
		if (set_command(cfg, cmd & ~PCI_COMMAND_MEMORY) ||
		    set_command(cfg, cmd | PCI_COMMAND_MEMORY))
			break;
		toggles++;
	}
	set_command(cfg, cmd);
	kill(reader, SIGKILL);
	ASSERT_EQ(reader, waitpid(reader, &status, 0));
	close(cfg);

	TH_LOG("%llu reads, %llu memory map toggles in %ld s",
	       (unsigned long long)c->reads, (unsigned long long)toggles,
	       seconds);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		TH_LOG("the reader ended with status %#x", status);
	}
	EXPECT_LT(100, toggles);
	EXPECT_LT(1000, c->reads);
	EXPECT_EQ(0, c->wrong) {
		TH_LOG("%llu reads returned something else, first 0x%08x",
		       (unsigned long long)c->wrong, c->first_wrong);
	}
	/* The device is still there, and still answers. */
	EXPECT_EQ(NE_TESTCTL_MAGIC_VALUE,
		  *(volatile uint32_t *)(tc + NE_TESTCTL_MAGIC));
	munmap(c, sizeof(*c));
	munmap((void *)tc, NE_BAR_SIZE);
	close(tc_fd);
}

TEST_HARNESS_MAIN
