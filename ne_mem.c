// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_SET_USER_MEMORY_REGION for the Nitro Enclaves driver: the checks of
 * kvm-api.md, long-term pinning of hugetlbfs pages, merging of physically
 * contiguous pages, and one SLOT_ADD_MEM per merged range.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/hugetlb.h>
#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

static int ne_check_region(struct ne_enclave *e,
			   const struct kvm_userspace_memory_region *r)
{
	u32 id = r->slot & 0xffff;
	unsigned int i;

	if (r->flags)
		return ne_refuse(e, -EINVAL, "memory region flags must be 0");
	if (r->slot >> 16)
		return ne_refuse(e, -EINVAL, "memory address space must be 0");
	if (id >= e->max_mem_regions)
		return ne_refuse(e, -EINVAL,
				 "slot not below KVM_CAP_NR_MEMSLOTS");
	if (!r->memory_size)
		return ne_refuse(e, -EINVAL,
				 "memory_size 0: donated memory is not taken back");
	if (!IS_ALIGNED(r->userspace_addr, NE_MEM_ALIGN) ||
	    !IS_ALIGNED(r->memory_size, NE_MEM_ALIGN))
		return ne_refuse(e, -EINVAL,
				 "userspace_addr and memory_size must be 2 MiB multiples");
	if (r->userspace_addr + r->memory_size < r->userspace_addr)
		return ne_refuse(e, -EINVAL, "memory region wraps around");
	if (r->guest_phys_addr != e->mem_size)
		return ne_refuse(e, -EINVAL,
				 "guest_phys_addr must equal the memory size so far");
	if (!access_ok(u64_to_user_ptr(r->userspace_addr), r->memory_size))
		return ne_refuse(e, -EFAULT, "memory region is not user memory");
	if (test_bit(id, e->slots_used))
		return ne_refuse(e, -EEXIST, "memory slot already set");
	for (i = 0; i < e->nr_uranges; i++) {
		const struct ne_user_range *u = &e->uranges[i];

		if (r->userspace_addr < u->uaddr + u->size &&
		    u->uaddr < r->userspace_addr + r->memory_size)
			return ne_refuse(e, -EEXIST,
					 "memory region overlaps a donated one");
	}
	return 0;
}

/* Whether @phys continues the enclave's last range or the call's last run. */
static bool ne_continues(const struct ne_range *last, u64 phys)
{
	return last && last->phys + last->size == phys;
}

/*
 * Pins @size bytes at @uaddr one huge page at a time into @pins and merges
 * them into @runs (at most @max_runs).  Returns the number of runs.
 */
static int ne_pin_region(struct ne_enclave *e, u64 uaddr, u64 size,
			 struct ne_pins *pins, struct ne_range *runs,
			 unsigned int max_runs)
{
	const struct ne_range *prev = e->nr_ranges ?
				      &e->ranges[e->nr_ranges - 1] : NULL;
	unsigned int nr_runs = 0;
	u64 done = 0;

	while (done < size) {
		struct page *page, *head;
		u64 phys, offset, chunk;
		long n;

		n = pin_user_pages_fast(uaddr + done, 1,
					FOLL_WRITE | FOLL_LONGTERM, &page);
		if (n != 1)
			return ne_refuse(e, n < 0 ? n : -EFAULT,
					 "memory region is not mapped");
		pins->pages[pins->nr++] = page;

		if (!PageHuge(page))
			return ne_refuse(e, -EINVAL,
					 "memory is not hugetlbfs memory");
		head = compound_head(page);
		if (page_size(head) % NE_MEM_ALIGN)
			return ne_refuse(e, -EINVAL,
					 "huge page size is not a 2 MiB multiple");
		if (e->node_id != NUMA_NO_NODE &&
		    page_to_nid(page) != e->node_id)
			return ne_refuse(e, -EINVAL,
					 "memory is not on the CPU pool's NUMA node");
		phys = page_to_phys(page);
		offset = phys - page_to_phys(head);
		chunk = min_t(u64, size - done, page_size(head) - offset);

		if (ne_continues(nr_runs ? &runs[nr_runs - 1] : prev, phys)) {
			if (!nr_runs)
				runs[nr_runs++] = (struct ne_range){ phys, 0 };
			runs[nr_runs - 1].size += chunk;
		} else {
			if (nr_runs == max_runs)
				return ne_refuse(e, -ENOSPC,
						 "more memory ranges than KVM_CAP_NR_MEMSLOTS");
			runs[nr_runs++] = (struct ne_range){ phys, chunk };
		}
		done += chunk;
	}
	return nr_runs;
}

/* Adds a run the device accepted to the enclave's ranges. */
static void ne_add_range(struct ne_enclave *e, const struct ne_range *run)
{
	struct ne_range *last = e->nr_ranges ?
				&e->ranges[e->nr_ranges - 1] : NULL;

	if (ne_continues(last, run->phys))
		last->size += run->size;
	else
		e->ranges[e->nr_ranges++] = *run;
	e->mem_size += run->size;
}

long ne_vm_set_memory(struct ne_enclave *e,
		      const struct kvm_userspace_memory_region *region)
{
	const struct kvm_userspace_memory_region r = *region;
	struct ne_req_slot_add_mem req = { .slot_uid = e->slot_uid };
	struct ne_pci_reply reply;
	struct ne_range *runs;
	struct ne_pins *pins;
	unsigned int max_runs, i = 0;
	int nr_runs, rc;

	if (e->state != NE_STATE_INIT)
		return ne_refuse(e, -EBUSY, "memory after start");
	rc = ne_check_region(e, &r);
	if (rc)
		return rc;

	/* Room for the ranges left, plus one that extends the last range. */
	max_runs = e->max_mem_regions - e->nr_ranges + 1;
	max_runs = min_t(u64, max_runs, r.memory_size / NE_MEM_ALIGN);
	runs = kcalloc(max_runs, sizeof(*runs), GFP_KERNEL);
	pins = kvzalloc(struct_size(pins, pages, r.memory_size / NE_MEM_ALIGN),
			GFP_KERNEL);
	if (!runs || !pins) {
		rc = -ENOMEM;
		goto out_free;
	}

	nr_runs = ne_pin_region(e, r.userspace_addr, r.memory_size, pins,
				runs, max_runs);
	if (nr_runs < 0) {
		rc = nr_runs;
		goto out_unpin;
	}
	if (e->nr_ranges + nr_runs -
	    ne_continues(e->nr_ranges ? &e->ranges[e->nr_ranges - 1] : NULL,
			 runs[0].phys) > e->max_mem_regions) {
		rc = ne_refuse(e, -ENOSPC,
			       "more memory ranges than KVM_CAP_NR_MEMSLOTS");
		goto out_unpin;
	}

	for (i = 0; i < nr_runs; i++) {
		req.paddr = runs[i].phys;
		req.size = runs[i].size;
		rc = ne_enclave_cmd(e, NE_CMD_SLOT_ADD_MEM, &req, sizeof(req),
				    &reply);
		if (rc)
			break;
		ne_add_range(e, &runs[i]);
	}
	if (rc == -ETIMEDOUT)
		e->wedged = true;
	if (rc)
		ne_refuse(e, rc, rc == -ETIMEDOUT ?
			  "the device did not answer SLOT_ADD_MEM" :
			  "the device refused SLOT_ADD_MEM");
	/* Nothing the device may hold is unpinned before SLOT_FREE. */
	if (i == 0 && rc && rc != -ETIMEDOUT)
		goto out_unpin;

	set_bit(r.slot & 0xffff, e->slots_used);
	e->uranges[e->nr_uranges++] = (struct ne_user_range){
		r.userspace_addr, r.memory_size };
	list_add_tail(&pins->node, &e->pins);
	kfree(runs);
	return rc;

out_unpin:
	unpin_user_pages(pins->pages, pins->nr);
out_free:
	kvfree(pins);
	kfree(runs);
	return rc;
}

