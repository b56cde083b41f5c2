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
