/*
 * The enclave VMs' console logs: enclave-<CID>.log in ne-pci's
 * enclave-log-dir.  Each start writes a file of its own, and the
 * directory keeps at most enclave-logs-max of them.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_ENCLAVE_LOG_H
#define HW_NE_NE_ENCLAVE_LOG_H

/* Logs kept by default: 512 MiB at most, at NE_LOG_MAX (16 MiB) each. */
#define NE_ENCLAVE_LOGS_MAX_DEFAULT     32

/* Whether an enclave VM of @cid still writes its log. */
typedef bool (*NEEnclaveLogInUse)(uint64_t cid, void *opaque);

/*
 * A new enclave-@cid.log in the directory @dir_fd, for writing; or -1 (the
 * enclave then runs without a log, with a warning).  The parent picks the
 * CIDs, so without a bound every CID it ever started would leave a log: to
 * keep at most @keep, the oldest others (by modification time) are
 * removed first, never one that @in_use says an enclave VM still writes.
 * The file is a new one, created exclusively and never through a link: a
 * previous regular file of that name (one name only) is removed first, so
 * that an enclave VM of the same CID still ending keeps writing its own,
 * and anything else there (a FIFO, a device, a file with other names) is
 * left alone and refused.  Only this QEMU's enclave VMs count as writers:
 * a directory shared by two devices would lose the other's live logs.
 * Runs in the main loop: one pass over the directory per start.
 */
int ne_enclave_log_open(int dir_fd, uint64_t cid, uint32_t keep,
                        NEEnclaveLogInUse in_use, void *opaque);

#endif /* HW_NE_NE_ENCLAVE_LOG_H */
