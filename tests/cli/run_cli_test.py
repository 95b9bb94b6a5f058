#!/usr/bin/env python3
"""End-to-end tests of `vm run`'s options (docs/cli.md, docs/engine.md):
help text, argument errors (one line, exit status 2), --dump files,
--verify-jit and --stats output, on the bundled hello guest program.
Usage: run_cli_test.py PATH/TO/vm PATH/TO/hello-guest"""
import os
import subprocess
import sys
import tempfile

VM, HELLO = sys.argv[1], sys.argv[2]
failures = []


def run(*args, expect_rc=0):
    p = subprocess.run([VM, "run", *args], capture_output=True, text=True, timeout=120)
    if p.returncode != expect_rc:
        failures.append(f"vm run {' '.join(args)}: exit {p.returncode}, expected {expect_rc}: {p.stderr.strip()}")
    return p


def check(cond, what):
    if not cond:
        failures.append(what)


help_text = run("--help").stdout
for opt in ["--engine", "--mmu", "--stats", "--trace", "--dump", "--verify-jit", "--hot-threshold", "--opt-threshold",
            "--no-chain", "--perf-map"]:
    check(opt in help_text, f"--help mentions {opt}")

# Argument errors: one line on stderr, status 2, the guest never starts.
for args, needle in [([], "missing PROGRAM"), (["--engine", "fast", HELLO], "--engine"),
                     (["--dump", "ir,bogus", "/tmp", HELLO], "not a comma list"),
                     (["--engine", "interp", "--dump", "asm", "/tmp", HELLO], "needs --engine jit or tiered"),
                     (["--dump", "ir", "/proc/no/such/dir", HELLO], "cannot use directory"),
                     (["/no/such/program"], "cannot open")]:
    p = run(*args, expect_rc=2)
    check(needle in p.stderr and p.stderr.count("\n") == 1 and p.stdout == "", f"error for {args}: {p.stderr!r}")

native = subprocess.run([HELLO], capture_output=True, text=True)

# --dump writes every requested stage of every translation.
with tempfile.TemporaryDirectory() as d:
    p = run("--engine", "tiered", "--hot-threshold", "1", "--dump", "ir,opt,llvm,asm", d, HELLO)
    check(p.stdout == native.stdout, "hello output under --dump")
    files = os.listdir(d)
    for suffix in [".ir", ".opt.ir", ".fast.ll", ".fast.s"]:
        check(any(f.endswith(suffix) for f in files), f"--dump wrote *{suffix} files")
    entry = f"block_{int(subprocess.run(['readelf', '-h', HELLO], capture_output=True, text=True).stdout.split('Entry point address:')[1].split()[0], 16):x}.ir"
    check(entry in files, f"--dump has the entry block {entry}")
    with open(os.path.join(d, entry)) as f:
        check(f.read().startswith("block 0x"), "dumped vm-ir is in the text form")
    ll = [f for f in files if f.endswith(".fast.ll")][0]
    with open(os.path.join(d, ll)) as f:
        check("define " in f.read(), "dumped LLVM IR has a function")

# --verify-jit: same output, and --stats says how many block runs were checked.
for engine in ["jit", "tiered"]:
    p = run("--engine", engine, "--verify-jit", "--stats", "--hot-threshold", "1", HELLO)
    check(p.stdout == native.stdout, f"hello under {engine} --verify-jit")
    check("agreed with the interpreter" in p.stderr, f"--verify-jit counts in --stats ({engine})")

p = run("--stats", HELLO)
for needle in ["engine=tiered", "native exits", "regions", "compile time", "syscalls:", "hottest blocks"]:
    check(needle in p.stderr, f"--stats shows {needle!r}")

if failures:
    print("\n".join(f"FAIL: {f}" for f in failures))
    sys.exit(1)
print("vm run CLI tests passed")
