# SPDX-License-Identifier: GPL-2.0
"""Host tests of signed EIFs (build-eif --signing-certificate, describe-eif,
run's E59), for test_nectl.py.

Keys and certificates are made at test time with the openssl command line
in the test's temporary directory (cose_forge.Forge) and never kept.  What
nectl writes is checked against what nitro-cli writes by independent means:
cose_forge's own CBOR encoder and decoder (RFC 8949, not libcbor) for the
section's bytes, hashlib for PCR0 and PCR8, `openssl dgst -verify` for the
ECDSA signature, and a small DER reader for the certificate fields.
"""
import hashlib
import json
import os
import struct
import subprocess
import zlib

from cose_forge import Forge, Map, dec, enc, sig_structure

HDR = 548
SUBJECT = "/C=US/O=ne-kvm tests/CN=eif signer"
ISSUER = {"commonName": "eif signer", "countryName": "US", "organizationName": "ne-kvm tests"}
# What the pre-signing nectl wrote for the inputs of golden(): an unsigned
# image must stay byte for byte the same (BuildToolVersion is part of it).
GOLDEN_SHA256 = "ff6326affbc29b7d0b906c338766cca7285caf8768a14387d60fb1ed151b167b"
CURVES = {"prime256v1": ("-sha256", bytes.fromhex("a10126"), 32),
          "secp384r1": ("-sha384", bytes.fromhex("a1013822"), 48),
          "secp521r1": ("-sha512", bytes.fromhex("a1013823"), 66)}
CA_CNF = """[ca]
default_ca = c
[c]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha384
policy = p
unique_subject = no
[p]
commonName = supplied
"""


def pcr_of(data):
    return hashlib.sha384(b"\0" * 48 + hashlib.sha384(data).digest()).hexdigest()


def fix_crc(data):
    data = bytearray(data)
    data[544:548] = struct.pack(">I", zlib.crc32(bytes(data[:544] + data[548:])))
    return bytes(data)


def raw_to_der(raw):
    """COSE's r||s as the DER ECDSA-Sig-Value openssl dgst reads."""
    def integer(b):
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return b"\x02" + der_len(len(b)) + b
    half = len(raw) // 2
    body = integer(raw[:half]) + integer(raw[half:])
    return b"\x30" + der_len(len(body)) + body


def der_len(n):
    return bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else b"\x82" + struct.pack(">H", n)


def tlv(d, pos):
    """(tag, value start, value end) of the DER item at pos."""
    tag, n = d[pos], d[pos + 1]
    pos += 2
    if n & 0x80:
        size = n & 0x7F
        n = int.from_bytes(d[pos:pos + size], "big")
        pos += size
    return tag, pos, pos + n


def cert_signature_hex(der):
    _, body, _ = tlv(der, 0)            # Certificate
    _, _, tbs_end = tlv(der, body)      # tbsCertificate
    _, _, alg_end = tlv(der, tbs_end)   # signatureAlgorithm
    tag, start, end = tlv(der, alg_end)  # signatureValue BIT STRING
    assert tag == 0x03
    return ":".join("%02X" % b for b in der[start + 1:end])


class Ctx:
    def __init__(self, tap, nectl, nectl_bin, asan_bin, tmp, rnd, parse_eif):
        self.tap, self.nectl, self.bin, self.asan = tap, nectl, nectl_bin, asan_bin
        self.rnd, self.parse_eif = rnd, parse_eif
        self.tmp = os.path.join(tmp, "eif-sign")   # apart from the attestation tests' forge
        os.makedirs(self.tmp, exist_ok=True)
        self.forge = Forge(self.tmp)
        self.device = os.path.exists("/dev/nitro_enclaves")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def openssl(self, *args):
        return self.forge.openssl(*args)

    def signer(self, name, curve="secp384r1", subject=SUBJECT, days=30):
        """A key on curve and its self-signed certificate."""
        key = self.forge.key(name, curve)
        pem = self.forge.path(name + ".pem")
        self.openssl("req", "-x509", "-new", "-key", key, "-subj", subject, "-days", str(days),
                     CURVES.get(curve, ("-sha256",))[0], "-config", self.forge.cnf, "-out", pem)
        return pem, key

    def dated(self, name, key, start, end):
        """A self-signed certificate for key with the given validity (YYYYMMDDhhmmssZ)."""
        d = self.forge.path("ca-" + name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write(CA_CNF)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("01\n")
        csr = os.path.join(d, "req.csr")
        self.openssl("req", "-new", "-key", key, "-subj", "/CN=dated signer", "-config",
                     self.forge.cnf, "-out", csr)
        pem = os.path.join(d, "cert.pem")
        subprocess.run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", key,
                        "-in", csr, "-startdate", start, "-enddate", end, "-out", pem],
                       cwd=d, capture_output=True, check=True)
        return pem

    def der(self, pem):
        return self.forge.der(pem)

    def describe(self, path, binary=None):
        r = self.nectl("describe-eif", path, binary=binary)
        try:
            d = json.loads(r.stdout)
        except ValueError:
            d = {}
        return r, d

    def run(self, path, binary=None):
        return self.nectl("run", "--eif-path", path, "--memory", "64", "--cpu-count", "2", binary=binary)

    def sections(self, data):
        return self.parse_eif(data)["sections"]

    def signature(self, data):
        """(offset of the signature section's header, its data)."""
        s = [x for x in self.sections(data) if x[0] == 4]
        return (s[0][4], s[0][5]) if s else (None, None)

    def with_signature(self, data, body):
        """data with the (last) signature section's data replaced, header and CRC updated."""
        e = self.parse_eif(data)
        idx = e["nsec"] - 1
        off = e["offsets"][idx]
        assert e["sections"][idx][0] == 4
        out = bytearray(data[:off]) + struct.pack(">HHQ", 4, 0, len(body)) + body
        out[284 + 8 * idx:284 + 8 * idx + 8] = struct.pack(">Q", len(body))
        return fix_crc(out)


def one_error(r, code):
    lines = [l for l in r.stderr.splitlines() if l.startswith("[ E")]
    return r.returncode == code and len(lines) == 1 and lines[0].startswith("[ E%02d ]" % code)


def inputs(c):
    kernel = c.rnd.randbytes(200000)
    ramdisks = [c.rnd.randbytes(70000), c.rnd.randbytes(3000), c.rnd.randbytes(1)]
    cmdline = "reboot=k console=ttyS0 signed"
    args = ["--kernel", c.write("s-bzImage", kernel), "--cmdline", cmdline, "--name", "signed-img"]
    for i, r in enumerate(ramdisks):
        args += ["--ramdisk", c.write("s-rd%d.cpio" % i, r)]
    return kernel, cmdline.encode(), ramdisks, args


def build(c, name, args, pem=None, key=None, binary=None):
    out = c.path(name)
    if os.path.exists(out):
        os.unlink(out)
    extra = ["--signing-certificate", pem, "--private-key", key] if pem else []
    r = c.nectl("build-eif", *(args + extra + ["-o", out]), binary=binary)
    return r, out


# ------------------------------------------------------------ the format

def layout(c, signed, unsigned):
    e, u = c.parse_eif(signed), c.parse_eif(unsigned)
    types = [s[0] for s in e["sections"]]
    c.tap(e["version"] == 4 and types == [1, 2, 5, 3, 3, 3, 4] and e["nsec"] == u["nsec"] + 1,
          "signed EIF: version 4, sections kernel, cmdline, metadata, ramdisks, then signature; "
          "num_sections one more than unsigned", types)
    off, ok = HDR, True
    for s in e["sections"]:
        ok &= s[4] == off and s[2] == s[3] and s[1] == 0
        off += 12 + s[2]
    c.tap(ok and off == len(signed) and e["crc"] == zlib.crc32(signed[:544] + signed[548:]),
          "signed EIF: sections back to back, sizes agree, CRC-32 (zlib) covers the signature section")
    sig_off = e["offsets"][e["nsec"] - 1]
    same = signed[HDR:sig_off] == unsigned[HDR:] and signed[:26] == unsigned[:26] and \
        e["offsets"][:u["nsec"]] == u["offsets"][:u["nsec"]] and e["sizes"][:u["nsec"]] == u["sizes"][:u["nsec"]]
    c.tap(same, "signed EIF: everything before the signature section is the unsigned image's "
          "(header fields, offsets, sizes, section bytes)")


def section_bytes(c, signed, pem, key, pcr0, curve="secp384r1"):
    """The section decoded and re-encoded independently, the signature verified by openssl."""
    digest, protected, coord = CURVES[curve]
    _, body = c.signature(signed)
    try:
        items, end = dec(body)
        entry = items[0]
        got = dict(entry.pairs)
        cose = bytes(got["signature"])
        parts, cend = dec(cose)
        payload = parts[2]
        pmap, pend = dec(payload)
    except Exception as e:  # any shape error is a failure, reported below
        c.tap(False, "signature section (%s) decodes as [{signing_certificate, signature}]" % curve, e)
        return None
    cert = open(pem, "rb").read()
    c.tap(end == len(body) and len(items) == 1 and [k for k, _ in entry.pairs] ==
          ["signing_certificate", "signature"] and got["signing_certificate"] == list(cert),
          "signature section (%s): one PcrSignature whose signing_certificate is the PEM file's "
          "bytes as a CBOR array of uint8" % curve)
    want_payload = enc(Map([("register_index", 0), ("register_value", list(bytes.fromhex(pcr0)))]))
    c.tap(cend == len(cose) and isinstance(parts, list) and len(parts) == 4 and parts[0] == protected and
          isinstance(parts[1], Map) and not parts[1].pairs and payload == want_payload and
          len(parts[3]) == 2 * coord,
          "signature (%s): untagged COSE_Sign1 [h'%s', {}, PcrInfo{register_index: 0, register_value: "
          "PCR0}, %d-byte r||s]" % (curve, protected.hex(), 2 * coord))
    exact = enc([Map([("signing_certificate", list(cert)), ("signature", list(cose))])]) == body and \
        enc([parts[0], Map([]), payload, parts[3]]) == cose
    c.tap(exact, "signature section (%s): byte for byte the shortest-form CBOR serde_cbor writes" % curve)
    pub = c.path("pub.pem")
    with open(pub, "wb") as f:
        f.write(c.openssl("x509", "-in", pem, "-pubkey", "-noout"))
    tbs, sig = c.write("tbs.bin", sig_structure(parts[0], payload)), c.write("sig.der", raw_to_der(parts[3]))
    r = subprocess.run(["openssl", "dgst", digest, "-verify", pub, "-signature", sig, tbs],
                       capture_output=True, text=True)
    c.tap(r.returncode == 0 and "Verified OK" in r.stdout,
          "signature (%s) verifies with openssl dgst %s -verify and the certificate's key" % (curve, digest),
          r.stdout + r.stderr)
    return parts


def describe_signed(c, path, pem, build_out, pcrs):
    r, d = c.describe(path)
    pcr8 = pcr_of(c.der(pem))
    m = d.get("Measurements", {})
    c.tap(r.returncode == 0 and d.get("IsSigned") is True and d.get("CheckCRC") is True and
          d.get("SignatureCheck") is True, "describe-eif of a signed EIF: IsSigned, CheckCRC and "
          "SignatureCheck true, exit 0", r.stdout + r.stderr)
    c.tap(list(d.keys()) == ["EifVersion", "Measurements", "IsSigned", "SigningCertificate", "CheckCRC",
                             "SignatureCheck", "ImageName", "ImageVersion", "Metadata"],
          "describe-eif of a signed EIF: nitro-cli's keys in its order", list(d.keys()))
    p = c.nectl("pcr", "--signing-certificate", pem)
    pcr_cmd = json.loads(p.stdout or "{}").get("PCR8")
    c.tap(m.get("PCR8") == pcr8 and pcr_cmd == pcr8 and build_out.get("PCR8") == pcr8,
          "PCR8 of describe-eif = nectl pcr --signing-certificate = build-eif's = hashlib "
          "SHA384(zeros || SHA384(DER))", (m.get("PCR8"), pcr_cmd, build_out.get("PCR8"), pcr8))
    c.tap((m.get("PCR0"), m.get("PCR1"), m.get("PCR2")) == pcrs and
          list(m.keys()) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2", "PCR8"],
          "describe-eif of a signed EIF: PCR0-2 as unsigned (hashlib), PCR8 last", m)
    cert = d.get("SigningCertificate", {})
    der = c.der(pem)
    dates = c.openssl("x509", "-in", pem, "-noout", "-startdate", "-enddate").decode().split("\n")
    c.tap(cert.get("IssuerName") == ISSUER and list(cert.get("IssuerName", {}).keys()) == sorted(ISSUER) and
          cert.get("Algorithm") == "ecdsa-with-SHA384",
          "SigningCertificate: IssuerName by long attribute names in sorted order, Algorithm "
          "ecdsa-with-SHA384", cert)
    c.tap("notBefore=" + str(cert.get("NotBefore")) == dates[0] and
          "notAfter=" + str(cert.get("NotAfter")) == dates[1],
          "SigningCertificate: NotBefore and NotAfter as openssl prints them", (cert, dates))
    c.tap(cert.get("Signature") == cert_signature_hex(der),
          "SigningCertificate: Signature is the certificate's signature bytes as XX:XX:...",
          cert.get("Signature"))
    return d


def other_curves(c, args):
    for curve in ("prime256v1", "secp521r1"):
        pem, key = c.signer("sig-" + curve, curve)
        r, out = build(c, "sig-%s.eif" % curve, args, pem, key)
        if r.returncode:
            c.tap(False, "build-eif signs with a %s key" % curve, r.stderr)
            continue
        data = open(out, "rb").read()
        pcr0 = json.loads(r.stdout)["Measurements"]["PCR0"]
        section_bytes(c, data, pem, key, pcr0, curve)
        r2, d = c.describe(out)
        c.tap(r2.returncode == 0 and d.get("SignatureCheck") is True,
              "describe-eif: SignatureCheck true for a %s signature" % curve, r2.stderr)


def key_forms(c, args):
    """openssl ecparam -genkey (EC PARAMETERS + SEC1 EC PRIVATE KEY), as AWS's guide makes keys."""
    key = c.path("ecparam.key")
    c.openssl("ecparam", "-name", "secp384r1", "-genkey", "-out", key)
    pem = c.path("ecparam.pem")
    c.openssl("req", "-new", "-x509", "-key", key, "-sha384", "-subj", "/CN=ecparam", "-days", "5",
              "-config", c.forge.cnf, "-out", pem)
    r, out = build(c, "ecparam.eif", args, pem, key)
    r2, d = c.describe(out)
    c.tap(r.returncode == 0 and d.get("SignatureCheck") is True,
          "a key from openssl ecparam -genkey (EC PARAMETERS then EC PRIVATE KEY) signs", r.stderr)


# ------------------------------------------------------------ build errors

def build_errors(c, args, pem, key):
    other_pem, other_key = c.signer("other", "secp384r1", "/CN=other signer")
    rsa_key = c.path("rsa.key")
    c.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa_key)
    rsa_pem = c.path("rsa.pem")
    c.openssl("req", "-x509", "-new", "-key", rsa_key, "-subj", "/CN=rsa", "-days", "5", "-config",
              c.forge.cnf, "-out", rsa_pem)
    k1_pem, k1_key = c.signer("k1", "secp256k1")
    enc_key = c.path("enc.key")
    c.openssl("pkey", "-in", key, "-aes256", "-passout", "pass:secret", "-out", enc_key)
    cases = [
        ("a key that is not the certificate's", pem, other_key, 60, "does not belong to the certificate"),
        ("the certificate of another key", other_pem, key, 60, "does not belong to the certificate"),
        ("an RSA key", rsa_pem, rsa_key, 60, "EC keys on P-256, P-384 or P-521"),
        ("a secp256k1 key", k1_pem, k1_key, 60, "EC keys on P-256, P-384 or P-521"),
        ("an encrypted key", pem, enc_key, 60, "is encrypted"),
        ("a certificate that is not PEM", key, key, 60, "is not a PEM certificate"),
        ("a key that is not PEM", pem, pem, 60, "is not a PEM private key"),
        ("a missing certificate file", c.path("nonexistent.pem"), key, 60, "cannot open the certificate"),
    ]
    for name, p, k, code, text in cases:
        r, out = build(c, "bad-sign.eif", args, p, k, binary=c.asan)
        c.tap(one_error(r, code) and text in r.stderr and not os.path.exists(out) and not r.stdout,
              "build-eif with %s: E%02d, nothing written" % (name, code), r.stderr)
    for opt, missing in (("--signing-certificate", "--private-key"), ("--private-key", "--signing-certificate")):
        r = c.nectl("build-eif", *(args + [opt, pem, "-o", c.path("half.eif")]))
        c.tap(one_error(r, 1) and missing in r.stderr and not os.path.exists(c.path("half.eif")),
              "build-eif with %s alone: E01 names %s" % (opt, missing), r.stderr)
    tiny = c.write("tiny-rd", b"x")
    base = args[:6]
    r = c.nectl("build-eif", *(base + ["--ramdisk", tiny] * 28 + ["--signing-certificate", pem,
                                                                "--private-key", key, "-o", c.path("r28.eif")]))
    r2, d = c.describe(c.path("r28.eif"))
    c.tap(r.returncode == 0 and c.parse_eif(open(c.path("r28.eif"), "rb").read())["nsec"] == 32 and
          d.get("SignatureCheck") is True, "28 ramdisks signed: 32 sections, signature checks", r.stderr)
    r = c.nectl("build-eif", *(base + ["--ramdisk", tiny] * 29 + ["--signing-certificate", pem,
                                                                "--private-key", key, "-o", c.path("r29.eif")]))
    c.tap(one_error(r, 48) and not os.path.exists(c.path("r29.eif")),
          "29 ramdisks signed: E48 (the signature takes the 32nd section), nothing written", r.stderr)


# ------------------------------------------------------------ checks

def tampered(c, good, pem):
    """Changed images: describe-eif shows SignatureCheck false (E59), run refuses them (E59)."""
    sig_off, body = c.signature(good)
    items, _ = dec(body)
    entry = dict(items[0].pairs)
    cose = bytes(entry["signature"])
    parts, _ = dec(cose)
    kernel_byte = HDR + 12 + 1000
    flipped = bytearray(good)
    flipped[kernel_byte] ^= 0x20
    bad_sig = bytearray(parts[3])
    bad_sig[10] ^= 1
    other_pem, _ = c.signer("swap", "secp384r1", "/CN=swapped in")
    other = open(other_pem, "rb").read()

    def section(cert, cose_bytes):
        return enc([Map([("signing_certificate", list(cert)), ("signature", list(cose_bytes))])])

    def with_cose(**kw):
        p = list(parts)
        for i, v in kw.items():
            p[int(i[1:])] = v
        return c.with_signature(good, section(open(pem, "rb").read(), enc([p[0], Map([]), p[2], p[3]])))

    cases = [
        ("one kernel byte changed (CRC fixed)", fix_crc(flipped), "signs another PCR0", None),
        ("one byte of the COSE signature changed", with_cose(p3=bytes(bad_sig)), "does not verify", None),
        ("the certificate swapped for another", c.with_signature(good, section(other, cose)),
         "does not verify", other_pem),
        ("the signed PCR0 changed", with_cose(p2=enc(Map([("register_index", 0), ("register_value",
                                                                                  [0] * 48)]))),
         "does not verify", None),
        ("the protected header saying ES256", with_cose(p0=bytes.fromhex("a10126")),
         "algorithm -7", None),
        ("the COSE_Sign1 truncated", c.with_signature(good, section(open(pem, "rb").read(), cose[:-5])),
         "not CBOR", None),
    ]
    for name, data, reason, cert in cases:
        path = c.write("tampered.eif", data)
        for binary in [c.bin] + ([c.asan] if c.asan else []):
            r, d = c.describe(path, binary)
            ok = one_error(r, 59) and reason in r.stderr and d.get("SignatureCheck") is False and \
                d.get("CheckCRC") is True and d.get("IsSigned") is True
            if cert:
                ok &= d.get("Measurements", {}).get("PCR8") == pcr_of(c.der(cert))
            c.tap(ok, "%s: %s: SignatureCheck false, E59 (%s)%s" %
                  ("describe-eif" if binary == c.bin else "asan", name, reason,
                   ", PCR8 of the new certificate" if cert else ""), r.stdout[-300:] + r.stderr)
        r = c.run(path, c.asan)
        c.tap(one_error(r, 59) and reason in r.stderr and not r.stdout,
              "run%s: %s: E59 before the device is touched" % (" (asan)" if c.asan else "", name),
              r.stderr)
    r, d = c.describe(c.write("crc.eif", bytes(flipped)))
    c.tap(one_error(r, 35) and d.get("CheckCRC") is False and d.get("SignatureCheck") is False and
          "signature check failed too" in r.stderr,
          "one kernel byte changed, CRC not fixed: CheckCRC and SignatureCheck false, E35 first",
          r.stderr)
    r = c.run(c.path("crc.eif"))
    c.tap(one_error(r, 35) and "CRC mismatch" in r.stderr, "run: CRC mismatch of a signed image is E35",
          r.stderr)


def malformed_sections(c, good, pem):
    """Sections nitro-cli's reader cannot read: describe-eif E35, run E59."""
    cert = list(open(pem, "rb").read())
    _, body = c.signature(good)
    cose = dict(dec(body)[0][0].pairs)["signature"]
    cases = [
        ("not CBOR", bytes([0xFF]) * 40),
        ("an empty array", enc([])),
        ("byte strings instead of arrays of uint8",
         enc([Map([("signing_certificate", bytes(cert)), ("signature", bytes(cose))])])),
        ("a certificate that is not PEM", enc([Map([("signing_certificate", list(b"hello")),
                                                    ("signature", cose)])])),
        ("no signing_certificate", enc([Map([("signature", cose)])])),
        ("a byte after the CBOR", body + b"\0"),
    ]
    for name, data in cases:
        path = c.write("malformed-sig.eif", c.with_signature(good, data))
        for binary in [c.bin] + ([c.asan] if c.asan else []):
            r, _ = c.describe(path, binary)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            c.tap(r.returncode == 35 and len(lines) == 1 and lines[0].startswith("[ E35 ]") and
                  not r.stdout, "%s: signature section with %s: one E35 line, no JSON" %
                  ("describe-eif" if binary == c.bin else "asan", name), r.stdout[-200:] + r.stderr)
        r = c.run(path, c.asan)
        c.tap(one_error(r, 59), "run%s: signature section with %s: E59" %
              (" (asan)" if c.asan else "", name), r.stderr)
    big = c.with_signature(good, b"\0" * ((64 << 10) + 1))
    r, _ = c.describe(c.write("big-sig.eif", big))
    c.tap(one_error(r, 35) and "limit" in r.stderr, "a signature section over 64 KiB: E35", r.stderr)


def fuzz(c, good, rounds=120):
    sig_off, body = c.signature(good)
    start = sig_off + 12
    crashes, outcomes = [], {}
    for i in range(rounds):
        data = bytearray(good)
        for _ in range(c.rnd.randint(1, 4)):
            pos = start + c.rnd.randrange(len(body))
            data[pos] = c.rnd.getrandbits(8)
        path = c.write("fuzz-sig.eif", fix_crc(data))
        r = c.nectl("describe-eif", path, binary=c.asan or c.bin)
        outcomes[r.returncode] = outcomes.get(r.returncode, 0) + 1
        if r.returncode not in (0, 35, 59):
            crashes.append((i, r.returncode, r.stderr[-300:]))
    c.tap(not crashes, "%d random changes of the signature section: exit 0, 35 or 59, never a crash %s" %
          (rounds, sorted(outcomes.items())), crashes[:3])


def dates(c, args, key):
    """run refuses a certificate outside its dates (nitro-cli's check); describe-eif only notes it."""
    for name, start, end, reason in (("expired", "20200101000000Z", "20200102000000Z", "expired at 2020-01-02"),
                                     ("not yet valid", "20990101000000Z", "20991231000000Z",
                                      "not valid before 2099-01-01")):
        pem = c.dated(name.replace(" ", "-"), key, start, end)
        r, out = build(c, "dated.eif", args, pem, key)
        c.tap(r.returncode == 0 and "Warning: the signing certificate" in r.stderr and reason in r.stderr,
              "build-eif with a certificate %s: built, with a warning" % name, r.stderr)
        r2, d = c.describe(out)
        c.tap(r2.returncode == 0 and d.get("SignatureCheck") is True and reason in r2.stderr,
              "describe-eif with a certificate %s: SignatureCheck true, a note, exit 0" % name, r2.stderr)
        r3 = c.run(out)
        c.tap(one_error(r3, 59) and reason in r3.stderr, "run with a certificate %s: E59" % name, r3.stderr)


# ------------------------------------------------------------ regression

def golden(c):
    kernel = bytes((i * 7 + 3) & 0xFF for i in range(200000))
    paths = [c.write("g-bzImage", kernel), c.write("g-rd0", bytes(range(256)) * 40), c.write("g-rd1", b"x" * 1000)]
    gdir = c.path("golden")
    os.makedirs(gdir, exist_ok=True)
    out = os.path.join(gdir, "golden.eif")
    r = c.nectl("build-eif", "--kernel", paths[0], "--cmdline", "console=ttyS0 golden", "--ramdisk", paths[1],
                "--ramdisk", paths[2], "-o", out)
    got = hashlib.sha256(open(out, "rb").read()).hexdigest() if r.returncode == 0 else r.stderr
    c.tap(got == GOLDEN_SHA256, "an unsigned EIF is byte for byte what nectl wrote before signing existed "
          "(SHA-256 %s...)" % GOLDEN_SHA256[:16], got)


def run(tap, nectl, nectl_bin, asan_bin, tmp, rnd, parse_eif):
    c = Ctx(tap, nectl, nectl_bin, asan_bin, tmp, rnd, parse_eif)
    golden(c)
    kernel, cmdline, ramdisks, args = inputs(c)
    pcrs = (pcr_of(kernel + cmdline + b"".join(ramdisks)), pcr_of(kernel + cmdline + ramdisks[0]),
            pcr_of(b"".join(ramdisks[1:])))
    pem, key = c.signer("signer")
    r_u, unsigned = build(c, "unsigned.eif", args)
    r, signed = build(c, "signed.eif", args, pem, key, binary=c.asan)
    try:
        out = json.loads(r.stdout)["Measurements"]
    except (ValueError, KeyError):
        out = {}
    tap(r.returncode == 0 and r_u.returncode == 0 and (out.get("PCR0"), out.get("PCR1"), out.get("PCR2")) == pcrs
        and list(out.keys()) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2", "PCR8"],
        "build-eif --signing-certificate --private-key%s: exit 0, Measurements PCR0-2 (hashlib) and PCR8" %
        (" (asan)" if asan_bin else ""),
        r.stdout + r.stderr)
    if r.returncode or r_u.returncode:
        return
    good = open(signed, "rb").read()
    layout(c, good, open(unsigned, "rb").read())
    section_bytes(c, good, pem, key, pcrs[0])
    describe_signed(c, signed, pem, out, pcrs)
    if not c.device:
        r = c.run(signed)
        tap(one_error(r, 19), "run of a well signed image passes the signature check and reaches the "
            "device check (E19 here)", r.stderr)
    other_curves(c, args)
    key_forms(c, args)
    build_errors(c, args, pem, key)
    tampered(c, good, pem)
    malformed_sections(c, good, pem)
    fuzz(c, good)
    dates(c, args, key)
    r = nectl("build-eif", "--help")
    tap("--signing-certificate CERT.pem --private-key KEY.pem" in r.stdout and "E60" in r.stdout,
        "build-eif --help documents the signing options and E60")
    r = nectl("describe-eif", "--help")
    tap("PCR8" in r.stdout and "SignatureCheck" in r.stdout and "E59" in r.stdout,
        "describe-eif --help documents PCR8, SignatureCheck and E59")
