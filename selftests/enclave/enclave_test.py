#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Enclaves that really boot, driven from the parent VM (TAP).

Run inside the parent VM by selftests/enclave/run:

    tools/ne-vm --cores 3 --timeout 1500 --ne-pci attestation-renew=2 -- \
        selftests/enclave/run EIF

EIF is the sample enclave image (tools/enclave/build): its app serves vsock
port 5000 (one hello line naming its CID), 5005 (echo until EOF), 5009
(control: "exit" powers the enclave off, "panic" panics its kernel), 5010
(attestation documents from the NSM, verified here by nectl
verify-attestation), 5011 (runs /nsm-check) and 5012 (runs /nsm-fuzz on a
"SEED COUNT" line).

The CPU pool is set to 2-5 (two cores of two threads: --cores 3), so two
2-CPU enclaves fit at once.  Enclaves take ~10-20 s to boot under TCG, so
the tests share them: a test asks for an enclave by role (enclave("debug"))
and gets the running one, or a fresh one when an earlier failure cleaned up.
After a failing test everything is terminated and the resources are waited
for, so that the next tests start from a clean machine.

Exit status: 0 when every test passed, 1 otherwise, 4 when there is no
/dev/nitro_enclaves (skip).
"""
import calendar
import ctypes
import errno
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
from ne_machine import alive, free_2m, holders, settle, stuck_tasks, vm_fds  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("NE_BUILD", os.path.join(TOP, "build"))
NECTL = os.path.join(BUILD, "tools", "nectl")
NE_SAMPLE = os.path.join(BUILD, "tools", "ne_sample")
NE_IOCTL_SAMPLE = os.path.join(BUILD, "tools", "ne_ioctl_sample")   # the kernel's own
POOL = "/sys/module/ne_kvm/parameters/ne_cpus"
POOL_CPUS = "2-5"

MEM_MIB = 128                   # what Debian's kernel needs to boot (tools/enclave/README.md)
HEARTBEAT_TIMEOUT = 180         # nitro-cli's minimum, which nectl uses for this image
HELLO_PORT, ECHO_PORT, CONTROL_PORT = 5000, 5005, 5009
ATTEST_PORT, NSM_CHECK_PORT, NSM_FUZZ_PORT = 5010, 5011, 5012
# nsm-fuzz's requests: ~30000/s on the host harness (make -C tools/qemu
# enclave-nsm-test, the device's core included), so a few seconds under TCG
# even 50 times slower; nsm-check's ~150 exchanges take 0.3 s in an enclave.
NSM_FUZZ_COUNT = 10000
# nsm-fuzz writes a line every 100 requests and ends the run itself when a
# request is unanswered for 10 s: a minute of silence is a hang of its own.
NSM_FUZZ_IO_TIMEOUT = 60
RENEW_SECONDS = 2               # ne-pci attestation-renew= of tools/check's stage
CONSOLE_PORT_BASE = 10000
CID_HYPERVISOR = 0              # VMADDR_CID_HYPERVISOR: serves the debug consoles
UNUSED_CID = 99
IO_TIMEOUT = 30                 # every blocking socket operation
TEST_LIMIT = int(os.environ.get("NE_TEST_LIMIT", 300))  # s per test; the longest takes ~40
SERVICE_WAIT = 30               # the app listens a moment after the heartbeat
RELEASE_WAIT = 30               # an enclave that ended is gone from describe within this
ECHO_BYTES = 64 << 20           # each way
TRAFFIC_BEFORE_TERMINATE = 2 << 20
TERMINATE_RATE = 2 << 20        # bytes/s sent while terminating
CHUNK = 64 << 10

LIBC = ctypes.CDLL(None, use_errno=True)

EIF = None
RANDOM = random.Random()        # seeded in main()
RUN_DIR = None                  # NECTL_RUN_DIR: the holders' registry and log
TMP = None
BASE_FREE = None                # free 2 MiB hugepages before the first test


class Failure(Exception):
    """A check that did not hold; the message says what was seen."""


class Overrun(BaseException):
    """A test ran past TEST_LIMIT: something it waits on never returns.  A
    BaseException, so that no test's own `except Exception` swallows it."""


def check(cond, message):
    if not cond:
        raise Failure(message)


# --------------------------------------------------------------------------
# The machine's state: nectl, holders, VM fds, hugepages

def nectl(*args, timeout=120, env=None):
    """Runs nectl; a nectl that does not return in time fails the test."""
    argv = [NECTL] + [str(a) for a in args]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, **env) if env else None)
    except subprocess.TimeoutExpired as e:
        raise Failure("%s did not return within %d s; its output: %s%s" %
                      (" ".join(argv[1:]), timeout, e.stdout or "", e.stderr or ""))


def describe():
    """describe-enclaves as a list (fails the test if it is not JSON)."""
    r = nectl("describe-enclaves")
    try:
        d = json.loads(r.stdout)
    except ValueError:
        raise Failure("describe-enclaves exited %d and printed no JSON: %s" %
                      (r.returncode, (r.stdout + r.stderr)[-400:]))
    check(isinstance(d, list), "describe-enclaves printed %r, not a list" % (d,))
    return d


def described(enclave_id):
    return [e for e in describe() if e.get("EnclaveID") == enclave_id]


def registry_files():
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(RUN_DIR, "*.json")))


def nectl_log():
    try:
        with open(os.path.join(RUN_DIR, "nectl.log")) as f:
            return f.read()
    except OSError:
        return ""


def vm_run_dir():
    """The host directory of this parent VM's run (ne-vm puts ne.run= on the
    kernel command line); the project is shared, so its enclave-CID.log files
    (the enclaves' consoles, written by the emulator) can be read here."""
    try:
        with open("/proc/cmdline") as f:
            for word in f.read().split():
                if word.startswith("ne.run="):
                    return word[len("ne.run="):]
    except OSError:
        pass
    return None


def enclave_log_tail(cid, lines=12):
    d = vm_run_dir()
    if not d or cid is None:
        return ""
    try:
        with open(os.path.join(d, "enclave-%d.log" % cid), errors="replace") as f:
            tail = f.read().splitlines()[-lines:]
    except OSError:
        return ""
    return "enclave-%d.log (host, last %d lines):\n" % (cid, lines) + "\n".join(tail)


# --------------------------------------------------------------------------
# Enclaves

class Enclave:
    """One enclave launched by `nectl run`, from its run JSON."""

    def __init__(self, name, run_json, seconds, debug):
        self.name = name
        self.json = run_json
        self.seconds = seconds          # how long nectl run took
        self.debug = debug
        self.id = run_json.get("EnclaveID")
        self.cid = run_json.get("EnclaveCID")
        self.holder = run_json.get("ProcessID")
        self.cpus = sorted(run_json.get("CPUIDs", []))
        self.pages = run_json.get("MemoryMiB", 0) // 2

    @property
    def slot_uid(self):
        return int(self.id.rsplit("-enc", 1)[1], 16)

    def __repr__(self):
        return "%s (CID %s, %s)" % (self.name, self.cid, self.id)


ROLES = {
    # role: nectl run options; the first two run together (one core each)
    "debug": dict(debug=True),
    "second": dict(cid=17),
    "panic": dict(debug=True),
}
running = {}                    # role -> Enclave
touched = set()                 # CIDs of the enclaves the current test used (for diagnostics)
ended = {}                      # how an enclave ended ("exit", ...) -> Enclave, for later tests


def launch(name, cpus=2, cid=None, debug=False, eif=None):
    """nectl run with the heartbeat; returns the Enclave or fails the test."""
    args = ["run", "--eif-path", eif or EIF, "--memory", MEM_MIB, "--cpu-count", cpus,
            "--enclave-name", name]
    if cid is not None:
        args += ["--enclave-cid", cid]
    if debug:
        args.append("--debug-mode")
    timings = tempfile.NamedTemporaryFile(prefix="nectl-timings.")
    t0 = time.monotonic()
    r = nectl(*args, timeout=HEARTBEAT_TIMEOUT + 60, env={"NECTL_TIMINGS": timings.name})
    seconds = time.monotonic() - t0
    phases = [line.split() for line in open(timings.name)]
    timings.close()
    check(r.returncode == 0, "nectl run of %s exited %d after %.1f s:\n%s%s" %
          (name, r.returncode, seconds, r.stdout, r.stderr))
    try:
        j = json.loads(r.stdout)
    except ValueError:
        raise Failure("nectl run of %s printed no JSON: %r" % (name, r.stdout))
    touched.add(j.get("EnclaveCID"))
    e = Enclave(name, j, seconds, debug)
    e.phases = phases
    return e


def enclave(role):
    """The running enclave of a role, launched if there is none."""
    if role not in running:
        opts = dict(ROLES[role])
        if opts.get("cid") is not None and any(e.cid == opts["cid"] for e in running.values()):
            opts["cid"] += 1
        running[role] = launch("enc-" + role, **opts)
    touched.add(running[role].cid)
    return running[role]


def forget(role):
    running.pop(role, None)


def expected_free():
    return BASE_FREE - sum(e.pages for e in running.values())


def check_released(enc, why):
    """enc ended (why): it leaves describe, its holder, registry entry, VM fd,
    hugepages and CPUs; the enclaves in `running` are untouched.  Returns
    the monotonic time at which describe-enclaves no longer listed it."""
    gone = settle(lambda: not described(enc.id), RELEASE_WAIT, 0.5)
    dropped = time.monotonic()
    check(gone, "%s: %s still listed by describe-enclaves %d s later: %s" %
          (why, enc, RELEASE_WAIT, described(enc.id)))
    check(settle(lambda: not alive(enc.holder), 10),
          "%s: holder %d of %s still running after it left describe" % (why, enc.holder, enc))
    reg = "%x.json" % enc.slot_uid
    check(reg not in registry_files(), "%s: registry entry %s of %s left behind" % (why, reg, enc))
    others = sorted(e.id for e in running.values())
    listed = sorted(e.get("EnclaveID") for e in describe())
    check(listed == others,
          "%s: describe-enclaves lists %s, expected only %s" % (why, listed, others))
    check(settle(lambda: vm_fds() == len(others), 5),
          "%s: %d VM fds open, expected %d (those of %s)" % (why, vm_fds(), len(others), others))
    check(settle(lambda: free_2m() == expected_free(), 5),
          "%s: %d free 2 MiB hugepages, expected %d (%d at the start, %d held by %s)" %
          (why, free_2m(), expected_free(), BASE_FREE, BASE_FREE - expected_free(), others))
    return dropped


def clean_up():
    """After a failure: terminate everything, wait for the resources."""
    running.clear()
    nectl("terminate-enclave", "--all")
    settle(lambda: vm_fds() == 0 and not holders() and free_2m() == BASE_FREE, 30, 0.5)


# --------------------------------------------------------------------------
# vsock

def vsock_connect(cid, port, timeout=IO_TIMEOUT):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((cid, port))
    except BaseException:
        s.close()
        raise
    return s


def service_connect(cid, port):
    """Connects to an enclave service.  Right after the heartbeat the app
    may not listen yet, which is a reset: retried for SERVICE_WAIT s."""
    end = time.monotonic() + SERVICE_WAIT
    while True:
        try:
            return vsock_connect(cid, port)
        except ConnectionResetError:
            if time.monotonic() > end:
                raise Failure("CID %d port %d still resets connections after %d s" %
                              (cid, port, SERVICE_WAIT))
            time.sleep(0.2)
        except OSError as e:
            raise Failure("connect to CID %d port %d: %s" % (cid, port, e))


def read_to_eof(s, limit=1 << 20):
    data = b""
    while len(data) < limit:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def hello(cid):
    """The line the enclave at cid answers on its hello port."""
    with service_connect(cid, HELLO_PORT) as s:
        try:
            return read_to_eof(s).decode(errors="replace")
        except OSError as e:
            raise Failure("reading the hello line from CID %d: %s" % (cid, e))


def control(cid, command):
    """Sends a command line to the app's control port; returns its answer,
    or how the connection failed (as "error: ...")."""
    with service_connect(cid, CONTROL_PORT) as s:
        try:
            s.sendall(command.encode() + b"\n")
        except OSError as e:
            raise Failure("sending control command %r to CID %d: %s" % (command, cid, e))
        # "exit" waits for us to close after its answer: read the line only.
        answer = b""
        try:
            while not answer.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                answer += chunk
        except OSError as e:
            return "error: %s (after %r)" % (e, answer)
        return answer.decode(errors="replace")


class ConsoleReader(threading.Thread):
    """Reads an enclave's debug console (vsock CID 0, port CID + 10000)
    until it closes, in the background."""

    def __init__(self, cid, seconds=120):
        super().__init__(daemon=True)
        self.sock = vsock_connect(CID_HYPERVISOR, CONSOLE_PORT_BASE + cid)
        self.sock.settimeout(IO_TIMEOUT)
        self.seconds = seconds
        self.data = bytearray()
        self.lock = threading.Lock()
        self.end = None                 # "EOF" or the error that ended the stream
        self.end_time = None
        self.arrivals = []              # (monotonic time, bytes received by then)
        self.start()

    def run(self):
        deadline = time.monotonic() + self.seconds
        try:
            while time.monotonic() < deadline:
                chunk = self.sock.recv(4096)
                if not chunk:
                    self.end = "EOF"
                    return
                with self.lock:
                    self.data += chunk
                    self.arrivals.append((time.monotonic(), len(self.data)))
            self.end = "still open after %d s" % self.seconds
        except OSError as e:
            self.end = "%s" % e
        finally:
            self.end_time = time.monotonic()
            self.sock.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def text(self):
        with self.lock:
            return self.data.decode(errors="replace")

    def when(self, needle):
        """When the end of needle's first occurrence arrived (None: never)."""
        with self.lock:
            at = self.data.find(needle.encode())
            if at < 0:
                return None
            return next(t for t, n in self.arrivals if n >= at + len(needle))

    def wait_for(self, needle, seconds):
        return settle(lambda: needle in self.text() or self.end is not None, seconds, 0.1) \
            and needle in self.text()

    def wait_closed(self, seconds):
        self.join(seconds)
        return not self.is_alive()


def connect_error(cid, port, seconds=5):
    """(errno or None, elapsed) of one connect attempt."""
    t0 = time.monotonic()
    try:
        vsock_connect(cid, port, timeout=seconds).close()
        return None, time.monotonic() - t0
    except socket.timeout:
        return "timeout", time.monotonic() - t0
    except OSError as e:
        return e.errno, time.monotonic() - t0


class Pattern:
    """A stream both ends can check byte for byte: random bytes of a length
    prime to every chunk size, repeated, so a lost, repeated or reordered
    chunk shows up as a mismatch.  The bytes come from the run's seed."""

    LEN = (1 << 20) + 7

    def __init__(self):
        self.bytes = RANDOM.randbytes(self.LEN)
        self.doubled = self.bytes + self.bytes

    def at(self, offset, length):
        start = offset % self.LEN
        return self.doubled[start:start + length]


def kernel_timeouts(sock, seconds):
    """Makes sock blocking, with SO_RCVTIMEO/SO_SNDTIMEO instead of Python's
    poll()-based timeouts.  Linux 6.1's vsock_poll() never reports a socket
    writable, hung up or in error when the peer's RST arrives while echoed
    data is still queued (the state stays ESTABLISHED, the credit stays
    exhausted), so a poll()-based writer waits out its whole timeout; a
    blocking send is woken and fails with EPIPE, as a plain client would.
    (Python's setsockopt() passes a u64 for every AF_VSOCK option, too
    short for a struct timeval: libc's is called.)"""
    sock.settimeout(None)
    tv = ctypes.create_string_buffer(struct.pack("ll", int(seconds), 0))
    for opt in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        if LIBC.setsockopt(sock.fileno(), socket.SOL_SOCKET, opt, tv, struct.calcsize("ll")):
            err = ctypes.get_errno()
            raise OSError(err, "setsockopt(SO_%sTIMEO): %s" %
                          ("RCV" if opt == socket.SO_RCVTIMEO else "SND", os.strerror(err)))


def describe_error(e):
    if isinstance(e, BlockingIOError):
        return "timed out after %d s" % IO_TIMEOUT
    return "%s: %s" % (type(e).__name__, e)


def stream_echo(sock, pattern, total, out, stop=None, rate=None):
    """Sends total bytes of pattern (None: until stop is set or the
    connection fails), at most rate bytes/s if given, while reading the
    echo and checking it byte for byte.  Fills out as it goes: sent,
    received, mismatch (first differing offset or None), send_end,
    recv_end (how each side ended), send_time and recv_time (monotonic
    times of the ends)."""
    out.update(sent=0, received=0, mismatch=None, send_end=None, recv_end=None,
               send_time=None, recv_time=None)
    kernel_timeouts(sock, IO_TIMEOUT)
    t0 = time.monotonic()

    def writer():
        try:
            while (total is None or out["sent"] < total) and not (stop and stop.is_set()):
                n = CHUNK if total is None else min(CHUNK, total - out["sent"])
                sock.sendall(pattern.at(out["sent"], n))
                out["sent"] += n
                if rate:
                    time.sleep(max(0.0, t0 + out["sent"] / rate - time.monotonic()))
            sock.shutdown(socket.SHUT_WR)
            out["send_end"] = "done"
        except OSError as e:
            out["send_end"] = describe_error(e)
        out["send_time"] = time.monotonic()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        while True:
            data = sock.recv(CHUNK)
            if not data:
                out["recv_end"] = "EOF"
                break
            if out["mismatch"] is None and data != pattern.at(out["received"], len(data)):
                expect = pattern.at(out["received"], len(data))
                first = next(i for i in range(len(data)) if data[i] != expect[i])
                out["mismatch"] = out["received"] + first
            out["received"] += len(data)
    except OSError as e:
        out["recv_end"] = describe_error(e)
    out["recv_time"] = time.monotonic()
    t.join(IO_TIMEOUT + 5)
    if t.is_alive():
        out["send_end"] = "writer still blocked %d s after the reader ended" % (IO_TIMEOUT + 5)
    return out


# --------------------------------------------------------------------------
# The tests, in order.  Each returns a TAP description or raises Failure.

tests = []


def test(fn):
    tests.append(fn)
    return fn


@test
def test_run_waits_for_heartbeat_and_prints_the_enclave():
    """a. nectl run (real heartbeat) returns in time with the right JSON;
    describe-enclaves shows the enclave RUNNING."""
    free_before = free_2m()
    e = enclave("debug")
    j = e.json
    check(e.seconds < HEARTBEAT_TIMEOUT, "nectl run took %.1f s, over the %d s heartbeat timeout" %
          (e.seconds, HEARTBEAT_TIMEOUT))
    check("Heartbeat" not in j, "the run JSON says the heartbeat was skipped: %s" % j)
    check(isinstance(e.cid, int) and e.cid > 3 and e.cid != UNUSED_CID,
          "EnclaveCID %r is not an enclave CID (> 3)" % e.cid)
    check(j.get("NumberOfCPUs") == 2 and len(e.cpus) == 2 and set(e.cpus) <= {2, 3, 4, 5},
          "NumberOfCPUs %r, CPUIDs %r: expected 2 CPUs of the pool %s" %
          (j.get("NumberOfCPUs"), e.cpus, POOL_CPUS))
    check(j.get("MemoryMiB") == MEM_MIB,
          "MemoryMiB %r, expected %d" % (j.get("MemoryMiB"), MEM_MIB))
    check(free_before - free_2m() == MEM_MIB // 2, "%d hugepages taken, expected %d" %
          (free_before - free_2m(), MEM_MIB // 2))
    check(isinstance(e.holder, int) and alive(e.holder), "holder %r is not running" % e.holder)
    d = described(e.id)
    check(len(d) == 1, "describe-enclaves has %d entries for %s: %s" % (len(d), e.id, describe()))
    d = d[0]
    check(d.get("State") == "RUNNING" and d.get("EnclaveCID") == e.cid and
          d.get("Flags") == "DEBUG_MODE" and d.get("NumberOfCPUs") == 2 and
          d.get("MemoryMiB") == MEM_MIB and d.get("ProcessID") == e.holder,
          "describe-enclaves does not match the run JSON or is not RUNNING: %s" % d)
    return "nectl run: heartbeat in %.1f s, CID %d, CPUs %s, %d MiB; describe: RUNNING" % (
        e.seconds, e.cid, e.cpus, MEM_MIB)


LAUNCH_PHASES = ["begin", "image-check", "create-vm", "hugepages", "eif-copy", "donation",
                 "vcpus", "listener", "start", "heartbeat", "reported"]
INIT_MARKS = ["init started", "modules loaded", "sending the heartbeat"]


@test
def test_launch_phases_and_boot_marks():
    """What make bench's breakdown reads: nectl run's NECTL_TIMINGS phases, in
    order, and init's kernel-log marks on the enclave's console, in order;
    and the sample's zstd 6.12 kernel booted directly, through PVH (the
    device takes the ELF out of the bzImage): the bzImage's decompressor
    would have said "Probing EDD" on the console."""
    e = enclave("debug")
    names = [p[0] for p in e.phases]
    check(names == LAUNCH_PHASES, "NECTL_TIMINGS phases %s, expected %s" % (names, LAUNCH_PHASES))
    t = [float(p[1]) for p in e.phases]
    check(t == sorted(t) and t[-1] - t[0] <= e.seconds,
          "NECTL_TIMINGS times are not in order or span more than nectl run's %.1f s: %s" %
          (e.seconds, e.phases))
    with open(os.path.join(vm_run_dir(), "enclave-%d.log" % e.cid), errors="replace") as f:
        console = f.read()
    marks = re.findall(r"\[\s*(\d+\.\d+)\] ne-init: (.*)", console)
    check([m[1].strip() for m in marks[:3]] == INIT_MARKS and
          [float(m[0]) for m in marks[:3]] == sorted(float(m[0]) for m in marks[:3]),
          "the console's init marks are %s, expected %s in order" % (marks, INIT_MARKS))
    check("Probing EDD" not in console,
          "the sample's kernel booted through the bzImage's decompressor, not directly "
          "(PVH): the device did not take its zstd kernel out")
    return "%d launch phases in order; init marks at %s s; booted directly (PVH)" % (
        len(names), ", ".join(m[0] for m in marks[:3]))


@test
def test_hello_names_the_enclave_cid():
    """b. The hello service at the enclave's CID names that CID."""
    e = enclave("debug")
    line = hello(e.cid)
    check(line == "hello from enclave CID %d\n" % e.cid,
          "CID %d port %d answered %r" % (e.cid, HELLO_PORT, line))
    return "hello over vsock from CID %d names CID %d" % (e.cid, e.cid)


def attest(cid, request):
    """Sends one request line to the attest service; returns its whole
    answer (the service closes after it)."""
    with service_connect(cid, ATTEST_PORT) as s:
        try:
            s.sendall(request)
            return read_to_eof(s, limit=64 << 10)
        except OSError as e:
            raise Failure("attest request %r to CID %d: %s" % (request, cid, e))


@test
def test_echo_64mib_both_ways_at_once():
    """c. 64 MiB each way at once through the echo service, checked byte
    for byte; the throughput is printed."""
    e = enclave("debug")
    pattern = Pattern()
    with service_connect(e.cid, ECHO_PORT) as s:
        t0 = time.monotonic()
        out = stream_echo(s, pattern, ECHO_BYTES, {})
        seconds = out["recv_time"] - t0
    check(out["send_end"] == "done", "sending failed after %d bytes: %s" %
          (out["sent"], out["send_end"]))
    check(out["mismatch"] is None, "echo differs from what was sent at byte %s" % out["mismatch"])
    check(out["recv_end"] == "EOF" and out["received"] == ECHO_BYTES,
          "received %d of %d bytes, then %s" % (out["received"], ECHO_BYTES, out["recv_end"]))
    print("# echo: %d MiB each way in %.1f s: %.1f MiB/s each way" %
          (ECHO_BYTES >> 20, seconds, (ECHO_BYTES >> 20) / seconds))
    return "echo: %d MiB both ways at once, byte-exact, EOF after the last byte" % (
        ECHO_BYTES >> 20)


@test
def test_unused_cid_is_refused_at_once():
    """d. A connect to a CID nobody has is reset at once."""
    err, seconds = connect_error(UNUSED_CID, HELLO_PORT)
    check(err == errno.ECONNRESET,
          "connect to unused CID %d: %s after %.2f s, expected ECONNRESET" %
          (UNUSED_CID, "connected" if err is None else errno.errorcode.get(err, err), seconds))
    check(seconds < 2, "the reset took %.2f s (expected well under 1 s, limit 2 s)" % seconds)
    return "connect to unused CID %d: ECONNRESET in %.3f s" % (UNUSED_CID, seconds)


@test
def test_two_enclaves_each_answer_on_their_own_cid():
    """e. A second enclave with --enclave-cid next to the first: each CID
    reaches its own enclave."""
    a = enclave("debug")
    b = enclave("second")
    check(b.cid == ROLES["second"]["cid"] or b.cid == ROLES["second"]["cid"] + 1,
          "asked for CID %d, got %r" % (ROLES["second"]["cid"], b.cid))
    check(not set(a.cpus) & set(b.cpus), "both enclaves got CPUs %s and %s" % (a.cpus, b.cpus))
    listed = {d.get("EnclaveCID"): d.get("State") for d in describe()}
    check(listed == {a.cid: "RUNNING", b.cid: "RUNNING"},
          "describe-enclaves lists %s, expected CIDs %d and %d RUNNING" % (listed, a.cid, b.cid))
    for e in (b, a):
        line = hello(e.cid)
        check(line == "hello from enclave CID %d\n" % e.cid,
              "CID %d answered %r (the other enclave is CID %d)" %
              (e.cid, line, b.cid if e is a else a.cid))
    return "two enclaves (CID %d, CID %d): each hello names its own CID" % (a.cid, b.cid)


def attest_document(e, nonce=None, user_data=None, public_key=False):
    """Asks enclave e's attest service for a document with these fields;
    returns its bytes (fails the test on anything but "ok N" + N bytes)."""
    words = []
    if nonce is not None:
        words.append("nonce=" + nonce.hex())
    if user_data is not None:
        words.append("user-data=" + user_data.hex())
    if public_key:
        words.append("public-key")
    request = (" ".join(words) + "\n").encode()
    out = attest(e.cid, request)
    head, _, doc = out.partition(b"\n")
    check(head.startswith(b"ok ") and head[3:].isdigit() and int(head[3:]) == len(doc),
          "attest %r to %s answered %r (%d bytes in all), expected \"ok N\" and N bytes" %
          (request, e, out[:200], len(out)))
    return doc


def eif_pcrs():
    """PCR0, 1 and 2 of the image as nectl describe-eif measures them."""
    r = nectl("describe-eif", "--eif-path", EIF)
    check(r.returncode == 0, "describe-eif exited %d: %s" % (r.returncode, r.stderr))
    m = json.loads(r.stdout)["Measurements"]
    return {i: m["PCR%d" % i] for i in (0, 1, 2)}


def verify(doc, *args):
    """nectl verify-attestation of doc against the local root; returns
    (exit status, JSON)."""
    with tempfile.NamedTemporaryFile(prefix="ne-doc-") as f:
        f.write(doc)
        f.flush()
        r = nectl("verify-attestation", "--document", f.name, *args)
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        raise Failure("verify-attestation exited %d without JSON: %r %r" %
                      (r.returncode, r.stdout[:500], r.stderr[:500]))


def utc_seconds(text):
    """Seconds since the epoch of verify-attestation's "YYYY-MM-DDTHH:MM:SSZ"."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def pcr_args(pcrs):
    return [a for i, v in sorted(pcrs.items()) for a in ("--pcr", "%d=%s" % (i, v))]


def check_verified(doc, what, *args):
    rc, j = verify(doc, *args)
    check(rc == 0 and j.get("Verified") is True,
          "%s: verify-attestation exited %d, failed step %s: %s" %
          (what, rc, j.get("FailedStep"), j.get("Reason")))
    return j


@test
def test_attest_document_verifies_with_the_image_pcrs():
    """b2. A production enclave's document, asked for with a fresh nonce,
    user data and the app's public key through /dev/nsm, verifies against
    the local root with PCR0-2 as nectl describe-eif measures the image;
    it carries the nonce, the user data and a P-384 public key."""
    e = enclave("second")
    nonce, user_data = os.urandom(32), os.urandom(64)
    t0 = time.monotonic()
    doc = attest_document(e, nonce, user_data, public_key=True)
    took = time.monotonic() - t0
    pcrs = eif_pcrs()
    j = check_verified(doc, "the document of %s" % e, "--nonce", nonce.hex(),
                       "--user-data", user_data.hex(), *pcr_args(pcrs))
    key = bytes.fromhex(j.get("PublicKey") or "")
    check(len(key) == 120 and key.startswith(bytes.fromhex("3076301006072a8648ce3d020106052b81040022")),
          "the document's public_key is not a P-384 SubjectPublicKeyInfo: %s" % key.hex())
    check(j["ModuleID"].startswith("i-") and "-enc" in j["ModuleID"],
          "module_id %r is not in AWS's form" % j["ModuleID"])
    return "%d-byte document in %.1f s, verified; PCR0 %s... as describe-eif" % (
        len(doc), took, pcrs[0][:16])


@test
def test_attest_every_combination_of_fields():
    """b3. A document for each of the 8 combinations of nonce, user data
    and public key present or absent: each verifies, and what was absent is
    null in it; a malformed request gets one error line."""
    e = enclave("second")
    for mask in range(8):
        nonce = os.urandom(16) if mask & 1 else None
        user_data = os.urandom(8) if mask & 2 else None
        doc = attest_document(e, nonce, user_data, public_key=bool(mask & 4))
        args = []
        if nonce is not None:
            args += ["--nonce", nonce.hex()]
        if user_data is not None:
            args += ["--user-data", user_data.hex()]
        j = check_verified(doc, "combination %d" % mask, *args)
        for key, present in (("Nonce", mask & 1), ("UserData", mask & 2), ("PublicKey", mask & 4)):
            check((j.get(key) is not None) == bool(present),
                  "combination %d: %s is %r, expected it %s" %
                  (mask, key, j.get(key), "present" if present else "null"))
    bad = attest(e.cid, b"nonce=abc\n")
    check(bad.startswith(b"error ") and bad.endswith(b"\n") and bad.count(b"\n") == 1,
          "a malformed request got %r, expected one \"error ...\" line" % bad)
    return "8 combinations verified; malformed request: %s" % bad.decode(errors="replace").strip()


@test
def test_attest_tampered_document_is_refused():
    """b4. One byte changed in the signature, or in the payload, of a real
    document from the enclave: verify-attestation refuses it at the
    signature step (E78).  The payload's byte is one of the nonce's: a byte
    inside one of its certificates fails the chain step first (the middle
    byte, where the documents' sizes put it, sometimes was one)."""
    e = enclave("second")
    nonce = os.urandom(16)
    doc = attest_document(e, nonce)
    check(doc.count(nonce) == 1, "the nonce is %d times in the document, expected once" %
          doc.count(nonce))
    for where, at in (("signature", len(doc) - 1), ("payload", doc.find(nonce) + 8)):
        bad = bytearray(doc)
        bad[at] ^= 0x01
        rc, j = verify(bytes(bad))
        check(rc != 0 and j.get("Verified") is False and j.get("FailedStep") in ("signature", "payload", "cose"),
              "a document with its %s byte %d changed: exit %d, failed step %r" %
              (where, at, rc, j.get("FailedStep")))
    return "a byte changed in the signature and in the payload: refused"


@test
def test_attest_leaf_is_renewed():
    """b5. The hypervisor renews a running enclave's leaf (every
    RENEW_SECONDS here, ne-pci attestation-renew=): two documents that far
    apart carry different leaves of the same module id, both verify, and
    each leaf was issued at most a renewal period (and slack) before its
    document."""
    e = enclave("second")
    docs = []
    for i in range(2):
        if i:
            time.sleep(2 * RENEW_SECONDS + 1)
        docs.append(check_verified(attest_document(e, os.urandom(16)),
                                   "document %d of %s" % (i + 1, e)))
    leaves = [j["Certificates"][0] for j in docs]
    check(docs[0]["ModuleID"] == docs[1]["ModuleID"],
          "the module id changed: %s, then %s" % (docs[0]["ModuleID"], docs[1]["ModuleID"]))
    check(leaves[0]["NotBefore"] < leaves[1]["NotBefore"],
          "no fresh leaf after %d s (is ne-pci's attestation-renew=%d, as in tools/check?): "
          "leaf valid from %s, then from %s" %
          (2 * RENEW_SECONDS + 1, RENEW_SECONDS, leaves[0]["NotBefore"], leaves[1]["NotBefore"]))
    for j, leaf in zip(docs, leaves):
        issued = utc_seconds(leaf["NotBefore"]) + 3         # AWS's: notBefore = issue - 3 s
        age = j["Timestamp"] / 1000 - issued
        check(-1 <= age <= RENEW_SECONDS + 10,
              "a document signed %.1f s after its leaf was issued (renewal every %d s)" %
              (age, RENEW_SECONDS))
    return "leaf from %s, then from %s; module id %s kept" % (
        leaves[0]["NotBefore"], leaves[1]["NotBefore"], docs[0]["ModuleID"])


@test
def test_attest_debug_mode_has_zero_image_pcrs():
    """b6. A debug-mode enclave's document verifies with PCR0, 1 and 2 all
    zero (real debug-mode documents), not the image's."""
    e = enclave("debug")
    doc = attest_document(e, os.urandom(16))
    zero = "00" * 48
    j = check_verified(doc, "the debug enclave's document", *pcr_args({0: zero, 1: zero, 2: zero}))
    pcrs = eif_pcrs()
    check(pcrs[0] != zero, "describe-eif's PCR0 is zero: %s" % pcrs)
    return "debug mode: PCR0-2 zero; PCR3 %s..., PCR4 %s..." % (
        j["PCRs"].get("PCR3", "?")[:16], j["PCRs"].get("PCR4", "?")[:16])


@test
def test_nsm_check_passes_in_the_enclave():
    """b7. /nsm-check, the NSM's acceptance test run inside the enclave on
    /dev/nsm with the unmodified kernel driver, passes every check."""
    e = enclave("debug")
    with service_connect(e.cid, NSM_CHECK_PORT) as s:
        try:
            tap = read_to_eof(s).decode(errors="replace")
        except OSError as err:
            raise Failure("reading /nsm-check's output from CID %d: %s" % (e.cid, err))
    for line in tap.splitlines():
        if line.startswith("not ok") or line.startswith("#   "):
            print("#   nsm-check: " + line)
    plan = [l for l in tap.splitlines() if l.startswith("1..")]
    n = int(plan[0][3:]) if plan else 0
    passed = sum(1 for l in tap.splitlines() if l.startswith("ok "))
    check(tap.startswith("TAP version 13\n") and n > 0 and passed == n and
          ("# %d passed, 0 failed\n" % n) in tap,
          "/nsm-check passed %d of %d:\n%s" % (passed, n, tap[-3000:]))
    return "nsm-check in CID %d: %d of %d passed" % (e.cid, passed, n)


def nsm_fuzz(e, seed, count):
    """Runs /nsm-fuzz in enclave e (port 5012) for count requests of seed;
    returns its TAP, the failing lines printed as diagnostics."""
    with service_connect(e.cid, NSM_FUZZ_PORT) as s:
        s.settimeout(NSM_FUZZ_IO_TIMEOUT)
        try:
            s.sendall(b"%d %d\n" % (seed, count))
            tap = read_to_eof(s).decode(errors="replace")
        except OSError as err:
            raise Failure("nsm-fuzz (seed %d) in CID %d: %s" % (seed, e.cid, err))
    for line in tap.splitlines():
        if line.startswith(("not ok", "#   ", "Bail out!", "error ")):
            print("#   nsm-fuzz: " + line)
    return tap


@test
def test_nsm_fuzz_leaves_the_device_answering():
    """b8. /nsm-fuzz in the enclave where nsm-check ran, with a seed from
    the run's: malformed requests through /dev/nsm, each answered with
    EMSGSIZE (over 4096 bytes only), an Error or a well-formed success;
    DescribeNSM and PCR0-15 unchanged every 100 requests; no request
    unanswered for 10 s; the empty request last.  Then the enclave still
    serves a document that verifies."""
    e = enclave("debug")
    seed = RANDOM.randrange(1 << 32)
    print("# nsm-fuzz seed %d, %d requests (alone: echo '%d %d' | socat - VSOCK-CONNECT:%d:%d;"
          " on the host: NE_SEED=%d NSM_FUZZ_COUNT=%d make -C tools/qemu enclave-nsm-test)" %
          (seed, NSM_FUZZ_COUNT, seed, NSM_FUZZ_COUNT, e.cid, NSM_FUZZ_PORT, seed, NSM_FUZZ_COUNT))
    t0 = time.monotonic()
    tap = nsm_fuzz(e, seed, NSM_FUZZ_COUNT)
    took = time.monotonic() - t0
    lines = tap.splitlines()
    plan = [l for l in lines if l.startswith("1..")]
    n = int(plan[0][3:]) if plan else 0
    passed = sum(1 for l in lines if l.startswith("ok "))
    check(tap.startswith("TAP version 13\n# seed %d, " % seed) and n > 0 and passed == n and
          "# %d passed, 0 failed" % n in lines and "Bail out!" not in tap,
          "nsm-fuzz (seed %d) passed %d of %d in %.1f s:\n%s" % (seed, passed, n, took, tap[-3000:]))
    for line in lines:
        if line.startswith(("# outcomes", "# Error:", "# success:")):
            print("# nsm-fuzz: " + line[2:])
    nonce = os.urandom(16)
    doc = attest_document(e, nonce)
    zero = "00" * 48
    check_verified(doc, "the document after the fuzz", "--nonce", nonce.hex(),
                   *pcr_args({0: zero, 1: zero, 2: zero}))
    return "nsm-fuzz in CID %d, seed %d: %d requests, %d of %d checks passed in %.1f s; then a verified document" % (
        e.cid, seed, NSM_FUZZ_COUNT, passed, n, took)


@test
def test_debug_console_raw_vsock_shows_boot_log():
    """f. The console of a debug enclave (CID 0, port CID + 10000) replays
    its boot log: the kernel banner and the app's hello line."""
    e = enclave("debug")
    reader = ConsoleReader(e.cid, seconds=IO_TIMEOUT)
    try:
        for needle in ("Linux version", "hello from enclave CID %d" % e.cid):
            check(reader.wait_for(needle, 20),
                  "console of CID %d (port %d) has no %r in %d bytes (stream: %s); its end:\n%s" %
                  (e.cid, CONSOLE_PORT_BASE + e.cid, needle, len(reader.data), reader.end,
                   reader.text()[-800:]))
        tsc = tsc_rates(reader.text())
    finally:
        reader.close()
    return "raw vsock CID 0 port %d: boot log with 'Linux version' and the hello line; %s" % (
        CONSOLE_PORT_BASE + e.cid, tsc)


def tsc_rates(boot_log):
    """Under TCG an enclave's TSC is the host's: the launcher gives its
    kernel the rate it measured (tsc_early_khz=), as tools/ne-vm gives this
    parent VM's; both measure the host's TSC the same way, so the two must
    agree (the host's "cpu MHz", used before, is the cores' current speed
    where a cpufreq driver runs)."""
    def rate(text):
        m = re.search(r"\btsc_early_khz=(\d+)", text)
        return int(m.group(1)) if m else None
    with open("/proc/cmdline") as f:
        parent = rate(f.read())
    line = next((l for l in boot_log.splitlines() if "Kernel command line:" in l), "")
    enclave = rate(line)
    check(line, "the boot log has no 'Kernel command line:' line")
    if parent is None:
        # (ne-vm gives its guest a rate only where the host's own clock is
        # the TSC, and under TCG: the launcher may still have one)
        return "the parent VM was given no TSC rate, the enclave %s: nothing to compare" % (
            enclave or "none")
    check(enclave is not None and abs(enclave - parent) * 1000 <= parent,
          "the enclave's tsc_early_khz=%s is not the parent's %d (within 0.1%%)" % (enclave, parent))
    return "its TSC rate %d kHz, the parent's %d" % (enclave, parent)


@test
def test_nectl_console_shows_boot_log():
    """f. nectl console --disconnect-timeout 3 of a debug enclave prints
    its boot log and returns after the timeout."""
    e = enclave("debug")
    t0 = time.monotonic()
    r = nectl("console", "--enclave-id", e.id, "--disconnect-timeout", 3, timeout=60)
    seconds = time.monotonic() - t0
    check(r.returncode == 0, "nectl console exited %d: %s" % (r.returncode, r.stderr[-500:]))
    for needle in ("Linux version", "hello from enclave CID %d" % e.cid):
        check(needle in r.stdout, "nectl console printed no %r in %d bytes; its end:\n%s" %
              (needle, len(r.stdout), r.stdout[-800:]))
    # (on stdout, where nitro-cli prints its connection lines)
    check("Successfully connected to the console." in r.stdout,
          "no connection line on stdout; its start:\n%s" % r.stdout[:300])
    check(seconds < 10, "nectl console --disconnect-timeout 3 took %.1f s" % seconds)
    return "nectl console --disconnect-timeout 3: boot log, returned in %.1f s" % seconds


@test
def test_console_refused_without_debug_mode():
    """f. An enclave started without --debug-mode has no console: nectl
    refuses (E44) and a raw connect to its console port fails."""
    e = enclave("second")
    r = nectl("console", "--enclave-id", e.id, "--disconnect-timeout", 3, timeout=60)
    check(r.returncode == 44 and "[ E44 ]" in r.stderr,
          "nectl console of non-debug %s exited %d (expected 44): %s%s" %
          (e, r.returncode, r.stdout[-300:], r.stderr[-300:]))
    port = CONSOLE_PORT_BASE + e.cid
    err, seconds = connect_error(CID_HYPERVISOR, port)
    check(err in (errno.ECONNRESET, errno.ECONNREFUSED),
          "raw connect to CID 0 port %d (console of non-debug CID %d): %s after %.2f s, "
          "expected a reset or refusal" % (port, e.cid, "connected" if err is None else
                                          errno.errorcode.get(err, err), seconds))
    return "no console without --debug-mode: nectl E44, CID 0 port %d %s in %.2f s" % (
        port, errno.errorcode[err], seconds)


def end_by_control(role, command, console_needle, answers=("ok\n",)):
    """Sends command to the enclave of role, which must end on its own; the
    holder must notice and clean up.  Prints when each step was seen;
    returns the ended Enclave and the seconds describe took to drop it."""
    e = enclave(role)
    console = ConsoleReader(e.cid) if e.debug else None
    try:
        t0 = time.monotonic()
        answer = control(e.cid, command)
        check(answers is None or answer in answers, "control %r to CID %d answered %r, expected "
              "%r" % (command, e.cid, answer, answers))
        forget(role)
        try:
            dropped = check_released(e, "after %r" % command) - t0
        except Failure as f:
            if console:
                tail = console.text().splitlines()[-3:]
                raise Failure("%s\nits console: %s; its last lines:\n%s" %
                              (f, "still open" if console.end is None else console.end,
                               "\n".join(tail)))
            raise
        log = nectl_log()
        check("enclave %s (slot %#x, CID %d) stopped on its own" % (e.name, e.slot_uid, e.cid)
              in log, "the holder did not log that %s stopped on its own; nectl.log ends:\n%s" %
              (e, log[-600:]))
        if console:
            check(console.wait_for(console_needle, 10),
                  "the console of CID %d shows no %r; it ends (%s):\n%s" %
                  (e.cid, console_needle, console.end, console.text()[-600:]))
            check(console.wait_closed(15), "the console of CID %d is still open after the "
                  "enclave ended" % e.cid)
            print("# %s: %r on the console %.1f s after the command, console closed (%s) "
                  "after %.1f s, describe dropped the enclave after %.1f s" %
                  (command, console_needle, console.when(console_needle) - t0, console.end,
                   console.end_time - t0, dropped))
        err, _ = connect_error(e.cid, HELLO_PORT)
        check(err == errno.ECONNRESET, "connect to the ended enclave's CID %d: %s, expected "
              "ECONNRESET" % (e.cid, "connected" if err is None else errno.errorcode.get(err, err)))
    finally:
        if console:
            console.close()
    return e, dropped


@test
def test_poweroff_by_exit_is_cleaned_up():
    """g. 'exit' on the control port powers the enclave off; its holder sees
    the hang-up and frees everything."""
    e, seconds = end_by_control("debug", "exit", "powering off")
    ended["exit"] = e
    return "exit: CID %d powered off, holder cleaned up in %.1f s (describe, holder, registry, " \
        "VM fd, hugepages, CID unrouted)" % (e.cid, seconds)


@test
def test_cpus_of_the_ended_enclave_are_reusable():
    """g. The CPUs the powered-off enclave had go back to the pool: with the
    other core still taken, a new enclave gets exactly them."""
    gone = ended.pop("exit", None)
    check(gone is not None, "no enclave powered off in the previous test")
    check("second" in running, "the second enclave is gone: cannot tell which CPUs are free")
    e = enclave("panic")
    check(e.cpus == gone.cpus, "the new enclave got CPUs %s, the ended one had %s" %
          (e.cpus, gone.cpus))
    check(hello(e.cid) == "hello from enclave CID %d\n" % e.cid, "the new enclave does not answer")
    return "a new enclave boots on the ended enclave's CPUs %s (CID %d)" % (e.cpus, e.cid)


@test
def test_kernel_panic_is_cleaned_up():
    """h. 'panic' on the control port panics the enclave kernel; the
    enclave ends and its holder frees everything."""
    # The app panics right after writing "ok": the answer may be lost (EOF or
    # a reset); the console shows whether the kernel panicked.
    e, seconds = end_by_control("panic", "panic", "Kernel panic - not syncing", answers=None)
    return "panic: CID %d panicked (seen on its console), holder cleaned up in %.1f s" % (
        e.cid, seconds)


@test
def test_terminate_while_traffic_flows():
    """i. terminate-enclave during an echo stream: the client sees the
    connection end promptly and nothing is left."""
    e = enclave("second")
    pattern = Pattern()
    out = {}
    stop = threading.Event()
    with service_connect(e.cid, ECHO_PORT) as s:
        # Paced, so that the guest's two CPUs are not saturated by this
        # client and nectl itself runs at once.
        t = threading.Thread(target=stream_echo, args=(s, pattern, None, out, stop, TERMINATE_RATE),
                             daemon=True)
        t.start()
        flowing = settle(lambda: out.get("received", 0) >= TRAFFIC_BEFORE_TERMINATE or
                         not t.is_alive(), 60, 0.1)
        check(flowing and t.is_alive(), "no echo traffic before the terminate: %s" % out)
        t_term = time.monotonic()
        r = nectl("terminate-enclave", "--enclave-id", e.id, timeout=60)
        t.join(max(0, t_term + 10 - time.monotonic()))
        hung = t.is_alive()
        stop.set()
        if hung:
            s.shutdown(socket.SHUT_RDWR)
            t.join(IO_TIMEOUT + 10)
    forget("second")
    check(r.returncode == 0, "terminate-enclave exited %d: %s" % (r.returncode, r.stderr[-400:]))
    check(not hung, "10 s after terminate-enclave the echo client had not seen the end: %s" % out)
    ends = max(out["send_time"], out["recv_time"]) - t_term
    check(out["mismatch"] is None, "the echo differed at byte %s before the end" % out["mismatch"])
    check(out["recv_end"] != "EOF" or out["send_end"] != "done",
          "the stream ended cleanly although the enclave was terminated: %s" % out)
    check(ends < 10, "the client saw the end %.1f s after the terminate" % ends)
    check_released(e, "after terminate-enclave")
    return "terminate during traffic (%d MiB echoed): the client saw the end in %.2f s " \
        "(recv: %s; send: %s); nothing left" % (out["received"] >> 20, ends, out["recv_end"],
                                                 out["send_end"])


@test
def test_whole_pool_is_free_again():
    """g, h, i. Every CPU and hugepage came back: an enclave with the whole
    pool (4 CPUs) starts and answers."""
    check(not running, "enclaves still running: %s" % list(running.values()))
    e = launch("enc-whole-pool", cpus=4)
    running["whole"] = e
    check(e.cpus == [2, 3, 4, 5], "the 4-CPU enclave got CPUs %s" % e.cpus)
    line = hello(e.cid)
    check(line == "hello from enclave CID %d\n" % e.cid, "CID %d answered %r" % (e.cid, line))
    r = nectl("terminate-enclave", "--enclave-id", e.id, timeout=60)
    forget("whole")
    check(r.returncode == 0, "terminate-enclave exited %d: %s" % (r.returncode, r.stderr[-400:]))
    check_released(e, "after terminate-enclave")
    return "an enclave with the whole pool %s boots and answers (CID %d) after the others ended" % (
        e.cpus, e.cid)


class Output(threading.Thread):
    """Collects a process's output lines in the background."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc = proc
        self.lines = []
        self.start()

    def run(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix, seconds):
        """The first line starting with prefix, or None when the process
        ended or the time ran out."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None and not self.is_alive():
                return None
            time.sleep(0.2)
        return None

    def tail(self, n=15):
        return "\n".join(self.lines[-n:])


@test
def test_kernel_ne_sample_launches_the_enclave():
    """k. The kernel's own sample (samples/nitro_enclaves/ne_ioctl_sample.c,
    built unmodified) launches the sample image through the upstream
    ioctls: 256 regions of 2 MiB, two vCPUs picked by the driver, the
    heartbeat; its poll thread gets POLLHUP when the enclave powers off."""
    # (stdbuf: the sample's printf lines reach the pipe as they are printed;
    # strace: a reader of its trace sees the upstream ioctls by name)
    trace = os.path.join(TMP, "ne_ioctl_sample.strace")
    # The sample copies the image from an mmap of the file: each fault of
    # the build tree's 9p mount is a round trip to the host (its heartbeat
    # came after 46 s, 12 s from tmpfs).  A parent's image is on a local disk.
    eif = os.path.join(TMP, "ne_ioctl_sample.eif")
    shutil.copyfile(EIF, eif)
    p = subprocess.Popen(["strace", "-f", "-e", "trace=ioctl", "-o", trace, "stdbuf", "-oL",
                          NE_IOCTL_SAMPLE, eif], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = Output(p)
    try:
        t0 = time.monotonic()
        started = out.wait_for("Entering sleep", HEARTBEAT_TIMEOUT)
        check(started, "the sample did not get to its heartbeat (exit %s):\n%s" %
              (p.poll(), out.tail()))
        line = out.wait_for("Enclave started, CID ", 1)
        check(line, "the sample printed no CID:\n%s" % out.tail())
        cid = int(line.split()[-1])
        touched.add(cid)
        booted = time.monotonic() - t0
        vcpus = [int(l.split()[2]) for l in out.lines if l.startswith("Added vCPU ")]
        check(sorted(vcpus) in ([2, 3], [4, 5]), "the sample's vCPUs: %s" % vcpus)
        answer = hello(cid)
        check(answer == "hello from enclave CID %d\n" % cid, "CID %d answered %r" % (cid, answer))
        answer = control(cid, "exit")
        check(answer == "ok\n", "control exit to CID %d answered %r" % (cid, answer))
        check(out.wait_for("Received POLLHUP", RELEASE_WAIT),
              "no POLLHUP %d s after the enclave powered off:\n%s" % (RELEASE_WAIT, out.tail()))
    finally:
        # The sample sleeps 300 s after the heartbeat: end it, and strace
        # with it (a killed strace would leave it running, detached).
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
        os.unlink(eif)
    check_nothing_held("after the kernel's sample")
    with open(trace) as f:
        calls = strace_ioctls(f.read())
    want = {"NE_CREATE_VM": 1, "NE_GET_IMAGE_LOAD_INFO": 1, "NE_SET_USER_MEMORY_REGION": 256,
            "NE_ADD_VCPU": 2, "NE_START_ENCLAVE": 1}
    check(calls == want, "strace of the sample: ioctls that succeeded, by name: %s, expected %s" %
          (calls, want))
    return ("the kernel's ne_ioctl_sample: heartbeat from CID %d %.1f s after its start, vCPUs %s, "
            "POLLHUP after the enclave powered off, nothing held after its exit; strace names "
            "its %d ioctls" % (cid, booted, vcpus, sum(calls.values())))


def strace_ioctls(text):
    """{name: count} of the NE_* and KVM_* ioctls in an strace -e
    trace=ioctl log that returned 0 or an fd; a failed one counts under
    "NAME failed", one strace did not name under its number."""
    calls = {}
    for m in re.finditer(r"ioctl\(\d+, (NE_\w+|KVM_\w+|_IOC\([^)]*\)|0x[0-9a-f]+)[^\n]*"
                         r"\) = (-?\d+)", text):
        name = m.group(1) if int(m.group(2)) >= 0 else m.group(1) + " failed"
        calls[name] = calls.get(name, 0) + 1
    return calls


# --- j. images that are not valid EIFs

def eif_kernel_section(path):
    """(offset of the kernel data, its size) from the EIF header."""
    with open(path, "rb") as f:
        hdr = f.read(548)
        check(hdr[:4] == b".eif", "%s is not an EIF" % path)
        nr = struct.unpack_from(">H", hdr, 26)[0]
        offsets = struct.unpack_from(">32Q", hdr, 28)
        sizes = struct.unpack_from(">32Q", hdr, 284)
        for i in range(nr):
            f.seek(offsets[i])
            if struct.unpack(">H", f.read(2))[0] == 1:
                return offsets[i] + 12, sizes[i]
    raise Failure("%s has no kernel section" % path)


def corrupt_eif():
    """A copy of the EIF with one byte in the middle of the kernel flipped."""
    path = os.path.join(TMP, "corrupt.eif")
    shutil.copyfile(EIF, path)
    off, size = eif_kernel_section(path)
    with open(path, "r+b") as f:
        f.seek(off + size // 2)
        b = f.read(1)
        f.seek(off + size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    return path


def not_an_eif():
    """The bare kernel of the EIF (a bzImage): a plausible wrong --image."""
    path = os.path.join(TMP, "vmlinuz.not-eif")
    off, size = eif_kernel_section(EIF)
    with open(EIF, "rb") as src, open(path, "wb") as dst:
        src.seek(off)
        dst.write(src.read(size))
    return path


def check_nothing_held(why):
    check(settle(lambda: vm_fds() == 0, 5), "%s: %d VM fds left" % (why, vm_fds()))
    check(settle(lambda: free_2m() == BASE_FREE, 5), "%s: %d free hugepages, %d at the start" %
          (why, free_2m(), BASE_FREE))
    check(describe() == [], "%s: describe-enclaves lists %s" % (why, describe()))


@test
def test_nectl_refuses_corrupt_eif():
    """j. nectl checks the CRC itself: a corrupt image is E35, before any
    enclave is made."""
    path = corrupt_eif()
    d = json.loads(nectl("describe-eif", path).stdout or "{}")
    check(d.get("CheckCRC") is False, "describe-eif of the corrupt copy: CheckCRC %r" %
          d.get("CheckCRC"))
    r = nectl("run", "--eif-path", path, "--memory", MEM_MIB, "--cpu-count", 2, timeout=60)
    check(r.returncode == 35 and "[ E35 ]" in r.stderr,
          "nectl run of an EIF with a flipped kernel byte exited %d (expected 35): %s" %
          (r.returncode, r.stderr[-400:]))
    check_nothing_held("after the refused run")
    return "nectl run of an EIF with one kernel byte flipped: E35 (CRC), nothing held"


def sample_start_fails_with_enoexec(path, what):
    r = subprocess.run([NE_SAMPLE, "--image", path, "--mem", str(MEM_MIB), "--vcpus", "2"],
                       capture_output=True, text=True, timeout=120)
    expect = "NE_ENCLAVE_START: %s" % os.strerror(errno.ENOEXEC)
    check(r.returncode == 1 and expect in r.stderr,
          "ne_sample with %s exited %d, expected 1 and %r (ENOEXEC): %s%s" %
          (what, r.returncode, expect, r.stdout[-300:], r.stderr[-300:]))
    check_nothing_held("after ne_sample with %s" % what)


def run_tool(argv, what):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "%s exited %d: %s%s" % (what, r.returncode, r.stdout[-500:],
                                                   r.stderr[-500:]))
    return r


def signing_key():
    """A fresh P-384 key and its self-signed certificate, made here (never
    kept): (certificate path, key path)."""
    key, cert = os.path.join(TMP, "signer.key"), os.path.join(TMP, "signer.pem")
    if not os.path.exists(cert):
        run_tool(["openssl", "ecparam", "-name", "secp384r1", "-genkey", "-noout",
                  "-out", key], "openssl ecparam")
        run_tool(["openssl", "req", "-new", "-x509", "-key", key, "-sha384", "-days", "2",
                  "-subj", "/CN=ne-kvm enclave test signer", "-out", cert], "openssl req")
    return cert, key


SIGNED_EIFS = {}     # (name, extra_cmdline): path of an image signed_eif() built


def signed_eif(name, extra_cmdline=""):
    """The sample image's kernel, command line (plus @extra_cmdline) and
    initrd, built again by nectl build-eif and signed with signing_key();
    built once per name (the tests that need the same image share it)."""
    if (name, extra_cmdline) in SIGNED_EIFS:
        return SIGNED_EIFS[name, extra_cmdline]
    parts = os.path.dirname(EIF)
    with open(os.path.join(parts, "cmdline")) as f:
        cmdline = f.read().strip() + extra_cmdline
    cert, key = signing_key()
    out = os.path.join(TMP, name + ".eif")
    r = nectl("build-eif", "--kernel", os.path.join(parts, "vmlinuz"), "--cmdline", cmdline,
              "--ramdisk", os.path.join(parts, "initrd.cpio"), "--signing-certificate", cert,
              "--private-key", key, "-o", out)
    check(r.returncode == 0, "nectl build-eif of %s exited %d: %s" % (name, r.returncode,
                                                                     r.stderr[-500:]))
    SIGNED_EIFS[name, extra_cmdline] = out
    return out


def described_pcrs(eif):
    r = nectl("describe-eif", "--eif-path", eif)
    check(r.returncode == 0, "describe-eif of %s exited %d: %s" % (eif, r.returncode, r.stderr))
    j = json.loads(r.stdout)
    check(j.get("IsSigned") is True and j.get("SignatureCheck") is True,
          "describe-eif of %s: IsSigned %r, SignatureCheck %r" %
          (eif, j.get("IsSigned"), j.get("SignatureCheck")))
    return {i: j["Measurements"]["PCR%d" % i] for i in (0, 1, 2, 8)}


@test
def test_signed_image_attests_its_pcr8():
    """l. A signed image (nectl build-eif with a fresh P-384 key): the
    production enclave's document verifies with PCR0, 1, 2 and 8 as
    describe-eif measures them, and PCR8 is nectl pcr's for the
    certificate."""
    eif = signed_eif("signed")
    pcrs = described_pcrs(eif)
    cert, _ = signing_key()
    r = nectl("pcr", "--signing-certificate", cert)
    check(r.returncode == 0 and pcrs[8] in r.stdout,
          "nectl pcr --signing-certificate does not print describe-eif's PCR8 %s: %s" %
          (pcrs[8], r.stdout[-300:]))
    e = launch("enc-signed", eif=eif)
    try:
        nonce = os.urandom(16)
        doc = attest_document(e, nonce)
        check_verified(doc, "the signed image's document", "--nonce", nonce.hex(),
                       *pcr_args(pcrs))
    finally:
        r = nectl("terminate-enclave", "--enclave-id", e.id, timeout=60)
    check(r.returncode == 0, "terminate-enclave exited %d: %s" % (r.returncode, r.stderr[-400:]))
    check_released(e, "after terminate-enclave of the signed image's enclave")
    return "signed image: document verified with PCR8 %s... (describe-eif's, nectl pcr's)" % (
        pcrs[8][:16])


@test
def test_device_refuses_a_spliced_signature():
    """l. The signature section of another image signed by the same key,
    spliced onto the sample (CRC fixed): nectl run refuses it (E59), and so
    does the hypervisor through the raw API (ENOEXEC): a parent cannot give
    its image someone else's PCR8."""
    signed, other = signed_eif("signed"), signed_eif("other", " ne.test=other")
    forged = os.path.join(TMP, "spliced.eif")
    run_tool([sys.executable, os.path.join(TOP, "tools/qemu/tests/eif_sig_forge.py"), "splice",
              signed, forged, "--other", other], "eif_sig_forge.py splice")
    r = nectl("run", "--eif-path", forged, "--memory", MEM_MIB, "--cpu-count", 2,
              "--enclave-name", "spliced", timeout=120)
    check(r.returncode != 0 and "E59" in r.stdout + r.stderr,
          "nectl run of the spliced image exited %d without E59: %s%s" %
          (r.returncode, r.stdout[-300:], r.stderr[-300:]))
    check_nothing_held("after nectl run of the spliced image")
    sample_start_fails_with_enoexec(forged, "an EIF with another image's signature section")
    return "spliced signature section: nectl E59, NE_ENCLAVE_START ENOEXEC, nothing held"


@test
def test_device_refuses_corrupt_eif_with_enoexec():
    """j. The hypervisor checks the image too: the raw API with a corrupt
    EIF fails at NE_ENCLAVE_START with ENOEXEC."""
    sample_start_fails_with_enoexec(corrupt_eif(), "an EIF with a flipped kernel byte")
    return "raw API, EIF with a flipped kernel byte: NE_ENCLAVE_START fails with ENOEXEC " \
        "(errno %d), nothing held" % errno.ENOEXEC


@test
def test_device_refuses_non_eif_with_enoexec():
    """j. The raw API with a file that is no EIF at all (a bare bzImage)."""
    sample_start_fails_with_enoexec(not_an_eif(), "a bare bzImage (no EIF)")
    return "raw API, bare bzImage instead of an EIF: NE_ENCLAVE_START fails with ENOEXEC, " \
        "nothing held"


@test
def test_nothing_left_at_the_end():
    """k. No enclave, holder, registry entry or VM fd left; every hugepage
    back."""
    check(describe() == [], "describe-enclaves lists %s" % describe())
    check(settle(lambda: not holders(), 10), "holder processes left: %s" % holders())
    check(registry_files() == [], "registry entries left: %s" % registry_files())
    check(vm_fds() == 0, "%d VM fds left" % vm_fds())
    check(free_2m() == BASE_FREE, "%d free hugepages, %d at the start" % (free_2m(), BASE_FREE))
    return "nothing left: no enclave, holder, registry entry or VM fd; %d hugepages free as at " \
        "the start" % BASE_FREE


@test
def test_parent_kernel_log_is_clean():
    """The parent's kernel log has no warning, oops or BUG from all this
    (the enclave lifecycles above drive the driver's event and release
    paths)."""
    r = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "dmesg exited %d: %s" % (r.returncode, r.stderr))
    bad = [line for line in r.stdout.splitlines()
           if any(k in line for k in ("BUG:", "WARNING:", "Oops", "Call Trace",
                                      "general protection"))]
    check(not bad, "the kernel log has %d suspicious lines, first:\n%s" %
          (len(bad), "\n".join(bad[:10])))
    return "the parent's kernel log has no warning, oops or BUG (%d lines)" % len(
        r.stdout.splitlines())


# --------------------------------------------------------------------------

def overrun(signum, frame):
    """SIGALRM: the test has run for TEST_LIMIT s.  Says where it waits
    (its Python stack, and what the kernel's tasks wait on) while it still
    does, then stops it."""
    where = ["waiting in:"] + [l for f in traceback.format_stack(frame)[-4:] for l in f.splitlines()]
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30).stdout
    raise Overrun(where + stuck_tasks(("nectl", "ne_sample")) +
                  ["kernel log ends:"] + dmesg.splitlines()[-20:])


def main(argv):
    global EIF, RUN_DIR, TMP, BASE_FREE, RANDOM
    # The random stream data comes from one seed, printed; NE_SEED replays it.
    seed = int(os.environ.get("NE_SEED") or str(random.SystemRandom().randrange(1 << 32)), 0)
    print("# seed %d (replay with NE_SEED=%d)" % (seed, seed))
    RANDOM = random.Random(seed)
    if len(argv) != 2 or not os.path.isfile(argv[1]):
        print("not ok 1 - usage: selftests/enclave/run EIF (the sample image: its directory is "
              "printed by tools/enclave/build); got %s" % argv[1:])
        return 1
    EIF = os.path.abspath(argv[1])
    # NE_ENCLAVE_TESTS=NAME,...: only these tests (a developer's rerun of
    # one; later tests may need an earlier one's enclave, test 1's "A").
    only = [t for t in os.environ.get("NE_ENCLAVE_TESTS", "").split(",") if t]
    if only:
        unknown = set(only) - {fn.__name__ for fn in tests}
        if unknown:
            print("not ok 1 - NE_ENCLAVE_TESTS names no test: %s" % ", ".join(sorted(unknown)))
            return 1
        tests[:] = [fn for fn in tests if fn.__name__ in only]
    if not os.path.exists("/dev/nitro_enclaves"):
        print("1..0 # SKIP /dev/nitro_enclaves is missing (ne_kvm.ko not loaded)")
        return 4
    for tool in (NECTL, NE_SAMPLE, NE_IOCTL_SAMPLE):
        if not os.access(tool, os.X_OK):
            print("not ok 1 - %s is not built (make)" % tool)
            return 1
    old_pool = POOL_CPUS
    try:
        with open(POOL) as f:
            old_pool = f.read().strip()
        with open(POOL, "w") as f:
            f.write(POOL_CPUS)
        with open(POOL) as f:
            pool = f.read().strip()
    except OSError as e:
        pool = "error: %s" % e
    if pool != POOL_CPUS:
        print("not ok 1 - CPU pool %s: %s (the VM needs 3 cores: tools/ne-vm --cores 3)" %
              (POOL_CPUS, pool))
        return 1
    TMP = tempfile.mkdtemp(prefix="enclave-test.")
    RUN_DIR = os.environ["NECTL_RUN_DIR"] = os.path.join(TMP, "run")
    BASE_FREE = free_2m()
    print("TAP version 13")
    print("1..%d" % len(tests))
    print("# EIF %s (%d bytes), pool %s, %d free 2 MiB hugepages" %
          (EIF, os.path.getsize(EIF), pool, BASE_FREE))
    failed = 0
    overran = None
    t_all = time.monotonic()
    signal.signal(signal.SIGALRM, overrun)
    for n, fn in enumerate(tests, 1):
        t0 = time.monotonic()
        touched.clear()
        signal.alarm(TEST_LIMIT)
        try:
            result = fn()
            print("ok %d - %s (%.1f s)" % (n, result, time.monotonic() - t0))
        except Overrun as e:
            failed += 1
            overran = n
            print("not ok %d - %s: still running after %d s; the suite stops here" %
                  (n, fn.__name__, TEST_LIMIT))
            for line in e.args[0]:
                print("#   " + line)
            break
        except Exception as e:
            failed += 1
            doc = " ".join((fn.__doc__ or fn.__name__).split())
            print("not ok %d - %s (%.1f s)" % (n, fn.__name__, time.monotonic() - t0))
            print("#   checks: %s" % doc)
            detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
            for line in detail.splitlines()[:40]:
                print("#   " + line)
            for cid in sorted(c for c in touched if isinstance(c, int)):
                for line in enclave_log_tail(cid).splitlines():
                    print("#   " + line)
            clean_up()
        finally:
            signal.alarm(0)
        sys.stdout.flush()
    if overran:
        # What hung may hang a clean-up too: the parent VM's end takes it all.
        for n in range(overran + 1, len(tests) + 1):
            print("not ok %d - %s # not run: test %d overran" % (n, tests[n - 1].__name__, overran))
        print("# enclave tests: stopped at test %d of %d after %.0f s" %
              (overran, len(tests), time.monotonic() - t_all))
        return 1
    print("# enclave tests: %d passed, %d failed in %.0f s" %
          (len(tests) - failed, failed, time.monotonic() - t_all))
    if running:
        clean_up()
    if failed:
        print("# nectl.log (the holders' log) ends:")
        for line in nectl_log().splitlines()[-15:]:
            print("#   " + line)
    if old_pool != POOL_CPUS:
        try:
            with open(POOL, "w") as f:
                f.write(old_pool or "\n")
        except OSError:
            pass
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
