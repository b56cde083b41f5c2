#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest half of tools/relay-peer-test: a vsock stream echo server on
port 6000 of the parent (CID 3).  Prints "listening" once it accepts, then
echoes every connection in its own thread until a client sends "quit" or
the time limit (first argument, seconds) passes.  A client that sends
"dial CID PORT" instead gets the outcome of this guest's own connect to
CID:PORT (2 s at most) as one line: "dial: connected" or "dial: ERROR".
One that sends "stream CID PORT BYTES" gets this guest to connect to
CID:PORT and send it BYTES bytes as fast as the peer's credit allows, with
a socket buffer of BYTES (at most 1 GiB: the guest's kernel gives a peer
no more credit than its own buffer), then one line: "stream: sent N, ok"
or "stream: sent N, ERROR"."""
import os
import socket
import sys
import threading
import time

PORT = 6000


def dial(words):
    try:
        cid, port = int(words[1]), int(words[2])
    except (IndexError, ValueError):
        return "dial: bad request (dial CID PORT)\n"
    out = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    out.settimeout(2)
    try:
        out.connect((cid, port))
        return "dial: connected\n"
    except OSError as e:
        return "dial: %s\n" % (e.strerror or e)
    finally:
        out.close()


def stream(words):
    try:
        cid, port, total = int(words[1]), int(words[2]), int(words[3])
    except (IndexError, ValueError):
        return "stream: bad request (stream CID PORT BYTES)\n"
    out = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    out.settimeout(60)
    chunk, sent = bytes(65536), 0
    size = max(min(total, 1 << 30), 1 << 18)   # (Python passes it as a u64)
    try:
        out.setsockopt(socket.AF_VSOCK, socket.SO_VM_SOCKETS_BUFFER_MAX_SIZE, size)
        out.setsockopt(socket.AF_VSOCK, socket.SO_VM_SOCKETS_BUFFER_SIZE, size)
        out.connect((cid, port))
        while sent < total:
            sent += out.send(chunk[:min(len(chunk), total - sent)])
        return "stream: sent %d, ok\n" % sent
    except OSError as e:
        return "stream: sent %d, %s\n" % (sent, e.strerror or e)
    finally:
        out.close()


def serve(conn):
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                print("connection ended: EOF", flush=True)
                return
            if data.startswith(b"quit"):
                print("quit", flush=True)
                os._exit(0)
            if data.startswith(b"dial "):
                conn.sendall(dial(data.split()).encode())
                continue
            if data.startswith(b"stream "):
                conn.sendall(stream(data.split()).encode())
                continue
            conn.sendall(data)
    except OSError as e:
        print("connection ended: %s" % e, flush=True)
    finally:
        conn.close()


def main():
    limit = float(sys.argv[1]) if len(sys.argv) > 1 else 300
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.bind((socket.VMADDR_CID_ANY, PORT))
    s.listen(16)
    s.settimeout(1)
    print("listening", flush=True)
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            conn, addr = s.accept()
        except socket.timeout:
            continue
        print("accepted %s" % (addr,), flush=True)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    print("time limit", flush=True)
    return 1


if __name__ == "__main__":
    os._exit(main())
