/*
 * The enclave launcher: see ne-launcher.h.
 *
 * Each running enclave is one child process: this same QEMU binary (or
 * enclave-qemu=) as `-M microvm`, with
 *   - RAM: a memory file of its own, created at ENCLAVE_START, sized to the
 *     donated memory and sealed against growing and shrinking.  It starts
 *     all zeros: nothing the parent left in the donated pages reaches the
 *     enclave (the image is booted from the files below, not from there),
 *     and this QEMU never maps it, so nothing of the enclave reaches the
 *     parent.  The donated ranges of the parent's RAM file are punched out
 *     at the start (the host gets those pages back; what the parent's
 *     devices might still write there lands in the parent's own file) and
 *     again when the slot stops, so the parent gets them back as zeros;
 *   - vCPUs: as many as were donated;
 *   - the kernel, ramdisks and command line of the EIF found at 8 MiB,
 *     checked and unpacked by ne-eif.c into memory files (the parent's
 *     memory is read once and never trusted beyond the checks), passed
 *     sealed against any change (those very files: they are made to take
 *     seals, never copied); with enclave-direct-boot, the ELF kernel
 *     inside the bzImage, booted through its PVH entry (ne-kernel.c),
 *     which saves the seconds the bzImage would spend decompressing itself
 *     under TCG;
 *   - a vsock-relay-device whose link is one end of a socketpair, the
 *     other end attached to the parent's router under the CID the
 *     hypervisor assigned, so an enclave cannot claim another CID;
 *   - its Nitro Secure Module (ne-nsm-device): the boot record ne-attest.c
 *     writes (the PCRs measured from the image, a leaf of its own) in a
 *     sealed memory file, and, with a CA, one end of a SOCK_SEQPACKET pair
 *     on which ne-attest-renew.c sends it a fresh leaf every few minutes;
 *   - its serial console (and its stderr, so that a VM that cannot start
 *     says why) on a pipe, read at most 64 KiB per main loop wakeup
 *     (a flood waits for the next one), kept as history, served at vsock
 *     CID 0 port CID + 10000 in debug mode only, and written (size-capped)
 *     to enclave-CID.log in enclave-log-dir, a host directory opened once
 *     at realize and never followed through a link;
 *   - with a QEMU built with seccomp, -sandbox on (no spawning, no
 *     privilege changes).
 * The child is this QEMU's own binary, executed through a descriptor
 * opened at realize: a binary deleted or replaced at its path meanwhile
 * (a rebuilt or pruned cache) is still the one that runs.  An
 * enclave-qemu= binary is executed by its path.
 * ENCLAVE_START is answered later: a worker thread reads the image (at
 * most enclave-eif-max bytes, 1 GiB by default: a larger one is refused
 * from its section table), checks and unpacks it and takes its kernel
 * out, and a bottom half then forks the child and posts the reply, so
 * the parent's vCPUs never wait for that work under the BQL.
 * The child gets only the descriptors it needs (as 3, 4, ...), dies with
 * this QEMU (PR_SET_PDEATHSIG), and its end, whatever the cause, is seen
 * through a pidfd and reported with ne_hv_enclave_exited(); why it ended
 * (its exit status or signal, and from its QMP monitor whether the guest
 * powered off, reset itself or panicked) is written to its console.
 * ENCLAVE_STOP, SLOT_FREE and device resets send it SIGKILL through the
 * pidfd and return at once: the child is reaped when the pidfd fires, and
 * its memory, which is its own, goes with it.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/datadir.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memfd.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qjson.h"
#include "io/channel-socket.h"
#include "exec/cpu-common.h"
#include "hw/ne/vsock-relay.h"
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/falloc.h>
#include "ne-console.h"
#include "ne-attest.h"
#include "ne-attest-renew.h"
#include "ne-eif.h"
#include "ne-enclave-log.h"
#include "ne-kernel.h"
#include "ne-launcher.h"
#include "ne-sealed-file.h"
#include "ne-tsc.h"
#include "trace.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/*
 * Descriptors handed to a child: RAM file, kernel, initrd, the NSM's boot
 * record and renewal socket, link, console, monitor.
 */
#define NE_CHILD_MAX_FDS        32
/* Where they wait (close-on-exec) before being moved down to 3, 4, ... */
#define NE_CHILD_FD_STAGING     (3 + NE_CHILD_MAX_FDS)
/* An enclave's console log on the host stops growing here. */
#define NE_LOG_MAX              (16 * MiB)
/*
 * Console bytes handled per wakeup of the main loop: a flooding enclave
 * VM waits for the next one (the pipe stays readable, so the handler runs
 * again once everything else that is ready had its turn).
 */
#define NE_CONSOLE_BUDGET       (64 * KiB)
/*
 * What is left in the console pipe or the monitor's socket once the child
 * ended: at most their capacity (a pipe's is 1 MiB at most, pipe-max-size)
 * while nothing else writes there.
 */
#define NE_LAST_WORDS           (1 * MiB)
/* A QMP line longer than this is not looked at (events are short). */
#define NE_QMP_LINE_MAX         4096
/* Bytes of the child's QMP monitor handled per wakeup. */
#define NE_QMP_BUDGET           (16 * KiB)
/*
 * The child starts paused (-S), its QMP monitor on a socketpair.  This
 * leaves capability negotiation, so that events are sent, then lets the
 * guest run, so that no event can come before.
 */
static const char ne_qmp_hello[] =
    "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"cont\"}\n";

typedef struct NEEnclaveVM NEEnclaveVM;
typedef struct NEStartJob NEStartJob;

struct NELauncher {
    NEHv *hv;
    char *qemu;                 /* argv[0] of the child */
    int exe_fd;                 /* this QEMU's binary (O_PATH); or -1 */
    char *accel;
    int log_dir_fd;             /* enclave-log-dir, opened at realize; or -1 */
    uint32_t logs_max;          /* enclave-logs-max: logs kept there */
    char **data_dirs;           /* -L for the child: microvm firmware */
    NEKernelCache *kernels;     /* NULL: boot bzImages as they are */
    bool tsc_measured;          /* tsc_khz below (lock) */
    uint64_t tsc_khz;           /* the host's, for TCG guests; 0: unknown */
    VsockRelayRouter *router;   /* the parent's relay (never unplugged) */
    NEConsole *console;
    uint64_t eif_max;           /* largest image read at ENCLAVE_START */
    NEAttest *attest;           /* what each enclave's NSM is given */
    uint32_t renew_s;           /* seconds between its leaves; 0: never */
    QemuMutex lock;             /* kernels, tsc_measured (workers) */
    QLIST_HEAD(, NEEnclaveVM) vms;      /* every child not yet reaped */
    QLIST_HEAD(, NEStartJob) jobs;      /* starts in progress */
    unsigned int nr_cancelled;  /* of them, abandoned ones winding down */
};

/*
 * One child.  It belongs to its slot (slot->launcher_data) until the slot
 * stops; then it lives on, detached, until the pidfd says it ended.
 */
struct NEEnclaveVM {
    QLIST_ENTRY(NEEnclaveVM) next;
    NELauncher *l;
    uint64_t uid;
    uint64_t cid;
    bool attached;              /* its slot still RUNNING */
    pid_t pid;
    bool reaped;
    int pidfd;
    int console_fd;             /* read end of the child's serial pipe */
    int qmp_fd;                 /* our end of the child's QMP monitor */
    size_t qmp_len;             /* bytes in qmp_line */
    bool qmp_skip;              /* in a line too long to look at */
    char qmp_line[NE_QMP_LINE_MAX];
    char shutdown[32];          /* the reason of its SHUTDOWN event, or "" */
    NEAttestRenewal *renewal;   /* its NSM's fresh leaves, while attached */
    int log_fd;
    uint64_t log_size;
    NEConsoleSource *console;
};

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

/* The image's command line and what the hypervisor appends to it. */
static char *ne_cmdline_arg(NELauncher *l, const char *image_cmdline)
{
    g_autofree char *base = g_strstrip(g_strdup(image_cmdline));

    /*
     * Under TCG the guest's TSC runs at the host's rate.  On a busy host
     * the kernel's PIT calibration fails, and microvm has no HPET or ACPI
     * PM timer to fall back on, so the boot would hang: give it the rate,
     * as a VMM gives its devices on the command line (measured by the
     * start's worker, ne_launcher_measure_tsc()).
     */
    if (l->tsc_khz && !strcmp(l->accel, "tcg")) {
        return g_strdup_printf("%s tsc_early_khz=%" PRIu64, base, l->tsc_khz);
    }
    return g_steal_pointer(&base);
}

static char **ne_child_argv(NELauncher *l, NESlot *slot, const char *cmdline,
                            int mem_fd, int kernel_fd, int initrd_fd,
                            int nsm_fd, int renew_fd, int link_fd,
                            int console_fd, int qmp_fd, GArray *fds)
{
    GPtrArray *a = g_ptr_array_new();
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
    /* its own memory file, mapped whole; the child closes it once mapped */
    ARG("-object");
    ARG("memory-backend-ne-enclave,id=enclave-ram,size=%" PRIu64
        ",ranges=%d:0:%" PRIu64, slot->mem_size, ne_child_fd(fds, mem_fd),
        slot->mem_size);
#ifdef CONFIG_SECCOMP
    ARG("-sandbox");
    ARG("on,obsolete=deny,elevateprivileges=deny,spawn=deny");
#endif
    ARG("-nodefaults");
    ARG("-no-user-config");
    /* paused until the launcher's QMP hello (ne_qmp_hello) */
    ARG("-S");
    ARG("-chardev");
    ARG("socket,id=ne-qmp,fd=%d", ne_child_fd(fds, qmp_fd));
    ARG("-mon");
    ARG("chardev=ne-qmp,mode=control");
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
    ARG("/proc/self/fd/%d", ne_child_fd(fds, initrd_fd));
    ARG("-append");
    g_ptr_array_add(a, ne_cmdline_arg(l, cmdline));
    ARG("-chardev");
    ARG("file,id=console,path=/proc/self/fd/%d",
        ne_child_fd(fds, console_fd));
    ARG("-serial");
    ARG("chardev:console");
    ARG("-device");
    ARG("vsock-relay-device,guest-cid=%" PRIu64 ",fd=%d", slot->cid,
        ne_child_fd(fds, link_fd));
    /* the Nitro Secure Module, with what the hypervisor measured */
    ARG("-device");
    if (renew_fd < 0) {
        ARG("ne-nsm-device,boot=%d", ne_child_fd(fds, nsm_fd));
    } else {
        ARG("ne-nsm-device,boot=%d,renew=%d", ne_child_fd(fds, nsm_fd),
            ne_child_fd(fds, renew_fd));
    }
#undef ARG
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, false);
}

/*
 * The enclave's memory: a file of its own, all zeros, that can neither
 * grow nor shrink (the child maps all of it) and takes no further seals.
 */
static int ne_enclave_mem_fd(uint64_t cid, uint64_t size)
{
    g_autofree char *name = g_strdup_printf("ne-enclave-%" PRIu64, cid);

    return qemu_memfd_create(name, size, false, 0,
                             F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW, NULL);
}

/* ---- the child process ------------------------------------------------- */

/* Closes every descriptor from @first up, with or without close_range. */
static void ne_close_from(int first)
{
    struct rlimit rl;
    long fd, max = 65536;

    if (syscall(SYS_close_range, first, ~0U, 0) == 0) {
        return;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        max = rl.rlim_cur;
    }
    for (fd = first; fd < max; fd++) {
        close(fd);
    }
}

/*
 * Between fork and exec, in a copy of a multithreaded process: only
 * async-signal-safe calls.  @staged are the descriptors to pass, all above
 * the numbers they move to; @err_fd (one of them) becomes stderr; @exe_fd,
 * staged too, is the binary to run (-1: argv[0], by path).
 */
static G_NORETURN void ne_child_exec(char **argv, const int *staged,
                                     int nr, int err_fd, int exe_fd,
                                     pid_t parent)
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
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
        dup2(err_fd, 2) < 0) {
        _exit(126);
    }
    for (i = 0; i < nr; i++) {
        if (dup2(staged[i], 3 + i) < 0) {
            _exit(126);
        }
    }
    if (exe_fd < 0) {
        ne_close_from(3 + nr);
        execv(argv[0], argv);
        _exit(127);
    }
    /* right after the passed ones, and closed by the exec itself */
    if (dup2(exe_fd, 3 + nr) < 0 || fcntl(3 + nr, F_SETFD, FD_CLOEXEC) < 0) {
        _exit(126);
    }
    ne_close_from(3 + nr + 1);
    fexecve(3 + nr, argv, environ);
    _exit(127);
}

static pid_t ne_spawn(char **argv, GArray *fds, int err_fd, int exe_fd,
                      Error **errp)
{
    int staged[NE_CHILD_MAX_FDS];
    pid_t parent = getpid(), pid;
    int nr = fds->len, i, err, staged_err, staged_exe = -1;

    if (nr > NE_CHILD_MAX_FDS) {
        error_setg(errp, "the enclave needs %d descriptors (at most %d)", nr,
                   NE_CHILD_MAX_FDS);
        return -1;
    }
    staged_err = -1;
    for (i = 0; i < nr; i++) {
        int fd = g_array_index(fds, int, i);

        staged[i] = fcntl(fd, F_DUPFD_CLOEXEC, NE_CHILD_FD_STAGING);
        if (staged[i] < 0) {
            error_setg_errno(errp, errno, "cannot pass descriptors");
            nr = i;
            pid = -1;
            goto out;
        }
        if (fd == err_fd) {
            staged_err = staged[i];
        }
    }
    if (staged_err < 0) {
        error_setg(errp, "no stderr for the enclave VM");
        pid = -1;
        goto out;
    }
    if (exe_fd >= 0) {
        staged_exe = fcntl(exe_fd, F_DUPFD_CLOEXEC, NE_CHILD_FD_STAGING);
        if (staged_exe < 0) {
            error_setg_errno(errp, errno, "cannot pass the QEMU binary");
            pid = -1;
            goto out;
        }
    }
    pid = fork();
    if (pid == 0) {
        ne_child_exec(argv, staged, nr, staged_err, staged_exe, parent);
    }
    if (pid < 0) {
        error_setg_errno(errp, errno, "fork");
    }
out:
    err = errno;
    for (i = 0; i < nr; i++) {
        close(staged[i]);
    }
    if (staged_exe >= 0) {
        close(staged_exe);
    }
    errno = err;
    return pid;
}

/* ---- console ----------------------------------------------------------- */

static void ne_vm_log(NEEnclaveVM *vm, const char *buf, size_t n)
{
    static const char cut[] = "\n[ne-pci: the enclave log is full]\n";

    if (vm->log_fd < 0) {
        return;
    }
    n = MIN(n, NE_LOG_MAX - vm->log_size);
    if (qemu_write_full(vm->log_fd, buf, n) != n) {
        close(vm->log_fd);
        vm->log_fd = -1;
        return;
    }
    vm->log_size += n;
    if (vm->log_size >= NE_LOG_MAX) {
        trace_ne_launcher_log_full(vm->uid, vm->cid);
        qemu_write_full(vm->log_fd, cut, sizeof(cut) - 1);
        close(vm->log_fd);
        vm->log_fd = -1;
    }
}

static void ne_vm_console_out(NEEnclaveVM *vm, const char *buf, size_t n)
{
    ne_vm_log(vm, buf, n);
    if (vm->console) {
        ne_console_source_write(vm->console, buf, n);
    }
}

/*
 * Handles at most @budget bytes of what the console pipe holds; false at
 * its end (EOF or an error).
 */
static bool ne_vm_console_pump(NEEnclaveVM *vm, size_t budget)
{
    char buf[4096];
    size_t done = 0;

    if (vm->console_fd < 0) {
        return false;
    }
    while (done < budget) {
        size_t want = MIN(sizeof(buf), budget - done);
        ssize_t n = read(vm->console_fd, buf, want);

        if (n > 0) {
            ne_vm_console_out(vm, buf, n);
            done += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && errno == EAGAIN;
        }
    }
    trace_ne_launcher_console_budget(vm->uid, vm->cid, done);
    return true;
}

static void ne_vm_console_readable(void *opaque)
{
    NEEnclaveVM *vm = opaque;

    if (!ne_vm_console_pump(vm, NE_CONSOLE_BUDGET)) {
        qemu_set_fd_handler(vm->console_fd, NULL, NULL, NULL);
    }
}

/* ---- the child's QMP monitor ------------------------------------------ */

static void ne_vm_kill(NEEnclaveVM *vm);

/* One message from the monitor: only SHUTDOWN and errors matter. */
static void ne_vm_qmp_message(NEEnclaveVM *vm, const char *line)
{
    QObject *obj = qobject_from_json(line, NULL);
    QDict *msg = qobject_to(QDict, obj);
    QDict *data;
    const char *reason;

    if (!msg) {
        qobject_unref(obj);
        return;
    }
    if (qdict_haskey(msg, "error")) {
        /* the hello was refused: the guest would never run */
        g_autofree char *note = NULL;

        data = qdict_get_qdict(msg, "error");
        reason = data ? qdict_get_try_str(data, "desc") : NULL;
        trace_ne_launcher_qmp_error(vm->uid, reason ? reason : "?");
        note = g_strdup_printf("\n[ne-pci: the enclave VM did not start "
                               "its guest: %.200s]\n", reason ? reason : "?");
        ne_vm_console_out(vm, note, strlen(note));
        ne_vm_kill(vm);
    } else if (!g_strcmp0(qdict_get_try_str(msg, "event"), "SHUTDOWN")) {
        data = qdict_get_qdict(msg, "data");
        reason = data ? qdict_get_try_str(data, "reason") : NULL;
        if (!reason || !*reason || strlen(reason) >= sizeof(vm->shutdown) ||
            strspn(reason, "abcdefghijklmnopqrstuvwxyz-") != strlen(reason)) {
            reason = "unknown";
        }
        pstrcpy(vm->shutdown, sizeof(vm->shutdown), reason);
        trace_ne_launcher_shutdown(vm->uid, vm->cid, vm->shutdown);
    }
    qobject_unref(obj);
}

/*
 * Handles at most @budget bytes from the monitor, a line at a time (a
 * line too long to be an event is skipped); false at its end.
 */
static bool ne_vm_qmp_pump(NEEnclaveVM *vm, size_t budget)
{
    char buf[1024];
    size_t done = 0;

    if (vm->qmp_fd < 0) {
        return false;
    }
    while (done < budget) {
        size_t want = MIN(sizeof(buf), budget - done);
        ssize_t n = read(vm->qmp_fd, buf, want), i;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 && errno == EAGAIN;
        }
        done += n;
        for (i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (!vm->qmp_skip) {
                    vm->qmp_line[vm->qmp_len] = '\0';
                    ne_vm_qmp_message(vm, vm->qmp_line);
                }
                vm->qmp_len = 0;
                vm->qmp_skip = false;
            } else if (vm->qmp_skip) {
                continue;
            } else if (vm->qmp_len == sizeof(vm->qmp_line) - 1) {
                trace_ne_launcher_qmp_skip(vm->uid, vm->cid);
                vm->qmp_skip = true;
            } else {
                vm->qmp_line[vm->qmp_len++] = buf[i];
            }
        }
    }
    return true;
}

static void ne_vm_qmp_readable(void *opaque)
{
    NEEnclaveVM *vm = opaque;

    if (!ne_vm_qmp_pump(vm, NE_QMP_BUDGET)) {
        qemu_set_fd_handler(vm->qmp_fd, NULL, NULL, NULL);
    }
}

/* ne_enclave_log_open()'s question: does an enclave VM write @cid's log? */
static bool ne_log_in_use(uint64_t cid, void *opaque)
{
    NELauncher *l = opaque;
    NEEnclaveVM *vm;

    QLIST_FOREACH(vm, &l->vms, next) {
        if (vm->cid == cid && vm->log_fd >= 0) {
            return true;
        }
    }
    return false;
}

static int ne_open_log(NELauncher *l, uint64_t cid)
{
    if (l->log_dir_fd < 0) {
        return -1;
    }
    return ne_enclave_log_open(l->log_dir_fd, cid, l->logs_max,
                               ne_log_in_use, l);
}

/* ---- the end of an enclave --------------------------------------------- */

/* Why the enclave ended, from the child's status and its monitor. */
static char *ne_exit_reason(NEEnclaveVM *vm, int status)
{
    if (WIFSIGNALED(status)) {
        return g_strdup_printf("its VM was killed by signal %d%s",
                               WTERMSIG(status), vm->attached ? "" :
                               " (the enclave was stopped)");
    }
    if (WEXITSTATUS(status)) {
        return g_strdup_printf("its VM exited with status %d: it could not "
                               "run (its messages are above)",
                               WEXITSTATUS(status));
    }
    if (!strcmp(vm->shutdown, "guest-reset")) {
        /* -no-reboot: the reset of a Nitro enclave ends it */
        return g_strdup("it reset itself (a reboot, a triple fault, or a "
                        "kernel panic with panic=N), which ends an enclave");
    }
    if (!strcmp(vm->shutdown, "guest-shutdown")) {
        return g_strdup("it powered off");
    }
    if (!strcmp(vm->shutdown, "guest-panic")) {
        return g_strdup("its kernel panicked");
    }
    if (vm->shutdown[0]) {
        return g_strdup_printf("its VM shut down (%s)", vm->shutdown);
    }
    return g_strdup("its VM exited with status 0 without saying why");
}

/* Says in the log and on the console how the child ended. */
static void ne_note_exit(NEEnclaveVM *vm, int status)
{
    g_autofree char *why = ne_exit_reason(vm, status);
    g_autofree char *line = g_strdup_printf("\n[ne-pci: enclave of CID %"
                                            PRIu64 " ended: %s]\n", vm->cid,
                                            why);

    vm->reaped = true;
    trace_ne_launcher_exit(vm->uid, vm->pid, status, why);
    ne_vm_console_out(vm, line, strlen(line));
}

/*
 * Reaps the child if it ended; true if it has.  The pidfd tells when, so
 * this never waits.
 */
static bool ne_vm_reap(NEEnclaveVM *vm)
{
    int status;
    pid_t r;

    if (vm->reaped) {
        return true;
    }
    do {
        r = waitpid(vm->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return false;
    }
    /* the last words of a panicking enclave are still in the pipe */
    ne_vm_console_pump(vm, NE_LAST_WORDS);
    ne_vm_qmp_pump(vm, NE_LAST_WORDS);
    if (r == vm->pid) {
        ne_note_exit(vm, status);
    }
    vm->reaped = true;
    return true;
}

static void ne_vm_free(NEEnclaveVM *vm)
{
    ne_attest_renewal_free(vm->renewal);
    if (vm->pidfd >= 0) {
        qemu_set_fd_handler(vm->pidfd, NULL, NULL, NULL);
        close(vm->pidfd);
    }
    if (vm->console_fd >= 0) {
        qemu_set_fd_handler(vm->console_fd, NULL, NULL, NULL);
        close(vm->console_fd);
    }
    if (vm->qmp_fd >= 0) {
        qemu_set_fd_handler(vm->qmp_fd, NULL, NULL, NULL);
        close(vm->qmp_fd);
    }
    if (vm->log_fd >= 0) {
        close(vm->log_fd);
    }
    if (vm->console) {
        ne_console_source_close(vm->console);
    }
    if (vm->l) {
        QLIST_REMOVE(vm, next);
    }
    g_free(vm);
}

/* The child ended: on its own (poweroff, panic, crash) or as asked. */
static void ne_vm_exited(void *opaque)
{
    NEEnclaveVM *vm = opaque;

    if (!ne_vm_reap(vm)) {
        return;
    }
    qemu_set_fd_handler(vm->pidfd, NULL, NULL, NULL);
    if (vm->attached) {
        /*
         * Stops the slot, which calls ne_launcher_stop(), which frees
         * @vm: nothing may touch it after this.
         */
        ne_hv_enclave_exited(vm->l->hv, vm->uid);
        return;
    }
    ne_vm_free(vm);
}

static void ne_vm_kill(NEEnclaveVM *vm)
{
    if (vm->reaped) {
        return;
    }
    trace_ne_launcher_kill(vm->uid, vm->pid);
    if (vm->pidfd >= 0) {
        /* cannot hit a recycled pid: the pidfd holds this very process */
        if (syscall(SYS_pidfd_send_signal, vm->pidfd, SIGKILL, NULL, 0) < 0 &&
            errno != ESRCH) {
            warn_report("ne-pci: cannot kill the enclave VM %d: %s", vm->pid,
                        strerror(errno));
        }
    } else {
        /* not reaped yet, so the pid is still this child's */
        kill(vm->pid, SIGKILL);
    }
}

/*
 * The donated ranges of the parent's RAM file become holes: the host gets
 * the pages back and the parent reads zeros there once it gets the range
 * back.  Writing zeros is the fallback for files that cannot punch.
 */
static void ne_punch_parent(NESlot *slot)
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

static void ne_launcher_stop(NESlot *slot, void *opaque)
{
    NELauncher *l = opaque;
    NEEnclaveVM *vm = slot->launcher_data;

    if (!vm) {
        return;
    }
    slot->launcher_data = NULL;
    vm->attached = false;
    ne_attest_renewal_free(vm->renewal);
    vm->renewal = NULL;
    vsock_relay_router_drop_cid(l->router, vm->cid);
    /*
     * Whatever the parent's devices wrote into the carved-out ranges went
     * to its own file, not to the enclave: drop it before it gets them
     * back.
     */
    ne_punch_parent(slot);
    if (vm->console) {
        ne_console_source_close(vm->console);
        vm->console = NULL;
    }
    if (ne_vm_reap(vm)) {
        ne_vm_free(vm);
        return;
    }
    ne_vm_kill(vm);
    /* ne_vm_exited() frees it when the pidfd fires */
}

/* ---- start ------------------------------------------------------------- */

/* Can this QEMU boot enclaves at all?  -ENODEV, with a hint, if not. */
static int ne_check_setup(NELauncher *l, NESlot *slot)
{
    uint32_t i;

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
#ifndef CONFIG_SECCOMP
    warn_report_once("ne-pci: this QEMU is built without seccomp: enclave "
                     "VMs run without -sandbox");
#endif
    return 0;
}

/*
 * Abandoned starts (their slot freed while the START was pending, e.g. by
 * ENABLE=0) still winding down, beyond which a START is refused with
 * EAGAIN.  Each stops at its next MiB of the image, or at the next stage
 * when past the reading (its kernel's extraction, its seals and its NSM
 * file are not cut short), but the parent can abandon starts faster than
 * that: without a cap, every abandoned start of a parent looping so kept
 * a thread and an image's worth of memory files.  (Only one START is ever
 * pending: one command in flight.)
 */
#define NE_CANCELLED_STARTS_MAX 4

/*
 * An ENCLAVE_START in progress.  The image is read out of the donated
 * memory, checked, unpacked and its kernel extracted by a worker thread,
 * which works on its own view of the slot (the ranges, their RAM blocks
 * referenced), so that nothing it reads can go away under it; the child
 * is forked from a bottom half, in the main loop (PR_SET_PDEATHSIG follows
 * the thread that forks), which also answers the command.
 */
struct NEStartJob {
    QLIST_ENTRY(NEStartJob) next;
    NELauncher *l;
    NESlot *slot;               /* NULL once the slot is gone */
    bool cancelled;             /* so: the worker stops (atomic) */
    NESlot view;                /* what the worker reads */
    uint64_t mem_size;          /* the enclave's */
    QemuThread thread;
    QEMUBH *bh;
    /* results of the worker */
    int rc;                     /* 0 or a negative wire errno */
    Error *err;                 /* why the image is not bootable */
    NEEifImage img;
    bool debug;                 /* NE_START_FLAG_DEBUG */
    uint8_t enclave_id[NE_ATTEST_ENCLAVE_ID_LEN];  /* its NSM's, for renewals */
    /* memory, kernel, initrd, the NSM's boot record: sealed, owned */
    int files[4];
    unsigned int seal_budget;   /* ms its seals may still wait for */
};

enum { NE_FILE_MEM, NE_FILE_KERNEL, NE_FILE_INITRD, NE_FILE_NSM };

/*
 * @fd sealed against any change (NE_BOOT_FILE_SEALS), as a descriptor of
 * its own for a child (the caller closes it), or -1 with @errp set.  The
 * files a child boots from are made to take seals: one that does not is
 * refused, never copied.  The job's seals share one budget of
 * NE_SEAL_WAIT_MS, charged with the time each took: together they keep a
 * start (and ne_launcher_free(), which joins its worker) from waiting for
 * more than about that, however long the rest of the start takes.  (The
 * ELF kernel's seal, made once per kernel by the cache, has a budget of
 * its own.)
 */
static int ne_sealed_dup(NEStartJob *job, int fd, const char *what,
                         Error **errp)
{
    int64_t start = g_get_monotonic_time();
    unsigned int refusals, took;
    int rc = ne_seal_boot_file(fd, job->seal_budget, &refusals);

    took = (g_get_monotonic_time() - start) / 1000;
    job->seal_budget -= MIN(took, job->seal_budget);

    if (refusals) {
        trace_ne_launcher_seal_busy(job->view.uid, what, refusals, -rc);
    }
    if (rc < 0) {
        error_setg_errno(errp, -rc, "cannot seal the enclave's %s", what);
        return -1;
    }
    rc = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (rc < 0) {
        error_setg_errno(errp, errno, "cannot pass the enclave's %s", what);
    }
    return rc;
}

/*
 * The kernel the child boots, sealed, as a descriptor of its own: the ELF
 * inside the bzImage (the kernel cache's own file, sealed by ne-kernel.c),
 * or the bzImage.  The kernel cache is shared by every start: l->lock.
 */
static int ne_boot_kernel_fd(NELauncher *l, NEStartJob *job, Error **errp)
{
    const char *why = NULL;
    bool cached;
    int fd;

    if (!l->kernels) {
        return ne_sealed_dup(job, job->img.kernel_fd, "kernel", errp);
    }
    qemu_mutex_lock(&l->lock);
    fd = ne_kernel_direct_boot_fd(l->kernels, job->img.kernel_fd,
                                  job->mem_size,
                                  lseek(job->img.initrd_fd, 0, SEEK_END),
                                  &cached, &why);
    if (fd < 0) {
        qemu_mutex_unlock(&l->lock);
        trace_ne_launcher_bzimage_boot(job->view.uid, why);
        return ne_sealed_dup(job, job->img.kernel_fd, "kernel", errp);
    }
    trace_ne_launcher_direct_boot(job->view.uid, cached);
    fd = ne_sealed_dup(job, fd, "ELF kernel", errp);
    qemu_mutex_unlock(&l->lock);
    return fd;
}

/*
 * The host's TSC rate for the TCG children's command line, measured once,
 * by the first start's worker that could (it takes 200 ms; not at
 * realize, in the main loop).  The kernel's "cpu MHz" is no substitute:
 * with a cpufreq driver it is the core's current speed, not the TSC's.
 */
static void ne_launcher_measure_tsc(NELauncher *l, NEStartJob *job)
{
    const char *why;
    int rc;

    if (strcmp(l->accel, "tcg")) {
        return;
    }
    qemu_mutex_lock(&l->lock);
    if (!l->tsc_measured) {
        /*
         * Any constant TSC will do (the children are not told it is
         * reliable); a host too loaded to measure it is asked again at
         * the next start.
         */
        rc = ne_tsc_khz(false, &l->tsc_khz, &why);
        l->tsc_measured = rc != -EAGAIN;
        trace_ne_launcher_tsc(job->view.uid, l->tsc_khz, rc ? why : "");
    }
    qemu_mutex_unlock(&l->lock);
}

/* The enclave's memory, kernel and initrd files, or false with @errp set */
static bool ne_boot_files(NEStartJob *job, Error **errp)
{
    job->seal_budget = NE_SEAL_WAIT_MS;
    job->files[NE_FILE_MEM] = ne_enclave_mem_fd(job->view.cid, job->mem_size);
    if (job->files[NE_FILE_MEM] < 0) {
        error_setg_errno(errp, errno, "cannot make the enclave's memory "
                         "file");
        return false;
    }
    job->files[NE_FILE_KERNEL] = ne_boot_kernel_fd(job->l, job, errp);
    if (job->files[NE_FILE_KERNEL] < 0) {
        return false;
    }
    job->files[NE_FILE_INITRD] = ne_sealed_dup(job, job->img.initrd_fd,
                                               "initrd", errp);
    return job->files[NE_FILE_INITRD] >= 0;
}

static void *ne_start_worker(void *opaque)
{
    NEStartJob *job = opaque;

    ne_launcher_measure_tsc(job->l, job);
    if (!ne_eif_load(&job->view, NE_EIF_LOAD_OFFSET, job->l->eif_max,
                     &job->cancelled, &job->img, &job->err)) {
        job->rc = -NE_ERRNO_ENOEXEC;
    } else if (qatomic_read(&job->cancelled)) {
        /* nothing more for nobody: no kernel extracted, no NSM made */
        job->rc = -NE_ERRNO_EAGAIN;
    } else if (!ne_boot_files(job, &job->err)) {
        job->rc = -NE_ERRNO_ENOMEM;
    } else {
        /* the NSM's PCRs, from the image as read, and its signer */
        job->files[NE_FILE_NSM] = ne_attest_boot_file(job->l->attest,
                                                      &job->img.pcrs,
                                                      job->debug,
                                                      job->enclave_id,
                                                      job->seal_budget,
                                                      &job->err);
        if (job->files[NE_FILE_NSM] < 0) {
            job->rc = -NE_ERRNO_ENOMEM;
        }
    }
    qemu_bh_schedule(job->bh);
    return NULL;
}

static void ne_start_job_free(NEStartJob *job)
{
    uint32_t i;

    qemu_bh_delete(job->bh);
    ne_eif_release(&job->img);
    for (i = 0; i < ARRAY_SIZE(job->files); i++) {
        if (job->files[i] >= 0) {
            close(job->files[i]);
        }
    }
    for (i = 0; i < job->view.nr_ranges; i++) {
        memory_region_unref(job->view.ranges[i].ram);
    }
    g_free(job->view.ranges);
    error_free(job->err);
    g_free(job);
}

/* Forks the enclave VM; 0 or a negative wire errno. */
static int ne_launch(NELauncher *l, NESlot *slot, NEStartJob *job,
                     NEEnclaveVM *vm)
{
    g_autoptr(GArray) fds = g_array_new(false, false, sizeof(int));
    g_auto(GStrv) argv = NULL;
    QIOChannelSocket *sioc;
    Error *err = NULL;
    int link[2], con[2], qmp[2], renew[2] = { -1, -1 };
    bool attached;

    /* the hello waits in the socket until the child's monitor reads it */
    if (qemu_socketpair(AF_UNIX, SOCK_STREAM, 0, qmp) < 0) {
        return -NE_ERRNO_ENOMEM;
    }
    vm->qmp_fd = qmp[0];
    if (qemu_write_full(qmp[0], ne_qmp_hello, strlen(ne_qmp_hello)) !=
        strlen(ne_qmp_hello)) {
        close(qmp[1]);
        return -NE_ERRNO_ENOMEM;
    }
    g_unix_set_fd_nonblocking(qmp[0], true, NULL);
    if (qemu_socketpair(AF_UNIX, SOCK_STREAM, 0, link) < 0) {
        close(qmp[1]);
        return -NE_ERRNO_ENOMEM;
    }
    if (!g_unix_open_pipe(con, FD_CLOEXEC, NULL)) {
        close(link[0]);
        close(link[1]);
        close(qmp[1]);
        return -NE_ERRNO_ENOMEM;
    }
    vm->console_fd = con[0];
    g_unix_set_fd_nonblocking(con[0], true, NULL);

    sioc = qio_channel_socket_new_fd(link[0], &err);
    if (!sioc) {
        warn_report_err(err);
        close(link[0]);
        close(link[1]);
        close(con[1]);
        close(qmp[1]);
        return -NE_ERRNO_ENOMEM;
    }
    attached = vsock_relay_router_attach(l->router, QIO_CHANNEL(sioc),
                                         slot->cid);
    object_unref(OBJECT(sioc));
    if (!attached) {
        /* an enclave QEMU started by hand (listen=) holds this CID */
        close(link[1]);
        close(con[1]);
        close(qmp[1]);
        return -NE_ERRNO_EADDRINUSE;
    }

    /* the NSM's fresh leaves: one record per message, never half of one */
    if (l->renew_s && ne_attest_can_sign(l->attest) &&
        qemu_socketpair(AF_UNIX, SOCK_SEQPACKET, 0, renew) < 0) {
        close(link[1]);
        close(con[1]);
        close(qmp[1]);
        vsock_relay_router_drop_cid(l->router, slot->cid);
        return -NE_ERRNO_ENOMEM;
    }

    argv = ne_child_argv(l, slot, job->img.cmdline, job->files[NE_FILE_MEM],
                         job->files[NE_FILE_KERNEL],
                         job->files[NE_FILE_INITRD], job->files[NE_FILE_NSM],
                         renew[1], link[1], con[1], qmp[1], fds);
    vm->pid = ne_spawn(argv, fds, con[1], l->exe_fd, &err);
    close(link[1]);
    close(con[1]);
    close(qmp[1]);
    if (renew[1] >= 0) {
        close(renew[1]);
    }
    if (vm->pid < 0) {
        warn_report_err(err);
        vsock_relay_router_drop_cid(l->router, slot->cid);
        if (renew[0] >= 0) {
            close(renew[0]);
        }
        return -NE_ERRNO_ENOMEM;
    }
    if (renew[0] >= 0) {
        /* one way only: nothing the child writes can pile up here */
        shutdown(renew[0], SHUT_RD);
        /* (owns renew[0] from here; freed with @vm) */
        vm->renewal = ne_attest_renewal_new(l->attest, job->enclave_id,
                                            renew[0], l->renew_s, slot->uid);
    }
    vm->pidfd = syscall(SYS_pidfd_open, vm->pid, 0);
    if (vm->pidfd < 0) {
        int status;

        /* a child that never ran the enclave: kill it and wait the instant */
        warn_report("ne-pci: pidfd_open: %s", strerror(errno));
        kill(vm->pid, SIGKILL);
        while (waitpid(vm->pid, &status, 0) < 0 && errno == EINTR) {
            continue;
        }
        vm->reaped = true;
        vsock_relay_router_drop_cid(l->router, slot->cid);
        return -NE_ERRNO_ENOMEM;
    }
    return 0;
}

/* The slot's enclave VM, from a checked image; 0 or a negative errno. */
static int ne_start_vm(NELauncher *l, NESlot *slot, NEStartJob *job)
{
    NEEnclaveVM *vm = g_new0(NEEnclaveVM, 1);
    int rc;

    vm->uid = slot->uid;
    vm->cid = slot->cid;
    vm->pidfd = vm->console_fd = vm->qmp_fd = vm->log_fd = -1;
    rc = ne_launch(l, slot, job, vm);
    if (rc < 0) {
        ne_vm_free(vm);
        return rc;
    }
    /*
     * Only now: a start that fails leaves the last log of its CID alone.
     * (Nothing reads the console before the handlers below.)
     */
    vm->log_fd = ne_open_log(l, slot->cid);
    trace_ne_launcher_spawn(slot->uid, slot->cid, vm->pid, slot->mem_size,
                            slot->vcpus->len, job->img.eif_size);
    /* the image is read: the parent's copy of the donated pages goes */
    ne_punch_parent(slot);

    vm->l = l;
    vm->attached = true;
    QLIST_INSERT_HEAD(&l->vms, vm, next);
    if (!l->console) {
        l->console = ne_console_new(l->router);
    }
    vm->console = ne_console_source_new(l->console, slot->cid,
                                        slot->flags & NE_START_FLAG_DEBUG);
    qemu_set_fd_handler(vm->console_fd, ne_vm_console_readable, NULL, vm);
    qemu_set_fd_handler(vm->qmp_fd, ne_vm_qmp_readable, NULL, vm);
    qemu_set_fd_handler(vm->pidfd, ne_vm_exited, NULL, vm);
    slot->launcher_data = vm;
    return 0;
}

/* The worker is done: start the VM and answer the command. */
static void ne_start_job_done(void *opaque)
{
    NEStartJob *job = opaque;
    NELauncher *l = job->l;
    NESlot *slot = job->slot;
    int rc = job->rc;

    qemu_thread_join(&job->thread);
    QLIST_REMOVE(job, next);
    if (qatomic_read(&job->cancelled)) {
        l->nr_cancelled--;
    }
    if (slot) {
        slot->launcher_data = NULL;
        if (rc == -NE_ERRNO_ENOEXEC) {
            trace_ne_launcher_bad_image(slot->uid, error_get_pretty(job->err));
            qemu_log_mask(LOG_GUEST_ERROR, "ne-pci: slot 0x%" PRIx64 ": not "
                          "a bootable EIF: %s\n", slot->uid,
                          error_get_pretty(job->err));
        } else if (rc < 0) {
            warn_report("ne-pci: slot 0x%" PRIx64 ": %s", slot->uid,
                        error_get_pretty(job->err));
        } else {
            rc = ne_start_vm(l, slot, job);
        }
    }
    ne_start_job_free(job);
    if (slot) {
        /* posts the reply, which may re-enter: @slot is not touched after */
        ne_hv_start_done(slot, rc);
    }
}

static int ne_launcher_start(NESlot *slot, void *opaque)
{
    NELauncher *l = opaque;
    NEStartJob *job;
    uint32_t i;
    int rc = ne_check_setup(l, slot);

    if (rc < 0) {
        return rc;
    }
    if (l->nr_cancelled >= NE_CANCELLED_STARTS_MAX) {
        trace_ne_launcher_start_refused(slot->uid, l->nr_cancelled);
        qemu_log_mask(LOG_GUEST_ERROR, "ne-pci: slot 0x%" PRIx64 ": START "
                      "refused (EAGAIN): %u abandoned starts are still "
                      "winding down\n", slot->uid, l->nr_cancelled);
        return -NE_ERRNO_EAGAIN;
    }
    job = g_new0(NEStartJob, 1);
    job->l = l;
    job->slot = slot;
    job->mem_size = slot->mem_size;
    job->view.uid = slot->uid;
    job->debug = slot->flags & NE_START_FLAG_DEBUG;
    job->view.cid = slot->cid;
    job->view.nr_ranges = slot->nr_ranges;
    job->view.ranges = g_memdup2(slot->ranges,
                                 slot->nr_ranges * sizeof(NEMemRange));
    for (i = 0; i < slot->nr_ranges; i++) {
        memory_region_ref(job->view.ranges[i].ram);
        job->view.ranges[i].carve = NULL;
    }
    job->view.mem_size = slot->mem_size;
    job->img.kernel_fd = job->img.initrd_fd = -1;
    for (i = 0; i < ARRAY_SIZE(job->files); i++) {
        job->files[i] = -1;
    }
    job->bh = qemu_bh_new(ne_start_job_done, job);
    QLIST_INSERT_HEAD(&l->jobs, job, next);
    slot->launcher_data = job;
    qemu_thread_create(&job->thread, "ne-enclave-start", ne_start_worker, job,
                       QEMU_THREAD_JOINABLE);
    return NE_HV_START_PENDING;
}

/*
 * The slot of a start in progress is freed: its worker stops at its next
 * chunk of the image, and its bottom half answers nobody.
 */
static void ne_launcher_cancel(NESlot *slot, void *opaque)
{
    NELauncher *l = opaque;
    NEStartJob *job = slot->launcher_data;

    if (job) {
        job->slot = NULL;
        slot->launcher_data = NULL;
        qatomic_set(&job->cancelled, true);
        l->nr_cancelled++;
        trace_ne_launcher_start_cancelled(job->view.uid, l->nr_cancelled);
    }
}

/* ---- setup ------------------------------------------------------------- */

static const NEHvLauncherOps ne_launcher_ops = {
    .start = ne_launcher_start,
    .stop = ne_launcher_stop,
    .cancel = ne_launcher_cancel,
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

NELauncher *ne_launcher_new(NEHv *hv, const NELauncherConfig *cfg,
                            Error **errp)
{
    NELauncher *l;
    g_autofree char *self = NULL;
    int log_dir_fd = -1, exe_fd = -1;
    NEAttest *attest;
    bool has_pvh;

    if (strcmp(cfg->accel, "tcg") && strcmp(cfg->accel, "kvm")) {
        error_setg(errp, "enclave-accel must be tcg or kvm");
        return NULL;
    }
    if (cfg->logs_max < 1) {
        error_setg(errp, "enclave-logs-max must be 1 or more (the log of "
                   "the enclave starting is always written)");
        return NULL;
    }
    if (cfg->attestation_renew > NE_ATTEST_RENEW_MAX_S) {
        error_setg(errp, "attestation-renew=%u: at most %d seconds (a leaf "
                   "lasts 3 hours); 0 never renews", cfg->attestation_renew,
                   NE_ATTEST_RENEW_MAX_S);
        return NULL;
    }
    if (!cfg->qemu || !*cfg->qemu) {
        /* the running binary, whatever becomes of its path */
        exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
        self = g_file_read_link("/proc/self/exe", NULL);
        if (exe_fd < 0 || !self) {
            error_setg_errno(errp, errno, "cannot open this QEMU's binary");
            if (exe_fd >= 0) {
                close(exe_fd);
            }
            return NULL;
        }
    } else if (access(cfg->qemu, X_OK) < 0) {
        error_setg_errno(errp, errno, "enclave-qemu %s", cfg->qemu);
        return NULL;
    }
    attest = ne_attest_new(cfg->attestation_ca, cfg->parent_role, errp);
    if (!attest) {
        if (exe_fd >= 0) {
            close(exe_fd);
        }
        return NULL;
    }
    if (cfg->log_dir && *cfg->log_dir) {
        /* logs are opened relative to this, never by path again */
        log_dir_fd = open(cfg->log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (log_dir_fd < 0) {
            error_setg_errno(errp, errno, "enclave-log-dir %s", cfg->log_dir);
            if (exe_fd >= 0) {
                close(exe_fd);
            }
            ne_attest_free(attest);
            return NULL;
        }
    }
    l = g_new0(NELauncher, 1);
    l->hv = hv;
    l->router = cfg->router;
    l->qemu = self ? g_steal_pointer(&self) : g_strdup(cfg->qemu);
    l->exe_fd = exe_fd;
    l->accel = g_strdup(cfg->accel);
    l->log_dir_fd = log_dir_fd;
    l->logs_max = cfg->logs_max;
    l->data_dirs = ne_find_data_dirs(&has_pvh);
    if (cfg->direct_boot && has_pvh) {
        l->kernels = ne_kernel_cache_new();
    }
    l->eif_max = cfg->eif_max;
    l->attest = attest;
    l->renew_s = cfg->attestation_renew;
    qemu_mutex_init(&l->lock);
    QLIST_INIT(&l->vms);
    QLIST_INIT(&l->jobs);
    ne_hv_set_launcher(hv, &ne_launcher_ops, l);
    return l;
}

void ne_launcher_free(NELauncher *l)
{
    NEEnclaveVM *vm;
    NEStartJob *job;

    if (!l) {
        return;
    }
    ne_hv_set_launcher(l->hv, NULL, NULL);
    /* starts still reading their image (their slots are gone): stopped */
    QLIST_FOREACH(job, &l->jobs, next) {
        qatomic_set(&job->cancelled, true);
    }
    while ((job = QLIST_FIRST(&l->jobs))) {
        qemu_thread_join(&job->thread);
        QLIST_REMOVE(job, next);
        ne_start_job_free(job);
    }
    /* the device goes away: the children still ending are waited for */
    while ((vm = QLIST_FIRST(&l->vms))) {
        int status;

        ne_vm_kill(vm);
        if (!vm->reaped) {
            while (waitpid(vm->pid, &status, 0) < 0 && errno == EINTR) {
                continue;
            }
            vm->reaped = true;
        }
        ne_vm_free(vm);
    }
    if (l->console) {
        ne_console_free(l->console);
    }
    if (l->log_dir_fd >= 0) {
        close(l->log_dir_fd);
    }
    if (l->exe_fd >= 0) {
        close(l->exe_fd);
    }
    g_strfreev(l->data_dirs);
    ne_kernel_cache_free(l->kernels);
    ne_attest_free(l->attest);
    qemu_mutex_destroy(&l->lock);
    g_free(l->qemu);
    g_free(l->accel);
    g_free(l);
}
