/*
 * The enclave launcher: see ne-launcher.h.
 *
 * Each running enclave is one child process: this same QEMU binary (or
 * enclave-qemu=) as `-M microvm`, with
 *   - RAM: the donated ranges of the parent's RAM file, mapped back to back
 *     from enclave-physical 0 by memory-backend-ne-enclave, so the enclave
 *     runs in the very pages the parent gave up (the parent's RAM must be a
 *     shared memory backend, e.g. memory-backend-memfd,share=on);
 *   - vCPUs: as many as were donated;
 *   - the kernel, ramdisks and command line of the EIF found at 8 MiB,
 *     checked and unpacked by ne-eif.c into memory files (the parent's
 *     memory is read once and never trusted beyond the checks); with
 *     enclave-direct-boot, the ELF kernel inside the bzImage, booted
 *     through its PVH entry (ne-kernel.c), which saves the seconds the
 *     bzImage would spend decompressing itself under TCG;
 *   - a vsock-relay-device whose link is one end of a socketpair, the
 *     other end attached to the parent's router under the CID the
 *     hypervisor assigned, so an enclave cannot claim another CID;
 *   - its serial console on a pipe, kept as history, served at vsock
 *     CID 0 port CID + 10000 in debug mode only, and written to
 *     enclave-log-dir (a host directory, never seen by the parent guest).
 * The child gets only the descriptors it needs (as 3, 4, ...), dies with
 * this QEMU (PR_SET_PDEATHSIG), and its end, whatever the cause, is seen
 * through a pidfd and reported with ne_hv_enclave_exited().  ENCLAVE_STOP,
 * SLOT_FREE and device resets end it with SIGKILL and reap it before the
 * memory goes back to the parent, and the memory is zeroed first, so no
 * enclave secret reaches the parent.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/datadir.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "io/channel-socket.h"
#include "exec/cpu-common.h"
#include "hw/ne/vsock-relay.h"
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/falloc.h>
#include "ne-console.h"
#include "ne-eif.h"
#include "ne-kernel.h"
#include "ne-launcher.h"
#include "trace.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Descriptors handed to a child: RAM files, kernel, initrd, link, console. */
#define NE_CHILD_MAX_FDS        32
/* Where they wait (close-on-exec) before being moved down to 3, 4, ... */
#define NE_CHILD_FD_STAGING     (3 + NE_CHILD_MAX_FDS)

struct NELauncher {
    NEHv *hv;
    char *qemu;
    char *accel;
    char *log_dir;
    char **data_dirs;           /* -L for the child: microvm firmware */
    NEKernelCache *kernels;     /* NULL: boot bzImages as they are */
    uint64_t tsc_khz;           /* the host's, for TCG guests; 0: unknown */
    VsockRelayRouter *router;   /* the parent's relay (never unplugged) */
    NEConsole *console;
};

typedef struct NEEnclaveVM {
    NELauncher *l;
    uint64_t uid;
    uint64_t cid;
    pid_t pid;
    bool reaped;
    int pidfd;
    int console_fd;             /* read end of the child's serial pipe */
    int log_fd;
    NEConsoleSource *console;
} NEEnclaveVM;

/* ---- what the child gets ----------------------------------------------- */

/* The child's number for @fd (3, 4, ...), adding it to @fds once. */
static int ne_child_fd(GArray *fds, int fd)
{
    guint i;

    for (i = 0; i < fds->len; i++) {
        if (g_array_index(fds, int, i) == fd) {
            return 3 + i;
        }
    }
    g_array_append_val(fds, fd);
    return 3 + fds->len - 1;
}

/* FD:OFFSET:LENGTH;... of the donated ranges in the parent's RAM files. */
static char *ne_ranges_arg(NESlot *slot, GArray *fds)
{
    GString *s = g_string_new(NULL);
    uint32_t i;

    for (i = 0; i < slot->nr_ranges; i++) {
        const NEMemRange *r = &slot->ranges[i];

        g_string_append_printf(s, "%s%d:%" PRIu64 ":%" PRIu64,
                               i ? ";" : "",
                               ne_child_fd(fds, memory_region_get_fd(r->ram)),
                               (uint64_t)r->ram_offset, r->size);
    }
    return g_string_free(s, false);
}

/* The image's command line and what the hypervisor appends to it. */
static char *ne_cmdline_arg(NELauncher *l, const char *image_cmdline)
{
    g_autofree char *base = g_strstrip(g_strdup(image_cmdline));

    /*
     * Under TCG the guest's TSC runs at the host's rate.  On a busy host
     * the kernel's PIT calibration fails, and microvm has no HPET or ACPI
     * PM timer to fall back on, so the boot would hang: give it the rate,
     * as a VMM gives its devices on the command line.
     */
    if (l->tsc_khz && !strcmp(l->accel, "tcg")) {
        return g_strdup_printf("%s tsc_early_khz=%" PRIu64, base, l->tsc_khz);
    }
    return g_steal_pointer(&base);
}

static char **ne_child_argv(NELauncher *l, NESlot *slot, const NEEifImage *img,
                            int kernel_fd, int link_fd, int console_fd,
                            GArray *fds)
{
    GPtrArray *a = g_ptr_array_new();
    g_autofree char *ranges = ne_ranges_arg(slot, fds);
    int i;

#define ARG(...) g_ptr_array_add(a, g_strdup_printf(__VA_ARGS__))
    ARG("%s", l->qemu);
    ARG("-name");
    ARG("guest=enclave-%" PRIu64 ",process=ne-enclave-%" PRIu64,
        slot->cid, slot->cid);
    ARG("-machine");
    ARG("microvm,rtc=on,memory-backend=enclave-ram");
    ARG("-accel");
    ARG("%s", l->accel);
    /*
     * TCG runs string instructions one iteration at a time: without ERMS
     * and FSRM the enclave's kernel clears and copies memory with its
     * unrolled loops, about twice as fast under TCG.
     */
    ARG("-cpu");
    ARG("%s", strcmp(l->accel, "kvm") ? "max,-erms,-fsrm" : "host");
    ARG("-smp");
    ARG("%u", slot->vcpus->len);
    ARG("-m");
    ARG("%" PRIu64 "M", slot->mem_size / MiB);
    ARG("-object");
    ARG("memory-backend-ne-enclave,id=enclave-ram,size=%" PRIu64
        ",ranges=%s", slot->mem_size, ranges);
    ARG("-nodefaults");
    ARG("-no-user-config");
    ARG("-display");
    ARG("none");
    ARG("-no-reboot");
    for (i = 0; l->data_dirs[i]; i++) {
        ARG("-L");
        ARG("%s", l->data_dirs[i]);
    }
    /* reboot=k (Nitro's command line) resets through the keyboard controller */
    ARG("-device");
    ARG("i8042");
    ARG("-global");
    ARG("virtio-mmio.force-legacy=false");
    ARG("-kernel");
    ARG("/proc/self/fd/%d", ne_child_fd(fds, kernel_fd));
    ARG("-initrd");
    ARG("/proc/self/fd/%d", ne_child_fd(fds, img->initrd_fd));
    ARG("-append");
    g_ptr_array_add(a, ne_cmdline_arg(l, img->cmdline));
    ARG("-chardev");
    ARG("file,id=console,path=/proc/self/fd/%d",
        ne_child_fd(fds, console_fd));
    ARG("-serial");
    ARG("chardev:console");
    ARG("-device");
    ARG("vsock-relay-device,guest-cid=%" PRIu64 ",fd=%d", slot->cid,
        ne_child_fd(fds, link_fd));
#undef ARG
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, false);
}

/* ---- the child process ------------------------------------------------- */

/*
 * Between fork and exec, in a copy of a multithreaded process: only
 * async-signal-safe calls.  @staged are the descriptors to pass, all above
 * the numbers they move to.
 */
static G_NORETURN void ne_child_exec(char **argv, const int *staged,
                                     int nr, pid_t parent)
{
    sigset_t none;
    int i, null;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* die with the parent QEMU, even if it is killed */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent) {
        _exit(126);
    }
    /* not in the parent's process group: a ^C there is not for us */
    setsid();
    null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0) {
        _exit(126);
    }
    for (i = 0; i < nr; i++) {
        if (dup2(staged[i], 3 + i) < 0) {
            _exit(126);
        }
    }
    syscall(SYS_close_range, 3 + nr, ~0U, 0);
    execv(argv[0], argv);
    _exit(127);
}

static pid_t ne_spawn(char **argv, GArray *fds, Error **errp)
{
    int staged[NE_CHILD_MAX_FDS];
    pid_t parent = getpid(), pid;
    int nr = fds->len, i, err;

    if (nr > NE_CHILD_MAX_FDS) {
        error_setg(errp, "the enclave needs %d descriptors (at most %d)", nr,
                   NE_CHILD_MAX_FDS);
        return -1;
    }
    for (i = 0; i < nr; i++) {
        staged[i] = fcntl(g_array_index(fds, int, i), F_DUPFD_CLOEXEC,
                          NE_CHILD_FD_STAGING);
        if (staged[i] < 0) {
            error_setg_errno(errp, errno, "cannot pass descriptors");
            nr = i;
            pid = -1;
            goto out;
        }
    }
    pid = fork();
    if (pid == 0) {
        ne_child_exec(argv, staged, nr, parent);
    }
    if (pid < 0) {
        error_setg_errno(errp, errno, "fork");
    }
out:
    err = errno;
    for (i = 0; i < nr; i++) {
        close(staged[i]);
    }
    errno = err;
    return pid;
}

/* ---- console ----------------------------------------------------------- */

static void ne_vm_console_out(NEEnclaveVM *vm, const char *buf, size_t n)
{
    if (vm->log_fd >= 0 && qemu_write_full(vm->log_fd, buf, n) != n) {
        close(vm->log_fd);
        vm->log_fd = -1;
    }
    if (vm->console) {
        ne_console_source_write(vm->console, buf, n);
    }
}

/* Reads what the console pipe holds; false at its end. */
static bool ne_vm_console_pump(NEEnclaveVM *vm)
{
    char buf[4096];

    for (;;) {
        ssize_t n = read(vm->console_fd, buf, sizeof(buf));

        if (n > 0) {
            ne_vm_console_out(vm, buf, n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && errno == EAGAIN;
        }
    }
}

static void ne_vm_console_readable(void *opaque)
{
    NEEnclaveVM *vm = opaque;

    if (!ne_vm_console_pump(vm)) {
        qemu_set_fd_handler(vm->console_fd, NULL, NULL, NULL);
    }
}

static int ne_open_log(NELauncher *l, uint64_t cid)
{
    g_autofree char *path = NULL;
    int fd;

    if (!l->log_dir) {
        return -1;
    }
    path = g_strdup_printf("%s/enclave-%" PRIu64 ".log", l->log_dir, cid);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        warn_report("ne-pci: cannot write the enclave log %s: %s", path,
                    strerror(errno));
    }
    return fd;
}

/* ---- the end of an enclave --------------------------------------------- */

static void ne_note_exit(NEEnclaveVM *vm, int status)
{
    vm->reaped = true;
    if (WIFSIGNALED(status)) {
        trace_ne_launcher_exit(vm->uid, vm->pid, "killed by signal",
                               WTERMSIG(status));
    } else {
        trace_ne_launcher_exit(vm->uid, vm->pid, "exited with status",
                               WEXITSTATUS(status));
    }
}

/* The child ended on its own (poweroff, reboot, panic, killed, crashed). */
static void ne_vm_exited(void *opaque)
{
    NEEnclaveVM *vm = opaque;
    int status;

    qemu_set_fd_handler(vm->pidfd, NULL, NULL, NULL);
    if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
        ne_note_exit(vm, status);
    }
    /* stops the slot, which calls ne_launcher_stop(), which frees @vm */
    ne_hv_enclave_exited(vm->l->hv, vm->uid);
}

static void ne_kill_and_reap(NEEnclaveVM *vm)
{
    int status;
    pid_t r;

    if (vm->reaped) {
        return;
    }
    trace_ne_launcher_kill(vm->uid, vm->pid);
    kill(vm->pid, SIGKILL);
    do {
        r = waitpid(vm->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == vm->pid) {
        ne_note_exit(vm, status);
    }
    vm->reaped = true;
}

/*
 * The enclave's memory goes back to the parent empty.  Punching holes in
 * the RAM file is instant and gives the host its memory back; writing
 * zeros is the fallback for files that cannot.
 */
static void ne_scrub(NESlot *slot)
{
    uint32_t i;

    for (i = 0; i < slot->nr_ranges; i++) {
        const NEMemRange *r = &slot->ranges[i];
        int fd = memory_region_get_fd(r->ram);

        if (fd < 0 || fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                r->ram_offset, r->size)) {
            memset(ne_hv_range_host_ptr(r), 0, r->size);
        }
    }
}

static void ne_vm_free(NEEnclaveVM *vm)
{
    if (vm->pidfd >= 0) {
        qemu_set_fd_handler(vm->pidfd, NULL, NULL, NULL);
        close(vm->pidfd);
    }
    if (vm->console_fd >= 0) {
        qemu_set_fd_handler(vm->console_fd, NULL, NULL, NULL);
        close(vm->console_fd);
    }
    if (vm->log_fd >= 0) {
        close(vm->log_fd);
    }
    if (vm->console) {
        ne_console_source_close(vm->console);
    }
    g_free(vm);
}

static void ne_launcher_stop(NESlot *slot, void *opaque)
{
    NELauncher *l = opaque;
    NEEnclaveVM *vm = slot->launcher_data;

    if (!vm) {
        return;
    }
    slot->launcher_data = NULL;
    ne_kill_and_reap(vm);
    /* the last words of a panicking enclave are still in the pipe */
    ne_vm_console_pump(vm);
    vsock_relay_router_drop_cid(l->router, vm->cid);
    ne_scrub(slot);
    ne_vm_free(vm);
}

/* ---- start ------------------------------------------------------------- */

/* Can this QEMU boot enclaves at all?  -ENODEV, with a hint, if not. */
static int ne_check_setup(NELauncher *l, NESlot *slot)
{
    uint32_t i;

    if (!l->router) {
        l->router = vsock_relay_find_router();
    }
    if (!l->router) {
        warn_report_once("ne-pci: cannot boot enclaves without the parent's "
                         "vsock relay (-device vsock-relay-pci,guest-cid=3)");
        return -NE_ERRNO_ENODEV;
    }
    if (!l->data_dirs[0]) {
        warn_report_once("ne-pci: cannot boot enclaves: no microvm firmware "
                         "(bios-microvm.bin, linuxboot_dma.bin) on the "
                         "firmware path (-L)");
        return -NE_ERRNO_ENODEV;
    }
    for (i = 0; i < slot->nr_ranges; i++) {
        MemoryRegion *mr = slot->ranges[i].ram;

        if (memory_region_get_fd(mr) < 0 ||
            !qemu_ram_is_shared(mr->ram_block)) {
            warn_report_once("ne-pci: cannot boot enclaves: the parent's RAM "
                             "must be a shared file, e.g. -object "
                             "memory-backend-memfd,share=on");
            return -NE_ERRNO_ENODEV;
        }
    }
    return 0;
}

/* The kernel the child boots: the ELF inside the bzImage, or the bzImage. */
static int ne_boot_kernel_fd(NELauncher *l, NESlot *slot,
                             const NEEifImage *img)
{
    const char *why = NULL;
    bool cached;
    int fd;

    if (!l->kernels) {
        return img->kernel_fd;
    }
    fd = ne_kernel_direct_boot_fd(l->kernels, img->kernel_fd, slot->mem_size,
                                  lseek(img->initrd_fd, 0, SEEK_END),
                                  &cached, &why);
    if (fd < 0) {
        trace_ne_launcher_bzimage_boot(slot->uid, why);
        return img->kernel_fd;
    }
    trace_ne_launcher_direct_boot(slot->uid, cached);
    return fd;
}

/* Forks the enclave VM; 0 or a negative wire errno. */
static int ne_launch(NELauncher *l, NESlot *slot, NEEifImage *img,
                     NEEnclaveVM *vm)
{
    g_autoptr(GArray) fds = g_array_new(false, false, sizeof(int));
    g_auto(GStrv) argv = NULL;
    QIOChannelSocket *sioc;
    Error *err = NULL;
    int link[2], con[2];
    bool attached;

    if (qemu_socketpair(AF_UNIX, SOCK_STREAM, 0, link) < 0) {
        return -NE_ERRNO_ENOMEM;
    }
    if (!g_unix_open_pipe(con, FD_CLOEXEC, NULL)) {
        close(link[0]);
        close(link[1]);
        return -NE_ERRNO_ENOMEM;
    }
    vm->console_fd = con[0];
    g_unix_set_fd_nonblocking(con[0], true, NULL);

    sioc = qio_channel_socket_new_fd(link[0], &error_abort);
    attached = vsock_relay_router_attach(l->router, QIO_CHANNEL(sioc),
                                         slot->cid);
    object_unref(OBJECT(sioc));
    if (!attached) {
        /* an enclave QEMU started by hand (listen=) holds this CID */
        close(link[1]);
        close(con[1]);
        return -NE_ERRNO_EADDRINUSE;
    }

    argv = ne_child_argv(l, slot, img, ne_boot_kernel_fd(l, slot, img),
                         link[1], con[1], fds);
    vm->pid = ne_spawn(argv, fds, &err);
    close(link[1]);
    close(con[1]);
    if (vm->pid < 0) {
        warn_report_err(err);
        vsock_relay_router_drop_cid(l->router, slot->cid);
        return -NE_ERRNO_ENOMEM;
    }
    vm->pidfd = syscall(SYS_pidfd_open, vm->pid, 0);
    if (vm->pidfd < 0) {
        warn_report("ne-pci: pidfd_open: %s", strerror(errno));
        ne_kill_and_reap(vm);
        vsock_relay_router_drop_cid(l->router, slot->cid);
        return -NE_ERRNO_ENOMEM;
    }
    return 0;
}

static int ne_launcher_start(NESlot *slot, void *opaque)
{
    NELauncher *l = opaque;
    NEEifImage img;
    NEEnclaveVM *vm;
    Error *err = NULL;
    int rc = ne_check_setup(l, slot);

    if (rc < 0) {
        return rc;
    }
    if (!ne_eif_load(slot, NE_EIF_LOAD_OFFSET, &img, &err)) {
        trace_ne_launcher_bad_image(slot->uid, error_get_pretty(err));
        qemu_log_mask(LOG_GUEST_ERROR, "ne-pci: slot 0x%" PRIx64 ": not a "
                      "bootable EIF: %s\n", slot->uid, error_get_pretty(err));
        error_free(err);
        return -NE_ERRNO_ENOEXEC;
    }

    vm = g_new0(NEEnclaveVM, 1);
    vm->l = l;
    vm->uid = slot->uid;
    vm->cid = slot->cid;
    vm->pidfd = vm->console_fd = -1;
    vm->log_fd = ne_open_log(l, slot->cid);
    rc = ne_launch(l, slot, &img, vm);
    if (rc < 0) {
        ne_eif_release(&img);
        ne_vm_free(vm);
        return rc;
    }
    trace_ne_launcher_spawn(slot->uid, slot->cid, vm->pid, slot->mem_size,
                            slot->vcpus->len, img.eif_size);
    ne_eif_release(&img);

    if (!l->console) {
        l->console = ne_console_new(l->router);
    }
    vm->console = ne_console_source_new(l->console, slot->cid,
                                        slot->flags & NE_START_FLAG_DEBUG);
    qemu_set_fd_handler(vm->console_fd, ne_vm_console_readable, NULL, vm);
    qemu_set_fd_handler(vm->pidfd, ne_vm_exited, NULL, vm);
    slot->launcher_data = vm;
    return 0;
}

/* ---- setup ------------------------------------------------------------- */

static const NEHvLauncherOps ne_launcher_ops = {
    .start = ne_launcher_start,
    .stop = ne_launcher_stop,
};

/* Adds the directory of firmware @file to @dirs; false if there is none. */
static bool ne_add_data_dir(GPtrArray *dirs, const char *file)
{
    g_autofree char *path = qemu_find_file(QEMU_FILE_TYPE_BIOS, file);
    g_autofree char *dir = NULL;

    if (!path) {
        return false;
    }
    dir = g_path_get_dirname(path);
    if (!g_ptr_array_find_with_equal_func(dirs, dir, g_str_equal, NULL)) {
        g_ptr_array_add(dirs, g_steal_pointer(&dir));
    }
    return true;
}

/*
 * The directories holding the firmware a microvm with -kernel needs, and
 * whether they also hold pvh.bin, the option ROM of a direct (PVH) boot.
 */
static char **ne_find_data_dirs(bool *has_pvh)
{
    static const char *const files[] = {
        "bios-microvm.bin", "linuxboot_dma.bin",
    };
    GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
    int i;

    *has_pvh = false;
    for (i = 0; i < ARRAY_SIZE(files); i++) {
        if (!ne_add_data_dir(dirs, files[i])) {
            g_ptr_array_set_size(dirs, 0);
            break;
        }
    }
    if (dirs->len) {
        *has_pvh = ne_add_data_dir(dirs, "pvh.bin");
    }
    g_ptr_array_set_free_func(dirs, NULL);
    g_ptr_array_add(dirs, NULL);
    return (char **)g_ptr_array_free(dirs, false);
}

/* The host's TSC rate in kHz, as the kernel measured it; 0 if unknown. */
static uint64_t ne_host_tsc_khz(void)
{
    g_autofree char *info = NULL;
    const char *p;
    double mhz;

    if (!g_file_get_contents("/proc/cpuinfo", &info, NULL, NULL)) {
        return 0;
    }
    p = strstr(info, "\ncpu MHz");
    p = p ? strchr(p, ':') : NULL;
    if (!p || sscanf(p + 1, "%lf", &mhz) != 1) {
        return 0;
    }
    return mhz > 0 ? (uint64_t)(mhz * 1000) : 0;
}

NELauncher *ne_launcher_new(NEHv *hv, const NELauncherConfig *cfg,
                            Error **errp)
{
    NELauncher *l;
    g_autofree char *self = NULL;
    bool has_pvh;

    if (strcmp(cfg->accel, "tcg") && strcmp(cfg->accel, "kvm")) {
        error_setg(errp, "enclave-accel must be tcg or kvm");
        return NULL;
    }
    if (!cfg->qemu || !*cfg->qemu) {
        /* the binary, not /proc/self/exe, which would be the child's own */
        self = g_file_read_link("/proc/self/exe", NULL);
        if (!self) {
            error_setg(errp, "cannot find this QEMU's binary");
            return NULL;
        }
    }
    l = g_new0(NELauncher, 1);
    l->hv = hv;
    l->qemu = self ? g_steal_pointer(&self) : g_strdup(cfg->qemu);
    l->accel = g_strdup(cfg->accel);
    l->log_dir = g_strdup(cfg->log_dir);
    l->data_dirs = ne_find_data_dirs(&has_pvh);
    if (cfg->direct_boot && has_pvh) {
        l->kernels = ne_kernel_cache_new();
    }
    l->tsc_khz = ne_host_tsc_khz();
    ne_hv_set_launcher(hv, &ne_launcher_ops, l);
    return l;
}

void ne_launcher_free(NELauncher *l)
{
    if (!l) {
        return;
    }
    ne_hv_set_launcher(l->hv, NULL, NULL);
    if (l->console) {
        ne_console_free(l->console);
    }
    g_strfreev(l->data_dirs);
    ne_kernel_cache_free(l->kernels);
    g_free(l->qemu);
    g_free(l->accel);
    g_free(l->log_dir);
    g_free(l);
}
