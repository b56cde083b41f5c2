// SPDX-License-Identifier: GPL-2.0
/*
 * Donated memory for the Nitro Enclaves driver.  KVM_SET_USER_MEMORY_REGION
 * makes the checks of kvm-api.md; then, for both families (ne_mem_donate(),
 * which NE_SET_USER_MEMORY_REGION calls too): the mappings are checked
 * before anything is pinned, hugetlbfs pages are pinned long-term in
 * bounded batches, physically contiguous pages are merged, physical memory
 * given twice is refused, and one SLOT_ADD_MEM goes per merged range.  A
 * device that accepts part of a region and refuses the rest leaves the VM
 * dead.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/hugetlb.h>
#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/sched/signal.h>
#include <linux/overflow.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/ne_kvm.h>

#include "ne_enclave.h"

/*
 * Pinned pages are tracked in allocations of one page each, charged to the
 * caller's memory cgroup: what a call allocates grows with the memory it
 * really pins, never with the memory_size it asks for.
 */
#define NE_PINS_PER_BATCH \
	((PAGE_SIZE - sizeof(struct ne_pins)) / sizeof(struct page *))

/*
 * And at most this many bytes pinned per hold of the mmap lock: with 1 GiB
 * pages, a page of pointers alone would cover 509 GiB.
 */
#define NE_PIN_BATCH_BYTES	SZ_1G

/*
 * What one call donates, before the device has it: an extension of the
 * enclave's last range (@ext bytes), then @nr_runs new ranges, kept in
 * e->ranges[e->nr_ranges...] (room for e->max_mem_regions in all) and
 * committed one by one as the device accepts them.
 */
struct ne_donation {
	struct list_head pins;
	u64 ext;
	unsigned int nr_runs;
};

static int ne_check_region(struct ne_enclave *e,
			   const struct kvm_userspace_memory_region *r)
{
	u32 id = r->slot & 0xffff;
	unsigned int i;

	if (r->slot >> 16)
		return ne_refuse(e, -EINVAL, "memory address space must be 0");
	if (id >= e->max_mem_regions)
		return ne_refuse(e, -EINVAL,
				 "slot not below KVM_CAP_NR_MEMSLOTS");
	/*
	 * memory_size 0 is KVM's delete, not a setting of the slot: EINVAL,
	 * set slot or not.  A slot set once is EEXIST, whatever else the
	 * call says.
	 */
	if (!r->memory_size)
		return ne_refuse(e, -EINVAL,
				 "memory_size 0: donated memory is not taken back");
	if (test_bit(id, e->slots_used))
		return ne_refuse(e, -EEXIST, "memory slot already set");
	if (r->flags)
		return ne_refuse(e, -EINVAL, "memory region flags must be 0");
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
	for (i = 0; i < e->nr_uranges; i++) {
		const struct ne_user_range *u = &e->uranges[i];

		if (r->userspace_addr < u->uaddr + u->size &&
		    u->uaddr < r->userspace_addr + r->memory_size)
			return ne_refuse(e, -EEXIST,
					 "memory region overlaps a donated one");
	}
	return 0;
}

/*
 * Checks the mappings of [@start, @start + @size) of @mm, which the caller
 * holds read-locked: no hole (EFAULT), hugetlbfs only, in huge pages that
 * are 2 MiB multiples (EINVAL).  One step per VMA, whatever @size is.
 */
static int ne_check_vmas(struct ne_enclave *e, struct mm_struct *mm,
			 u64 start, u64 size)
{
	u64 addr = start, end = start + size;

	while (addr < end) {
		struct vm_area_struct *vma = find_vma(mm, addr);

		if (!vma || vma->vm_start > addr)
			return ne_refuse(e, -EFAULT,
					 "memory region is not mapped");
		if (!is_vm_hugetlb_page(vma))
			return ne_refuse_why(e, NE_WHY_MEM_NOT_HUGE,
					     "memory is not hugetlbfs memory");
		if (huge_page_size(hstate_vma(vma)) % NE_MEM_ALIGN)
			return ne_refuse_why(e, NE_WHY_MEM_PAGE_SIZE,
					     "huge page size is not a 2 MiB multiple");
		addr = vma->vm_end;
	}
	return 0;
}

static void ne_unpin(struct list_head *pins)
{
	struct ne_pins *batch, *tmp;

	list_for_each_entry_safe(batch, tmp, pins, node) {
		unpin_user_pages(batch->pages, batch->nr);
		list_del(&batch->node);
		kfree(batch);
	}
}

/* Adds @chunk bytes at @phys to the donation @d; -ENOSPC past the limit. */
static int ne_merge(struct ne_enclave *e, struct ne_donation *d, u64 phys,
		    u64 chunk)
{
	struct ne_range *runs = e->ranges + e->nr_ranges;
	struct ne_range *last;

	if (d->nr_runs) {
		last = &runs[d->nr_runs - 1];
		if (last->phys + last->size == phys) {
			last->size += chunk;
			return 0;
		}
	} else if (e->nr_ranges) {
		last = &e->ranges[e->nr_ranges - 1];
		if (last->phys + last->size + d->ext == phys) {
			d->ext += chunk;
			return 0;
		}
	}
	if (d->nr_runs == e->max_mem_regions - e->nr_ranges)
		return ne_refuse_why(e, NE_WHY_MEM_MAX_REGIONS,
				     "more memory ranges than the device takes (KVM_CAP_NR_MEMSLOTS)");
	runs[d->nr_runs++] = (struct ne_range){ phys, chunk };
	return 0;
}

/*
 * Pins the huge pages of @r in batches of at most one page of pointers and
 * NE_PIN_BATCH_BYTES, each page's mapping checked under the mmap lock it is
 * pinned under, and merges them into @d.  FOLL_LONGTERM may migrate a
 * hugetlbfs page first (one in ZONE_MOVABLE or CMA, see
 * check_and_migrate_movable_pages()): the page it returns is the one
 * pinned and mapped, so the physical address is read from it, after the
 * pin; a page that cannot be migrated fails the pin.
 */
static int ne_pin_region(struct ne_enclave *e, u64 uaddr, u64 size,
			 struct ne_donation *d)
{
	struct mm_struct *mm = current->mm;
	u64 done = 0;
	struct ne_pins *batch;
	u64 batch_end;
	int rc = 0;

	while (done < size) {
		if (fatal_signal_pending(current))
			return ne_refuse(e, -EINTR, "interrupted while pinning");
		batch = kmalloc(struct_size(batch, pages, NE_PINS_PER_BATCH),
				GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
				__GFP_NOWARN);
		if (!batch)
			return ne_refuse(e, -ENOMEM,
					 "out of memory to track the pinned pages");
		batch->nr = 0;
		list_add_tail(&batch->node, &d->pins);

		if (mmap_read_lock_killable(mm))
			return ne_refuse(e, -EINTR, "interrupted while pinning");
		batch_end = done + NE_PIN_BATCH_BYTES;
		while (!rc && done < size && done < batch_end &&
		       batch->nr < NE_PINS_PER_BATCH) {
			u64 addr = uaddr + done, phys, offset, chunk;
			struct page *page, *head;
			long n;

			rc = ne_check_vmas(e, mm, addr, NE_MEM_ALIGN);
			if (rc)
				break;
			n = ne_pin_user_pages(addr, 1,
					      FOLL_WRITE | FOLL_LONGTERM, &page);
			if (n != 1) {
				rc = ne_refuse(e, n < 0 ? n : -EFAULT,
					       "memory region cannot be pinned (nor moved out of ZONE_MOVABLE or CMA)");
				break;
			}
			batch->pages[batch->nr++] = page;

			head = compound_head(page);
			if (!PageHuge(page)) {
				rc = ne_refuse_why(e, NE_WHY_MEM_NOT_HUGE,
						   "memory is not hugetlbfs memory");
				break;
			}
			if (page_size(head) % NE_MEM_ALIGN) {
				rc = ne_refuse_why(e, NE_WHY_MEM_PAGE_SIZE,
						   "huge page size is not a 2 MiB multiple");
				break;
			}
			if (e->node_id != NUMA_NO_NODE &&
			    page_to_nid(page) != e->node_id) {
				rc = ne_refuse_why(e, NE_WHY_MEM_NUMA,
						   "memory is not on the CPU pool's NUMA node");
				break;
			}
			phys = page_to_phys(page);
			offset = phys - page_to_phys(head);
			chunk = min_t(u64, size - done,
				      page_size(head) - offset);
			rc = ne_merge(e, d, phys, chunk);
			done += chunk;
		}
		mmap_read_unlock(mm);
		if (rc)
			return rc;
		cond_resched();
	}
	return 0;
}

static bool ne_overlaps(const struct ne_range *a, const struct ne_range *b)
{
	return a->phys < b->phys + b->size && b->phys < a->phys + a->size;
}

/* Whether @p meets a range the enclave has or the first @nr new runs. */
static bool ne_donated(struct ne_enclave *e, const struct ne_range *p,
		       unsigned int nr)
{
	const struct ne_range *runs = e->ranges + e->nr_ranges;
	unsigned int i;

	for (i = 0; i < e->nr_ranges; i++)
		if (ne_overlaps(p, &e->ranges[i]))
			return true;
	for (i = 0; i < nr; i++)
		if (ne_overlaps(p, &runs[i]))
			return true;
	return false;
}

/*
 * The same huge page mapped at two user addresses, in one call or two,
 * would be donated twice: EEXIST.  At most e->max_mem_regions squared
 * comparisons.
 */
static int ne_check_twice(struct ne_enclave *e, const struct ne_donation *d)
{
	const struct ne_range *runs = e->ranges + e->nr_ranges;
	struct ne_range ext = { };
	unsigned int i;

	if (d->ext) {
		const struct ne_range *last = &e->ranges[e->nr_ranges - 1];

		ext = (struct ne_range){ last->phys + last->size, d->ext };
		if (ne_donated(e, &ext, 0))
			goto twice;
	}
	for (i = 0; i < d->nr_runs; i++) {
		if (ne_donated(e, &runs[i], i) ||
		    (d->ext && ne_overlaps(&runs[i], &ext)))
			goto twice;
		cond_resched();
	}
	return 0;
twice:
	return ne_refuse_why(e, NE_WHY_MEM_TWICE,
			     "the same physical memory is donated twice");
}

/* Sends one SLOT_ADD_MEM; the range is the enclave's once accepted. */
static int ne_add_mem(struct ne_enclave *e, u64 phys, u64 size)
{
	struct ne_req_slot_add_mem req = {
		.slot_uid = e->slot_uid,
		.paddr = phys,
		.size = size,
	};
	struct ne_pci_reply reply;

	return ne_enclave_cmd(e, NE_CMD_SLOT_ADD_MEM, &req, sizeof(req),
			      &reply);
}

/* Sends the donation @d, range by range; how many were sent is in *@sent. */
static int ne_send(struct ne_enclave *e, struct ne_donation *d,
		   unsigned int *sent)
{
	unsigned int i;
	int rc;

	*sent = 0;
	if (d->ext) {
		struct ne_range *last = &e->ranges[e->nr_ranges - 1];

		rc = ne_add_mem(e, last->phys + last->size, d->ext);
		if (rc)
			return rc;
		last->size += d->ext;
		e->mem_size += d->ext;
		(*sent)++;
	}
	/* Run i is e->ranges[e->nr_ranges] when it is sent. */
	for (i = 0; i < d->nr_runs; i++) {
		struct ne_range *run = &e->ranges[e->nr_ranges];

		rc = ne_add_mem(e, run->phys, run->size);
		if (rc)
			return rc;
		e->nr_ranges++;
		e->mem_size += run->size;
		(*sent)++;
	}
	return 0;
}

/**
 * ne_mem_donate() - donate [@uaddr, @uaddr + @size) of the caller's memory
 * @e:		the enclave, locked, in INIT; the range checked by the caller
 *		(alignment, access_ok, no overlap with a donated user range).
 * @uaddr:	user address.
 * @size:	bytes, not 0.
 * @kept:	out: whether the enclave now holds the range's pins and counts
 *		it as donated (also when the device took only part of it).
 *
 * Return: 0, or the refusal (recorded).
 */
int ne_mem_donate(struct ne_enclave *e, u64 uaddr, u64 size, bool *kept)
{
	struct ne_donation d = { .pins = LIST_HEAD_INIT(d.pins) };
	struct mm_struct *mm = current->mm;
	unsigned int sent;
	bool lost;
	int rc;

	*kept = false;
	/* The whole range first: nothing is pinned if any of it is wrong. */
	if (mmap_read_lock_killable(mm))
		return ne_refuse(e, -EINTR, "interrupted");
	rc = ne_check_vmas(e, mm, uaddr, size);
	mmap_read_unlock(mm);
	if (rc)
		return rc;

	rc = ne_pin_region(e, uaddr, size, &d);
	if (!rc)
		rc = ne_check_twice(e, &d);
	/*
	 * After the pages' own checks, as upstream counts regions: one user
	 * range per call (KVM's slots keep below this; NE_SET_USER_MEMORY_REGION
	 * takes as many calls as the device takes ranges).
	 */
	if (!rc && e->nr_uranges == e->max_mem_regions)
		rc = ne_refuse_why(e, NE_WHY_MEM_MAX_REGIONS,
				   "more memory regions than the device takes");
	if (rc)
		goto out_unpin;

	rc = ne_send(e, &d, &sent);
	/*
	 * Whether the slot is gone is the device layer's to say: the device
	 * passes its own negative rc, -ENODEV included, through.
	 */
	lost = rc && ne_enclave_lost(e);
	if (rc == -ETIMEDOUT) {
		/* Whether the device took the range is unknown. */
		e->wedged = true;
		ne_refuse(e, rc, "the device did not answer SLOT_ADD_MEM");
	} else if (rc && !sent) {
		ne_refuse(e, rc, lost ? "the device or its slot is gone" :
			  "the device refused SLOT_ADD_MEM");
		goto out_unpin;
	} else if (rc && !lost) {
		/* Part of the region is the enclave's, the rest is not. */
		WRITE_ONCE(e->dead,
			   "the device refused SLOT_ADD_MEM after accepting part of the region: the VM is dead");
		ne_refuse(e, rc, e->dead);
	} else if (rc) {
		ne_refuse(e, rc, "the device or its slot is gone");
	}

	/* Nothing the device may hold is unpinned before SLOT_FREE. */
	e->uranges[e->nr_uranges++] = (struct ne_user_range){ uaddr, size };
	list_splice_tail(&d.pins, &e->pins);
	*kept = true;
	return rc;

out_unpin:
	ne_unpin(&d.pins);
	return rc;
}

long ne_vm_set_memory(struct ne_enclave *e,
		      const struct kvm_userspace_memory_region *r)
{
	bool kept;
	int rc;

	if (e->state != NE_STATE_INIT)
		return ne_refuse(e, -EBUSY, "memory after start");
	rc = ne_check_region(e, r);
	if (rc)
		return rc;
	rc = ne_mem_donate(e, r->userspace_addr, r->memory_size, &kept);
	if (kept)
		set_bit(r->slot & 0xffff, e->slots_used);
	return rc;
}
