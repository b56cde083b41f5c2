# SPDX-License-Identifier: GPL-2.0
"""Test-time forgery of NSM attestation documents, for test_nectl.py.

An independent CBOR encoder and decoder (written here from RFC 8949, so that
nectl's libcbor-based reader is checked against a second implementation),
certificate chains made with the openssl command line in a temporary
directory, and COSE_Sign1 documents signed with those keys.  Nothing made
here is kept: keys live in the test's temporary directory only.
"""
import os
import struct
import subprocess


# ------------------------------------------------------------------ CBOR

class Raw:
    """Bytes inserted as they are (to build malformed CBOR)."""
    def __init__(self, data):
        self.data = data


class Tag:
    def __init__(self, tag, item):
        self.tag, self.item = tag, item


class Map:
    """An ordered map that may repeat keys; indefinite=True encodes BF..FF."""
    def __init__(self, pairs, indefinite=False):
        self.pairs, self.indefinite = list(pairs), indefinite

    def get(self, key):
        """The value of the first pair with key."""
        return next(v for k, v in self.pairs if k == key)

    def set(self, key, value):
        """Replaces the value of every pair with key, in place."""
        self.pairs = [(k, value if k == key else v) for k, v in self.pairs]


def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError(n)


def enc(v):
    if isinstance(v, Raw):
        return v.data
    if v is None:
        return b"\xf6"
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, (bytes, bytearray)):
        return head(2, len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, dict):
        v = Map(v.items())
    if isinstance(v, Map):
        body = b"".join(enc(k) + enc(x) for k, x in v.pairs)
        return (b"\xbf" + body + b"\xff") if v.indefinite else head(5, len(v.pairs)) + body
    if isinstance(v, Tag):
        return head(6, v.tag) + enc(v.item)
    raise TypeError(type(v))


def dec(data, pos=0):
    """Decodes one item at pos; returns (value, next pos).  Maps become Map."""
    ib = data[pos]
    major, ai = ib >> 5, ib & 31
    pos += 1
    if ai == 31:
        if major == 5:
            pairs = []
            while data[pos] != 0xFF:
                k, pos = dec(data, pos)
                v, pos = dec(data, pos)
                pairs.append((k, v))
            return Map(pairs, True), pos + 1
        raise ValueError("indefinite item %d not needed here" % major)
    if ai < 24:
        n = ai
    else:
        size = 1 << (ai - 24)
        n = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        b = bytes(data[pos:pos + n])
        return (b if major == 2 else b.decode()), pos + n
    if major == 4:
        out = []
        for _ in range(n):
            x, pos = dec(data, pos)
            out.append(x)
        return out, pos
    if major == 5:
        pairs = []
        for _ in range(n):
            k, pos = dec(data, pos)
            v, pos = dec(data, pos)
            pairs.append((k, v))
        return Map(pairs), pos
    if major == 6:
        x, pos = dec(data, pos)
        return Tag(n, x), pos
    if major == 7 and ai in (20, 21, 22):
        return {20: False, 21: True, 22: None}[ai], pos
    raise ValueError("CBOR item %#x not needed here" % ib)


def get(m, key):
    return m.get(key)


def replace(m, key, value):
    """A copy of Map m with key's value replaced (or the key added)."""
    pairs = [(k, value if k == key else v) for k, v in m.pairs]
    if key not in [k for k, _ in pairs]:
        pairs.append((key, value))
    return Map(pairs, m.indefinite)


# ------------------------------------------------------------------ COSE

ES384_PROTECTED = bytes.fromhex("a1013822")


def sig_structure(protected, payload):
    return enc(["Signature1", protected, b"", payload])


def split_document(doc):
    """(protected, unprotected, payload Map, payload bytes, signature)."""
    items, end = dec(doc)
    assert end == len(doc) and isinstance(items, list) and len(items) == 4
    payload, pend = dec(items[2])
    assert pend == len(items[2])
    return items[0], items[1], payload, items[2], items[3]


def der_to_raw(der, size=48):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) to COSE's r||s."""
    assert der[0] == 0x30
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[pos] == 0x02
        n = der[pos + 1]
        out += int.from_bytes(der[pos + 2:pos + 2 + n], "big").to_bytes(size, "big")
        pos += 2 + n
    return out


class Forge:
    """Keys, certificates and signed documents in one temporary directory."""

    CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ca0]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca1]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign
[ca_nosign]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = digitalSignature, nonRepudiation
[leaf_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
[leaf_nodigsig]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyAgreement
"""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "forge")
        os.makedirs(self.dir, exist_ok=True)
        self.cnf = self.path("ext.cnf")
        with open(self.cnf, "w") as f:
            f.write(self.CNF)
        self.serial = 1

    def path(self, name):
        return os.path.join(self.dir, name)

    def openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True)
        if r.returncode:
            raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr.decode()[-400:]))
        return r.stdout

    def key(self, name, curve="secp384r1"):
        path = self.path(name + ".key")
        self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve,
                     "-out", path)
        return path

    def root(self, name, subject, days=3650):
        key = self.key(name)
        pem = self.path(name + ".pem")
        self.openssl("req", "-x509", "-new", "-key", key, "-subj", subject, "-days", str(days),
                     "-sha384", "-config", self.cnf, "-extensions", "root", "-out", pem)
        return pem, key

    def resign(self, name, pem):
        """The certificate in pem with a new key, self-signed, its names and
        dates kept: another root that claims to be the same one."""
        key = self.key(name)
        out = self.path(name + ".pem")
        self.openssl("x509", "-in", pem, "-key", key, "-preserve_dates", "-out", out)
        return out, key

    def issue(self, name, subject, ca, ext, days=3650, curve="secp384r1"):
        """A certificate for a new key, signed by ca = (pem, key)."""
        key = self.key(name, curve)
        csr, pem = self.path(name + ".csr"), self.path(name + ".pem")
        self.openssl("req", "-new", "-key", key, "-subj", subject, "-config", self.cnf, "-out", csr)
        self.serial += 1
        self.openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                     "-set_serial", str(self.serial), "-days", str(days), "-sha384",
                     "-extfile", self.cnf, "-extensions", ext, "-out", pem)
        return pem, key

    def der(self, pem):
        return self.openssl("x509", "-in", pem, "-outform", "DER")

    def sign(self, key, data):
        tbs = self.path("tbs.bin")
        with open(tbs, "wb") as f:
            f.write(data)
        return der_to_raw(self.openssl("dgst", "-sha384", "-sign", key, tbs))

    def document(self, leaf_key, payload, protected=ES384_PROTECTED, tag=False):
        """payload: a Map (encoded here) or bytes (taken as they are)."""
        body = payload if isinstance(payload, bytes) else enc(payload)
        sig = self.sign(leaf_key, sig_structure(protected, body))
        cose = [protected, {}, body, sig]
        return enc(Tag(18, cose) if tag else cose)


def payload_map(certificate, cabundle, timestamp_ms, pcrs, public_key=None, user_data=None,
                nonce=None, indefinite=False):
    """The payload with the keys in real documents' order."""
    return Map([("module_id", "i-0123456789abcdef0-enc0123456789abcdef"),
                ("digest", "SHA384"), ("timestamp", timestamp_ms),
                ("pcrs", Map(sorted(pcrs.items()))), ("certificate", certificate),
                ("cabundle", cabundle), ("public_key", public_key),
                ("user_data", user_data), ("nonce", nonce)], indefinite)
