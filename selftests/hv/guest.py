#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The parent guest's half of the hypervisor tests (selftests/hv/run).

    guest.py EIF DIR [logs|zero|junk|exe]...    (default: all four)

DIR is shared read-write with the host; the device writes its enclave logs
to DIR/logs (--ne-pci enclave-log-dir=DIR/logs).  Prints TAP lines; talks
to the host half through files in DIR (see run):

  1. a symlink planted as an enclave log: the file it points to stays as it
     was, and the start succeeds;
  2. a FIFO planted as an enclave log: the start returns (QEMU does not
     block on it) and the FIFO is left alone;
  3. a KVM-style launcher that leaves its donated memory as it comes gets
     its heartbeat (the time is printed);
  4. a KVM-style launcher that fills its donated memory with a pattern
     before writing the image at 8 MiB gets its heartbeat; the parent reads
     only all-ones through the carved-out memory (not its image, not the
     pattern); the host then writes a marker into the enclave's memory and
     looks for it in the parent QEMU, and the parent reads its donated
     memory again: no marker; after the enclave is gone, the memory it gets
     back holds zeros;
  5. (exe) the host deletes the parent's QEMU binary and puts an impostor
     at its path: an enclave started after that gets its heartbeat (the
     host checks that it runs the parent's own binary).
"""
import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import socket
import stat
import struct
import subprocess
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("NE_BUILD", os.path.join(TOP, "build"))
NE_SAMPLE = os.path.join(BUILD, "tools", "ne_sample")
POOL = "/sys/module/ne_kvm/parameters/ne_cpus"

MIB = 1 << 20
MEM = 128 * MIB
IMAGE_GPA = 8 * MIB
HEARTBEAT_PORT = 9000
HEARTBEAT = 0xB7
HEARTBEAT_TIMEOUT = 120         # seconds; the sample boots in ~10-20 s under TCG
HOST_WAIT = 120
PATTERN = b"\xde\xad\xbe\xef\x5a\xa5\x0f\xf0"

KVMIO = 0xAE


def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


KVM_CREATE_VM = _ioc(0, 0x01, 0)
KVM_CREATE_VCPU = _ioc(0, 0x41, 0)
KVM_SET_USER_MEMORY_REGION = _ioc(1, 0x46, 32)
NE_ENCLAVE_START = _ioc(3, 0x24, 16)
MAP_HUGETLB = 0x40000
MAP_HUGE_2MB = 21 << 26

results = []


def tap(ok, what):
    results.append(ok)
    print("%s %d - %s" % ("ok" if ok else "not ok", len(results), what), flush=True)


def sample(cid, timeout):
    """ne_sample: start an enclave and end it at once (no --wait)."""
    return subprocess.run([NE_SAMPLE, "--image", EIF, "--mem", "128", "--vcpus", "2",
                           "--cid", str(cid)], capture_output=True, text=True,
                          timeout=timeout)


def test_symlink_log(logs):
    victim = os.path.join(DIR, "victim")
    content = b"the host's file, which no enclave log may touch\n"
    with open(victim, "wb") as f:
        f.write(content)
    link = os.path.join(logs, "enclave-20.log")
    os.symlink(victim, link)
    r = sample(20, 120)
    time.sleep(2)                       # whatever the console writes, it wrote
    with open(victim, "rb") as f:
        now = f.read()
    tap(r.returncode == 0 and now == content and os.path.islink(link),
        "symlink planted as enclave-20.log: start exit %d (%s), the file it points to "
        "%s, the link %s" % (r.returncode, r.stderr.strip()[-120:],
                             "unchanged" if now == content else
                             "CHANGED to %d bytes: %r" % (len(now), now[:60]),
                             "left alone" if os.path.islink(link) else "replaced"))


def test_fifo_log(logs):
    fifo = os.path.join(logs, "enclave-21.log")
    planted = "by the guest"
    try:
        os.mkfifo(fifo)
    except OSError as e:
        # QEMU 7.2's 9p server refuses to make special files (ENXIO): then
        # the host half planted it before the boot, as another way in would
        if e.errno not in (errno.ENXIO, errno.EEXIST):
            raise
        planted = "by the host (9p makes no FIFO)"
    if not stat.S_ISFIFO(os.lstat(fifo).st_mode):
        tap(False, "no FIFO at %s" % fifo)
        return
    t0 = time.monotonic()
    try:
        r = sample(21, 90)
        rc, err = r.returncode, r.stderr.strip()[-120:]
    except subprocess.TimeoutExpired:
        rc, err = None, "no answer in 90 s"
    still = stat.S_ISFIFO(os.lstat(fifo).st_mode)
    tap(rc == 0 and still,
        "FIFO planted %s as enclave-21.log: the start returned in %.1f s with exit %s "
        "(%s); the FIFO %s" % (planted, time.monotonic() - t0, rc, err,
                        "left alone" if still else "replaced"))


class Launcher:
    """A KVM-style launcher: one VM fd, hugepage memory, two vCPUs."""

    def __init__(self, cid, fill):
        sysfd = os.open("/dev/nitro_enclaves", os.O_RDWR | os.O_CLOEXEC)
        try:
            self.vm = fcntl.ioctl(sysfd, KVM_CREATE_VM, 0)
        finally:
            os.close(sysfd)
        self.mem = mmap.mmap(-1, MEM, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS |
                             MAP_HUGETLB | MAP_HUGE_2MB)
        if fill:
            chunk = PATTERN * (MIB // len(PATTERN))
            for off in range(0, MEM, MIB):
                self.mem[off:off + MIB] = chunk
        with open(EIF, "rb") as f:
            image = f.read()
        self.image_head = image[:64]
        self.mem[IMAGE_GPA:IMAGE_GPA + len(image)] = image
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self.mem))
        region = struct.pack("IIQQQ", 0, 0, 0, MEM, addr)
        fcntl.ioctl(self.vm, KVM_SET_USER_MEMORY_REGION, region)
        self.vcpus = [fcntl.ioctl(self.vm, KVM_CREATE_VCPU, i) for i in range(2)]
        self.cid = cid

    def start(self):
        buf = bytearray(struct.pack("QQ", 0, self.cid))
        fcntl.ioctl(self.vm, NE_ENCLAVE_START, buf)
        self.cid = struct.unpack("QQ", buf)[1]

    def read(self, off, n):
        return bytes(self.mem[off:off + n])

    def close(self):
        for fd in self.vcpus:
            os.close(fd)
        os.close(self.vm)


def wait_heartbeat(listener, timeout):
    listener.settimeout(timeout)
    conn, peer = listener.accept()
    with conn:
        conn.settimeout(10)
        b = conn.recv(1)
        conn.sendall(bytes([HEARTBEAT]))
    return b, peer


def publish(name, text):
    """Writes DIR/name for the host half in one step (written under another
    name, then renamed): the host reads it as soon as it exists, never a
    file created and not yet written."""
    tmp = os.path.join(DIR, "." + name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(DIR, name))


def wait_file(path, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
        time.sleep(0.2)
    return None


def console_tail(cid):
    """What the device logged of the enclave's console: its size and last
    line (a failed boot says how far it got, or that it printed nothing)."""
    path = os.path.join(DIR, "logs", "enclave-%d.log" % cid)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "no console log (%s)" % e.strerror
    lines = data.decode(errors="replace").strip().splitlines()
    return "console log %d bytes, last line %r" % (len(data), lines[-1][-160:] if lines else "")


def launch(cid, fill, what=None):
    """Starts a KVM-style enclave and waits for its heartbeat (one TAP line)."""
    what = what or ("donated memory filled with a pattern" if fill else
                    "donated memory as the hugepages come (zeros)")
    listener = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    listener.bind((socket.VMADDR_CID_ANY, HEARTBEAT_PORT))
    listener.listen(1)
    la = Launcher(cid, fill=fill)
    t0 = time.monotonic()
    la.start()
    t_start = time.monotonic() - t0
    try:
        b, peer = wait_heartbeat(listener, HEARTBEAT_TIMEOUT)
        beat = time.monotonic() - t0
        tap(b == bytes([HEARTBEAT]) and peer[0] == la.cid,
            "%s, image at 8 MiB: heartbeat %r from CID %d %.1f s after NE_ENCLAVE_START "
            "(the ioctl itself %.2f s)" % (what, b, peer[0], beat, t_start))
    except socket.timeout:
        tap(False, "%s, image at 8 MiB: no heartbeat within %d s; %s" %
            (what, HEARTBEAT_TIMEOUT, console_tail(la.cid)))
    listener.close()
    return la


def test_zero_memory():
    la = launch(23, fill=False)
    la.close()


def test_junk_memory_and_isolation():
    la = launch(22, fill=True)

    # Through the carve-out: what a real parent gets, never the image or the pattern.
    seen = [la.read(IMAGE_GPA, 64), la.read(0, 64), la.read(MEM - 64, 64)]
    ones = all(s == b"\xff" * 64 for s in seen)
    tap(ones, "the parent reads its donated memory after the start: all ones "
        "(image at 8 MiB %s, pattern %s): %s" %
        ("hidden" if seen[0] != la.image_head else "VISIBLE",
         "hidden" if PATTERN not in b"".join(seen) else "VISIBLE",
         [s[:8].hex() for s in seen]))

    # The host writes a marker into the enclave's memory and says where.
    publish("ready", "%d %d\n" % (la.cid, os.getpid()))
    answer = wait_file(os.path.join(DIR, "marker"), HOST_WAIT)
    if answer is None:
        tap(False, "the host half did not write the marker within %d s" % HOST_WAIT)
    else:
        off, length, digest = answer.split()
        got = la.read(int(off), int(length))
        theirs = hashlib.sha256(got).hexdigest() == digest
        tap(not theirs, "the parent reads its donated memory after the enclave's memory "
            "was written at %#x: %s (%s)" %
            (int(off), "THE ENCLAVE'S BYTES" if theirs else "not the enclave's bytes",
             got[:8].hex()))

    la.close()
    # The slot is freed with the VM fd; the memory comes back empty.
    offsets = (0, IMAGE_GPA, MEM // 2, MEM - 64)
    end = time.monotonic() + 10
    while True:
        back = [la.read(o, 64) for o in offsets]
        if b"\xff" * 64 not in back or time.monotonic() > end:
            break
        time.sleep(0.2)
    tap(all(s == b"\0" * 64 for s in back),
        "after the enclave is gone its memory comes back as zeros: %s" %
        [s[:8].hex() for s in back])
    publish("done", "done\n")


def test_exe_replaced():
    publish("exe-swap", "swap\n")
    if wait_file(os.path.join(DIR, "exe-swapped"), HOST_WAIT) is None:
        tap(False, "the host did not replace the parent's QEMU binary within %d s" % HOST_WAIT)
        return
    la = launch(24, fill=False, what="after the parent's QEMU binary was deleted and an "
                "impostor put at its path")
    publish("exe-ready", "%d\n" % la.cid)
    wait_file(os.path.join(DIR, "exe-checked"), HOST_WAIT)
    la.close()


GROUPS = {                      # name: (TAP lines, tests)
    "logs": (2, lambda: (test_symlink_log(os.path.join(DIR, "logs")),
                         test_fifo_log(os.path.join(DIR, "logs")))),
    "zero": (1, lambda: test_zero_memory()),
    "junk": (4, lambda: test_junk_memory_and_isolation()),
    "exe": (1, lambda: test_exe_replaced()),
}


def main(argv):
    global EIF, DIR
    groups = argv[3:] or ["logs", "zero", "junk", "exe"]
    if len(argv) < 3 or any(g not in GROUPS for g in groups):
        print("usage: guest.py EIF DIR [%s]..." % "|".join(GROUPS), file=sys.stderr)
        return 2
    EIF, DIR = argv[1], argv[2]
    with open(POOL, "w") as f:
        f.write("2-3")
    planned = sum(GROUPS[g][0] for g in groups)
    print("TAP version 13")
    print("1..%d" % planned, flush=True)
    for g in groups:
        GROUPS[g][1]()
    return 0 if all(results) and len(results) == planned else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
