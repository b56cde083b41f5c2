#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""ne-pci driven through QEMU's qtest protocol, with no guest (one test).

    ne_qtest.py QEMU DIR TEST [ARG...]

Starts QEMU (-accel qtest) with an ne-pci that boots enclaves, a vsock
relay, and 512 MiB of RAM in DIR/ram (a shared file, so that the test
writes enclave images straight into the parent's memory), then plays the
parent's driver: it maps BAR 3 through PCI config space, handshakes and
sends commands, completing each by stepping the virtual clock and polling
EVTCNT.  Enclave logs go to DIR/logs, the device's trace (ne_launcher_*)
to DIR/trace.log.  Prints what it saw; exit status 0 when the test passed.

TESTs:
  eif-max         enclave-eif-max=1M: a 1 MiB + 4 KiB image is refused with
                  -ENOEXEC from its section table (nothing spawned, the
                  trace says why); a 64 KiB one starts
  console-flood   an enclave VM (enclave-qemu=flood-enclave) that floods its
                  console as fast as a pipe goes: the device still answers
                  every command within a bound, the console pump works in
                  budgeted slices (trace), the log stops at its cap
  exit-reset      an enclave whose kernel triple-faults at once: the slot
                  stops (SLOT_INFO state 0xffff, event counter up) and its
                  log says that the enclave reset itself
  exit-panic EIF  the sample image with rdinit=/nonexistent: the kernel
                  panics (panic=-1 reboots it), the slot stops, the log
                  shows the panic and says that the enclave reset itself

Benchmark (figures, no verdict; tools/bench runs it):
  bench-start EIF [N]   N ENCLAVE_STARTs of EIF in 128 MiB (default 5),
                  each timed from the doorbell to the reply (the image read,
                  checked and unpacked, the kernel extracted or cached, the
                  enclave VM forked), with direct boot and without
"""
import fcntl
import os
import socket
import struct
import subprocess
import sys
import time
import zlib

MIB = 1 << 20
RAM = 512 * MIB
NE_SLOT = 5                     # PCI device number of ne-pci
BAR3 = 0xe0000000
ENCLAVE_GPA = 64 * MIB          # donated range: [64 MiB, 64 MiB + size)
IMAGE_OFFSET = 8 * MIB

REG_ENABLE, REG_VERSION, REG_COMMAND, REG_EVTCNT = 0x0, 0x2, 0x4, 0xc
REG_SEND, REG_RECV = 0x10, 0x100
CMD_START, CMD_STOP, CMD_ALLOC, CMD_FREE = 1, 3, 4, 5
CMD_ADD_MEM, CMD_ADD_VCPU, CMD_COUNT, CMD_INFO = 6, 7, 8, 10
STATE_STOPPED = 0xffff
ENOEXEC, EAGAIN, EBUSY, EINVAL = 8, 11, 16, 22
# ne-launcher.c's NE_CANCELLED_STARTS_MAX: abandoned starts still winding
# down beyond which a START is refused with EAGAIN
CANCELLED_STARTS_MAX = 4

HERE = os.path.dirname(os.path.abspath(__file__))
LOG_CAP = 16 * MIB



class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class QTest:
    """One QEMU under qtest; commands are answered in its main loop."""

    def __init__(self, qemu, d, devices, trace="ne_launcher_*", smp="2"):
        self.dir = d
        path = os.path.join(d, "qtest.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        args = [qemu, "-M", "q35,memory-backend=ram", "-accel", "qtest",
                "-object", "memory-backend-file,id=ram,size=%d,mem-path=%s,share=on" %
                (RAM, os.path.join(d, "ram")),
                "-m", "%dM" % (RAM // MIB), "-smp", smp, "-nodefaults",
                "-display", "none", "-L", "/usr/share/qemu", "-L", "/usr/share/seabios",
                "-trace", "enable=" + trace, "-D", os.path.join(d, "trace.log"),
                "-qtest", "unix:" + path, "-qtest-log", "/dev/null"] + devices
        self.log = open(os.path.join(d, "qemu.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        listener.settimeout(60)
        try:
            self.sock, _ = listener.accept()
        except socket.timeout:
            raise Failure("QEMU did not connect to the qtest socket: %s" % self.qemu_log())
        finally:
            listener.close()
        self.buf = b""

    def qemu_log(self):
        try:
            with open(os.path.join(self.dir, "qemu.log"), errors="replace") as f:
                return f.read()[-800:]
        except OSError:
            return ""

    def cmd(self, line, timeout=10):
        """Sends one qtest command; returns the words after OK."""
        self.sock.settimeout(timeout)
        self.sock.sendall(line.encode() + b"\n")
        end = time.monotonic() + timeout
        while True:
            while b"\n" not in self.buf:
                left = end - time.monotonic()
                if left <= 0:
                    raise Failure("QEMU did not answer %r within %d s" % (line, timeout))
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError as e:
                    raise Failure("qtest socket at %r: %s; QEMU: %s" %
                                  (line, e, self.qemu_log()))
                if not data:
                    raise Failure("QEMU closed the qtest socket at %r: %s" %
                                  (line, self.qemu_log()))
                self.buf += data
            answer, self.buf = self.buf.split(b"\n", 1)
            words = answer.decode().split()
            if words and words[0] == "OK":
                return words[1:]
            if words and words[0] == "FAIL":
                raise Failure("qtest %r: %s" % (line, answer.decode()))
            # IRQ lines and the like: not ours

    def read(self, size, addr):
        return int(self.cmd("read%s 0x%x" % (size, addr))[0], 16)

    def write(self, size, addr, val):
        self.cmd("write%s 0x%x 0x%x" % (size, addr, val))

    def memwrite(self, addr, data):
        self.cmd("write 0x%x 0x%x 0x%s" % (addr, len(data), data.hex()))

    def memread(self, addr, n):
        return bytes.fromhex(self.cmd("read 0x%x 0x%x" % (addr, n))[0][2:])

    def step(self, ns):
        self.cmd("clock_step %d" % ns)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


class NEPci:
    """The parent's side of the device: BAR 3 and the command protocol."""

    def __init__(self, qt):
        self.qt = qt
        ident = self.cfg_read(0)
        check(ident == 0xe4c11d0f, "no ne-pci at 00:%02x.0 (id %#x)" % (NE_SLOT, ident))
        self.cfg_write(0x10 + 4 * 3, BAR3)
        self.cfg_write(0x04, self.cfg_read(0x04) | 0x6)
        qt.write("b", BAR3 + REG_ENABLE, 0)
        check(qt.read("b", BAR3 + REG_ENABLE) == 0, "ENABLE does not read back 0")
        qt.write("w", BAR3 + REG_VERSION, 1)
        qt.write("b", BAR3 + REG_ENABLE, 1)
        check(qt.read("b", BAR3 + REG_ENABLE) == 1, "ENABLE does not read back 1")

    def cfg_read(self, off):
        self.qt.cmd("outl 0xcf8 0x%x" % (0x80000000 | NE_SLOT << 11 | off))
        return int(self.qt.cmd("inl 0xcfc")[0], 16)

    def cfg_write(self, off, val):
        self.qt.cmd("outl 0xcf8 0x%x" % (0x80000000 | NE_SLOT << 11 | off))
        self.qt.cmd("outl 0xcfc 0x%x" % val)

    def evtcnt(self):
        return self.qt.read("l", BAR3 + REG_EVTCNT)

    def events(self):
        return self.evtcnt() >> 16

    def command(self, ctype, payload=b"", timeout=10):
        """One command; returns the reply as a dict."""
        qt = self.qt
        qt.memwrite(BAR3 + REG_SEND, payload.ljust(240, b"\0"))
        before = self.evtcnt() & 0xffff
        qt.write("l", BAR3 + REG_COMMAND, ctype)
        end = time.monotonic() + timeout
        while self.evtcnt() & 0xffff == before:
            check(time.monotonic() < end, "command %d: no reply within %d s" % (ctype, timeout))
            qt.step(100000)
        rc, uid, cid, _count, _regions, mem, vcpus, _flags, state = struct.unpack(
            "<i4xQQQQQQQH6x", qt.memread(BAR3 + REG_RECV, 72))
        return dict(rc=rc, uid=uid, cid=cid, count=_count, mem=mem, vcpus=vcpus, state=state)

    def ok(self, ctype, payload=b"", what="", timeout=10):
        r = self.command(ctype, payload, timeout)
        check(r["rc"] == 0, "%s: rc %d" % (what or "command %d" % ctype, r["rc"]))
        return r

    def slot(self, mem, gpa=ENCLAVE_GPA, cpu=1):
        """SLOT_ALLOC, the memory at gpa, the CPU: the slot's uid."""
        uid = self.ok(CMD_ALLOC, b"\0", "SLOT_ALLOC")["uid"]
        self.ok(CMD_ADD_MEM, struct.pack("<QQQ", uid, gpa, mem), "SLOT_ADD_MEM")
        self.ok(CMD_ADD_VCPU, struct.pack("<QI4x", uid, cpu), "SLOT_ADD_VCPU")
        return uid

    def enclave(self, mem, timeout=60):
        """A slot (slot()) started: (slot uid, START's reply)."""
        uid = self.slot(mem)
        return uid, self.command(CMD_START, struct.pack("<QQQ", uid, 0, 0), timeout)


# ---- images -----------------------------------------------------------------

def eif(kernel, cmdline, ramdisks):
    """An EIF (version 4) of these sections, with its CRC."""
    secs = [(1, kernel), (2, cmdline)] + [(3, r) for r in ramdisks]
    hdr = bytearray(548)
    hdr[0:4] = b".eif"
    struct.pack_into(">HHQQ2xH", hdr, 4, 4, 0, 1 << 30, 2, len(secs))
    off = 548
    body = b""
    for i, (t, data) in enumerate(secs):
        struct.pack_into(">Q", hdr, 28 + 8 * i, off)
        struct.pack_into(">Q", hdr, 284 + 8 * i, len(data))
        body += struct.pack(">HHQ", t, 0, len(data)) + data
        off += 12 + len(data)
    crc = zlib.crc32(body, zlib.crc32(bytes(hdr[:544])))
    struct.pack_into(">I", hdr, 544, crc)
    return bytes(hdr) + body


def triple_fault_kernel():
    """A bzImage (boot protocol 2.06) whose real-mode setup loads an empty
    IDT and raises int3: the CPU triple-faults at its first instruction."""
    k = bytearray(4096)
    k[0x1f1] = 1                            # setup_sects: 1 + 1 sectors
    k[0x1fe:0x200] = b"\x55\xaa"
    k[0x200:0x202] = b"\xeb\x66"            # jmp 0x268, over the header
    k[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", k, 0x206, 0x0206)
    k[0x211] = 0x01                         # loaded high
    struct.pack_into("<I", k, 0x22c, 0x37ffffff)
    # lidt [0x280] (six zero bytes: limit 0); int3; then hlt forever
    code = b"\x0f\x01\x1e\x80\x02" + b"\xcc" + b"\xf4\xeb\xfd"
    k[0x268:0x268 + len(code)] = code
    return bytes(k)


def idle_kernel():
    """A bzImage (boot protocol 2.06) whose real-mode setup halts for good:
    an enclave that runs until it is stopped and prints nothing."""
    k = bytearray(triple_fault_kernel())
    code = b"\xfa\xf4\xeb\xfd"               # cli; hlt; jmp back to the hlt
    k[0x268:0x268 + 9] = code.ljust(9, b"\x90")
    return bytes(k)


def tiny_eif(ramdisk_size=4096):
    return eif(triple_fault_kernel(), b"console=ttyS0", [b"\0" * ramdisk_size])


def with_cmdline(path, extra):
    """The EIF at path with extra appended to its command line."""
    with open(path, "rb") as f:
        img = f.read()
    nr = struct.unpack_from(">H", img, 26)[0]
    secs = []
    for i in range(nr):
        off = struct.unpack_from(">Q", img, 28 + 8 * i)[0]
        t, _flags, size = struct.unpack_from(">HHQ", img, off)
        data = img[off + 12:off + 12 + size]
        secs.append((t, data + extra if t == 2 else data))
    kernel = [d for t, d in secs if t == 1]
    cmdline = [d for t, d in secs if t == 2]
    ramdisks = [d for t, d in secs if t == 3]
    check(len(kernel) == 1 and len(cmdline) == 1 and ramdisks,
          "%s: not an image of one kernel, one command line and ramdisks" % path)
    return eif(kernel[0], cmdline[0], ramdisks)


def put_image(d, image, gpa=ENCLAVE_GPA):
    """Writes image where the enclave finds it: the parent's RAM file at 8 MiB
    into the range donated at gpa (low RAM: guest-physical = file offset)."""
    fd = os.open(os.path.join(d, "ram"), os.O_WRONLY)
    try:
        os.pwrite(fd, image, gpa + IMAGE_OFFSET)
    finally:
        os.close(fd)


def trace(d):
    try:
        with open(os.path.join(d, "trace.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def enclave_log(d, cid):
    try:
        with open(os.path.join(d, "logs", "enclave-%d.log" % cid), "rb") as f:
            return f.read()
    except OSError:
        return b""


def devices(d, props=""):
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    return ["-device", "vsock-relay-pci,id=r0,guest-cid=3",
            "-device", "ne-pci,addr=%02x.0,relay=/machine/peripheral/r0/virtio-backend,"
            "enclave-log-dir=%s%s" % (NE_SLOT, os.path.join(d, "logs"), props)]


def wait_event(ne, before, seconds):
    """Waits for the event counter to pass before (the enclave ended)."""
    end = time.monotonic() + seconds
    while ne.events() == before:
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


# ---- tests ------------------------------------------------------------------

def test_eif_max(qemu, d):
    qt = QTest(qemu, d, devices(d, ",enclave-eif-max=1M"))
    try:
        ne = NEPci(qt)
        big = tiny_eif(MIB)
        put_image(d, big)
        mark = len(trace(d))
        t0 = time.monotonic()
        uid, r = ne.enclave(64 * MIB)
        seen = trace(d)[mark:]
        check(r["rc"] == -ENOEXEC, "a %d-byte image under enclave-eif-max=1M: START rc %d, "
              "expected %d" % (len(big), r["rc"], -ENOEXEC))
        check("larger than enclave-eif-max" in seen and "ne_launcher_spawn" not in seen,
              "the trace of the refused start: %r" % seen[-600:])
        print("# %d-byte image refused in %.2f s: %s" % (
            len(big), time.monotonic() - t0,
            [line for line in seen.splitlines() if "bad_image" in line][0].split(": ", 1)[-1]))
        ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")

        small = tiny_eif(64 << 10)
        put_image(d, small)
        mark = len(trace(d))
        uid, r = ne.enclave(64 * MIB)
        check(r["rc"] == 0 and "ne_launcher_spawn" in trace(d)[mark:],
              "a %d-byte image under enclave-eif-max=1M: START rc %d, trace %r" %
              (len(small), r["rc"], trace(d)[mark:][-600:]))
        print("# %d-byte image started (CID %d)" % (len(small), r["cid"]))
        ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")
    finally:
        qt.close()


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def test_start_cancel(qemu, d, passes="40"):
    """STARTs abandoned while their image is read (the device disabled and
    enabled again, which frees every slot): each worker stops at its next
    chunk of the image, and while CANCELLED_STARTS_MAX of them are still
    winding down a START is refused with EAGAIN.  Before, a parent looping
    so left a thread and up to an image's worth of memory files per pass,
    each reading its image to the end."""
    qt = QTest(qemu, d, devices(d))
    try:
        ne = NEPci(qt)
        put_image(d, tiny_eif(256 * MIB))
        pid = qt.proc.pid
        base = threads(pid)
        most, refused, t0 = 0, 0, time.monotonic()
        for _ in range(int(passes)):
            uid = ne.slot(320 * MIB)
            qt.memwrite(BAR3 + REG_SEND, struct.pack("<QQQ", uid, 0, 0).ljust(240, b"\0"))
            before = ne.evtcnt() & 0xffff
            qt.write("l", BAR3 + REG_COMMAND, CMD_START)
            qt.step(100000)
            if ne.evtcnt() & 0xffff != before:
                rc = struct.unpack("<i", qt.memread(BAR3 + REG_RECV, 4))[0]
                check(rc == -EAGAIN, "a START answered at once: rc %d, expected %d "
                      "(EAGAIN) or no answer yet" % (rc, -EAGAIN))
                refused += 1
            most = max(most, threads(pid) - base)
            qt.write("b", BAR3 + REG_ENABLE, 0)
            qt.write("b", BAR3 + REG_ENABLE, 1)
        check(most <= CANCELLED_STARTS_MAX + 1,
              "%s passes: %d start workers at once, more than the %d abandoned ones "
              "allowed and one running" % (passes, most, CANCELLED_STARTS_MAX))
        end = time.monotonic() + 60
        while threads(pid) > base and time.monotonic() < end:
            time.sleep(0.1)
        left = threads(pid) - base
        check(left <= 0, "%d start workers still running 60 s after the last pass" % left)
        gone = time.monotonic() - t0
        put_image(d, tiny_eif())
        uid, r = ne.enclave(64 * MIB)
        check(r["rc"] == 0, "a START after the abandoned ones: rc %d" % r["rc"])
        ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")
        print("# %s STARTs of a 256 MiB image abandoned: at most %d workers at once, "
              "%d STARTs refused with EAGAIN, none left %.1f s after the first; "
              "then a START succeeds" % (passes, most, refused, gone))
    finally:
        qt.close()


def test_vcpu_ids(qemu, d):
    """SLOT_ADD_VCPU's vcpu_id is the parent's CPU as Linux numbers it (the
    upstream driver sends its logical CPU number): the index of the CPU in
    the machine's order, the MADT's, not its APIC id.  With three threads
    per core the two differ (APIC ids 0-2, 4-6): CPU 3 is APIC 4."""
    qt = QTest(qemu, d, devices(d), trace="ne_hv_*", smp="6,sockets=1,cores=2,threads=3")
    try:
        ne = NEPci(qt)
        uid = ne.ok(CMD_ALLOC, b"\0", "SLOT_ALLOC")["uid"]
        got = {}
        for cpu in (0, 3, 4, 5, 6, 3):
            got.setdefault(cpu, []).append(ne.command(
                CMD_ADD_VCPU, struct.pack("<QI4x", uid, cpu))["rc"])
        want = {0: [-EINVAL], 3: [0, -EBUSY], 4: [0], 5: [0], 6: [-EINVAL]}
        check(got == want, "SLOT_ADD_VCPU of CPUs 0, 3, 4, 5, 6, 3 on a machine of 6 CPUs, "
              "3 threads a core: rc %r, expected %r (CPU 0 the parent's, 3-5 the second "
              "core, no CPU 6, 3 twice)" % (got, want))
        r = ne.ok(CMD_INFO, struct.pack("<Q", uid), "SLOT_INFO")
        check(r["vcpus"] == 3, "SLOT_INFO: %d vCPUs, expected 3" % r["vcpus"])
        ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")
        print("# CPUs 3-5 (APIC ids 4-6) donated by their index; CPU 0 and a 7th CPU refused")
    finally:
        qt.close()


def rtc_seconds(qt):
    """The RTC's seconds register (CMOS 0, BCD by default)."""
    qt.cmd("outb 0x70 0x0")
    v = int(qt.cmd("inb 0x71")[0], 16)
    return (v >> 4) * 10 + (v & 0xf)


def test_rtc_host_seconds(qemu, d, ticks="3"):
    """The RTC's seconds tick with the host's (patches/rtc-host-seconds.patch):
    read every millisecond, each change of its seconds register comes within
    20 ms of the host clock's whole second, not at the fraction of a second
    QEMU happened to start in (a parent VM keeps its clock on the RTC)."""
    qt = QTest(qemu, d, [], trace="ne_hv_*")
    try:
        fractions = []
        last_before = time.time()
        old = rtc_seconds(qt)
        deadline = time.monotonic() + 20    # (a loaded host spoils some ticks)
        while len(fractions) < int(ticks) and time.monotonic() < deadline:
            time.sleep(0.001)
            before = time.time()
            sec = rtc_seconds(qt)
            after = time.time()
            if sec == old:
                last_before = before
                continue
            if after - last_before < 0.010:
                # the tick between last_before and after, on the host's clock
                fractions.append(((last_before + after) / 2) % 1)
            old, last_before = sec, before
        check(len(fractions) == int(ticks),
              "%d of %s ticks of the RTC placed to within 5 ms in 20 s" % (len(fractions), ticks))
        late = [f for f in fractions if 0.02 < f < 0.98]
        check(not late, "the RTC's seconds changed %s s into the host's seconds "
              "(expected within 0.02 s of their start)" % ", ".join("%.3f" % f for f in fractions))
        print("# %s ticks of the RTC at %s s into the host's seconds" %
              (ticks, ", ".join("%.4f" % f for f in fractions)))
    finally:
        qt.close()


def log_files(d):
    return sorted(n for n in os.listdir(os.path.join(d, "logs")) if n.startswith("enclave-"))


def test_log_files(qemu, d, keep="3"):
    """At most enclave-logs-max logs in enclave-log-dir, however many CIDs
    the parent starts: the oldest go, never one an enclave VM still writes,
    and a CID started again gets a new file.  Before, every CID the parent
    ever started left its log of up to 16 MiB: a parent could fill the
    host's disk."""
    keep = int(keep)
    image = eif(idle_kernel(), b"console=ttyS0", [b"\0" * 4096])
    qt = QTest(qemu, d, devices(d, ",enclave-logs-max=%d" % keep), smp="3")
    logs = os.path.join(d, "logs")

    def start(cid, gpa, cpu):
        put_image(d, image, gpa)
        uid = ne.slot(64 * MIB, gpa, cpu)
        r = ne.command(CMD_START, struct.pack("<QQQ", uid, cid, 0), timeout=60)
        check(r["rc"] == 0 and r["cid"] == cid, "START of CID %d: %s" % (cid, r))
        return uid

    def stop(uid):
        exits = trace(d).count("ne_launcher_exit")
        ne.ok(CMD_STOP, struct.pack("<Q", uid), "ENCLAVE_STOP")
        ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")
        end = time.monotonic() + 30
        while trace(d).count("ne_launcher_exit") == exits:
            check(time.monotonic() < end, "the stopped enclave VM was not reaped in 30 s")
            time.sleep(0.05)

    try:
        ne = NEPci(qt)
        live = start(16, ENCLAVE_GPA, 1)
        live_ino = os.stat(os.path.join(logs, "enclave-16.log")).st_ino
        last = 16 + keep + 3
        for cid in range(17, last + 1):
            stop(start(cid, ENCLAVE_GPA + 64 * MIB, 2))
        want = ["enclave-%d.log" % c for c in [16] + list(range(last - keep + 2, last + 1))]
        check(log_files(d) == sorted(want), "after CIDs 16 (running) and 17-%d (stopped), "
              "with enclave-logs-max=%d: logs %s, expected %s" %
              (last, keep, log_files(d), sorted(want)))
        check(os.stat(os.path.join(logs, "enclave-16.log")).st_ino == live_ino,
              "the running enclave's log was replaced")
        # (held open, the old file keeps its inode number to itself)
        old = os.open(os.path.join(logs, "enclave-%d.log" % last), os.O_RDONLY)
        try:
            stop(start(last, ENCLAVE_GPA + 64 * MIB, 2))
            check(os.fstat(old).st_nlink == 0 and not os.path.samestat(
                os.fstat(old), os.stat(os.path.join(logs, "enclave-%d.log" % last))),
                  "CID %d started again wrote into its old log" % last)
        finally:
            os.close(old)
        check(len(log_files(d)) == keep, "%d logs after CID %d again" % (len(log_files(d)), last))
        stop(live)
        print("# %d CIDs started, enclave-logs-max=%d: %s left (the running one kept)" %
              (last - 15, keep, " ".join(log_files(d))))
    finally:
        qt.close()


VSOCK_HDR = struct.Struct("<QQIIIHHIII")   # struct virtio_vsock_hdr, 44 bytes
SIOCOUTQ = 0x5411


def unread(sock):
    """Bytes @sock sent that its peer has not read yet."""
    return struct.unpack("i", fcntl.ioctl(sock, SIOCOUTQ, b"\0" * 4))[0]


def link_closed(sock, seconds):
    """Whether the relay closed @sock's link within @seconds."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_relay_full(qemu, d):
    """The parent's relay holds at most buffer-cap (64 MiB) for its guest,
    at most source-cap (16 MiB) from each source.  Four enclaves each just
    within their share fill it: the next packet, from a fifth, is queued,
    and the enclave holding the most loses its link (as one over its share
    does).  Before, the fifth enclave's packets were dropped without a
    word: a well-behaved enclave's stream lost data.  No guest driver here:
    nothing drains the buffer."""
    sock = os.path.join(d, "relay.sock")
    qt = QTest(qemu, d, ["-device", "vsock-relay-pci,guest-cid=3,listen=" + sock],
               trace="vsock_relay_rx*")
    peers = {}
    try:
        qt.step(1000)       # (answered once the machine is made: the socket is there)
        payload = b"x" * 65000
        for cid in range(16, 21):
            p = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            p.connect(sock)
            p.sendall(VSOCK_HDR.pack(cid, 0, 0, 0, 0, 0, 0, 0, 0, 0))     # HELLO
            peers[cid] = p

        def frames(cid, n):
            one = VSOCK_HDR.pack(cid, 3, 7000, 6000, len(payload), 1, 5, 0, 256 << 10, 0)
            return (one + payload) * n

        share = (16 << 20) // (VSOCK_HDR.size + len(payload))   # frames within source-cap
        for cid in range(16, 20):
            peers[cid].sendall(frames(cid, share))
        peers[20].sendall(frames(20, 8))
        # until the relay has read every byte the fifth one sent
        end = time.monotonic() + 60
        while unread(peers[20]) and time.monotonic() < end:
            qt.step(1000000)
            time.sleep(0.1)
        check(not unread(peers[20]), "the relay did not read the fifth enclave's frames")
        seen = trace(d)
        dropped = [line for line in seen.splitlines()
                   if "vsock_relay_rx_drop" in line and "packet from 20 " in line]
        full = [line for line in seen.splitlines() if "vsock_relay_rx_full" in line]
        check(not dropped, "a packet of the fifth enclave was dropped: %s" % dropped[:1])
        check(len(full) == 1, "the full buffer: %d vsock_relay_rx_full events (%s)" %
              (len(full), seen[-400:]))
        hog = int(full[0].split("source ")[1].split()[0])
        check(16 <= hog <= 19, "CID %d lost its link, not one of the four" % hog)
        check(link_closed(peers[hog], 10), "CID %d's link is still open" % hog)
        kept = [cid for cid in peers if cid != hog and not link_closed(peers[cid], 0.2)]
        check(len(kept) == 4, "links left open: CIDs %s, expected every one but %d" %
              (kept, hog))
        print("# four enclaves of %d frames of %d bytes each filled the buffer: CID %d lost "
              "its link, the fifth enclave's frames were queued" % (share, len(payload), hog))
    finally:
        for p in peers.values():
            p.close()
        qt.close()


def test_relay_small(qemu, d):
    """A source's share (source-cap, 16 MiB) is counted in what its queued
    packets take in memory, not only in their header and payload: packets
    without a payload take about 64 bytes each (the queue entry and the
    allocator's), not the 44 of their header.  An enclave sends 16 MiB / 50
    of them, which its share holds only if each counts 50 bytes or less:
    it loses its link.  Before, it kept it, and its share took 1.5 times
    its cap.  No guest driver here: nothing drains the buffer."""
    sock = os.path.join(d, "relay.sock")
    qt = QTest(qemu, d, ["-device", "vsock-relay-pci,guest-cid=3,listen=" + sock],
               trace="vsock_relay_rx*")
    try:
        qt.step(1000)
        p = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        p.connect(sock)
        p.sendall(VSOCK_HDR.pack(16, 0, 0, 0, 0, 0, 0, 0, 0, 0))     # HELLO
        n = (16 << 20) // 50
        one = VSOCK_HDR.pack(16, 3, 7000, 6000, 0, 1, 5, 0, 256 << 10, 0)
        p.settimeout(60)
        try:
            p.sendall(one * n)
        except (BrokenPipeError, ConnectionResetError):
            pass
        end = time.monotonic() + 10
        closed = False
        while not closed and time.monotonic() < end:
            qt.step(1000000)
            closed = link_closed(p, 0.2)
        check(closed, "the link is still open after %d packets without payload "
              "(%d bytes of headers, within source-cap only if each counts 50 bytes or less)"
              % (n, n * VSOCK_HDR.size))
        print("# %d packets without payload: the sender lost its link" % n)
    finally:
        qt.close()


def test_console_flood(qemu, d):
    flood = os.path.join(HERE, "flood-enclave")
    qt = QTest(qemu, d, devices(d, ",enclave-qemu=" + flood))
    try:
        ne = NEPci(qt)
        put_image(d, tiny_eif())
        uid, r = ne.enclave(64 * MIB)
        check(r["rc"] == 0, "START of the flooding enclave: rc %d" % r["rc"])
        cid = r["cid"]
        # The device must keep answering while the console pipe is full.
        worst, n, end = 0.0, 0, time.monotonic() + 8
        while time.monotonic() < end:
            t0 = time.monotonic()
            c = ne.command(CMD_COUNT, b"\0", timeout=5)
            worst = max(worst, time.monotonic() - t0)
            n += 1
            check(c["rc"] == 0 and c["count"] == 1, "SLOT_COUNT during the flood: %s" % c)
        logged = len(enclave_log(d, cid))
        slices = trace(d).count("ne_launcher_console_budget")
        print("# %d commands answered during the flood, the slowest in %.3f s; %d console "
              "slices of at most the budget; the log has %d bytes" % (n, worst, slices, logged))
        check(worst < 2.0, "a command took %.2f s during the flood" % worst)
        check(slices > 0, "the console pump never stopped at its budget")
        check(logged <= LOG_CAP + 4096, "the log grew to %d bytes (cap %d)" % (logged, LOG_CAP))
        ne.ok(CMD_STOP, struct.pack("<Q", uid), "ENCLAVE_STOP")
        ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")
    finally:
        qt.close()


def ended(qemu, d, image, mem, seconds, needles):
    """Starts image; the enclave must end on its own within seconds: the
    slot stops, an event is raised, and its log holds every needle."""
    qt = QTest(qemu, d, devices(d))
    try:
        ne = NEPci(qt)
        put_image(d, image)
        before = ne.events()
        t0 = time.monotonic()
        uid, r = ne.enclave(mem, timeout=120)
        check(r["rc"] == 0, "START: rc %d (%s)" % (r["rc"], trace(d)[-400:]))
        cid = r["cid"]
        gone = wait_event(ne, before, seconds)
        info = ne.command(CMD_INFO, struct.pack("<Q", uid))
        log = enclave_log(d, cid).decode(errors="replace")
        tail = "\n".join(log.splitlines()[-6:])
        check(gone, "no event within %d s; SLOT_INFO state %#x; the log ends:\n%s" %
              (seconds, info["state"], tail))
        check(info["rc"] == 0 and info["state"] == STATE_STOPPED,
              "after the event: SLOT_INFO rc %d state %#x" % (info["rc"], info["state"]))
        missing = [n for n in needles if n not in log]
        check(not missing, "the log of CID %d lacks %s; it ends:\n%s" % (cid, missing, tail))
        print("# CID %d stopped %.1f s after START (state %#x, event raised); its log ends:" %
              (cid, time.monotonic() - t0, info["state"]))
        for line in log.strip().splitlines()[-3:]:
            print("#   " + line)
        ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")
    finally:
        qt.close()


def test_exit_reset(qemu, d):
    ended(qemu, d, tiny_eif(), 64 * MIB, 60, ["ended: it reset itself"])


def test_exit_panic(qemu, d, path):
    ended(qemu, d, with_cmdline(path, b" rdinit=/nonexistent"), 128 * MIB, 300,
          ["Kernel panic - not syncing", "ended: it reset itself"])


def bench_start(qemu, d, path, runs="5"):
    with open(path, "rb") as f:
        image = f.read()
    print("ENCLAVE_START of %s (%.1f MB), 128 MiB, 1 vCPU: seconds from the doorbell to the "
          "reply" % (os.path.basename(path), len(image) / 1e6))
    for name, props in (("direct boot", ""), ("bzImage boot", ",enclave-direct-boot=off")):
        sub = os.path.join(d, name.split()[0])
        os.makedirs(sub)
        qt = QTest(qemu, sub, devices(sub, props))
        try:
            ne = NEPci(qt)
            times = []
            for _ in range(int(runs)):
                put_image(sub, image)      # (each start punches it out)
                uid = ne.slot(128 * MIB)
                t0 = time.monotonic()
                r = ne.command(CMD_START, struct.pack("<QQQ", uid, 0, 0), timeout=120)
                times.append(time.monotonic() - t0)
                check(r["rc"] == 0, "START: rc %d" % r["rc"])
                ne.ok(CMD_FREE, struct.pack("<Q", uid), "SLOT_FREE")
        finally:
            qt.close()
        rest = sorted(times[1:]) or times
        print("  %-13s first %.3f s, then median %.3f s (min %.3f, max %.3f) over %d" %
              (name, times[0], rest[len(rest) // 2], min(rest), max(rest), len(rest)))


TESTS = {
    "eif-max": test_eif_max,
    "console-flood": test_console_flood,
    "start-cancel": test_start_cancel,
    "vcpu-ids": test_vcpu_ids,
    "rtc-host-seconds": test_rtc_host_seconds,
    "log-files": test_log_files,
    "relay-full": test_relay_full,
    "relay-small": test_relay_small,
    "exit-reset": test_exit_reset,
    "exit-panic": test_exit_panic,
    "bench-start": bench_start,
}


def main(argv):
    if len(argv) < 4 or argv[3] not in TESTS:
        print("usage: ne_qtest.py QEMU DIR %s [ARG...]" % "|".join(TESTS), file=sys.stderr)
        return 2
    qemu, d, name = argv[1:4]
    try:
        TESTS[name](qemu, d, *argv[4:])
    except Failure as e:
        print("# %s: %s" % (name, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
