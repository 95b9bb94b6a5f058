#!/usr/bin/env python3
"""End-to-end tests of `vm run`'s options (docs/cli.md, docs/engine.md):
help text, argument errors (one line, exit status 2), --dump files (and
scripts/jit-profile over a code dump), --verify-jit and --stats output, on
the bundled hello guest program; scripts/steady-ab on a small workload.
Usage: run_cli_test.py PATH/TO/vm PATH/TO/hello-guest"""
import os
import re
import subprocess
import sys
import tempfile

VM, HELLO = sys.argv[1], sys.argv[2]
SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts")
PROFILE = os.path.join(SCRIPTS, "jit-profile")
STEADY_AB = os.path.join(SCRIPTS, "steady-ab")
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
            "--no-chain", "--perf-map", "--address-space"]:
    check(opt in help_text, f"--help mentions {opt}")

# Argument errors: one line on stderr, status 2, the guest never starts.
for args, needle in [([], "missing PROGRAM"), (["--engine", "fast", HELLO], "--engine"),
                     (["--dump", "ir,bogus", "/tmp", HELLO], "not a comma list"),
                     (["--engine", "interp", "--dump", "asm", "/tmp", HELLO], "needs --engine jit or tiered"),
                     (["--dump", "ir", "/proc/no/such/dir", HELLO], "cannot use directory"),
                     (["/no/such/program"], "cannot open"),
                     (["--address-space", "3G", HELLO], "not a power of two"),
                     (["--address-space", "512M", HELLO], "not a power of two"),
                     (["--address-space", "256T", HELLO], "not a power of two"),
                     (["--address-space", "4X", HELLO], "not a power of two"),
                     (["--address-space", "4GB", HELLO], "not a power of two")]:
    p = run(*args, expect_rc=2)
    check(needle in p.stderr and p.stderr.count("\n") == 1 and p.stdout == "", f"error for {args}: {p.stderr!r}")

native = subprocess.run([HELLO], capture_output=True, text=True)

# Address space sizes other than the default 4G, in every engine and mmu.
for size in ["1G", "64G", "16g", "1099511627776"]:
    for extra in [[], ["--mmu", "softmmu"], ["--engine", "jit"]]:
        p = run("--address-space", size, *extra, HELLO)
        check(p.stdout == native.stdout, f"hello with --address-space {size} {extra}")

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

# --dump code writes each compile's machine code as installed: its size is
# the perf map's for that unit, and scripts/jit-profile attributes samples
# (here made up: addresses inside units and one outside) to the unit that
# covers them and annotates its disassembly.
with tempfile.TemporaryDirectory() as d:
    # The shell removes a stale map of its pid (pids are reused and the
    # map is appended to), then becomes vm with the same pid.
    proc = subprocess.Popen(["sh", "-c", 'rm -f "/tmp/perf-$$.map" && exec "$0" "$@"', VM, "run", "--engine", "jit",
                             "--perf-map", "--dump", "code", d, HELLO],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    perf_map = f"/tmp/perf-{proc.pid}.map"
    check(proc.returncode == 0 and out == native.stdout, f"hello under --dump code --perf-map: {err.strip()}")
    try:
        with open(perf_map) as f:
            units = [(int(a, 16), int(n, 16), name) for a, n, name in (line.split() for line in f if line.strip())]
    except OSError:
        units = []
    check(len(units) > 0, f"--perf-map wrote {perf_map}")
    last = {name: (start, size) for start, size, name in units}  # a later line replaces an earlier one
    for name, (start, size) in last.items():
        pc, tier = name[len("vm_block_"):].rsplit("_", 1)
        path = os.path.join(d, f"block_{pc}.{tier}.bin")
        check(os.path.exists(path) and os.path.getsize(path) == size, f"{path}: {size} bytes as in the perf map")
    if units:
        start, size, name = units[-1]
        pc = name[len("vm_block_"):].rsplit("_", 1)[0]
        samples = os.path.join(d, "samples.txt")
        with open(samples, "w") as f:
            f.write(f"{start:x}\n{start:x}\n{start + size - 1:x}\n10\n")
        prof = subprocess.run([sys.executable, PROFILE, "--map", perf_map, "--dump", d, "--unit", f"{pc}:fast", samples],
                              capture_output=True, text=True)
        check(prof.returncode == 0, f"jit-profile: {prof.stderr.strip()}")
        lines = prof.stdout.splitlines()
        check(lines[:1] == ["4 samples, 3 (75.0%) in compiled code"], f"jit-profile totals: {lines[:1]}")
        check(any(line.split()[0] == "3" and line.split()[-1] == name for line in lines[1:3]),
              f"jit-profile names {name} with 3 samples: {lines[:3]}")
        listing = [line for line in lines if re.match(r"\s*\d+\s+[0-9a-f]+:\s", line)]
        check(len(listing) > 1 and listing[0].split()[:2] == ["2", "0:"],
              f"jit-profile puts 2 samples on the unit's first instruction: {listing[:1]}")
        check(sum(int(line.split()[0]) for line in listing) == 3, "jit-profile listing holds the unit's 3 samples")
        bad = subprocess.run([sys.executable, PROFILE, "--map", perf_map, "--unit", pc, samples], capture_output=True,
                             text=True)
        check(bad.returncode == 2 and "--unit needs --dump" in bad.stderr, f"jit-profile --unit without --dump: {bad.stderr}")
    if os.path.exists(perf_map):
        os.remove(perf_map)

# scripts/steady-ab: one round of a small workload, vm against native.
build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(HELLO))))
ab = subprocess.run([sys.executable, STEADY_AB, "--rounds", "1", "--programs", "recursion", "--scale-percent", "1",
                     "--build", build, "", "native"], capture_output=True, text=True, timeout=300)
ab_lines = ab.stdout.splitlines()


def steady_line(line, label):  # "  LABEL  SECONDS s  RATIO" (the times are noise at this scale, so only the form)
    parts = line.split()
    try:
        float(parts[1])
    except (IndexError, ValueError):
        return False
    return parts[0] == label and parts[2] == "s" and (parts[-1] == "n/a" or parts[-1].endswith("x"))


check(ab.returncode == 0 and len(ab_lines) == 3 and ab_lines[0].startswith("recursion (steady")
      and steady_line(ab_lines[1], "default") and steady_line(ab_lines[2], "native"),
      f"steady-ab output: {ab.stdout!r} {ab.stderr!r}")
ab = subprocess.run([sys.executable, STEADY_AB, "--build", build, "VM_X=1 nonsense"], capture_output=True, text=True)
check(ab.returncode == 2 and "nonsense" in ab.stderr, f"steady-ab rejects a bad config: {ab.stderr!r}")

p = run("--stats", HELLO)
for needle in ["engine=tiered", "native exits", "regions", "compile time", "syscalls:", "hottest blocks"]:
    check(needle in p.stderr, f"--stats shows {needle!r}")

if failures:
    print("\n".join(f"FAIL: {f}" for f in failures))
    sys.exit(1)
print("vm run CLI tests passed")
