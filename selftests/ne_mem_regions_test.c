// SPDX-License-Identifier: GPL-2.0
/*
 * ne_mem_regions_test: the device's defaults fit the upstream driver's
 * documented usage, one 2 MiB region per KVM_SET_USER_MEMORY_REGION: 256
 * regions (512 MiB), none physically contiguous with the one before it (so
 * the driver cannot merge them), then NE_ENCLAVE_START.
 */
#include <stdlib.h>

#include "kselftest_harness.h"
#include "ne_kvm_util.h"

#define NR_REGIONS	256

struct page {
	char *addr;
	uint64_t phys;
};

static int by_phys_down(const void *a, const void *b)
{
	const struct page *x = a, *y = b;

	return x->phys < y->phys ? 1 : x->phys > y->phys ? -1 : 0;
}

FIXTURE(regions) {
	int vm;
	int vcpus[2];
	struct page pages[NR_REGIONS];
};

FIXTURE_SETUP(regions)
{
	int i;

	ASSERT_EQ(0, ne_ensure_pool());
	self->vcpus[0] = self->vcpus[1] = -1;
	self->vm = ne_create_vm();
	ASSERT_LE(0, self->vm);
	for (i = 0; i < NR_REGIONS; i++) {
		self->pages[i].addr = ne_huge_alloc(HPAGE);
		ASSERT_NE(MAP_FAILED, self->pages[i].addr) {
			TH_LOG("2 MiB hugepage %d of %d: %s", i, NR_REGIONS,
			       strerror(errno));
			while (i--)
				munmap(self->pages[i].addr, HPAGE);
		}
		self->pages[i].phys = ne_phys(self->pages[i].addr);
		ASSERT_NE(0, self->pages[i].phys);
	}
	/*
	 * Descending physical order: no region starts where the one before
	 * it (in guest-physical order) ends, so each stays its own range.
	 */
	qsort(self->pages, NR_REGIONS, sizeof(self->pages[0]), by_phys_down);
}

FIXTURE_TEARDOWN(regions)
{
	int i;

	close(self->vcpus[0]);
	close(self->vcpus[1]);
	close(self->vm);
	for (i = 0; i < NR_REGIONS; i++)
		munmap(self->pages[i].addr, HPAGE);
}

TEST(nr_memslots_is_256)
{
	int sys = ne_open_sys(), vm = ne_create_vm();

	ASSERT_LE(0, sys);
	ASSERT_LE(0, vm);
	EXPECT_EQ(NR_REGIONS, ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS));
	EXPECT_EQ(NR_REGIONS, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS));
	close(vm);
	close(sys);
}

TEST_F_TIMEOUT(regions, donate_256_separate_2mib_regions_then_start, 300)
{
	uint64_t cid = 0;
	int i;

	for (i = 0; i < NR_REGIONS; i++) {
		ASSERT_EQ(0, ne_set_region(self->vm, i, i * HPAGE,
					   self->pages[i].addr, HPAGE, 0)) {
			TH_LOG("region %d of %d: %s", i + 1, NR_REGIONS,
			       strerror(errno));
		}
	}
	EXPECT_EQ(NR_REGIONS, ne_fdinfo_num(self->vm, "ne_mem_ranges"));
	EXPECT_EQ((long long)NR_REGIONS * HPAGE,
		  ne_fdinfo_num(self->vm, "ne_mem_bytes"));
	for (i = 0; i < 2; i++) {
		self->vcpus[i] = ioctl(self->vm, KVM_CREATE_VCPU, i);
		ASSERT_LE(0, self->vcpus[i]) TH_LOG("vCPU %d: %s", i, strerror(errno));
	}
	ASSERT_EQ(0, ne_start(self->vm, 0, &cid)) {
		TH_LOG("start: %s", strerror(errno));
	}
	EXPECT_LT(3, cid);
}

TEST_HARNESS_MAIN
