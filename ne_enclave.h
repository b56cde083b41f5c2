/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /dev/nitro_enclaves, the KVM-shaped user API (see kvm-api.md): what its
 * files share.  One file per object:
 *
 *   ne_misc.c   the system fd, the enclave list, the link with the PCI
 *               driver (device pointer, commands for an enclave, events)
 *   ne_vm.c     VM fds: KVM_CREATE_VM, NE_ENCLAVE_START, poll, fdinfo,
 *               release
 *   ne_mem.c    KVM_SET_USER_MEMORY_REGION: checks, pinning, merging
 *   ne_vcpu.c   KVM_CREATE_VCPU and vCPU fds
 *   ne_pool.c   the CPU pool (module parameter ne_cpus)
 *   ne_upstream.c the upstream Nitro Enclaves ioctls (NE_CREATE_VM ...) on
 *               the same node, with upstream's checks and NE_ERR_* values
 *
 * Two families of ioctls.  A VM fd made by KVM_CREATE_VM speaks KVM's
 * (kvm-api.md: standard errnos); one made by NE_CREATE_VM speaks the
 * upstream driver's (NE_ERR_* values).  Each refusal the two share is an
 * enum ne_why, which says its errno in both (ne_refuse_why()).  Either way
 * one enclave is one slot, with one teardown.
 *
 * Objects.  The system fd (the misc device) creates VM fds; a VM fd is one
 * enclave, that is one device slot; a vCPU fd is one parent CPU donated to
 * the enclave.  A vCPU fd holds a reference on its VM file, so the VM file's
 * release (ne_vm_release) runs once the last VM and vCPU fd is gone, in any
 * order of closes; it hands the enclave to the teardown work (ne_vm.c),
 * which stops the enclave, frees the slot, and only when the device
 * confirmed the slot gone unpins and gives the cores back; otherwise the
 * enclave stays a zombie (see ne_vm.c for the invariant).
 *
 * Locks, always taken in this order (never the other way round):
 *
 *   enclave->lock       one enclave's fields; held across that enclave's
 *                       ioctls, including the pinning and the device
 *                       commands they send, so ioctls on different enclaves
 *                       run in parallel.  Nobody else ever waits for it:
 *                       not the event work, not PCI remove, not teardown.
 *   ne_kvm.dev_sem      the device pointer; read around each command, so
 *                       PCI remove (write) waits for commands in flight,
 *                       which it first makes end (ne_pci_abort()).
 *   ne_pci_dev.cmd_lock one command at a time: taken by ne_pci_cmd(), the
 *                       tidy work and ne_pci_discard_slot() under dev_sem
 *                       read, and at probe (ne_misc_register()) and remove
 *                       (ne_pci_shutdown()) under dev_sem write.
 *   ne_pci_dev.orphans_lock  the list of orphan slots: a leaf spinlock,
 *                       taken inside cmd_lock by those who change the list,
 *                       and without it, under dev_sem read, by its debugfs
 *                       reader.
 *   ne_kvm.list_lock    the list of enclaves; a leaf: held only to walk,
 *                       link, unlink, reorder or mark enclaves, to wake
 *                       pollers and to queue work, never across a command
 *                       or user memory access.
 *   ne_pool_lock        the CPU pool; a leaf lock: no command is ever sent
 *                       and no other lock taken while holding it, except
 *                       the CPU hotplug locks when ne_cpus changes (so
 *                       the pool's hotplug callback never takes it: it
 *                       reads a cpumask changed with atomic bit ops).
 *
 * The device pointer is written (ne_kvm.dev_sem write) only by probe and
 * remove.  Arguments are copied from user space before enclave->lock is
 * taken, and results copied back after it is dropped.
 */
#ifndef _NE_ENCLAVE_H
#define _NE_ENCLAVE_H

#include <linux/cpumask.h>
#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <linux/ne_kvm.h>

#include "ne_compat.h"
#include "ne_pci.h"

#define NE_MISC_NAME		"nitro_enclaves"

/* Device slot states, as SLOT_INFO reports them. */
#define NE_STATE_INIT		0
#define NE_STATE_RUNNING	2
#define NE_STATE_STOPPED	0xffff

/* A device that claims more ranges than this is clamped to it. */
#define NE_MAX_MEM_REGIONS	4096

/* How long the teardown retries SLOT_FREE and ENCLAVE_STOP on -EAGAIN. */
#define NE_EAGAIN_RETRY_MS	40000

/* The ioctl family of a VM fd: the one that created it. */
enum ne_family {
	NE_FAMILY_KVM,
	NE_FAMILY_NE,
};

/*
 * Refusals that both families make, each with its errno in both
 * (ne_refuse_why() in ne_vm.c holds the table).
 */
enum ne_why {
	NE_WHY_NOT_INIT,		/* a resource or start after start */
	NE_WHY_FLAGS,			/* unknown flags */
	NE_WHY_MEM_SIZE,		/* memory size not a 2 MiB multiple */
	NE_WHY_MEM_ADDR,		/* user address not 2 MiB aligned */
	NE_WHY_MEM_NOT_USER,		/* access_ok() fails */
	NE_WHY_MEM_OVERLAP,		/* overlaps a donated user range */
	NE_WHY_MEM_TWICE,		/* the same physical memory again */
	NE_WHY_MEM_NOT_HUGE,		/* not hugetlbfs memory */
	NE_WHY_MEM_PAGE_SIZE,		/* huge page size not a 2 MiB multiple */
	NE_WHY_MEM_NUMA,		/* not on the pool's NUMA node */
	NE_WHY_MEM_MAX_REGIONS,		/* more ranges than the device takes */
	NE_WHY_START_NO_MEM,
	NE_WHY_START_NO_VCPU,
	NE_WHY_START_MIN_SIZE,
	NE_WHY_START_CORES,		/* a claimed core not fully used */
	NE_WHY_CID,			/* a reserved vsock CID */
	NE_WHY_VCPU_USED,
	NE_WHY_VCPU_NOT_IN_POOL,
	NE_WHY_VCPU_ID,			/* the vCPU id is out of range */
	NE_WHY_NO_CPUS,			/* no free core in the pool */
	NE_WHY_COUNT
};

/* A memory range of the enclave, as sent to the device. */
struct ne_range {
	u64 phys;
	u64 size;
};

/* A user range donated by one KVM_SET_USER_MEMORY_REGION call. */
struct ne_user_range {
	u64 uaddr;
	u64 size;
};

/* The pages pinned by one KVM_SET_USER_MEMORY_REGION call. */
struct ne_pins {
	struct list_head node;
	unsigned long nr;
	struct page *pages[];
};

struct ne_vcpu_slot {
	u32 id;
	unsigned int cpu;
};

/**
 * struct ne_enclave - one VM fd, one device slot
 * @node:	in ne_enclaves, under ne_list_lock.
 * @lock:	everything below, except what says otherwise.
 * @file:	the VM file (no reference: the enclave lives as long as it).
 * @family:	the ioctl family of the VM fd, set at creation.
 * @mm:		the creator's mm (grabbed); other mms get EIO.
 * @dev_gen:	the device generation (ne_kvm.gen) the slot was allocated on.
 * @dev_loc:	where that device sits (ne_dev_location()), once the slot
 *		is allocated; 0 before.  A later probe there, which turns the
 *		device off, frees the slot.  Under ne_kvm.dev_sem.
 * @resets:	the device's reset epoch the slot was allocated in.
 * @slot_uid:	the device slot.
 * @state:	NE_STATE_*; INIT -> RUNNING under @lock by NE_ENCLAVE_START,
 *		RUNNING -> STOPPED by the event work (store-release, without
 *		@lock).
 * @wedged:	a command timed out: its effect is unknown, so the enclave
 *		takes no more resources and is stopped and freed on release.
 * @dead:	why the VM is dead, or NULL: the device accepted part of a
 *		donation and refused the rest, so the VM answers EIO to
 *		everything but close, as KVM's dead VM.  Set once, under
 *		@lock.
 * @has_event:	the enclave stopped on its own; never cleared.
 * @stop_unsure: the device reported that stop other than as STOPPED (a
 *		state it should not be in, or an unknown slot): the teardown
 *		sends ENCLAVE_STOP anyway.  WRITE_ONCE by the event work
 *		before its store-release of @state.
 * @eventq:	pollers of @has_event, and the last closer waiting for
 *		@torn_down or @zombie, uninterruptibly when exiting: so
 *		woken with wake_up(), never wake_up_interruptible().
 * @enclave_cid: the CID in use once started.
 * @flags:	the start flags.
 * @node_id:	the pool's NUMA node, or NUMA_NO_NODE without a pool.
 * @max_mem_regions: the device's limit of ranges for this slot.
 * @slots_used:	memory slot ids already set.
 * @uranges:	user ranges donated.
 * @nr_uranges:	how many.
 * @ranges:	merged physical ranges.
 * @nr_ranges:	how many.
 * @mem_size:	bytes donated, the next guest-physical address.
 * @pins:	list of struct ne_pins.
 * @cpus:	CPUs of the cores this enclave claimed from the pool.
 * @used_cpus:	those of them donated as vCPUs.
 * @vcpus:	the vCPUs.
 * @nr_vcpus:	how many.
 * @max_vcpus:	the pool's size when the enclave was created.
 * @last_error:	why the last refused ioctl of the VM fd or of one of its
 *		vCPU fds was refused.
 * @teardown:	the teardown work, queued by the last close (ne_vm.c).
 * @slot_gone:	the device confirmed the slot gone: it was removed after
 *		turning off, a probe at the same place turned it off, a
 *		SLOT_FREE's late reply said freed, or a zombie's retried
 *		SLOT_FREE succeeded.
 *		Written under ne_kvm.list_lock, read with READ_ONCE.
 * @zombie:	the device did not confirm the slot gone: pins and cores are
 *		kept; written under ne_kvm.list_lock with WRITE_ONCE (the
 *		last closer reads it locklessly).
 * @reaping:	the zombie's teardown was queued again to let go (its slot
 *		is gone): once only, since that run frees @e, and a second
 *		queue_work() made while it runs would run it again after;
 *		under ne_kvm.list_lock.
 * @free_rc:	why, for the zombie list: the last try's result (its
 *		SLOT_FREE's, or the -ETIMEDOUT of the ENCLAVE_STOP before it);
 *		under ne_kvm.list_lock.
 * @free_tries:	SLOT_FREE attempts: the teardown's (with its resends of
 *		-EAGAIN), then one per retry of the tidy work; WRITE_ONCE by
 *		whichever of them runs, READ_ONCE by the zombie list.
 * @retry_ms:	the delay before a zombie's next retry, doubling from
 *		100 ms to a minute; under ne_kvm.list_lock.
 * @retry_at:	when that retry is due (jiffies); under ne_kvm.list_lock.
 * @uid_stale:	the device no longer knows the slot by @slot_uid (it
 *		answered a zombie's SLOT_FREE -ENOENT, or gave the uid to a
 *		new slot): no command about it is sent any more (the check is
 *		made under the command lock).  Set under ne_kvm.list_lock;
 *		read with READ_ONCE.
 * @stop_confirmed: the device answered an ENCLAVE_STOP with success: the
 *		retries of a zombie send none again.  Written and read by the
 *		teardown, then by the tidy work, one after the other.
 * @refs:	the teardown's reference, the closer's while it waits, and
 *		the tidy work's while it retries a zombie's SLOT_FREE.
 * @torn_down:	the teardown let go of everything (WRITE_ONCE, wakes
 *		@eventq).
 */
struct ne_enclave {
	struct list_head node;
	struct mutex lock;		/* the enclave's fields */
	struct file *file;
	enum ne_family family;
	struct mm_struct *mm;
	unsigned int dev_gen;
	u64 dev_loc;
	unsigned int resets;
	u64 slot_uid;
	u16 state;
	bool wedged;
	const char *dead;
	bool has_event;
	bool stop_unsure;
	wait_queue_head_t eventq;
	u64 enclave_cid;
	u64 flags;
	int node_id;
	u64 max_mem_regions;
	unsigned long *slots_used;
	struct ne_user_range *uranges;
	unsigned int nr_uranges;
	struct ne_range *ranges;
	unsigned int nr_ranges;
	u64 mem_size;
	struct list_head pins;
	cpumask_var_t cpus;
	cpumask_var_t used_cpus;
	struct ne_vcpu_slot *vcpus;
	unsigned int nr_vcpus;
	unsigned int max_vcpus;
	const char *last_error;
	struct work_struct teardown;
	bool slot_gone;
	bool zombie;
	bool reaping;
	int free_rc;
	unsigned int free_tries;
	unsigned int retry_ms;
	unsigned long retry_at;
	bool uid_stale;
	bool stop_confirmed;
	refcount_t refs;
	bool torn_down;
};

/* ne_misc.c: the device and the enclave list */
bool ne_enclave_lost(struct ne_enclave *e);
bool ne_enclave_gone(struct ne_enclave *e);
int ne_enclave_cmd(struct ne_enclave *e, enum ne_pci_cmd_type type,
		   const void *req, size_t size, struct ne_pci_reply *reply);
int ne_enclave_cmd_retry(struct ne_enclave *e, enum ne_pci_cmd_type type,
			 unsigned int eagain_ms);
int ne_enclave_slot_alloc(struct ne_enclave *e, struct ne_pci_reply *reply);
u64 ne_dev_max_mem_regions(void);
void ne_enclave_link(struct ne_enclave *e);
void ne_enclave_unlink(struct ne_enclave *e);
void ne_enclave_queue_teardown(struct ne_enclave *e);
bool ne_enclave_set_zombie(struct ne_enclave *e, int rc);
unsigned int ne_event_seq(void);
void ne_enclave_kick_events(void);
bool ne_enclaves_exist(void);
unsigned int ne_zombies(void);

/* ne_vm.c */
int ne_enclave_stop_and_free(struct ne_enclave *e, unsigned int eagain_ms);
void ne_enclave_teardown(struct work_struct *work);
void ne_enclave_put(struct ne_enclave *e);
int ne_refuse(struct ne_enclave *e, int err, const char *why);
int ne_refuse_why(struct ne_enclave *e, enum ne_why why, const char *text);
long ne_refuse_unlocked(struct ne_enclave *e, int err, const char *why);
int ne_vm_check_usable(struct ne_enclave *e);
long ne_check_extension(struct ne_enclave *e, unsigned long cap);
struct ne_enclave *ne_vm_create(enum ne_family family, int *fd);
void ne_vm_install(struct ne_enclave *e, int fd);
void ne_vm_abandon(struct ne_enclave *e, int fd);
long ne_sys_create_vm(unsigned long type);
int ne_vm_check_cid(struct ne_enclave *e, u64 cid);
int ne_vm_start(struct ne_enclave *e, struct ne_enclave_start *start);

/* ne_mem.c */
long ne_vm_set_memory(struct ne_enclave *e,
		      const struct kvm_userspace_memory_region *r);
int ne_mem_donate(struct ne_enclave *e, u64 uaddr, u64 size, bool *kept);

/* ne_vcpu.c */
long ne_vm_create_vcpu(struct ne_enclave *e, unsigned long id);
int ne_vcpu_add(struct ne_enclave *e, u32 id, unsigned int cpu, int claimed);

/* ne_upstream.c */
long ne_sys_ne_create_vm(void __user *slot_uid);
bool ne_is_ne_vm_ioctl(unsigned int cmd);
long ne_vm_ne_ioctl(struct ne_enclave *e, unsigned int cmd,
		    void __user *argp);

/* ne_pool.c */
void ne_pool_enclave_add(struct ne_enclave *e);
unsigned int ne_pool_cpus_for(struct ne_enclave *e);
unsigned int ne_pool_free_cpus(void);
int ne_pool_pick_cpu(struct ne_enclave *e, int *claimed);
int ne_pool_claim_cpu(struct ne_enclave *e, unsigned int cpu, int *claimed);
void ne_pool_unclaim(struct ne_enclave *e, unsigned int core);
void ne_pool_release(struct ne_enclave *e);
int ne_pool_init(void);
void ne_pool_exit(void);

#endif /* _NE_ENCLAVE_H */
