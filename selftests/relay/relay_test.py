#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The vsock relay under abuse, with real enclaves, from the parent (TAP).

Run inside the parent VM by selftests/relay/run EIF (tools/ne-vm --cores 3).
Two sample enclaves (A, debug mode, and B) boot at once; each test abuses
the relay one way and then checks that the other connections still work.
A test prints how long it took.  Exit status: 0 when every test passed.
"""
import errno
import json
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
import traceback

NECTL = os.environ.get("NE_NECTL", "nectl")
HELLO_PORT, ECHO_PORT, CONTROL_PORT = 5000, 5005, 5009
CONSOLE_PORT_BASE = 10000
IO_TIMEOUT = 30
REFUSE_S = 2.0          # an RST answers at once; a dropped packet takes 2 s+
CONNS = 1000
BATCH = 16              # the sample app's listen backlog

EIF = None
enclaves = {}


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def launch(name, debug):
    args = [NECTL, "run", "--eif-path", EIF, "--memory", "128", "--cpu-count", "2",
            "--enclave-name", name]
    if debug:
        args.append("--debug-mode")
    deadline = time.monotonic() + 60
    while True:
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        # E22: the CPUs of an enclave that just ended are not free yet
        if r.returncode != 22 or time.monotonic() > deadline:
            break
        time.sleep(2)
    if r.returncode:
        raise Failure("nectl run %s exited %d: %s %s" % (name, r.returncode, r.stdout, r.stderr))
    enclaves[name] = json.loads(r.stdout)["EnclaveCID"]


def connect(cid, port, kind=socket.SOCK_STREAM, timeout=IO_TIMEOUT):
    s = socket.socket(socket.AF_VSOCK, kind)
    s.settimeout(timeout)
    try:
        s.connect((cid, port))
    except BaseException:
        s.close()
        raise
    return s


def hello(cid, timeout=IO_TIMEOUT):
    """The hello line of enclave cid (it names the CID)."""
    with connect(cid, HELLO_PORT, timeout=timeout) as s:
        line = s.makefile("rb").readline().decode(errors="replace")
    check(str(cid) in line, "hello from CID %d was %r" % (cid, line))
    return line


def echo(s, n=4096):
    data = os.urandom(n)
    s.sendall(data)
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        check(chunk, "echo connection closed after %d of %d bytes" % (len(got), n))
        got += chunk
    check(got == data, "echo returned other bytes")


def both_alive(why):
    for name, cid in enclaves.items():
        try:
            hello(cid)
        except (OSError, Failure) as e:
            raise Failure("%s: enclave %s (CID %d) no longer answers: %s" % (why, name, cid, e))


def refused_at_once(cid, port, kind, what):
    t0 = time.monotonic()
    try:
        connect(cid, port, kind, timeout=10).close()
    except OSError as e:
        took = time.monotonic() - t0
        check(e.errno in (errno.ECONNRESET, errno.ECONNREFUSED),
              "%s: connect failed with %s, expected ECONNRESET" % (what, e))
        check(took < REFUSE_S, "%s: refused after %.1f s, not at once" % (what, took))
        return took
    raise Failure("%s: connect succeeded" % what)


# --------------------------------------------------------------------------

tests = []


def test(fn):
    tests.append(fn)
    return fn


@test
def cid_2_and_unknown_cids_are_refused_at_once():
    """CID 2 (the host, which no relay peer is) and an unused CID get an
    RST from the relay at once, not a connect timeout."""
    a = refused_at_once(2, 1234, socket.SOCK_STREAM, "CID 2")
    b = refused_at_once(99, 1234, socket.SOCK_STREAM, "CID 99")
    both_alive("after CID 2 and 99")
    return "CID 2 refused in %.2f s, CID 99 in %.2f s" % (a, b)


@test
def seqpacket_is_relayed():
    """SEQPACKET packets are relayed: a connect to an enclave port that
    only has a stream listener is reset by the enclave's kernel at once, as
    is one to the console (stream only)."""
    a = refused_at_once(enclaves["relay-a"], HELLO_PORT, socket.SOCK_SEQPACKET,
                        "SEQPACKET to the enclave")
    b = refused_at_once(0, CONSOLE_PORT_BASE + enclaves["relay-a"], socket.SOCK_SEQPACKET,
                        "SEQPACKET to the console")
    both_alive("after SEQPACKET")
    return "SEQPACKET reset by the enclave in %.2f s, by the console in %.2f s" % (a, b)


@test
def a_thousand_connections_at_once():
    """1000 connections, half to each enclave, all open at the same time
    (the router remembers each), then both enclaves still answer new
    connections; after the 1000 close, again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
    cids = list(enclaves.values())
    socks = []
    t0 = time.monotonic()
    try:
        while len(socks) < CONNS:
            # per enclave a batch as large as the app's listen backlog
            batch = []
            for i in range(min(BATCH * len(cids), CONNS - len(socks))):
                s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                socks.append(s)
                batch.append(s)
                s.setblocking(False)
                err = s.connect_ex((cids[i % len(cids)], HELLO_PORT))
                check(err in (0, errno.EINPROGRESS), "connection %d: connect: %s" %
                      (len(socks), os.strerror(err)))
            for n, s in enumerate(batch, len(socks) - len(batch) + 1):
                _, w, _ = select.select([], [s], [], IO_TIMEOUT)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                check(w and not err, "connection %d of %d: %s" %
                      (n, CONNS, os.strerror(err) if err else "timeout"))
                r, _, _ = select.select([s], [], [], IO_TIMEOUT)
                check(r and s.recv(64), "connection %d: no hello" % n)
        opened = time.monotonic() - t0
        both_alive("with %d connections open" % CONNS)
    finally:
        for s in socks:
            s.close()
    both_alive("after closing %d connections" % CONNS)
    return "%d connections open at once (%.1f s), the others still served" % (CONNS, opened)


@test
def a_peer_that_never_reads():
    """A parent socket that sends to the echo service and never reads:
    the flow stops at the credit, and everything else keeps working."""
    cid = enclaves["relay-a"]
    s = connect(cid, ECHO_PORT)
    sent = 0
    try:
        s.setblocking(False)
        deadline = time.monotonic() + 20
        idle_since = None
        buf = b"x" * 65536
        while time.monotonic() < deadline:
            try:
                sent += s.send(buf)
                idle_since = None
            except BlockingIOError:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 2:
                    break
                time.sleep(0.05)
        check(idle_since, "the echo connection still took data after %d bytes" % sent)
        both_alive("with a stalled connection")
        with connect(cid, ECHO_PORT) as t:
            echo(t)
    finally:
        s.close()
    both_alive("after the stalled connection closed")
    return "stalled after %d KiB unread; other connections served" % (sent >> 10)


@test
def flood_through_the_relay():
    """16 MiB through enclave A's echo as fast as it goes, while enclave B
    answers hellos the whole time."""
    cid = enclaves["relay-a"]
    total = 16 << 20
    got = [0]
    s = connect(cid, ECHO_PORT)

    def reader():
        while got[0] < total:
            chunk = s.recv(1 << 16)
            if not chunk:
                return
            got[0] += len(chunk)

    t = threading.Thread(target=reader)
    t.start()
    t0 = time.monotonic()
    hellos = 0
    try:
        block = os.urandom(1 << 16)
        for i in range(total >> 16):
            s.sendall(block)
            if i % 32 == 0:
                hello(enclaves["relay-b"])
                hellos += 1
        t.join(IO_TIMEOUT * 4)
    finally:
        s.close()
    check(got[0] == total, "echoed %d of %d bytes" % (got[0], total))
    rate = total / (time.monotonic() - t0) / 1e6
    both_alive("after the flood")
    return "16 MiB echoed (%.1f MB/s), %d hellos from B meanwhile" % (rate, hellos)


@test
def an_enclave_that_goes_away_resets_only_its_connections():
    """Enclave B powers off: the parent's open connection to it is reset
    (no hang), the one to A keeps echoing."""
    a = connect(enclaves["relay-a"], ECHO_PORT)
    b = connect(enclaves["relay-b"], ECHO_PORT)
    try:
        echo(a)
        echo(b)
        with connect(enclaves["relay-b"], CONTROL_PORT) as c:
            c.sendall(b"exit\n")
        t0 = time.monotonic()
        b.settimeout(60)
        try:
            end = b.recv(1)
        except OSError as e:
            end = e
        took = time.monotonic() - t0
        check(end == b"" or isinstance(end, OSError),
              "the connection to B got %r after B's exit" % (end,))
        echo(a)
    finally:
        a.close()
        b.close()
    del enclaves["relay-b"]
    both_alive("after B went away")
    return "B's connection ended %.1f s after its exit (%s); A still echoes" % (
        took, "EOF" if end == b"" else end)


def main(argv):
    global EIF
    if len(argv) != 2:
        print("not ok 1 - usage: relay_test.py EIF")
        return 1
    EIF = argv[1]
    print("TAP version 13")
    print("1..%d" % len(tests))
    errs = []

    def boot(name, debug):
        try:
            launch(name, debug)
        except Exception as e:  # noqa: BLE001 (reported below)
            errs.append(e)

    t0 = time.monotonic()
    if os.environ.get("NE_RELAY_CID_A") and os.environ.get("NE_RELAY_CID_B"):
        # selftests/relay/run booted them
        enclaves["relay-a"] = int(os.environ["NE_RELAY_CID_A"])
        enclaves["relay-b"] = int(os.environ["NE_RELAY_CID_B"])
    else:
        subprocess.run([NECTL, "terminate-enclave", "--all"], capture_output=True, timeout=120)
    threads = [threading.Thread(target=boot, args=("relay-a", True)),
               threading.Thread(target=boot, args=("relay-b", False))]
    if not enclaves:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print("# enclaves %s up after %.1f s" % (enclaves, time.monotonic() - t0))
    failed = 0
    for n, fn in enumerate(tests, 1):
        t0 = time.monotonic()
        try:
            if errs:
                raise Failure("the enclaves did not start: %s" % errs)
            result = fn()
            print("ok %d - %s: %s (%.1f s)" % (n, fn.__name__, result, time.monotonic() - t0))
        except Exception as e:  # noqa: BLE001 (a failing test)
            failed += 1
            print("not ok %d - %s (%.1f s)" % (n, fn.__name__, time.monotonic() - t0))
            print("#   checks: %s" % " ".join((fn.__doc__ or "").split()))
            detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
            for line in detail.splitlines()[:20]:
                print("#   " + line)
        sys.stdout.flush()
    subprocess.run([NECTL, "terminate-enclave", "--all"], capture_output=True, timeout=120)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
