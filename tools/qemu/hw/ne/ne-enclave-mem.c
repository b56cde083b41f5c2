/*
 * memory-backend-ne-enclave: the RAM of an enclave VM, made of the parent's
 * donated memory.
 *
 * The ne-pci launcher starts each enclave as a microvm whose RAM is a memory
 * file of its own (a sealed memfd the parent QEMU never maps), inherited as
 * a file descriptor.  This backend maps FD:OFF:LEN pieces of such files back
 * to back into one reserved host range and offers it as one RAM block; the
 * launcher passes one piece, the whole file.  The descriptors are closed
 * once mapped: the mapping keeps the file, and the VM keeps no descriptor
 * it does not need.
 *
 *   -object memory-backend-ne-enclave,id=ram,size=S,ranges=FD:OFF:LEN;...
 *
 * FD is a descriptor number (or a name passed with getfd), OFF and LEN are
 * byte offsets and lengths in that file, page aligned; the LENs add up to
 * size.  Pieces of one file may share its descriptor.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "qom/object_interfaces.h"
#include "monitor/monitor.h"
#include "sysemu/hostmem.h"

#define TYPE_MEMORY_BACKEND_NE_ENCLAVE "memory-backend-ne-enclave"
OBJECT_DECLARE_SIMPLE_TYPE(NEEnclaveMem, MEMORY_BACKEND_NE_ENCLAVE)

struct NEEnclaveMem {
    HostMemoryBackend parent_obj;

    char *ranges;
    void *base;                 /* the reserved host range, or NULL */
    uint64_t mapped;            /* its length */
};

/* Maps one FD:OFF:LEN piece at @where; returns its length, or 0. */
static uint64_t ne_mem_map_piece(const char *piece, uint8_t *where,
                                 uint64_t room, GHashTable *fds, Error **errp)
{
    g_auto(GStrv) f = g_strsplit(piece, ":", 3);
    uint64_t off, len;
    int fd;

    if (g_strv_length(f) != 3 || qemu_strtou64(f[1], NULL, 0, &off) ||
        qemu_strtou64(f[2], NULL, 0, &len)) {
        error_setg(errp, "ne-enclave memory: '%s' is not FD:OFFSET:LENGTH",
                   piece);
        return 0;
    }
    if (!len || len > room || !QEMU_IS_ALIGNED(off | len,
                                               qemu_real_host_page_size())) {
        error_setg(errp, "ne-enclave memory: piece '%s' is empty, unaligned "
                   "or larger than size", piece);
        return 0;
    }
    fd = monitor_fd_param(monitor_cur(), f[0], errp);
    if (fd < 0) {
        return 0;
    }
    if (mmap(where, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
             off) == MAP_FAILED) {
        error_setg_errno(errp, errno, "ne-enclave memory: cannot map '%s'",
                         piece);
        len = 0;
    }
    g_hash_table_add(fds, GINT_TO_POINTER(fd));
    return len;
}

static void ne_mem_unmap(NEEnclaveMem *m)
{
    if (m->base) {
        munmap(m->base, m->mapped);
        m->base = NULL;
    }
}

static void ne_mem_alloc(HostMemoryBackend *backend, Error **errp)
{
    NEEnclaveMem *m = MEMORY_BACKEND_NE_ENCLAVE(backend);
    g_auto(GStrv) pieces = NULL;
    g_autofree char *name = NULL;
    g_autoptr(GHashTable) fds = g_hash_table_new(NULL, NULL);
    GHashTableIter it;
    gpointer fd;
    uint64_t done = 0;
    int i;

    if (!backend->size || !m->ranges) {
        error_setg(errp, "ne-enclave memory: size and ranges are required");
        return;
    }
    /* Reserve the whole range first, so the pieces land back to back. */
    m->base = mmap(NULL, backend->size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->base == MAP_FAILED) {
        m->base = NULL;
        error_setg_errno(errp, errno, "ne-enclave memory: cannot reserve "
                         "%" PRIu64 " bytes", backend->size);
        return;
    }
    m->mapped = backend->size;

    pieces = g_strsplit(m->ranges, ";", -1);
    for (i = 0; pieces[i]; i++) {
        uint64_t len = ne_mem_map_piece(pieces[i], (uint8_t *)m->base + done,
                                        backend->size - done, fds, errp);

        if (!len) {
            break;
        }
        done += len;
    }
    /* the mappings hold the files: their descriptors are not needed */
    g_hash_table_iter_init(&it, fds);
    while (g_hash_table_iter_next(&it, &fd, NULL)) {
        close(GPOINTER_TO_INT(fd));
    }
    if (pieces[i]) {
        ne_mem_unmap(m);
        return;
    }
    if (done != backend->size) {
        error_setg(errp, "ne-enclave memory: the ranges cover %" PRIu64
                   " bytes, size is %" PRIu64, done, backend->size);
        ne_mem_unmap(m);
        return;
    }
    name = host_memory_backend_get_name(backend);
    memory_region_init_ram_ptr(&backend->mr, OBJECT(backend), name,
                               backend->size, m->base);
}

static char *ne_mem_get_ranges(Object *obj, Error **errp)
{
    return g_strdup(MEMORY_BACKEND_NE_ENCLAVE(obj)->ranges);
}

static void ne_mem_set_ranges(Object *obj, const char *value, Error **errp)
{
    NEEnclaveMem *m = MEMORY_BACKEND_NE_ENCLAVE(obj);

    if (host_memory_backend_mr_inited(MEMORY_BACKEND(obj))) {
        error_setg(errp, "ne-enclave memory: ranges cannot change once "
                   "mapped");
        return;
    }
    g_free(m->ranges);
    m->ranges = g_strdup(value);
}

static void ne_mem_finalize(Object *obj)
{
    NEEnclaveMem *m = MEMORY_BACKEND_NE_ENCLAVE(obj);

    ne_mem_unmap(m);
    g_free(m->ranges);
}

static void ne_mem_class_init(ObjectClass *oc, void *data)
{
    HostMemoryBackendClass *bc = MEMORY_BACKEND_CLASS(oc);

    bc->alloc = ne_mem_alloc;
    object_class_property_add_str(oc, "ranges", ne_mem_get_ranges,
                                  ne_mem_set_ranges);
    object_class_property_set_description(oc, "ranges",
        "FD:OFFSET:LENGTH;... pieces of shared files, mapped back to back");
}

static const TypeInfo ne_mem_info = {
    .name = TYPE_MEMORY_BACKEND_NE_ENCLAVE,
    .parent = TYPE_MEMORY_BACKEND,
    .instance_size = sizeof(NEEnclaveMem),
    .instance_finalize = ne_mem_finalize,
    .class_init = ne_mem_class_init,
};

static void ne_mem_register_types(void)
{
    type_register_static(&ne_mem_info);
}

type_init(ne_mem_register_types)
