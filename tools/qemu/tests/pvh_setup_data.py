#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""tools/qemu/tests/pvh_setup_data.py QEMU: a PVH boot hands the firmware
the kernel file's first 8 KiB, and nothing else.

On the PVH path x86_load_linux() gives fw_cfg the kernel file's first 8 KiB
as FW_CFG_SETUP_DATA; qboot copies that item to guest address 0 and boots
the kernel as PVH only if it finds the ELF magic there.  QEMU 7.2 handed
fw_cfg a buffer on its own stack (tools/qemu/patches/pvh-setup-data-off-
the-stack.patch): the guest got whatever the stack held by then, and
qboot, finding no ELF magic, loaded the kernel as multiboot, zeroing it.

The kernel here is a 4 KiB ELF made on the spot, loaded whole at 1 MiB,
whose PVH entry compares guest address 0 with itself: 4 KiB equal, the
next 4 KiB zero.  It says what it found on the serial port and leaves
through isa-debug-exit: QEMU's exit status is 1 when both held, 3 when
the first 4 KiB differ, 5 when the rest is not zero.  When the ELF magic
itself is gone, qboot takes its multiboot path: it zeroes this kernel
(FW_CFG_KERNEL_DATA) and, without an initrd, stops; the entry never
answers, which is reported as such.  On the normal build the unpatched
QEMU fails through the 4 KiB past the file (its stack); under ASan
(ASAN_OPTIONS detect_stack_use_after_return=1) its read of the dead stack
frame is a report.  qboot is named with -bios: it is the firmware the
launcher gives enclaves (Debian's bios-microvm.bin), and the one that
copies SETUP_DATA to guest address 0.

Prints one line, "ok" or "not ok: why"; exit status 0 or 1.
"""
import os
import struct
import subprocess
import sys
import tempfile

LOAD = 0x100000                 # where the file is loaded, whole
SIZE = 4096                     # the file; qboot copies 8192 bytes
ENTRY_OFF = 0x200               # the code's offset in the file
XEN_ELFNOTE_PHYS32_ENTRY = 18
DEBUG_EXIT = 0xf4               # isa-debug-exit's port


def code(entry):
    """32-bit code at @entry: compare, report on COM1, exit."""
    ok_msg = entry + 0x100
    bad_msg = entry + 0x140
    c = bytes([0xfc])                                   # cld
    c += bytes([0x31, 0xf6])                            # xor esi, esi
    c += b"\xbf" + struct.pack("<I", LOAD)              # mov edi, LOAD
    c += b"\xb9" + struct.pack("<I", SIZE)              # mov ecx, SIZE
    c += bytes([0xf3, 0xa6])                            # repe cmpsb
    jne1 = len(c)
    c += bytes([0x75, 0x00])                            # jne bad
    c += bytes([0x89, 0xf7])                            # mov edi, esi
    c += bytes([0x31, 0xc0])                            # xor eax, eax
    c += b"\xb9" + struct.pack("<I", 8192 - SIZE)       # mov ecx, 8192 - SIZE
    c += bytes([0xf3, 0xae])                            # repe scasb
    jne2 = len(c)
    c += bytes([0x75, 0x00])                            # jne bad_tail
    c += b"\xbe" + struct.pack("<I", ok_msg)            # mov esi, ok_msg
    c += bytes([0xb3, 0x00])                            # mov bl, 0
    jmp = len(c)
    c += bytes([0xeb, 0x00])                            # jmp print
    bad_tail = len(c)
    c += bytes([0xb3, 0x02])                            # bad_tail: mov bl, 2
    jmp2 = len(c)
    c += bytes([0xeb, 0x00])                            # jmp say_bad
    bad = len(c)
    c += bytes([0xb3, 0x01])                            # bad: mov bl, 1
    say_bad = len(c)
    c += b"\xbe" + struct.pack("<I", bad_msg)           # say_bad: mov esi, bad_msg
    prt = len(c)
    c += bytes([0x66, 0xba, 0xf8, 0x03])                # print: mov dx, 0x3f8
    loop = len(c)
    c += bytes([0xac])                                  # lodsb
    c += bytes([0x84, 0xc0])                            # test al, al
    c += bytes([0x74, 0x03])                            # jz done
    c += bytes([0xee])                                  # out dx, al
    c += bytes([0xeb, (loop - (len(c) + 2)) & 0xff])    # jmp loop
    c += bytes([0x88, 0xd8])                            # done: mov al, bl
    c += bytes([0xe6, DEBUG_EXIT])                      # out DEBUG_EXIT, al
    c += bytes([0xfa, 0xf4, 0xeb, 0xfd])                # cli; hlt; jmp hlt
    c = bytearray(c)
    c[jne1 + 1] = bad - (jne1 + 2)
    c[jne2 + 1] = bad_tail - (jne2 + 2)
    c[jmp + 1] = prt - (jmp + 2)
    c[jmp2 + 1] = say_bad - (jmp2 + 2)
    assert len(c) < 0x100
    c += bytes(0x100 - len(c))
    c += b"pvh: SETUP_DATA is the kernel's first 8 KiB\n\0".ljust(0x40, b"\0")
    c += b"pvh: SETUP_DATA is NOT the kernel's first 8 KiB\n\0".ljust(0x40, b"\0")
    return bytes(c)


def elf():
    """ELF64 header, a PT_LOAD of the whole file at LOAD, a PT_NOTE with
    the PVH entry; the code at ENTRY_OFF."""
    entry = LOAD + ENTRY_OFF
    note_off = 64 + 2 * 56
    note = struct.pack("<III", 4, 8, XEN_ELFNOTE_PHYS32_ENTRY) + b"Xen\0" + \
        struct.pack("<Q", entry)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 7, 0, LOAD, LOAD, SIZE, SIZE, 0x1000)
    pnote = struct.pack("<IIQQQQQQ", 4, 4, note_off, LOAD + note_off, LOAD + note_off,
                        len(note), len(note), 4)
    f = ehdr + load + pnote + note
    f += bytes(ENTRY_OFF - len(f)) + code(entry)
    assert len(f) <= SIZE
    return f + bytes(SIZE - len(f))


def main():
    qemu = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        kernel = os.path.join(d, "pvh-kernel")
        with open(kernel, "wb") as f:
            f.write(elf())
        env = dict(os.environ)
        if "ASAN_OPTIONS" in env:
            env["ASAN_OPTIONS"] += ":detect_stack_use_after_return=1"
        try:
            r = subprocess.run([qemu, "-M", "microvm,accel=tcg", "-m", "64M", "-nodefaults",
                                "-display", "none", "-no-reboot", "-L", "/usr/share/qemu",
                                "-bios", "qboot.rom",
                                "-kernel", kernel, "-append", "",
                                "-device", "isa-debug-exit,iobase=%#x,iosize=1" % DEBUG_EXIT,
                                "-serial", "stdio"],
                               capture_output=True, text=True, timeout=30, env=env)
        except subprocess.TimeoutExpired:
            print("not ok: no answer from the kernel's PVH entry within 30 s: qboot probably "
                  "found no ELF magic at address 0 and took its multiboot path")
            return 1
    said = r.stdout.strip().splitlines()
    said = said[-1] if said else "nothing on the serial port"
    if r.returncode == 1 and "is the kernel's" in said:
        print("ok: %s" % said)
        return 0
    why = {3: "guest address 0 is not the kernel file's first 4 KiB",
           5: "the 4 KiB after the kernel file are not zero"}.get(r.returncode, "exit status %d" % r.returncode)
    print("not ok: %s: %r; %s" % (why, said, r.stderr.strip()[-300:]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
