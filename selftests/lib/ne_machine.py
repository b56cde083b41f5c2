# SPDX-License-Identifier: GPL-2.0
"""What enclaves hold on the parent machine, as the Python suites count it.

Shared by selftests/enclave/enclave_test.py and tools/nectl/tests/guest_test.py
so that both judge leaks (hugepages, VM fds, holder processes) the same way.
"""
import glob
import os
import time

HP2M = "/sys/kernel/mm/hugepages/hugepages-2048kB"


def _hp2m(counter):
    with open(os.path.join(HP2M, counter)) as f:
        return int(f.read())


def free_2m():
    """Free 2 MiB hugepages (every page an enclave holds is missing here)."""
    return _hp2m("free_hugepages")


def resv_2m():
    """Reserved 2 MiB hugepages (mapped but not yet faulted in)."""
    return _hp2m("resv_hugepages")


def vm_fds():
    """Open enclave (VM) fds, in every process."""
    n = 0
    for link in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if os.readlink(link) == "anon_inode:ne-vm":
                n += 1
        except OSError:
            pass
    return n


def alive(pid):
    """True while pid exists and is not a zombie (a zombie holds nothing)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def holders():
    """Live nectl processes: the holders, when no other nectl is running."""
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"/nectl") and alive(int(d[6:])):
            pids.append(int(d[6:]))
    return pids


def settle(cond, seconds=10, step=0.1):
    """Polls cond() until it is true or seconds have passed; its last value."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def stuck_tasks(comms=()):
    """What the machine's tasks wait on, for a test that overran: every task
    in uninterruptible sleep (D), and every task named in COMMS, each with
    its state, wait channel and kernel stack.  Also asks the kernel to log
    its blocked tasks (sysrq w) so that the boot's kernel log keeps them."""
    lines = []
    for stat in sorted(glob.glob("/proc/[0-9]*/stat"), key=lambda p: int(p.split("/")[2])):
        text = _read(stat)
        if ")" not in text:
            continue
        pid = stat.split("/")[2]
        comm = text[text.index("(") + 1:text.rindex(")")]
        state = text[text.rindex(")") + 2:].split(" ", 1)[0]
        if state != "D" and comm not in comms:
            continue
        wchan = _read("/proc/%s/wchan" % pid) or "-"
        lines.append("task %s (%s) state %s wchan %s" % (pid, comm, state, wchan))
        lines += ["    " + l for l in _read("/proc/%s/stack" % pid).splitlines()]
    try:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("w")
    except OSError as e:
        lines.append("sysrq w: %s" % e)
    return lines or ["no task in D state, none of %s" % (", ".join(comms) or "-")]
