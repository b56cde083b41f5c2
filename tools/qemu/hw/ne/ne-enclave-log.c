/*
 * The enclave VMs' console logs (see ne-enclave-log.h).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include <dirent.h>
#include "ne-enclave-log.h"
#include "trace.h"

typedef struct NELogFile {
    uint64_t cid;
    struct timespec mtime;
} NELogFile;

static char *ne_log_name(uint64_t cid)
{
    return g_strdup_printf("enclave-%" PRIu64 ".log", cid);
}

/* The CID of @name when it is exactly a log's name. */
static bool ne_log_cid(const char *name, uint64_t *cid)
{
    g_autofree char *again = NULL;

    if (sscanf(name, "enclave-%" SCNu64 ".log", cid) != 1) {
        return false;
    }
    again = ne_log_name(*cid);
    return !strcmp(again, name);
}

static int ne_log_older(gconstpointer a, gconstpointer b)
{
    const NELogFile *x = a, *y = b;

    if (x->mtime.tv_sec != y->mtime.tv_sec) {
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    }
    if (x->mtime.tv_nsec != y->mtime.tv_nsec) {
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    }
    return x->cid < y->cid ? -1 : x->cid > y->cid;
}

/*
 * Leaves at most @room logs besides enclave-@cid.log: the oldest of those
 * no enclave VM writes go first.
 */
static void ne_log_prune(int dir_fd, uint64_t cid, uint32_t room,
                         NEEnclaveLogInUse in_use, void *opaque)
{
    g_autoptr(GArray) old = g_array_new(false, false, sizeof(NELogFile));
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *de;
    uint32_t logs = 0;
    guint i;

    if (!dir) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    while ((de = readdir(dir))) {
        NELogFile f;
        struct stat st;

        if (!ne_log_cid(de->d_name, &f.cid) || f.cid == cid ||
            fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode)) {
            continue;
        }
        logs++;
        if (!in_use(f.cid, opaque)) {
            f.mtime = st.st_mtim;
            g_array_append_val(old, f);
        }
    }
    g_array_sort(old, ne_log_older);
    for (i = 0; i < old->len && logs > room; i++) {
        uint64_t gone = g_array_index(old, NELogFile, i).cid;
        g_autofree char *name = ne_log_name(gone);

        if (unlinkat(fd, name, 0) == 0) {
            trace_ne_launcher_log_pruned(gone, cid);
            logs--;
        }
    }
    closedir(dir);
}

int ne_enclave_log_open(int dir_fd, uint64_t cid, uint32_t keep,
                        NEEnclaveLogInUse in_use, void *opaque)
{
    g_autofree char *name = ne_log_name(cid);
    const char *why = NULL;
    struct stat st;
    int fd = -1;

    ne_log_prune(dir_fd, cid, keep ? keep - 1 : 0, in_use, opaque);
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
            why = "something other than a regular file with one name "
                  "is there";
        } else if (unlinkat(dir_fd, name, 0) < 0) {
            why = strerror(errno);
        }
    }
    if (!why) {
        fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                    O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
        why = fd < 0 ? strerror(errno) : NULL;
    }
    if (why) {
        trace_ne_launcher_log_refused(cid, why);
        warn_report("ne-pci: not writing the enclave log %s: %s", name, why);
    }
    return fd;
}
