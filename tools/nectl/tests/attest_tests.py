# SPDX-License-Identifier: GPL-2.0
"""Host tests of `nectl verify-attestation` and `nectl pcr` (run by test_nectl.py).

Real AWS documents are read from the project's shared directory at test time
(never copied into the repository); tampered variants, other roots and whole
chains are made in the test's temporary directory (cose_forge.py).
"""
import base64
import calendar
import hashlib
import json
import os
import re
import subprocess
import time

from cose_forge import (ES384_PROTECTED, Forge, Map, Raw, Tag, dec, enc, get, payload_map,
                        replace, split_document)

AWS_ROOT = "AWS_NitroEnclaves_Root-G1.pem"
VECTORS = ["yawn-nitro-attest_2025-01-06_eu-central-1.cose", "dstack_2025-12-25_us-east-1.cose"]
LOCAL_ROOT = "/var/lib/ne-kvm/attestation/root.pem"
# Every failed step's code (nectl explain); 73 covers both decoding steps.
STEP_CODE = {"cose": 73, "payload": 73, "chain": 75, "validity": 76, "usage": 77,
             "chain-signatures": 75, "signature": 78, "pcrs": 79, "nonce": 80, "user-data": 81}
REJECTIONS = {73, 75, 76, 77, 78}


def shared_dir():
    """The project's shared directory: $NE_SHARED, else ../shared next to the
    checkout; in a git worktree also next to the main checkout, which is
    where the worktree's ../shared lives."""
    if os.environ.get("NE_SHARED"):
        return [os.environ["NE_SHARED"]]
    top = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    candidates = [os.path.join(top, "..", "shared")]
    r = subprocess.run(["git", "-C", top, "rev-parse", "--path-format=absolute",
                        "--git-common-dir"], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        main = os.path.dirname(r.stdout.strip())
        candidates.append(os.path.join(main, "..", "shared"))
    return [os.path.normpath(c) for c in candidates]


class Ctx:
    def __init__(self, tap, nectl, nectl_bin, asan_bin, unit_bin, tmp, rnd):
        self.tap, self.nectl, self.bin, self.asan, self.unit = tap, nectl, nectl_bin, asan_bin, unit_bin
        self.tmp, self.rnd = tmp, rnd
        self.n = 0

    def write(self, data, name=None):
        self.n += 1
        path = os.path.join(self.tmp, name or "doc%d.cose" % self.n)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def verify(self, doc, *args, binary=None, env=None):
        """Runs verify-attestation on bytes (or a path); returns (rc, verdict or None, stderr)."""
        path = doc if isinstance(doc, str) else self.write(doc)
        r = self.nectl("verify-attestation", "--document", path, *args, binary=binary, env=env)
        try:
            verdict = json.loads(r.stdout)
        except ValueError:
            verdict = None
        return r.returncode, verdict, r.stderr

    def expect_ok(self, name, doc, *args, env=None):
        rc, v, err = self.verify(doc, *args, env=env)
        self.tap(rc == 0 and v is not None and v["Verified"] is True and v["FailedStep"] is None
                 and not err.strip(), name, err + json.dumps(v)[:600])
        return v

    def expect_fail(self, name, doc, step, *args, binary=None, env=None, reason=None):
        """Rejected at step: its exit code, one error line naming it, the JSON verdict."""
        rc, v, err = self.verify(doc, *args, binary=binary, env=env)
        lines = [l for l in err.splitlines() if l.strip()]
        code = STEP_CODE[step]
        ok = (rc == code and v is not None and v["Verified"] is False and v["FailedStep"] == step
              and v["Steps"][step] == "failed" and len(lines) == 1
              and lines[0].startswith("[ E%02d ]" % code) and ("step %s:" % step) in lines[0])
        if ok and reason:
            ok = re.search(reason, v["Reason"]) is not None
        self.tap(ok, name + " -> E%02d at step %s" % (code, step),
                 "rc %d\n%s\n%s" % (rc, err, json.dumps(v)[:600]))
        return v


def pcr_of(data):
    return hashlib.sha384(b"\0" * 48 + hashlib.sha384(data).digest()).hexdigest()


def iso_seconds(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def provenance_hashes(shared):
    """File -> SHA-256 from the vectors' PROVENANCE.md table."""
    text = open(os.path.join(shared, "attestation-vectors", "PROVENANCE.md")).read()
    return dict(re.findall(r"^\| `([^`]+)` \| \d+ \| ([0-9a-f]{64}) \|", text, re.M))


# ------------------------------------------------------------ real documents

def real_document(c, vec, path, root, other_roots):
    data = open(path, "rb").read()
    _, _, payload, _, _ = split_document(data)
    pcrs = {k: v.hex() for k, v in get(payload, "pcrs").pairs}
    ts = get(payload, "timestamp")
    module_id = get(payload, "module_id")
    user_data = get(payload, "user_data")
    name = vec.split("_")[0]

    v = c.expect_ok("%s: verified with AWS's root at its own time (--at document)" % name,
                    path, "--root-cert", root, "--at", "document")
    if v:
        certs = v["Certificates"]
        c.tap(v["ModuleID"] == module_id and v["Timestamp"] == ts and v["Digest"] == "SHA384"
              and v["PCRs"] == {"PCR%d" % k: h for k, h in pcrs.items()}
              and v["CheckTime"] == ts // 1000,
              "%s: ModuleID, Timestamp, Digest and PCRs equal an independent decode" % name)
        c.tap(len(certs) == 5 and module_id in certs[0]["Subject"]
              and certs[4]["Subject"] == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"
              and [x["Position"] for x in certs] == ["certificate (leaf)", "cabundle[3]",
                                                     "cabundle[2]", "cabundle[1]", "pinned root"],
              "%s: Certificates lists leaf, cabundle[3..1] and the pinned AWS root" % name,
              json.dumps(certs)[:400])
        instance = module_id.split("-enc")[0].encode()
        c.tap(pcrs.get(4) == hashlib.sha384(b"\0" * 48 + instance).hexdigest(),
              "%s: PCR4 is the extend of the instance id, as the spec says" % name)
    expect = ["--pcr", "0=" + pcrs[0], "--pcr", "1=" + pcrs[1], "--pcr", "2=" + pcrs[2],
              "--pcr", "4=" + pcrs[4].upper()]
    if user_data is not None:
        expect += ["--user-data", user_data.hex()]
    v = c.expect_ok("%s: verified at --at %d with its PCR0-2 and 4%s" %
                    (name, ts // 1000, " and user data" if user_data is not None else ""),
                    path, "--root-cert", root, "--at", str(ts // 1000), *expect)
    if v:
        c.tap(v["Steps"]["pcrs"] == "passed" and v["Steps"]["nonce"] == "not requested",
              "%s: Steps shows pcrs passed, nonce not requested" % name, json.dumps(v["Steps"]))
    v = c.expect_fail("%s: now (no --at): expired" % name, path, "validity", "--root-cert", root,
                      reason=r"^certificate \(leaf\) .* expired at ")
    if v:
        c.tap(all(v["Steps"][s] == "passed" for s in ("cose", "payload", "chain"))
              and v["Steps"]["signature"] == "not run",
              "%s: now: the steps before validity passed, the later ones did not run" % name)
        leaf = v["Certificates"][0]
        c.expect_fail("%s: one second after the leaf's NotAfter" % name, path, "validity",
                      "--root-cert", root, "--at", str(iso_seconds(leaf["NotAfter"]) + 1),
                      reason="expired")
        c.expect_fail("%s: one second before the leaf's NotBefore" % name, path, "validity",
                      "--root-cert", root, "--at", str(iso_seconds(leaf["NotBefore"]) - 1),
                      reason="not valid before")
    c.expect_ok("%s: tagged COSE_Sign1 (tag 18) verified too" % name, b"\xd2" + data,
                "--root-cert", root, "--at", "document")
    c.expect_ok("%s: tag 18 in its two-byte form (D8 12) verified too" % name,
                b"\xd8\x12" + data, "--root-cert", root, "--at", "document")
    c.expect_fail("%s: a root with another name" % name, path, "chain",
                  "--root-cert", other_roots[0], "--at", "document",
                  reason=r"cabundle\[1\] .* is not issued by the next certificate, pinned root")
    c.expect_fail("%s: another root with AWS's name and dates, another key" % name, path,
                  "chain-signatures", "--root-cert", other_roots[1], "--at", "document",
                  reason=r"^cabundle\[1\] .*: certificate signature failure")
    c.expect_ok("%s: $NECTL_ATTESTATION_ROOT replaces the local root" % name, path,
                "--at", "document", env={"NECTL_ATTESTATION_ROOT": root})
    application_checks(c, name, path, root, pcrs, user_data)
    tamper_real(c, name, data, root)


def application_checks(c, name, path, root, pcrs, user_data):
    base = [path, "--root-cert", root, "--at", "document"]
    wrong = pcrs[0][:-1] + ("0" if pcrs[0][-1] != "0" else "1")
    c.expect_fail("%s: --pcr 0 with its last digit changed" % name, *base[:1], "pcrs", *base[1:],
                  "--pcr", "1=" + pcrs[1], "--pcr", "0=" + wrong, reason="^PCR0 is ")
    c.expect_fail("%s: --pcr 31 (not in the document)" % name, *base[:1], "pcrs", *base[1:],
                  "--pcr", "31=" + "00" * 48, reason="no PCR31")
    c.expect_fail("%s: --nonce (the document has none)" % name, *base[:1], "nonce", *base[1:],
                  "--nonce", "00112233", reason="nonce is null")
    c.expect_fail("%s: wrong PCR and wrong nonce: the PCRs come first" % name, *base[:1], "pcrs",
                  *base[1:], "--nonce", "00", "--pcr", "2=" + "00" * 48)
    if user_data is None:
        c.expect_fail("%s: --user-data (the document has none)" % name, *base[:1], "user-data",
                      *base[1:], "--user-data", "00")
    else:
        bad = bytearray(user_data)
        bad[-1] ^= 1
        c.expect_fail("%s: --user-data with its last byte changed" % name, *base[:1], "user-data",
                      *base[1:], "--user-data", bad.hex())


def flip(data, pos, mask=0x01):
    out = bytearray(data)
    out[pos] ^= mask
    return bytes(out)


def tamper_real(c, name, data, root):
    prot, unprot, payload, body, sig = split_document(data)
    base = ["--root-cert", root, "--at", "document"]
    body_at = data.index(body)
    pcr0 = get(get(payload, "pcrs"), 0)
    cert = get(payload, "certificate")
    bundle = get(payload, "cabundle")
    mid = get(payload, "module_id").encode()
    cases = [
        ("the signature's last byte", len(data) - 1, "signature"),
        ("the signature's first byte", len(data) - 96, "signature"),
        ("a byte of PCR0 in the payload", data.index(pcr0) + 7, "signature"),
        ("a byte of module_id in the payload", data.index(mid) + 3, "signature"),
        ("the timestamp's last byte", body_at + body.index(b"timestamp") + 9 + 8, "signature"),
        ("the last byte of the leaf's own signature", data.index(cert) + len(cert) - 1,
         "chain-signatures"),
        ("the last byte of cabundle[1]", data.index(bundle[1]) + len(bundle[1]) - 1,
         "chain-signatures"),
        ("the protected header's alg (-35 -> -36)", data.index(prot) + 3, "cose"),
        ("the COSE array's head", 0, "cose"),
    ]
    for what, pos, step in cases:
        c.expect_fail("%s: one byte changed: %s" % (name, what), flip(data, pos), step, *base)
    # cabundle[1] and [2] swapped: the positional chain no longer links.
    swapped = replace(payload, "cabundle", [bundle[0], bundle[2], bundle[1]] + bundle[3:])
    c.expect_fail("%s: cabundle[1] and cabundle[2] swapped" % name,
                  enc([prot, {}, enc(swapped), sig]), "chain", *base,
                  reason=r"is not issued by the next certificate")
    one_byte_changes(c, name, data, root, payload)


def one_byte_changes(c, name, data, root, payload, stride=12):
    """Each byte changed alone, in-process (tests/unit_test.c attest-flips):
    every byte but those inside certificates and long byte strings (PCRs,
    public key...), and one in `stride` of those (a seeded phase): an
    exhaustive run takes minutes."""
    # In document order, each found after the previous one (PCRs repeat).
    values = [v for _, v in get(payload, "pcrs").pairs] + [get(payload, "certificate")] + \
        get(payload, "cabundle") + [get(payload, k) for k in ("public_key", "user_data", "nonce")]
    inside, start = set(), 0
    for v in values:
        if v and len(v) >= 32:
            start = data.index(v, start)
            inside.update(range(start, start + len(v)))
            start += len(v)
    phase = c.rnd.randrange(stride)
    positions = [p for p in range(len(data)) if p not in inside or p % stride == phase]
    listing = c.write("\n".join(map(str, positions)).encode(), "positions.txt")
    r = subprocess.run([c.unit, "attest-flips", c.write(data), root, listing],
                       capture_output=True, text=True)
    m = re.search(r"^flips (\d+) accepted (\d+) steps (.*)$", r.stdout, re.M)
    c.tap(r.returncode == 0 and m is not None and int(m.group(1)) == len(positions)
          and int(m.group(2)) == 0,
          "%s: %d one-byte changes (all %d bytes outside certificates and long values, 1 in %d "
          "inside) all rejected: %s" % (name, len(positions), len(data) - len(inside), stride,
                                        m.group(3) if m else "no summary"),
          r.stdout + r.stderr)


# ------------------------------------------------------------ self-made chains

class Chain:
    """A test installation: root, intermediate, leaf, plus the odd ones."""

    def __init__(self, forge):
        f = forge
        self.f = f
        self.root = f.root("root", "/C=US/O=ne-kvm test/CN=test.nitro-enclaves")
        self.inter = f.issue("inter", "/C=US/O=ne-kvm test/CN=i-0123.test.nitro-enclaves",
                             self.root, "ca0")
        leaf_dn = "/C=US/O=ne-kvm test/CN=i-0123-enc0123.test"
        self.leaf = f.issue("leaf", leaf_dn, self.inter, "leaf", days=1)
        self.leaf2 = f.issue("leaf2", leaf_dn, self.inter, "leaf")
        # Another installation: the same names, other keys.
        self.oroot = f.root("oroot", "/C=US/O=ne-kvm test/CN=test.nitro-enclaves")
        self.ointer = f.issue("ointer", "/C=US/O=ne-kvm test/CN=i-0123.test.nitro-enclaves",
                              self.oroot, "ca0")
        self.oleaf = f.issue("oleaf", leaf_dn, self.ointer, "leaf")
        self.leaf_ca = f.issue("leafca", leaf_dn, self.inter, "leaf_ca")
        self.leaf_kex = f.issue("leafkex", leaf_dn, self.inter, "leaf_nodigsig")
        self.leaf_p256 = f.issue("leafp256", leaf_dn, self.inter, "leaf", curve="prime256v1")
        self.nosign = f.issue("nosign", "/C=US/O=ne-kvm test/CN=nosign", self.root, "ca_nosign")
        self.nosign_leaf = f.issue("nosignleaf", leaf_dn, self.nosign, "leaf")
        self.inter2 = f.issue("inter2", "/C=US/O=ne-kvm test/CN=deep", self.inter, "ca1")
        self.deep_leaf = f.issue("deepleaf", leaf_dn, self.inter2, "leaf")

    def der(self, cert):
        return self.f.der(cert[0])

    def doc(self, leaf, bundle, signer=None, **kw):
        """A document whose certificate is leaf, signed by signer's key (default leaf's)."""
        p = payload_map(self.der(leaf), [self.der(b) for b in bundle],
                        int(time.time() * 1000), **kw)
        return self.f.document((signer or leaf)[1], p), p


def self_made(c, forge):
    ch = Chain(forge)
    root = ch.root[0]
    rnd = c.rnd
    pcrs = {i: rnd.randbytes(48) if i in (0, 1, 2, 4) else b"\0" * 48 for i in range(16)}
    nonce, user_data, public_key = rnd.randbytes(32), rnd.randbytes(1024), rnd.randbytes(300)
    kw = dict(pcrs=pcrs, nonce=nonce, user_data=user_data, public_key=public_key)
    good, payload = ch.doc(ch.leaf, [ch.root, ch.inter], **kw)
    checks = ["--pcr", "0=" + pcrs[0].hex(), "--pcr", "2=" + pcrs[2].hex(), "--nonce", nonce.hex(),
              "--user-data", user_data.hex()]
    v = c.expect_ok("self-made chain: a fresh document verifies now, with its PCRs, nonce and "
                    "1024-byte user data", good, "--root-cert", root, *checks)
    if v:
        c.tap(all(s == "passed" for s in v["Steps"].values()) and v["Nonce"] == nonce.hex()
              and v["PublicKey"] == public_key.hex() and v["UserData"] == user_data.hex(),
              "self-made chain: every step passed; Nonce, PublicKey and UserData shown")
    c.expect_ok("self-made chain: $NECTL_ATTESTATION_ROOT is the default root", good,
                env={"NECTL_ATTESTATION_ROOT": root})
    p = payload_map(ch.der(ch.leaf), [ch.der(ch.root), ch.der(ch.inter)],
                    int(time.time() * 1000), pcrs={0: b"\0" * 48}, indefinite=True)
    c.expect_ok("self-made chain: tagged, indefinite-length payload, null optional fields, "
                "one PCR", forge.document(ch.leaf[1], p, tag=True), "--root-cert", root)
    base = ["--root-cert", root]
    c.expect_fail("certificate swapped for another leaf of the same CA",
                  ch.doc(ch.leaf2, [ch.root, ch.inter], signer=ch.leaf, **kw)[0], "signature",
                  *base, reason="does not verify with the leaf's key")
    c.expect_fail("leaf of another installation's CA with the same names",
                  ch.doc(ch.oleaf, [ch.root, ch.inter], **kw)[0], "chain-signatures", *base,
                  reason=r"^certificate \(leaf\)")
    c.expect_fail("another installation's root pinned", good, "chain-signatures",
                  "--root-cert", ch.oroot[0])
    c.expect_fail("expired leaf (checked two days later)", good, "validity", *base,
                  "--at", str(int(time.time()) + 2 * 86400), reason=r"^certificate \(leaf\)")
    c.expect_fail("leaf that is a CA", ch.doc(ch.leaf_ca, [ch.root, ch.inter], **kw)[0],
                  "usage", *base, reason="is a CA certificate")
    c.expect_fail("leaf without digitalSignature",
                  ch.doc(ch.leaf_kex, [ch.root, ch.inter], **kw)[0], "usage", *base,
                  reason="digitalSignature")
    c.expect_fail("intermediate without keyCertSign",
                  ch.doc(ch.nosign_leaf, [ch.root, ch.nosign], **kw)[0], "usage", *base,
                  reason=r"cabundle\[1\] .* keyCertSign")
    c.expect_fail("intermediate whose path length the chain exceeds",
                  ch.doc(ch.deep_leaf, [ch.root, ch.inter, ch.inter2], **kw)[0], "usage", *base,
                  reason=r"cabundle\[1\] .* allows 0 CA certificates below it")
    c.expect_fail("P-256 leaf", ch.doc(ch.leaf_p256, [ch.root, ch.inter], **kw)[0], "signature",
                  *base, reason="P-384")
    es256 = enc({1: -7})
    c.expect_fail("protected header ES256, signed as such",
                  forge.document(ch.leaf[1], payload, protected=es256), "cose", *base,
                  reason="ES384")
    return ch, good, payload


# ------------------------------------------------------------ malformed input

def malformed_cases(ch, good, payload):
    """(name, bytes, failing step) built from a valid self-made document."""
    prot, _, _, body, sig = split_document(good)

    def cose(*items):
        return enc(list(items))

    def with_payload(p):
        return cose(prot, {}, p if isinstance(p, bytes) else enc(p), sig)

    def field(key, value):
        return with_payload(replace(payload, key, value))

    def without(key):
        return with_payload(Map([(k, v) for k, v in payload.pairs if k != key]))

    cert, bundle = get(payload, "certificate"), get(payload, "cabundle")
    huge_map = b"\xbb" + (1 << 31).to_bytes(8, "big") + b"\x01"
    cases = [
        ("empty file", b"", "cose"),
        ("one byte", good[:1], "cose"),
        ("truncated to 10 bytes", good[:10], "cose"),
        ("truncated in the payload", good[:len(good) // 2], "cose"),
        ("truncated by one byte", good[:-1], "cose"),
        ("one byte too many", good + b"\0", "cose"),
        ("an integer", enc(7), "cose"),
        ("an array of 3", cose(prot, {}, body), "cose"),
        ("an array of 5", cose(prot, {}, body, sig, b""), "cose"),
        ("tag 17 instead of 18", enc(Tag(17, [prot, {}, body, sig])), "cose"),
        ("tag 18 twice", enc(Tag(18, Tag(18, [prot, {}, body, sig]))), "cose"),
        ("tag 18 then D8 12", b"\xd2\xd8\x12" + good, "cose"),
        ("tag 24 (D8 18)", b"\xd8\x18" + good, "cose"),
        ("protected header a map, not a byte string", cose({1: -35}, {}, body, sig), "cose"),
        ("protected header {1: -7}", cose(enc({1: -7}), {}, body, sig), "cose"),
        ("protected header with a second key", cose(enc({1: -35, 4: b"k"}), {}, body, sig), "cose"),
        ("protected header not CBOR", cose(b"\xa1\x01", {}, body, sig), "cose"),
        ("unprotected header a byte string", cose(prot, b"", body, sig), "cose"),
        ("payload a map, not a byte string", cose(prot, {}, payload, sig), "cose"),
        ("payload empty", cose(prot, {}, b"", sig), "cose"),
        ("payload an indefinite-length byte string",
         cose(prot, {}, Raw(b"\x5f" + enc(body) + b"\xff"), sig), "cose"),
        ("signature of 64 bytes", cose(prot, {}, body, sig[:64]), "cose"),
        ("signature of 97 bytes", cose(prot, {}, body, sig + b"\0"), "cose"),
        ("signature a text string", cose(prot, {}, body, "x" * 96), "cose"),
        ("array declaring 2^40 items", b"\x9b" + (1 << 40).to_bytes(8, "big") + b"\x01", "cose"),
        ("map declaring 2^31 entries", huge_map, "cose"),
        ("byte string declaring 2^36 bytes", b"\x5b" + (1 << 36).to_bytes(8, "big") + b"\x01",
         "cose"),
        ("3000 nested arrays", b"\x81" * 3000 + b"\x00", "cose"),
        ("3000 nested indefinite maps", b"\xbf" * 3000, "cose"),
        ("a reserved CBOR head (0x1c)", b"\x1c", "cose"),
        ("a lone break byte", b"\xff", "cose"),
        ("40000 bytes", good + b"\0" * (40000 - len(good)), "cose"),
        ("payload not CBOR", with_payload(b"\xa9\x1c"), "payload"),
        ("payload with a byte after the map", with_payload(enc(payload) + b"\0"), "payload"),
        ("payload an array", with_payload([1, 2]), "payload"),
        ("payload map declaring 2^31 entries", with_payload(huge_map), "payload"),
        ("payload with an unknown key", with_payload(Map(payload.pairs + [("extra", 1)])),
         "payload"),
        ("payload with an integer key", with_payload(Map(payload.pairs + [(1, 1)])), "payload"),
        ("payload with nonce twice", with_payload(Map(payload.pairs + [("nonce", None)])),
         "payload"),
        ("module_id empty", field("module_id", ""), "payload"),
        ("module_id an integer", field("module_id", 5), "payload"),
        ("module_id with a newline", field("module_id", "i-1\n-enc2"), "payload"),
        ("module_id of 256 bytes", field("module_id", "i" * 256), "payload"),
        ("digest SHA256", field("digest", "SHA256"), "payload"),
        ("digest a byte string", field("digest", b"SHA384"), "payload"),
        ("timestamp 0", field("timestamp", 0), "payload"),
        ("timestamp negative", field("timestamp", -5), "payload"),
        ("timestamp a text string", field("timestamp", "1736179625472"), "payload"),
        ("pcrs empty", field("pcrs", {}), "payload"),
        ("pcrs with 33 entries", field("pcrs", Map([(i, b"\0" * 48) for i in range(33)])),
         "payload"),
        ("PCR index 32", field("pcrs", {32: b"\0" * 48}), "payload"),
        ("PCR index -1", field("pcrs", {-1: b"\0" * 48}), "payload"),
        ("PCR of 47 bytes", field("pcrs", {0: b"\0" * 47}), "payload"),
        ("PCR a text string", field("pcrs", {0: "0" * 48}), "payload"),
        ("PCR0 twice", field("pcrs", Map([(0, b"\0" * 48), (0, b"\0" * 48)])), "payload"),
        ("pcrs an array", field("pcrs", [b"\0" * 48]), "payload"),
        ("certificate empty", field("certificate", b""), "payload"),
        ("certificate of 1025 bytes", field("certificate", cert + b"\0" * (1025 - len(cert))),
         "payload"),
        ("certificate null", field("certificate", None), "payload"),
        ("cabundle empty", field("cabundle", []), "payload"),
        ("cabundle of 17 entries", field("cabundle", [bundle[0]] * 17), "payload"),
        ("cabundle entry a text string", field("cabundle", [bundle[0], "x"]), "payload"),
        ("cabundle a byte string", field("cabundle", bundle[0]), "payload"),
        ("public_key empty", field("public_key", b""), "payload"),
        ("public_key of 1025 bytes", field("public_key", b"k" * 1025), "payload"),
        ("user_data of 1025 bytes", field("user_data", b"u" * 1025), "payload"),
        ("nonce a text string", field("nonce", "abc"), "payload"),
        ("nonce an integer", field("nonce", 0), "payload"),
        # libcbor 0.8's cbor_is_null() asserts on a float: these aborted
        # nectl before the signature check.
        ("nonce a half float", field("nonce", Raw(b"\xf9\x3c\x00")), "payload"),
        ("user_data a single float", field("user_data", Raw(b"\xfa\x3f\x80\x00\x00")),
         "payload"),
        ("public_key a double float", field("public_key", Raw(b"\xfb" + bytes(8))), "payload"),
        ("nonce undefined", field("nonce", Raw(b"\xf7")), "payload"),
        ("nonce true", field("nonce", True), "payload"),
        ("timestamp a half float", field("timestamp", Raw(b"\xf9\x3c\x00")), "payload"),
        ("module_id a double float", field("module_id", Raw(b"\xfb" + bytes(8))), "payload"),
        ("PCR index a half float", field("pcrs", Map([(Raw(b"\xf9\x00\x00"), b"\0" * 48)])),
         "payload"),
        ("cabundle entry a half float", field("cabundle", [bundle[0], Raw(b"\xf9\x3c\x00")]),
         "payload"),
    ]
    for key in ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"):
        cases.append(("payload without %s" % key, without(key), "payload"))
    # Decodable, but the certificates are not certificates: step 3.
    cases += [
        ("the certificate not DER", field("certificate", b"\x30\x03\x02\x01"), "chain"),
        ("the leaf's DER with a byte after it", field("certificate", cert + b"\0"), "chain"),
        ("cabundle[1] not DER", field("cabundle", [bundle[0], b"junk"]), "chain"),
    ]
    return cases


def malformed(c, ch, good, payload):
    root = ch.root[0]
    for name, blob, step in malformed_cases(ch, good, payload):
        for binary in [c.bin] + ([c.asan] if c.asan else []):
            c.expect_fail("%s: %s" % ("asan" if binary != c.bin else "malformed", name), blob,
                          step, "--root-cert", root, binary=binary)
    v = c.expect_fail("an integer, checked at --at document", enc(7), "cose", "--root-cert", root,
                      "--at", "document")
    c.tap(v is not None and v["CheckTime"] is None and v["ModuleID"] is None
          and v["PCRs"] is None and v["Certificates"] == [],
          "undecodable with --at document: CheckTime, ModuleID, PCRs null, no certificates")
    v = c.expect_fail("an integer, checked now", enc(7), "cose", "--root-cert", root)
    c.tap(v is not None and abs(v["CheckTime"] - time.time()) < 600,
          "undecodable, checked now: CheckTime is now")
    fuzz(c, "the self-made document", good, root)


def fuzz(c, what, good, root, rounds=150):
    """Seeded random corruption: always rejected, never a crash (ASan when built)."""
    bad = []
    for i in range(rounds):
        blob = bytearray(good)
        for _ in range(c.rnd.randint(1, 8)):
            pos = c.rnd.randrange(len(blob))
            blob[pos] ^= c.rnd.randrange(1, 256)
        if c.rnd.random() < 0.2:
            blob = blob[:c.rnd.randrange(len(blob))]
        rc, v, err = c.verify(bytes(blob), "--root-cert", root, "--at", "document",
                              binary=c.asan or c.bin)
        if rc not in REJECTIONS or v is None or v["Verified"] is not False:
            bad.append((i, rc, err[-300:]))
    c.tap(not bad, "%d random corruptions of %s: each rejected with E73/75/76/77/78, no crash" %
          (rounds, what), bad[:3])


# ------------------------------------------------------------ options, pcr

def options(c, doc, root):
    base = ["--root-cert", root]
    for name, args, code in [
            ("no --document", ["--root-cert", root], 1),
            ("--pcr 32=00", ["--document", doc, "--pcr", "32=00"] + base, 3),
            ("--pcr without =", ["--document", doc, "--pcr", "0"] + base, 3),
            ("--pcr value not hex", ["--document", doc, "--pcr", "0=zz"] + base, 3),
            ("--pcr 0 twice", ["--document", doc, "--pcr", "0=00", "--pcr", "0=11"] + base, 2),
            ("--pcr value of 65 bytes", ["--document", doc, "--pcr", "0=" + "00" * 65] + base, 3),
            ("--nonce of odd length", ["--document", doc, "--nonce", "abc"] + base, 3),
            ("--nonce of 1025 bytes", ["--document", doc, "--nonce", "00" * 1025] + base, 3),
            ("--at not a number", ["--document", doc, "--at", "yesterday"] + base, 3),
            ("--at -1", ["--document", doc, "--at", "-1"] + base, 3),
            ("unknown option", ["--document", doc, "--frob"] + base, 3),
            ("missing document", ["--document", "/nonexistent.cose"] + base, 19),
            ("a directory as document", ["--document", c.tmp] + base, 19),
            ("--root-cert not PEM", ["--document", doc, "--root-cert", doc], 74),
            ("--root-cert missing", ["--document", doc, "--root-cert", "/nonexistent.pem"], 74),
            ("$NECTL_ATTESTATION_ROOT missing", ["--document", doc], 74)]:
        r = c.nectl("verify-attestation", *args, env={"NECTL_ATTESTATION_ROOT": "/nonexistent/r.pem"})
        lines = [l for l in r.stderr.splitlines() if l.startswith("[ E")]
        c.tap(r.returncode == code and len(lines) == 1 and lines[0].startswith("[ E%02d ]" % code)
              and not r.stdout, "verify-attestation %s: E%02d, no verdict" % (name, code), r.stderr)
    env = dict(os.environ)
    env.pop("NECTL_ATTESTATION_ROOT", None)
    r = subprocess.run([c.bin, "verify-attestation", "--document", doc], capture_output=True,
                       text=True, env=env)
    if os.path.exists(LOCAL_ROOT):
        c.tap(r.returncode != 74, "without --root-cert the local root %s is used" % LOCAL_ROOT,
              r.stderr)
    else:
        c.tap(r.returncode == 74 and LOCAL_ROOT in r.stderr and "--root-cert" in r.stderr,
              "without --root-cert nor a local root: E74 names %s and --root-cert" % LOCAL_ROOT,
              r.stderr)


def pcr_command(c, forge, root_pem):
    data = c.rnd.randbytes(100000)
    path = c.write(data, "pcr.bin")
    r = c.nectl("pcr", "--input", path)
    c.tap(r.returncode == 0 and json.loads(r.stdout or "{}") == {"PCR": pcr_of(data)}
          and r.stdout.startswith('{\n  "PCR": '),
          "pcr --input: {\"PCR\": SHA384(zeros || SHA384(file))}, pretty-printed", r.stdout + r.stderr)
    empty = c.write(b"", "empty.bin")
    r = c.nectl("pcr", "--input", empty)
    c.tap(json.loads(r.stdout or "{}").get("PCR") == pcr_of(b""), "pcr --input of an empty file")
    pem = open(root_pem).read()
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    r = c.nectl("pcr", "--signing-certificate", root_pem)
    c.tap(r.returncode == 0 and json.loads(r.stdout or "{}") == {"PCR8": pcr_of(der)},
          "pcr --signing-certificate: PCR8 over the certificate's DER", r.stdout + r.stderr)
    for name, args, code in [("no option", [], 1),
                             ("both options", ["--input", path, "--signing-certificate", root_pem], 2),
                             ("missing file", ["--input", "/nonexistent"], 19),
                             ("missing certificate", ["--signing-certificate", "/nonexistent"], 19),
                             ("certificate not PEM", ["--signing-certificate", path], 57)]:
        r = c.nectl("pcr", *args)
        c.tap(r.returncode == code and ("[ E%02d ]" % code) in r.stderr and not r.stdout,
              "pcr %s: E%02d" % (name, code), r.stderr)


def run(tap, nectl, nectl_bin, asan_bin, unit_bin, tmp, rnd):
    c = Ctx(tap, nectl, nectl_bin, asan_bin, unit_bin, tmp, rnd)
    forge = Forge(tmp)
    ch, good, payload = self_made(c, forge)
    malformed(c, ch, good, payload)
    one_byte_changes(c, "self-made document", good, ch.root[0], payload)
    good_path = c.write(good, "good.cose")
    options(c, good_path, ch.root[0])
    pcr_command(c, forge, ch.root[0])

    found = [d for d in shared_dir() if os.path.isdir(os.path.join(d, "attestation-vectors"))]
    tap(bool(found), "the real AWS documents are found (../shared/attestation-vectors next to "
        "the checkout, or $NE_SHARED)", "looked in: " + ", ".join(shared_dir()))
    if not found:
        return
    vectors = os.path.join(found[0], "attestation-vectors")
    hashes = provenance_hashes(found[0])
    root = os.path.join(vectors, AWS_ROOT)
    other_roots = [forge.root("other", "/C=US/O=Other/CN=other.nitro-enclaves")[0],
                   forge.resign("fake-aws", root)[0]]
    for vec in VECTORS:
        path = os.path.join(vectors, vec)
        ok = os.path.exists(path) and hashlib.sha256(open(path, "rb").read()).hexdigest() == \
            hashes.get(vec)
        tap(ok, "%s matches the SHA-256 its PROVENANCE.md gives" % vec)
        if ok:
            real_document(c, vec, path, root, other_roots)
    data = open(os.path.join(vectors, VECTORS[1]), "rb").read()
    fuzz(c, "a real AWS document", data, root)
    wrapped = os.path.join(vectors, "dstack_2025-12-25_us-east-1.dstack-wrapped.bin")
    c.expect_fail("the dstack-wrapped original (not raw COSE)", wrapped, "cose",
                  "--root-cert", root)
