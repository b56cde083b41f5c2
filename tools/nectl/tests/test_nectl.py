#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of nectl, printing TAP.

The EIF writer is checked by an independent reader written here with
Python's struct, zlib.crc32 and hashlib.sha384; the reader (describe-eif) by
a table of malformed files, run under an ASan/UBSan build too.  The C unit
tests (JSON, arguments, --config, hugepage planner...) are run and renumbered,
and their own summary line is checked against what they printed.

verify-attestation and pcr are tested in attest_tests.py, against real AWS
documents read from ../shared and against chains made at test time; signed
EIFs (build-eif's signing, describe-eif's and run's checks) in
eif_sign_tests.py, with keys made at test time.

Every random input comes from one seed, printed first; NE_SEED=<seed>
replays a run.
"""
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import zlib

import attest_tests
import eif_sign_tests

NECTL = os.environ.get("NECTL", "build/tools/nectl")
NECTL_ASAN = os.environ.get("NECTL_ASAN")
UNIT = os.environ.get("UNIT", "build/tools/nectl_unit_test")

count = 0
failed = 0


def tap(ok, name, detail=""):
    global count, failed
    count += 1
    if not ok:
        failed += 1
    name = name.replace("\n", " ")
    print(("ok" if ok else "not ok") + " %d - %s" % (count, name))
    if not ok and detail:
        for line in str(detail).splitlines()[:20]:
            print("#   " + line)
    sys.stdout.flush()


NOT_UTF8 = []    # (command, stream) of every nectl output that was not UTF-8


def nectl(*args, binary=None, env=None):
    """Runs nectl; its output is text.  Output that is not UTF-8 is kept
    (with U+FFFD) and recorded in NOT_UTF8, which a test at the end checks."""
    e = dict(os.environ)
    e["SOURCE_DATE_EPOCH"] = "1700000000"
    e.update(env or {})
    r = subprocess.run([binary or NECTL] + list(args), capture_output=True, env=e)
    for name in ("stdout", "stderr"):
        raw = getattr(r, name)
        try:
            setattr(r, name, raw.decode())
        except UnicodeDecodeError:
            NOT_UTF8.append((" ".join(str(a) for a in args[:2]), name))
            setattr(r, name, raw.decode(errors="replace"))
    return r


# ------------------------------------------------------ independent reader

HDR = 548


def parse_eif(data):
    """Parse an EIF the way the spec describes it (big-endian)."""
    magic, version, flags, mem, cpus, _res, nsec = struct.unpack_from(">4sHHQQHH", data, 0)
    offsets = struct.unpack_from(">32Q", data, 28)
    sizes = struct.unpack_from(">32Q", data, 284)
    (crc,) = struct.unpack_from(">I", data, 544)
    sections = []
    for i in range(nsec):
        stype, sflags, ssize = struct.unpack_from(">HHQ", data, offsets[i])
        body = data[offsets[i] + 12: offsets[i] + 12 + ssize]
        sections.append((stype, sflags, ssize, sizes[i], offsets[i], body))
    return dict(magic=magic, version=version, flags=flags, mem=mem, cpus=cpus, nsec=nsec,
                offsets=offsets, sizes=sizes, crc=crc, sections=sections)


def pcr(data):
    return hashlib.sha384(b"\0" * 48 + hashlib.sha384(data).digest()).hexdigest()


def expected_pcrs(kernel, cmdline, ramdisks):
    return (pcr(kernel + cmdline + b"".join(ramdisks)),
            pcr(kernel + cmdline + ramdisks[0]),
            pcr(b"".join(ramdisks[1:])))


def meta_json(drop=None, **fields):
    """A metadata section nitro-cli reads; fields replace keys (build keys too), drop removes one."""
    build = {"BuildTime": "2023-11-14T22:13:20+00:00", "BuildTool": "t", "BuildToolVersion": "1",
             "OperatingSystem": "Linux", "KernelVersion": "6.1"}
    meta = {"ImageName": "n", "ImageVersion": "1.0", "BuildMetadata": build, "DockerInfo": None,
            "CustomMetadata": {"team": "x"}}
    for key, value in fields.items():
        (build if key in build else meta)[key] = value
    for d in (meta, build):
        d.pop(drop, None)
    return json.dumps(meta).encode()


def make_eif(sections, version=4, crc=None, nsec=None, offsets=None, sizes=None, gap_after=None,
             table=None):
    """A hand-made EIF (for the malformed table), sections = [(type, flags, body)].

    gap_after=i puts 8 bytes after section i (-1: after the header); table
    lists the header's entries in another order than the file's."""
    off = HDR
    offs, szs, body = [], [], b""
    if gap_after == -1:
        body, off = b"\0" * 8, off + 8
    for i, (stype, sflags, data) in enumerate(sections):
        offs.append(off)
        szs.append(len(data))
        body += struct.pack(">HHQ", stype, sflags, len(data)) + data
        off += 12 + len(data)
        if gap_after == i:
            body, off = body + b"\0" * 8, off + 8
    if table:
        offs, szs = [offs[i] for i in table], [szs[i] for i in table]
    offs = offsets or offs
    szs = sizes or szs
    hdr = struct.pack(">4sHHQQHH", b".eif", version, 0, 1 << 30, 2, 0,
                      len(sections) if nsec is None else nsec)
    hdr += struct.pack(">32Q", *(list(offs) + [0] * (32 - len(offs))))
    hdr += struct.pack(">32Q", *(list(szs) + [0] * (32 - len(szs))))
    hdr += b"\0" * 4
    c = zlib.crc32(hdr + body) if crc is None else crc
    return hdr + struct.pack(">I", c) + body


def main():
    tmp = tempfile.mkdtemp(prefix="nectl-test.")
    seed = int(os.environ.get("NE_SEED") or str(random.SystemRandom().randrange(1 << 32)), 0)
    print("# seed %d (replay with NE_SEED=%d)" % (seed, seed))
    rnd = random.Random(seed)

    def write(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # -- C unit tests, renumbered
    r = subprocess.run([UNIT], capture_output=True, text=True)
    unit_results = unit_failed = 0
    for line in r.stdout.splitlines():
        if line.startswith("ok ") or line.startswith("not ok "):
            ok = line.startswith("ok ")
            unit_results += 1
            unit_failed += not ok
            tap(ok, "unit: " + line.split(" - ", 1)[1])
    # Its last line is "# N tests, F failed": N results printed, F of them
    # "not ok", and exit status 1 exactly when F is not 0.
    m = re.search(r"^# (\d+) tests, (\d+) failed$", r.stdout, re.M)
    summary = m.group(0) if m else "no summary line"
    tap(m is not None and unit_results > 0 and int(m.group(1)) == unit_results and
        int(m.group(2)) == unit_failed and r.returncode == (1 if unit_failed else 0),
        "unit: the C unit test's summary (%s) matches its %d results, %d failed, exit %d" %
        (summary.lstrip("# "), unit_results, unit_failed, r.returncode), r.stderr)

    # -- build-eif round trip
    kernel = rnd.randbytes(300000)
    ramdisks = [rnd.randbytes(100000), rnd.randbytes(5000), rnd.randbytes(1)]
    cmdline = b"reboot=k panic=30 pci=off console=ttyS0"
    kpath = write("bzImage", kernel)
    rpaths = [write("rd%d.cpio" % i, d) for i, d in enumerate(ramdisks)]
    custom = write("custom.json", b'{"Team": "ne-kvm", "Build": 7}')
    out = os.path.join(tmp, "round.eif")
    args = ["build-eif", "--kernel", kpath, "--cmdline", cmdline.decode(), "-o", out,
            "--name", "img", "--version", "2.1", "--metadata", custom]
    for p in rpaths:
        args += ["--ramdisk", p]
    r = nectl(*args)
    tap(r.returncode == 0, "build-eif succeeds", r.stderr)
    data = open(out, "rb").read()
    e = parse_eif(data)
    tap(e["magic"] == b".eif" and e["version"] == 4 and e["flags"] == 0,
        "EIF header: magic .eif, version 4, x86_64 flags")
    tap(e["mem"] == 1 << 30 and e["cpus"] == 2, "EIF header: default_mem 1 GiB, default_cpus 2")
    types = [s[0] for s in e["sections"]]
    tap(types == [1, 2, 5, 3, 3, 3], "sections in the standard order kernel, cmdline, metadata, ramdisks",
        types)
    off = HDR
    ok = True
    for s in e["sections"]:
        ok &= s[4] == off and s[2] == s[3] and s[1] == 0
        off += 12 + s[2]
    tap(ok and off == len(data), "sections back to back, header sizes equal section sizes, flags 0")
    tap(all(e["offsets"][i] == 0 and e["sizes"][i] == 0 for i in range(e["nsec"], 32)),
        "unused section slots are zero")
    bodies = [s[5] for s in e["sections"]]
    tap(bodies[0] == kernel and bodies[1] == cmdline and bodies[3:] == ramdisks,
        "kernel, cmdline (no NUL) and ramdisks stored unchanged")
    tap(e["crc"] == zlib.crc32(data[:544] + data[548:]),
        "CRC-32 (zlib) over everything but the CRC field matches")
    meta = json.loads(bodies[2])
    tap(meta["ImageName"] == "img" and meta["ImageVersion"] == "2.1" and
        meta["BuildMetadata"]["BuildTool"] == "nectl" and
        meta["BuildMetadata"]["BuildTime"] == "2023-11-14T22:13:20+00:00" and
        meta["CustomMetadata"] == {"Team": "ne-kvm", "Build": 7},
        "metadata section is JSON with ImageName, ImageVersion, BuildMetadata, CustomMetadata",
        bodies[2])
    p0, p1, p2 = expected_pcrs(kernel, cmdline, ramdisks)
    try:
        built = json.loads(r.stdout)["Measurements"]
    except ValueError:
        built = {}
    tap(built.get("PCR0") == p0 and built.get("PCR1") == p1 and built.get("PCR2") == p2 and
        built.get("HashAlgorithm") == "Sha384 { ... }",
        "build-eif prints PCR0/1/2 equal to hashlib's extend-from-zero", r.stdout)
    r = nectl("describe-eif", out)
    try:
        d = json.loads(r.stdout)
    except ValueError:
        d = {}
    tap(r.returncode == 0 and d.get("EifVersion") == 4 and d.get("CheckCRC") is True and
        d.get("IsSigned") is False, "describe-eif: EifVersion 4, CheckCRC true, IsSigned false",
        r.stdout + r.stderr)
    m = d.get("Measurements", {})
    tap((m.get("PCR0"), m.get("PCR1"), m.get("PCR2")) == (p0, p1, p2),
        "describe-eif PCRs match hashlib")
    tap(d.get("ImageName") == "img" and d.get("ImageVersion") == "2.1" and
        d.get("Metadata", {}).get("Team") == "ne-kvm" and
        d.get("Metadata", {}).get("BuildTool") == "nectl",
        "describe-eif shows ImageName, ImageVersion and flattened metadata", r.stdout)
    r2 = nectl("describe-eif", "--eif-path", out)
    tap(r2.returncode == 0 and r2.stdout == r.stdout, "describe-eif --eif-path FILE works the same")
    r2 = nectl("describe-eif", "--eif-path=" + out)
    tap(r2.returncode == 0 and r2.stdout == r.stdout, "describe-eif --eif-path=FILE works the same")
    # --option=value everywhere (getopt_long), as clap takes it.
    out_eq = os.path.join(tmp, "round-eq.eif")
    args = ["build-eif", "--kernel=" + kpath, "--cmdline=" + cmdline.decode(), "--output=" + out_eq,
            "--name=img", "--version=2.1", "--metadata=" + custom] + ["--ramdisk=" + p for p in rpaths]
    r2 = nectl(*args)
    tap(r2.returncode == 0 and json.loads(r2.stdout or "{}") == {"Measurements": built} if built else False,
        "build-eif with --option=value: the same measurements", r2.stderr)
    r2 = nectl("pcr", "--input=" + kpath)
    tap(r2.returncode == 0 and json.loads(r2.stdout or "{}") == {"PCR": pcr(kernel)}, "pcr --input=FILE",
        r2.stderr)
    r2 = nectl("explain", "--error-code=E29")
    tap(r2.returncode == 0 and r2.stdout.startswith("E29  ioctl failure"), "explain --error-code=E29",
        r2.stderr)
    r2 = nectl("describe-enclaves", "--metadata")
    tap(r2.returncode == 0 and r2.stdout.startswith("["), "describe-enclaves --metadata", r2.stderr)
    for cmd, extra in (("terminate-enclave", []), ("console", ["--disconnect-timeout=0"])):
        r2 = nectl(cmd, "--enclave-name=nope", *extra)
        tap(r2.returncode == 58, "%s --enclave-name=nope %s: E58" % (cmd, " ".join(extra)), r2.stderr)
    r2 = nectl("verify-attestation", "--document=/nonexistent.cose", "--root-cert=/nonexistent.pem")
    tap(r2.returncode == 74 and "/nonexistent.pem" in r2.stderr,
        "verify-attestation --root-cert=PEM is read as the root", r2.stderr)

    # A single ramdisk: PCR2 is the extend of empty data; default name from -o.
    out1 = os.path.join(tmp, "single.eif")
    r = nectl("build-eif", "--kernel", kpath, "--cmdline", "x", "--ramdisk", rpaths[0], "-o", out1)
    d = json.loads(nectl("describe-eif", out1).stdout or "{}")
    tap(r.returncode == 0 and d.get("Measurements", {}).get("PCR2") == pcr(b"") and
        d.get("Measurements", {}).get("PCR1") == pcr(kernel + b"x" + ramdisks[0]) and
        d.get("ImageName") == "single" and d.get("ImageVersion") == "1.0",
        "one ramdisk: PCR1 covers it, PCR2 is empty; name defaults to the output name")

    # Deep custom metadata (the registry and the writer once broke at 32
    # levels): 31 and 126 levels are kept whole, 127 would make a metadata
    # section nitro-cli cannot read (serde_json stops at 127 levels).
    def nested(depth):
        return "{\"a\":" * depth + "1" + "}" * depth
    for depth in (31, 126):
        outd = os.path.join(tmp, "deep%d.eif" % depth)
        r = nectl("build-eif", "--kernel", kpath, "--cmdline", "x", "--ramdisk", rpaths[0], "-o", outd,
                  "--metadata", write("deep.json", nested(depth).encode()))
        d = nectl("describe-eif", outd)
        try:
            shown = json.loads(d.stdout).get("Metadata", {}).get("a")
        except ValueError:
            shown = None
        tap(r.returncode == 0 and d.returncode == 0 and
            json.dumps(shown) == json.dumps(json.loads(nested(depth))["a"]),
            "build-eif --metadata nested %d deep: describe-eif shows it whole" % depth,
            r.stderr + d.stderr)
    outd = os.path.join(tmp, "deep127.eif")
    r = nectl("build-eif", "--kernel", kpath, "--cmdline", "x", "--ramdisk", rpaths[0], "-o", outd,
              "--metadata", write("deep.json", nested(127).encode()))
    tap(r.returncode == 48 and "nested deeper than 126" in r.stderr and not os.path.exists(outd),
        "build-eif --metadata nested 127 deep: E48, nothing written", r.stderr)

    # Ramdisk limits: 29 fit (32 sections), 30 do not.
    small = write("tiny.cpio", b"x")
    out29 = os.path.join(tmp, "r29.eif")
    r = nectl("build-eif", "--kernel", kpath, "--cmdline", "x", "-o", out29, *(["--ramdisk", small] * 29))
    tap(r.returncode == 0 and parse_eif(open(out29, "rb").read())["nsec"] == 32 and
        nectl("describe-eif", out29).returncode == 0, "29 ramdisks: 32 sections, readable", r.stderr)
    r = nectl("build-eif", "--kernel", kpath, "--cmdline", "x", "-o", os.path.join(tmp, "r30.eif"),
              *(["--ramdisk", small] * 30))
    tap(r.returncode == 48 and "[ E48 ]" in r.stderr and not os.path.exists(os.path.join(tmp, "r30.eif")),
        "30 ramdisks refused with E48, nothing written", r.stderr)
    for name, extra, code in [
            ("no kernel", ["--cmdline", "x", "--ramdisk", small, "-o", out1], 1),
            ("no ramdisk", ["--kernel", kpath, "--cmdline", "x", "-o", out1], 1),
            ("missing kernel file", ["--kernel", "/nonexistent", "--cmdline", "x", "--ramdisk", small,
                                     "-o", os.path.join(tmp, "nk.eif")], 48),
            ("empty ramdisk", ["--kernel", kpath, "--cmdline", "x", "--ramdisk", write("e.cpio", b""),
                               "-o", os.path.join(tmp, "er.eif")], 48),
            ("unwritable output", ["--kernel", kpath, "--cmdline", "x", "--ramdisk", small,
                                   "-o", "/nonexistent/dir/x.eif"], 48),
            ("bad --metadata JSON", ["--kernel", kpath, "--cmdline", "x", "--ramdisk", small,
                                     "--metadata", write("bad.json", b"{nope"), "-o", out1], 48),
            ("missing --metadata", ["--kernel", kpath, "--cmdline", "x", "--ramdisk", small,
                                    "--metadata", os.path.join(tmp, "none.json"), "-o", out1], 48),
            ("unknown option", ["--kernel", kpath, "--bogus"], 3)]:
        r = nectl("build-eif", *extra)
        tap(r.returncode == code and ("[ E%02d ]" % code) in r.stderr,
            "build-eif %s: exit %d with one clear error" % (name, code), r.stderr)

    # -- malformed and hostile files
    k, c, rd = (1, 0, b"K" * 100), (2, 0, b"console=ttyS0"), (3, 0, b"R" * 50)
    md = (5, 0, meta_json())
    good = make_eif([k, c, md, rd])
    tap(nectl("describe-eif", write("good.eif", good)).returncode == 0,
        "the hand-made reference EIF is accepted")
    big = (1 << 64) - 1
    # Standard offsets of [k, c, md, rd], and the sizes of their data.
    sz = [len(x[2]) for x in (k, c, md, rd)]
    o = [HDR]
    for n in sz[:-1]:
        o.append(o[-1] + 12 + n)
    cases = [
        ("empty file", b""),
        ("truncated header (547 bytes)", good[:547]),
        ("header only", good[:548]),
        ("truncated in the last section", good[:-1]),
        ("truncated in a section header", good[:548 + 12 + 100 + 5]),
        ("bad magic", b"EIF." + good[4:]),
        ("version 0", make_eif([k, c, md, rd], version=0)),
        ("version 5", make_eif([k, c, md, rd], version=5)),
        ("zero sections", make_eif([k, c, md, rd], nsec=0)),
        ("33 sections", make_eif([k, c, md, rd], nsec=33)),
        ("65535 sections", make_eif([k, c, md, rd], nsec=65535)),
        ("section offset past the end", make_eif([k, c, md, rd], offsets=o[:3] + [1 << 40])),
        ("section offset inside the header", make_eif([k, c, md, rd], offsets=o[:3] + [100])),
        ("section offset 2^64-1", make_eif([k, c, md, rd], offsets=o[:3] + [big])),
        ("section size 2^64-1 (overflow)", make_eif([k, c, md, (3, 0, b"")], sizes=sz[:3] + [big])),
        ("section size past the end", make_eif([k, c, md, rd], sizes=sz[:3] + [51])),
        ("header and section sizes differ", make_eif([k, c, md, rd], sizes=sz[:3] + [49])),
        ("overlapping sections", make_eif([k, c, md, rd], offsets=[o[0], o[0], o[2], o[3]])),
        # nitro-cli reads the sections back to back to the end of the file
        ("one trailing byte", good + b"\0"),
        ("12 trailing zero bytes (nitro-cli: an invalid section)", good + b"\0" * 12),
        ("4 KiB of trailing bytes", good + b"x" * 4096),
        ("a gap between two sections", make_eif([k, c, md, rd], gap_after=1)),
        ("a gap after the header", make_eif([k, c, md, rd], gap_after=-1)),
        # the metadata as nitro-cli's EifIdentityInfo types it
        ("metadata without ImageName", make_eif([k, c, (5, 0, meta_json(drop="ImageName")), rd])),
        ("metadata ImageName a number", make_eif([k, c, (5, 0, meta_json(ImageName=7)), rd])),
        ("metadata ImageVersion null", make_eif([k, c, (5, 0, meta_json(ImageVersion=None)), rd])),
        ("metadata without BuildMetadata", make_eif([k, c, (5, 0, meta_json(drop="BuildMetadata")), rd])),
        ("metadata BuildMetadata a string", make_eif([k, c, (5, 0, meta_json(BuildMetadata="b")), rd])),
        ("metadata BuildTime a number", make_eif([k, c, (5, 0, meta_json(BuildTime=1)), rd])),
        ("metadata without KernelVersion", make_eif([k, c, (5, 0, meta_json(drop="KernelVersion")), rd])),
        ("metadata without DockerInfo", make_eif([k, c, (5, 0, meta_json(drop="DockerInfo")), rd])),
        ("metadata without CustomMetadata", make_eif([k, c, (5, 0, meta_json(drop="CustomMetadata")), rd])),
        ("metadata is a string", make_eif([k, c, (5, 0, b'"meta"'), rd])),
        ("metadata is empty", make_eif([k, c, (5, 0, b""), rd])),
        ("invalid section type 0", make_eif([(0, 0, b"K" * 100), c, md, rd])),
        ("unknown section type 9", make_eif([k, c, md, rd, (9, 0, b"?")])),
        ("non-zero section flags", make_eif([k, (2, 1, b"console=ttyS0"), md, rd])),
        ("no kernel", make_eif([c, md, rd])),
        ("two kernels", make_eif([k, k, c, md, rd])),
        ("no ramdisk", make_eif([k, c, md])),
        ("two metadata sections", make_eif([k, c, md, md, rd])),
        ("metadata is not JSON", make_eif([k, c, (5, 0, b"{not json"), rd])),
        ("metadata is a JSON array", make_eif([k, c, (5, 0, b"[1]"), rd])),
        ("metadata deeper than the parser allows", make_eif([k, c, (5, 0, b"[" * 10000), rd])),
        ("metadata over 1 MiB", make_eif([k, c, (5, 0, b" " * ((1 << 20) + 1)), rd])),
        ("unused slot not zero", good[:28 + 8 * 4] + struct.pack(">Q", 5) + good[28 + 8 * 5:]),
        ("a directory", None),
    ]
    for name, blob in cases:
        path = tmp if blob is None else write("bad.eif", blob)
        for binary in [NECTL] + ([NECTL_ASAN] if NECTL_ASAN else []):
            r = nectl("describe-eif", path, binary=binary)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            ok = r.returncode == 35 and len(lines) == 1 and lines[0].startswith("[ E35 ]") and not r.stdout
            tap(ok, "%s: %s refused with one E35 line" %
                ("asan" if binary != NECTL else "describe-eif", name), r.stderr + r.stdout)
    # CRC mismatch: the JSON is still shown (as nitro-cli does), with an E35 error.
    bad_crc = good[:544] + struct.pack(">I", zlib.crc32(good[:544] + good[548:]) ^ 1) + good[548:]
    flipped = bytearray(good)
    flipped[548 + 12 + 50] ^= 0x40  # inside the kernel data
    for name, blob in [("CRC field wrong", bad_crc), ("one data bit flipped", bytes(flipped))]:
        r = nectl("describe-eif", write("crc.eif", blob))
        try:
            d = json.loads(r.stdout)
        except ValueError:
            d = {}
        tap(r.returncode == 35 and d.get("CheckCRC") is False and "CRC mismatch" in r.stderr,
            "CRC mismatch (%s): CheckCRC false and E35" % name, r.stdout + r.stderr)
    # An image without a metadata section (EIF v3): nitro-cli omits the three keys.
    r = nectl("describe-eif", write("nometa.eif", make_eif([k, c, rd])))
    try:
        d = json.loads(r.stdout)
    except ValueError:
        d = {}
    tap(r.returncode == 0 and "EifVersion" in d and
        not {"ImageName", "ImageVersion", "Metadata", "SigningCertificate", "SignatureCheck"} & set(d),
        "describe-eif without a metadata section omits ImageName, ImageVersion, Metadata (no nulls)",
        r.stdout + r.stderr)
    # Random corruption never crashes (fuzz with a fixed seed, ASan build when there is one).
    crashes = []
    for i in range(150):
        blob = bytearray(good)
        for _ in range(rnd.randint(1, 8)):
            pos = rnd.randrange(len(blob))
            blob[pos] = rnd.getrandbits(8)
        r = nectl("describe-eif", write("fuzz.eif", bytes(blob)), binary=NECTL_ASAN or NECTL)
        if r.returncode not in (0, 17, 35):
            crashes.append((i, r.returncode, r.stderr[-300:]))
    tap(not crashes, "150 randomly corrupted EIFs: exit 0, 17 or 35, never a crash", crashes[:3])

    # What nitro-cli's reader takes that a strict one might not.
    rd2 = (3, 0, b"S" * 30)
    table_order = make_eif([k, c, md, rd, rd2], table=[0, 1, 2, 4, 3])
    r = nectl("describe-eif", write("order.eif", table_order))
    m = (json.loads(r.stdout or "{}")).get("Measurements", {})
    tap(r.returncode == 0 and m.get("PCR1") == pcr(k[2] + c[2] + rd[2]) and m.get("PCR2") == pcr(rd2[2]),
        "sections listed out of file order: measured in file order, as nitro-cli (PCR1 has the first "
        "ramdisk of the file)", r.stdout + r.stderr)
    for name, meta, shown in [
            ("null metadata", b"null", None),
            ("unknown metadata keys", meta_json(Extra=[1], BuildExtra=2), "ok"),
            ("DockerInfo and CustomMetadata null", meta_json(DockerInfo=None, CustomMetadata=None), "ok"),
            ("DockerInfo of any type", meta_json(DockerInfo=[1, "x"]), "ok")]:
        r = nectl("describe-eif", write("meta.eif", make_eif([k, c, (5, 0, meta), rd])))
        try:
            d = json.loads(r.stdout)
        except ValueError:
            d = {}
        ok = r.returncode == 0 and ("Metadata" in d) == (shown is not None)
        ok &= "Extra" not in d.get("Metadata", {}) and "BuildExtra" not in d.get("Metadata", {})
        tap(ok, "describe-eif takes %s, as nitro-cli" % name, r.stdout + r.stderr)
    for custom in ("x", [1], 5, True):
        r = nectl("describe-eif", write("meta.eif", make_eif([k, c, (5, 0, meta_json(CustomMetadata=custom)), rd])))
        tap(r.returncode == 17 and not r.stdout and "CustomMetadata" in r.stderr,
            "describe-eif, CustomMetadata %s: E17 and no JSON, as nitro-cli (serde cannot flatten it)"
            % json.dumps(custom), r.stdout + r.stderr)
    # Metadata that is not UTF-8 is not JSON (serde_json refuses it): E35, nothing echoed.
    for name, meta in (("a custom value", meta_json().replace(b'"team": "x"', b'"team": "\xd8x"')),
                       ("ImageName", meta_json().replace(b'"ImageName": "n"', b'"ImageName": "\xff"'))):
        r = nectl("describe-eif", write("meta.eif", make_eif([k, c, (5, 0, meta), rd])))
        tap(r.returncode == 35 and "UTF-8" in r.stderr and "\ufffd" not in r.stdout + r.stderr,
            "describe-eif, metadata with %s that is not UTF-8: E35, nothing of it printed" % name,
            r.stdout + r.stderr)
    # run refuses before launching what describe-eif refuses (nitro-cli fails later, in describe-enclaves).
    for name, blob in (("trailing bytes", good + b"\0"),
                       ("metadata ImageName a number", make_eif([k, c, (5, 0, meta_json(ImageName=7)), rd]))):
        r = nectl("run", "--eif-path", write("runbad.eif", blob), "--memory", "64", "--cpu-count", "2")
        tap(r.returncode == 35, "run refuses an image with %s: E35 before the device" % name, r.stderr)

    # -- run: argument and config errors, checked before any device access
    eif = out1
    cfg = write("cfg.json", json.dumps({"eif_path": eif, "memory_mib": 64, "cpu_count": 2}).encode())
    runs = [
        ("no arguments", [], 1),
        ("--memory not a number", ["--eif-path", eif, "--memory", "lots", "--cpu-count", "2"], 3),
        ("--memory 512MB (not a nitro-cli unit)", ["--eif-path", eif, "--memory", "512MB", "--cpu-count", "2"], 3),
        ("--memory 0", ["--eif-path", eif, "--memory", "0", "--cpu-count", "2"], 26),
        ("--memory=0G", ["--eif-path", eif, "--memory=0G", "--cpu-count", "2"], 26),
        ("--memory 62M (below 64 MiB)", ["--eif-path", eif, "--memory", "62M", "--cpu-count", "2"], 26),
        ("--enclave-cid 3", ["--eif-path", eif, "--memory", "64", "--cpu-count", "2", "--enclave-cid", "3"], 3),
        ("--config with --memory", ["--config", cfg, "--memory", "64"], 2),
        ("--config with a wrong type", ["--config", write("c2.json", b'{"eif_path": "a", "memory_mib": "1G", "cpu_count": 2}')], 17),
        ("--config without memory_mib", ["--config", write("c2b.json", b'{"eif_path": "a", "cpu_count": 2}')], 17),
        ("--config with debug_mode null", ["--config", write("c2c.json", b'{"eif_path": "a", "memory_mib": 64, "cpu_count": 2, "debug_mode": null}')], 17),
        ("--config missing", ["--config", os.path.join(tmp, "none.json")], 19),
        ("--config not JSON", ["--config", write("c3.json", b"eif_path: a")], 17),
        ("missing EIF", ["--eif-path", "/nonexistent.eif", "--memory", "64", "--cpu-count", "2"], 19),
        ("corrupt EIF", ["--eif-path", write("c.eif", bytes(flipped)), "--memory", "64", "--cpu-count", "2"], 35),
        ("memory below 64 MiB", ["--eif-path", eif, "--memory", "62", "--cpu-count", "2"], 26),
        ("memory below 4 x EIF", ["--eif-path", write("big.eif", make_eif([(1, 0, b"K" * (17 << 20)), c, rd])),
                                  "--memory", "64", "--cpu-count", "2"], 26),
    ]
    for name, args, code in runs:
        r = nectl("run", *args)
        lines = [l for l in r.stderr.splitlines() if l.startswith("[ E")]
        tap(r.returncode == code and len(lines) == 1 and lines[0].startswith("[ E%02d ]" % code),
            "run %s: E%02d" % (name, code), r.stderr)
    if not os.path.exists("/dev/nitro_enclaves"):
        r = nectl("run", "--config", cfg)
        tap(r.returncode == 19 and "insmod ne_kvm.ko" in r.stderr,
            "run --config reaches the device check: E19 names the missing driver", r.stderr)
        # What nitro-cli's serde reader takes: nulls for its Option fields, unknown keys.
        loose = write("loose.json", json.dumps({"eif_path": eif, "memory_mib": 64, "cpu_count": 2,
                                                "cpu_ids": None, "enclave_cid": None,
                                                "enclave_name": None, "comment": "mine",
                                                "extra": {"x": [1]}}).encode())
        r = nectl("run", "--config=" + loose, "--attach-console")
        tap(r.returncode == 19 and "insmod ne_kvm.ko" in r.stderr,
            "run --config with nulls, unknown keys and --attach-console reaches the device check", r.stderr)

    # -- help, explain, unknown commands
    for cmd in ["build-eif", "describe-eif", "run", "describe-enclaves", "terminate-enclave", "console",
                "explain", "verify-attestation", "pcr"]:
        r = nectl(cmd, "--help")
        tap(r.returncode == 0 and "Usage: nectl" in r.stdout, "%s --help" % cmd, r.stderr)
    r = nectl("--help")
    tap(r.returncode == 0 and "Commands:" in r.stdout, "nectl --help")
    r = nectl("explain")
    codes = [l.split()[0] for l in r.stdout.splitlines() if l.startswith("E")]
    ok = r.returncode == 0 and len(codes) > 20
    for code in codes:
        e2 = nectl("explain", code)
        ok &= e2.returncode == 0 and ("Exit status: %d." % int(code[1:])) in e2.stdout
    tap(ok, "explain lists %d codes and explains each" % len(codes))
    readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")).read()
    documented = [l.split("|")[1].strip() for l in readme.splitlines() if l.startswith("| E")]
    tap(documented == codes, "the README's error table lists exactly the codes of nectl explain",
        (documented, codes))
    r = nectl("explain", "E99")
    tap(r.returncode == 3 and "[ E03 ]" in r.stderr, "explain E99: unknown code is E03")
    r = nectl("frobnicate")
    tap(r.returncode == 3 and "[ E03 ]" in r.stderr, "unknown command is E03")
    r = nectl("describe-enclaves", "--bogus")
    tap(r.returncode == 3, "describe-enclaves --bogus is E03")
    r = nectl("terminate-enclave")
    tap(r.returncode == 1, "terminate-enclave without a selector is E01")
    r = nectl("terminate-enclave", "--all", "--enclave-name", "x")
    tap(r.returncode == 2, "terminate-enclave --all --enclave-name is E02")
    r = nectl("console", "--enclave-id", "x", "--disconnect-timeout", "soon")
    tap(r.returncode == 3, "console --disconnect-timeout soon is E03, as nitro-cli", r.stderr)
    # No enclave runs on the build host: an unknown name is nitro-cli's E58, an id nectl's E70.
    for cmd in ("console", "terminate-enclave"):
        r = nectl(cmd, "--enclave-name", "nope", "--disconnect-timeout", "0") if cmd == "console" \
            else nectl(cmd, "--enclave-name", "nope")
        tap(r.returncode == 58 and "no enclave is named 'nope'" in r.stderr,
            "%s --enclave-name nope: E58" % cmd, r.stderr)
        r = nectl(cmd, "--enclave-id", "i-0000000000000000-enc1234")
        tap(r.returncode == 70, "%s --enclave-id of no enclave: E70" % cmd, r.stderr)

    # -- nectl allocate against a fake sysfs (NECTL_SYSFS): 8 CPUs, 2 threads
    # per core (n and n+4), node 0 = 0-1,4-5, node 1 = 2-3,6-7; an offline
    # CPU is in no node's cpulist, and keeps its cpuN/nodeM link
    def fake_sysfs(pool="", loaded=True, offline=()):
        root = os.path.join(tmp, "sysfs.%d" % count)
        def put(rel, text):
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text + "\n")
        def cpus(ids):
            return ",".join(str(c) for c in ids if c not in offline)
        put("devices/system/cpu/online", cpus(range(8)))
        for c in range(8):
            put("devices/system/cpu/cpu%d/topology/thread_siblings_list" % c,
                "%d,%d" % (c % 4, c % 4 + 4))
            os.makedirs(os.path.join(root, "devices/system/cpu/cpu%d/node%d" % (c, c % 4 // 2)))
        put("devices/system/node/node0/cpulist", cpus((0, 1, 4, 5)))
        put("devices/system/node/node1/cpulist", cpus((2, 3, 6, 7)))
        for n in (0, 1):
            for kb, nr in ((1048576, 1), (2048, 0)):
                put("devices/system/node/node%d/hugepages/hugepages-%dkB/nr_hugepages" % (n, kb), str(nr))
                put("devices/system/node/node%d/hugepages/hugepages-%dkB/free_hugepages" % (n, kb), str(nr))
        if loaded:
            put("module/ne_kvm/parameters/ne_cpus", pool)
        return root

    def sysfs_read(root, rel):
        with open(os.path.join(root, rel)) as f:
            return f.read().strip()

    def allocate(text, root):
        return nectl("allocate", "--config", write("allocator.yaml", text.encode()),
                     env={"NECTL_SYSFS": root})

    root = fake_sysfs()
    r = allocate("---\nmemory_mib: 516\ncpu_count: 2\n", root)
    node0 = "devices/system/node/node0/hugepages/hugepages-%dkB/nr_hugepages"
    tap(r.returncode == 0 and sysfs_read(root, "module/ne_kvm/parameters/ne_cpus") == "1,5" and
        sysfs_read(root, node0 % 1048576) == "0" and sysfs_read(root, node0 % 2048) == "258" and
        "CPU pool 1,5; 516 MiB of hugepages on node 0: 258 x 2 MiB" in r.stdout,
        "allocate: cpu_count 2 = core 1,5 on CPU 0's node; 516 MiB = 258 x 2 MiB there, "
        "the old 1 GiB page cleared", r.stdout + r.stderr)
    root = fake_sysfs(pool="1,5")
    r = allocate("memory_mib: 2048\ncpu_pool: 2-3,6-7\n", root)
    node1 = "devices/system/node/node1/hugepages/hugepages-%dkB/nr_hugepages"
    tap(r.returncode == 0 and sysfs_read(root, "module/ne_kvm/parameters/ne_cpus") == "2-3,6-7" and
        sysfs_read(root, node1 % 1048576) == "2" and sysfs_read(root, node1 % 2048) == "0" and
        sysfs_read(root, node0 % 1048576) == "1",
        "allocate: cpu_pool on node 1 gets its 2 x 1 GiB there; node 0 untouched",
        r.stdout + r.stderr)
    root = fake_sysfs(offline=(3, 7))
    r = allocate("memory_mib: 512\ncpu_pool: 2-3,6-7\n", root)
    tap(r.returncode == 0 and sysfs_read(root, "module/ne_kvm/parameters/ne_cpus") == "2-3,6-7" and
        sysfs_read(root, node1 % 2048) == "256",
        "allocate: cpu_pool 2-3,6-7 with CPUs 3 and 7 offline by hand: node 1 from their links "
        "(not \"not present\"), 256 x 2 MiB there", r.stdout + r.stderr)
    for text, code, words, what in (
            (None, 19, "cannot read", "no allocator.yaml"),
            ("memory_mib: 512\ncpu_count: 2\ncpu_pool: 1,5\n", 17, "both given", "both cpu_count and cpu_pool"),
            ("memory_mib: 512\ncpus: 2\n", 17, "line 2: unknown key \"cpus\"", "an unknown key"),
            ("memory_mib: 512\ncpu_count: 4\n", 22, "node 0 of CPU 0 has 2 CPUs", "too many CPUs for CPU 0's node"),
            ("memory_mib: 512\ncpu_pool: 1,2\n", 22, "spans NUMA nodes 0 and 1", "a pool over two nodes")):
        root = fake_sysfs(pool="3,7")
        r = nectl("allocate", "--config", os.path.join(tmp, "none.yaml"), env={"NECTL_SYSFS": root}) \
            if text is None else allocate(text, root)
        tap(r.returncode == code and words in r.stderr and
            sysfs_read(root, "module/ne_kvm/parameters/ne_cpus") == "3,7" and
            sysfs_read(root, node0 % 1048576) == "1",
            "allocate: %s is E%d naming it (\"%s\"), nothing changed" % (what, code, words), r.stderr)
    r = allocate("memory_mib: 512\ncpu_count: 2\n", fake_sysfs(loaded=False))
    tap(r.returncode == 19 and "is ne_kvm loaded?" in r.stderr,
        "allocate: ne_kvm not loaded is E19 saying so", r.stderr)

    # -- the man page names every command and option the --help texts name
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nectl.1")) as f:
        man = f.read().replace("\\-", "-")
    helptext = nectl("--help").stdout
    commands = [c for c in re.findall(r"^  ([a-z][a-z-]+)[ ,]", helptext, re.M) if c != "help"]
    missing = []
    for cmd in commands:
        if ".SS " + cmd not in man:
            missing.append(".SS " + cmd)
        for opt in set(re.findall(r"(--[a-z][a-z-]+)", nectl(cmd, "--help").stdout)):
            if opt not in man:
                missing.append(cmd + " " + opt)
    for var in set(re.findall(r"\b(NECTL_[A-Z_]+|SOURCE_DATE_EPOCH)\b", helptext +
                              nectl("run", "--help").stdout + nectl("allocate", "--help").stdout)):
        if ".B " + var not in man:
            missing.append(var)
    tap(len(commands) >= 10 and not missing,
        "nectl.1 names the %d commands and every option and variable of their --help" % len(commands),
        "missing: %s" % ", ".join(sorted(missing)))

    # -- signed EIFs
    eif_sign_tests.run(tap, nectl, NECTL, NECTL_ASAN, tmp, rnd, parse_eif)

    # -- verify-attestation and pcr
    attest_tests.run(tap, nectl, NECTL, NECTL_ASAN, UNIT, tmp, rnd)

    tap(not NOT_UTF8, "every output of nectl in this run was UTF-8", NOT_UTF8[:5])
    subprocess.run(["rm", "-rf", tmp])
    print("1..%d" % count)
    print("# nectl host tests: %d passed, %d failed" % (count - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
