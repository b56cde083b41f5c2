/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ne_kvm: the KVM-shaped user API of the Nitro Enclaves driver.
 *
 * /dev/nitro_enclaves answers KVM's system ioctls; KVM_CREATE_VM returns a VM
 * fd (one enclave), KVM_SET_USER_MEMORY_REGION donates hugepage memory,
 * KVM_CREATE_VCPU donates a parent CPU and returns a vCPU fd that cannot run,
 * and NE_ENCLAVE_START, the one ioctl of its own, starts the enclave.
 */
#ifndef _UAPI_LINUX_NE_KVM_H
#define _UAPI_LINUX_NE_KVM_H

#include <linux/ioctl.h>
#include <linux/kvm.h>
#include <linux/nitro_enclaves.h>
#include <linux/types.h>

/* Guest-physical address at which the hypervisor looks for the EIF. */
#define NE_IMAGE_LOAD_GPA		(8ULL << 20)

/* Smallest enclave, and the granule of donated memory. */
#define NE_MIN_ENCLAVE_MEM_SIZE		(64ULL << 20)
#define NE_MEM_ALIGN			(2ULL << 20)

/* The parent VM's vsock CID. */
#define NE_PARENT_VM_CID		3

/*
 * NE_ENCLAVE_START flags: NE_ENCLAVE_DEBUG_MODE, the upstream flag of
 * <linux/nitro_enclaves.h> (one definition: both headers may be included).
 */
#define NE_ENCLAVE_START_FLAGS		((__u64)NE_ENCLAVE_DEBUG_MODE)

/**
 * struct ne_enclave_start - argument of NE_ENCLAVE_START
 * @flags:	NE_ENCLAVE_DEBUG_MODE or 0; every other bit is refused.
 * @enclave_cid: in: the vsock CID wanted, 0 to let the hypervisor choose;
 *		out: the CID in use.
 *
 * Byte for byte the upstream struct ne_enclave_start_info.
 */
struct ne_enclave_start {
	__u64 flags;
	__u64 enclave_cid;
};

/* The upstream NE_START_ENCLAVE number (0xAE 0x20-0x3F is Nitro Enclaves'). */
#define NE_ENCLAVE_START	_IOWR(KVMIO, 0x24, struct ne_enclave_start)

#endif /* _UAPI_LINUX_NE_KVM_H */
