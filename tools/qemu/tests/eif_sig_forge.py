#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Signed EIFs changed for tests/eif-measure: each CASE reads a signed
image (made by nectl build-eif), changes its signature section and writes
a well-formed EIF again (sections back to back, table and CRC-32 fixed),
so that what the hypervisor refuses is the signature, not the file.

    eif_sig_forge.py CASE IN.eif OUT.eif [--key KEY.pem] [--other FILE]

Re-signing uses the openssl command line with KEY (never kept by the
test).  CBOR is encoded and decoded by nectl's test codec
(tools/nectl/tests/cose_forge.py: definite lengths, shortest heads, as
serde_cbor writes), not with libcbor, which the hypervisor uses.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import zlib

# The CBOR codec and the DER-to-r||s conversion of nectl's tests (written
# from RFC 8949, not libcbor, which the hypervisor uses), imported without
# writing bytecode into the tree (make check refuses any __pycache__)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "../../nectl/tests"))
from cose_forge import Map, Tag, dec, der_to_raw, enc  # noqa: E402

HDR = 548
SIG = 4
# alg per curve: (COSE alg, openssl digest, bytes of r and of s)
ALGS = {-7: ("-sha256", 32), -35: ("-sha384", 48), -36: ("-sha512", 66)}


def dec1(data):
    item, end = dec(data)
    assert end == len(data), "trailing bytes"
    return item


# ------------------------------------------------------------ the EIF

def read_eif(data):
    """(the header's first 26 bytes, [(type, data)] in table order)."""
    assert data[:4] == b".eif"
    nr = struct.unpack(">H", data[26:28])[0]
    sections = []
    for i in range(nr):
        off = struct.unpack(">Q", data[28 + 8 * i:36 + 8 * i])[0]
        size = struct.unpack(">Q", data[284 + 8 * i:292 + 8 * i])[0]
        stype, flags, ssize = struct.unpack(">HHQ", data[off:off + 12])
        assert flags == 0 and ssize == size
        sections.append((stype, bytes(data[off + 12:off + 12 + size])))
    return bytes(data[:26]), sections


def write_eif(start, sections):
    hdr = bytearray(HDR)
    hdr[:26] = start
    hdr[26:28] = struct.pack(">H", len(sections))
    body, off = b"", HDR
    for i, (stype, sdata) in enumerate(sections):
        hdr[28 + 8 * i:36 + 8 * i] = struct.pack(">Q", off)
        hdr[284 + 8 * i:292 + 8 * i] = struct.pack(">Q", len(sdata))
        chunk = struct.pack(">HHQ", stype, 0, len(sdata)) + sdata
        body += chunk
        off += len(chunk)
    hdr[544:548] = struct.pack(">I", zlib.crc32(bytes(hdr[:544]) + body))
    return bytes(hdr) + body


def signature_of(sections):
    sigs = [d for t, d in sections if t == SIG]
    assert len(sigs) == 1, "not one signature section"
    return sigs[0]


def with_signature(sections, body):
    return [(t, body if t == SIG else d) for t, d in sections]


# ------------------------------------------------------------ COSE

class Signed:
    """The section's first entry and its COSE_Sign1, decoded."""
    def __init__(self, body):
        self.section = dec1(body)
        self.entry = self.section[0]
        self.pem = bytes(self.entry.get("signing_certificate"))
        self.cose = dec1(bytes(self.entry.get("signature")))
        self.protected, self.unprotected, self.payload, self.sig = self.cose

    def alg(self):
        return dec1(self.protected).get(1)

    def encode(self, cose_bytes=None, pem=None):
        """The section with the entry's fields as serde_cbor writes them."""
        if cose_bytes is None:
            cose_bytes = enc([self.protected, self.unprotected, self.payload, self.sig])
        self.entry.set("signature", list(cose_bytes))
        self.entry.set("signing_certificate", list(pem if pem is not None else self.pem))
        return enc(self.section)

    def resign(self, key, protected=None, payload=None, digest=None):
        """Signs (protected, payload) anew with key: r || s by openssl dgst."""
        self.protected = protected if protected is not None else self.protected
        self.payload = payload if payload is not None else self.payload
        md, coord = ALGS[self.alg()] if digest is None else digest
        tbs = enc(["Signature1", self.protected, b"", self.payload])
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "tbs"), "wb") as f:
                f.write(tbs)
            der = subprocess.run(["openssl", "dgst", md, "-sign", key, os.path.join(d, "tbs")],
                                 check=True, capture_output=True).stdout
        self.sig = der_to_raw(der, coord)


# ------------------------------------------------------------ the cases

def case(name, sections, args):
    body = signature_of(sections)
    s = Signed(body)
    if name == "same":
        return sections
    if name == "resign-same":           # the forge's own signing, for control
        s.resign(args.key)
        return with_signature(sections, s.encode())
    if name == "bstr-fields":           # byte strings instead of arrays of uint8
        s.entry.set("signature", bytes(s.entry.get("signature")))
        s.entry.set("signing_certificate", s.pem)
        return with_signature(sections, enc(s.section))
    if name == "tag18":                 # the one-byte head D2
        return with_signature(sections, s.encode(b"\xd2" + bytes(s.entry.get("signature"))))
    if name == "tag18-long":            # D8 12
        return with_signature(sections, s.encode(enc(Tag(18, s.cose))))
    if name == "bstr-value":            # register_value a byte string, re-signed
        p = dec1(s.payload)
        p.set("register_value", bytes(p.get("register_value")))
        s.resign(args.key, payload=enc(p))
        return with_signature(sections, s.encode())
    if name == "two-entries":           # a second entry is neither read nor measured
        s.section.append(Map([("junk", 1)]))
        return with_signature(sections, s.encode())
    if name == "flip-sig":
        sig = bytearray(s.sig)
        sig[len(sig) // 2 + 3] ^= 0x01
        s.sig = bytes(sig)
        return with_signature(sections, s.encode())
    if name == "flip-payload":          # not re-signed
        p = dec1(s.payload)
        v = list(p.get("register_value"))
        v[0] ^= 1
        p.set("register_value", v)
        s.payload = enc(p)
        return with_signature(sections, s.encode())
    if name == "splice":                # another image's section, same signer
        _, other = read_eif(open(args.other, "rb").read())
        return with_signature(sections, signature_of(other))
    if name == "swap-cert":             # another certificate, same curve
        return with_signature(sections, s.encode(pem=open(args.other, "rb").read()))
    if name == "alg-mismatch":          # ES256 on a P-384 key, a valid ECDSA-SHA256
        assert s.alg() == -35
        s.resign(args.key, protected=enc(Map([(1, -7)])), digest=("-sha256", 48))
        return with_signature(sections, s.encode())
    if name == "crit":                  # a critical header nobody understands
        s.resign(args.key, protected=enc(Map([(1, s.alg()), (2, [99])])))
        return with_signature(sections, s.encode())
    if name == "index-1":               # signs "PCR1" with PCR0's value
        p = dec1(s.payload)
        p.set("register_index", 1)
        s.resign(args.key, payload=enc(p))
        return with_signature(sections, s.encode())
    if name == "extra-key":             # a third field in the signed payload
        p = dec1(s.payload)
        p.pairs.append(("note", "x"))
        s.resign(args.key, payload=enc(p))
        return with_signature(sections, s.encode())
    if name == "short-sig":
        s.sig = s.sig[:-1]
        return with_signature(sections, s.encode())
    if name == "trailing-section":      # a byte after the section's CBOR
        return with_signature(sections, body + b"\x00")
    if name == "trailing-cose":         # a byte after the COSE_Sign1
        return with_signature(sections, s.encode(bytes(s.entry.get("signature")) + b"\x00"))
    if name == "two-sections":          # the same section twice
        return sections + [(SIG, body)]
    raise SystemExit("eif_sig_forge: unknown case " + name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--key")
    ap.add_argument("--other")
    args = ap.parse_args()
    start, sections = read_eif(open(args.input, "rb").read())
    out = write_eif(start, case(args.case, sections, args))
    with open(args.output, "wb") as f:
        f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
