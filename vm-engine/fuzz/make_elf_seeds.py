#!/usr/bin/env python3
"""Writes the seed corpus of the ELF loader fuzzer (elf_loader_fuzz.cpp):
small hand-built x86-64 ELF64 executables, each exercising one part of the
loader. Run from anywhere; the files go next to this script in corpus/.
The seeds are committed; rerun this only to change them."""
import os
import struct

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 2, 3, 6, 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
ET_EXEC, ET_DYN = 2, 3
EHDR, PHDR = 64, 56
# mov eax, 60; xor edi, edi; syscall  (exit(0))
CODE = bytes([0xB8, 0x3C, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05])


def elf(etype, entry, segments, body):
    """segments: (type, flags, offset, vaddr, filesz, memsz, align); body: bytes placed after the headers."""
    phoff = EHDR
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh = ident + struct.pack("<HHIQQQIHHHHHH", etype, 62, 1, entry, phoff, 0, 0, EHDR, PHDR, len(segments), 0, 0, 0)
    ph = b"".join(struct.pack("<IIQQQQQQ", t, f, off, va, va, fs, ms, al) for (t, f, off, va, fs, ms, al) in segments)
    return eh + ph + body


def headers(n):
    return EHDR + PHDR * n


def seeds():
    out = {}
    # One read+execute segment covering the headers and the code.
    n = 2
    size = headers(n) + len(CODE)
    out["exec_min"] = elf(ET_EXEC, 0x400000 + headers(n), [
        (PT_LOAD, PF_R | PF_X, 0, 0x400000, size, size, 0x1000),
        (PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
    ], CODE)
    # Text, then data with a bss on a later page, and PT_PHDR.
    n = 4
    text = headers(n) + len(CODE)
    data = b"DATA" * 8
    out["exec_bss"] = elf(ET_EXEC, 0x400000 + headers(n), [
        (PT_PHDR, PF_R, EHDR, 0x400000 + EHDR, PHDR * n, PHDR * n, 8),
        (PT_LOAD, PF_R | PF_X, 0, 0x400000, text, text, 0x1000),
        (PT_LOAD, PF_R | PF_W, text, 0x401000 + text, len(data), 0x3000, 0x1000),
        (PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
    ], CODE + data)
    # Static-PIE: ET_DYN linked at 0 with a (empty) dynamic section.
    n = 3
    size = headers(n) + len(CODE) + 16
    out["pie"] = elf(ET_DYN, headers(n), [
        (PT_LOAD, PF_R | PF_X | PF_W, 0, 0, size, size + 0x2000, 0x1000),
        (PT_DYNAMIC, PF_R | PF_W, headers(n) + len(CODE), headers(n) + len(CODE), 16, 16, 8),
        (PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
    ], CODE + bytes(16))
    # Dynamically linked: refused, naming the interpreter.
    n = 2
    interp = b"/lib64/ld-linux-x86-64.so.2\0"
    size = headers(n) + len(interp)
    out["interp"] = elf(ET_EXEC, 0x400000, [
        (PT_INTERP, PF_R, headers(n), 0x400000 + headers(n), len(interp), len(interp), 1),
        (PT_LOAD, PF_R | PF_X, 0, 0x400000, size, size, 0x1000),
    ], interp)
    # An executable stack, and two segments sharing a page (union of permissions).
    n = 3
    size = headers(n) + len(CODE)
    out["exec_stack_shared_page"] = elf(ET_EXEC, 0x400000 + headers(n), [
        (PT_LOAD, PF_R | PF_X, 0, 0x400000, size, size, 0x1000),
        (PT_LOAD, PF_R | PF_W, size, 0x400000 + size, 8, 0x100, 0x1000),
        (PT_GNU_STACK, PF_R | PF_W | PF_X, 0, 0, 0, 0, 16),
    ], CODE + bytes(8))
    return out


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(d, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
