#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""nectl run on a parent with two NUMA nodes (TAP), inside make check's NUMA
stage (tools/ne-vm --cores 3 --numa: node 0 = CPUs 0-3, node 1 = CPUs 4-5,
boot-enclaves=off).

The CPU pool is node 1's core, both nodes have free 2 MiB hugepages enough
for the enclave, and nectl runs on a CPU of node 0.  The driver takes an
enclave's memory from the pool's node only (NE_ERR_MEM_DIFFERENT_NUMA_NODE):
nectl must take its hugepages there, not where it runs, as the kernel's
default policy would (a nectl that did failed here).  On a guest with one
node, or without a core to pool on node 1, it fails: it would test nothing.
Then node 1 one page short: E27 before any page is taken.  Puts back the
pool and the per-node hugepage counts it found (test 4).
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest_test  # noqa: E402
from guest_test import BUILD, NECTL, POOL, newc_cpio, parse_cpus, tap  # noqa: E402

NODE = "/sys/devices/system/node/node%d"
HP = NODE + "/hugepages/hugepages-2048kB/%s"


def read(path):
    with open(path) as f:
        return f.read().strip()


def write(path, text):
    with open(path, "w") as f:
        f.write(text + "\n")


def free(node):
    return int(read(HP % (node, "free_hugepages")))


def cpus(node):
    return parse_cpus(read(NODE % node + "/cpulist"))


def eif(tmp):
    """The guest's kernel and a tiny initramfs: the device boots nothing."""
    abi = read(os.path.join(BUILD, "kernel", "abi"))
    rd, out = os.path.join(tmp, "init.cpio"), os.path.join(tmp, "numa.eif")
    with open(rd, "wb") as f:
        f.write(newc_cpio([("init", 0o100755, b"#!/bin/sh\n"), ("dev", 0o40755, b"")]))
    r = subprocess.run([NECTL, "build-eif", "--kernel",
                        os.path.join(BUILD, "kernel", abi, "boot", "vmlinuz-" + abi),
                        "--cmdline", "console=ttyS0", "--ramdisk", rd, "-o", out],
                       capture_output=True, text=True)
    return out if r.returncode == 0 else r.stderr


def core_of(cpu):
    """@cpu and its hyperthread siblings, whole cores being what a pool takes."""
    path = "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list" % cpu
    return read(path)


def launch(image, mem_mib, cpus_):
    """nectl run on @cpus_ (all of one node: its prefault threads run there);
    (its result, node 0's and node 1's free pages taken while it runs)."""
    before = (free(0), free(1))
    try:
        r = subprocess.run(["taskset", "-c", ",".join(map(str, cpus_)), NECTL, "run",
                            "--eif-path", image, "--memory", str(mem_mib), "--cpu-count", "2",
                            "--no-heartbeat"], capture_output=True, text=True, timeout=120)
        return r, (before[0] - free(0), before[1] - free(1))
    finally:
        subprocess.run([NECTL, "terminate-enclave", "--all"], capture_output=True,
                       timeout=120)


def restore(pool, counts):
    """Puts back the pool and the per-node hugepage counts, each step on its
    own; the steps that failed, described."""
    errors = []
    r = subprocess.run([NECTL, "describe-enclaves"], capture_output=True, text=True,
                       timeout=60)
    if r.stdout.strip() not in ("", "[]"):
        errors.append("enclaves left: %s" % r.stdout.strip())
    for path, text in [(POOL, "\n"), (POOL, pool or "\n")] + [
            (HP % (n, "nr_hugepages"), counts[n]) for n in (0, 1)]:
        try:
            write(path, text)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    return errors


def main():
    print("TAP version 13")
    if not (os.path.isdir(NODE % 1) and os.path.exists(POOL)):
        print("1..1")
        tap(False, "a guest with two NUMA nodes and ne_kvm", "no node 1 or no %s" % POOL)
        return 1
    print("1..4")
    pool, counts = read(POOL), [read(HP % (n, "nr_hugepages")) for n in (0, 1)]
    try:
        write(POOL, "\n")      # node 1's CPUs online, to find a core
        pool1 = core_of(cpus(1)[0]) if cpus(1) else ""
        with tempfile.TemporaryDirectory() as tmp:
            image = eif(tmp)
            if not os.path.isfile(image):
                tap(False, "nectl build-eif of the guest's kernel", image)
                return 1
            mem = max(64, (os.path.getsize(image) >> 20) * 4 + 2 & ~1)
            need = mem // 2
            for n in (0, 1):     # room on both nodes: node 0's must be refused
                if free(n) < need:
                    write(HP % (n, "nr_hugepages"), str(int(counts[n]) + need - free(n)))
            if pool1:
                write(POOL, pool1)
            tap(pool1 and free(0) >= need and free(1) >= need,
                "pool '%s' (node 1's first core); free 2 MiB pages on node 0 and 1: %d and "
                "%d, %d needed" % (pool1, free(0), free(1), need))
            node0 = cpus(0)
            r, taken = launch(image, mem, node0)
            tap(r.returncode == 0 and taken == (0, need),
                "nectl run on node 0's CPUs %s, pool on node 1: %d MiB, %d pages from node 0 "
                "and %d from node 1 (exit %d)" % (read(NODE % 0 + "/cpulist"), mem, taken[0],
                                                  taken[1], r.returncode), r.stderr)
            # one page short on node 1, plenty on node 0: E27 before any
            # page is taken (a nectl that planned from every node took
            # node 0's page and the driver refused it: E29)
            nr1 = int(read(HP % (1, "nr_hugepages")))
            write(HP % (1, "nr_hugepages"), str(nr1 - free(1) + need - 1))
            r, taken = launch(image, mem, node0)
            tap(r.returncode == 27 and "NUMA node 1" in r.stderr and free(1) == need - 1 and
                taken == (0, 0),
                "node 1 one page short (%d free, %d on node 0): E27 naming node 1, no page "
                "taken (exit %d, %d and %d taken)" % (free(1), free(0), r.returncode, taken[0],
                                                     taken[1]), r.stderr)
    finally:
        errors = restore(pool, counts)
        tap(not errors, "no enclave left; the pool '%s' and the hugepage counts %s put back"
            % (pool, "/".join(counts)), "\n".join(errors))
    return 1 if guest_test.failed else 0


if __name__ == "__main__":
    sys.exit(main())
