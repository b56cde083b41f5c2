/*
 * The enclave launcher of the emulated Nitro hypervisor: on ENCLAVE_START
 * it boots the image the parent put in the donated memory as a sibling VM
 * (a microvm run by a second QEMU process), links it to the parent's vsock
 * relay, serves its debug console, and reports its end.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_LAUNCHER_H
#define HW_NE_NE_LAUNCHER_H

#include "ne-hv.h"
#include "hw/ne/vsock-relay.h"

typedef struct NELauncher NELauncher;

typedef struct NELauncherConfig {
    VsockRelayRouter *router;   /* the parent relay's (never unplugged) */
    const char *qemu;           /* enclave QEMU binary; NULL: this one */
    const char *accel;          /* "tcg" or "kvm" */
    const char *log_dir;        /* host directory for console logs, or NULL */
    uint32_t logs_max;          /* logs kept there (ne-enclave-log.h) */
    bool direct_boot;           /* boot the bzImage's ELF kernel via PVH */
    uint64_t eif_max;           /* largest image read at ENCLAVE_START */
    const char *attestation_ca; /* instance CA bundle (ne-attest.h), or NULL */
    const char *parent_role;    /* PCR3's IAM role ARN, or NULL */
    uint32_t attestation_renew; /* seconds between leaves (ne-attest-renew.h) */
} NELauncherConfig;

/* Registers itself as @hv's launcher. */
NELauncher *ne_launcher_new(NEHv *hv, const NELauncherConfig *cfg,
                            Error **errp);
/* Only once no enclave runs any more (after ne_hv_free_all()). */
void ne_launcher_free(NELauncher *l);

#endif /* HW_NE_NE_LAUNCHER_H */
