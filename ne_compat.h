/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the kernels ne_kvm builds on (Debian's 5.10, 6.1 and
 * 6.12; tools/debian-kernel), in one place: the sources call what is here
 * and test no kernel version themselves.
 */
#ifndef NE_COMPAT_H
#define NE_COMPAT_H

#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/topology.h>
#include <linux/version.h>

#include <asm/smp.h>

/*
 * pin_user_pages() lost its vmas argument in 6.5 (always NULL here).
 */
static inline long ne_pin_user_pages(unsigned long start,
				     unsigned long nr_pages,
				     unsigned int gup_flags,
				     struct page **pages)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	return pin_user_pages(start, nr_pages, gup_flags, pages);
#else
	return pin_user_pages(start, nr_pages, gup_flags, pages, NULL);
#endif
}

/*
 * The most threads a core has: 6.9 renamed x86's smp_num_siblings to
 * __max_threads_per_core.
 */
static inline unsigned int ne_threads_per_core(void)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
	return __max_threads_per_core;
#else
	return smp_num_siblings;
#endif
}

/*
 * The vCPU ioctls ne_vcpu.c names are those of 6.1's <linux/kvm.h>, on
 * every kernel: the user API does not change with the kernel the module is
 * built for.  Their numbers are ABI; where a kernel's header lacks one
 * (5.10: the ones added since) or cannot expand it on x86 (6.9 moved the
 * s390 argument types to s390's <asm/kvm.h>), it is spelled out here with
 * the size of its argument (6.1, x86_64).  ne_kvm_vcpu_test checks every
 * one against the user-space header.
 */
#define NE_KVM_IOC(dir, nr, size)	_IOC(dir, KVMIO, nr, size)

#ifndef KVM_GET_STATS_FD
#define KVM_GET_STATS_FD	_IO(KVMIO, 0xce)
#endif
#ifndef KVM_GET_XSAVE2
#define KVM_GET_XSAVE2		_IOR(KVMIO, 0xcf, struct kvm_xsave)
#endif
#ifndef KVM_GET_SREGS2
#define KVM_GET_SREGS2		NE_KVM_IOC(_IOC_READ, 0xcc, 320)
#define KVM_SET_SREGS2		NE_KVM_IOC(_IOC_WRITE, 0xcd, 320)
#endif
#ifndef KVM_XEN_VCPU_GET_ATTR
#define KVM_XEN_VCPU_GET_ATTR	NE_KVM_IOC(_IOC_READ | _IOC_WRITE, 0xca, 72)
#define KVM_XEN_VCPU_SET_ATTR	NE_KVM_IOC(_IOC_WRITE, 0xcb, 72)
#endif
#ifndef KVM_S390_PV_CPU_COMMAND
#define KVM_S390_PV_CPU_COMMAND	NE_KVM_IOC(_IOC_READ | _IOC_WRITE, 0xd0, 32)
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
#undef KVM_S390_INTERRUPT
#undef KVM_S390_IRQ
#undef KVM_S390_SET_INITIAL_PSW
#undef KVM_S390_UCAS_MAP
#undef KVM_S390_UCAS_UNMAP
#undef KVM_S390_MEM_OP
#undef KVM_S390_SET_IRQ_STATE
#undef KVM_S390_GET_IRQ_STATE
#undef KVM_S390_PV_CPU_COMMAND
#define KVM_S390_INTERRUPT	NE_KVM_IOC(_IOC_WRITE, 0x94, 16)
#define KVM_S390_IRQ		NE_KVM_IOC(_IOC_WRITE, 0xb4, 72)
#define KVM_S390_SET_INITIAL_PSW NE_KVM_IOC(_IOC_WRITE, 0x96, 16)
#define KVM_S390_UCAS_MAP	NE_KVM_IOC(_IOC_WRITE, 0x50, 24)
#define KVM_S390_UCAS_UNMAP	NE_KVM_IOC(_IOC_WRITE, 0x51, 24)
#define KVM_S390_MEM_OP		NE_KVM_IOC(_IOC_WRITE, 0xb1, 64)
#define KVM_S390_SET_IRQ_STATE	NE_KVM_IOC(_IOC_WRITE, 0xb5, 32)
#define KVM_S390_GET_IRQ_STATE	NE_KVM_IOC(_IOC_WRITE, 0xb6, 32)
#define KVM_S390_PV_CPU_COMMAND	NE_KVM_IOC(_IOC_READ | _IOC_WRITE, 0xd0, 32)
#endif

#endif /* NE_COMPAT_H */
