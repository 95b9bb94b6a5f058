#!/usr/bin/env python3
"""Runs one guest program natively and under `vm run`; compares stdout,
stderr and exit status. A native death by signal N counts as exit status
128+N, and then vm must also print its one-line crash report on stderr,
which is the only stderr difference allowed; under a compiling engine that
line (pc, address) must be the one `vm run --engine interp` prints, the
interpreter being the reference for where a guest faults."""
import argparse
import difflib
import re
import subprocess
import sys


def run(cmd, timeout):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    status = p.returncode if p.returncode >= 0 else 128 - p.returncode
    return p.stdout, p.stderr, status


def show_diff(what, a, b):
    lines = difflib.unified_diff(a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines(),
                                 f"native {what}", f"vm {what}", lineterm="")
    print("\n".join(list(lines)[:60]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vm", required=True)
    ap.add_argument("--engine", default="interp")
    ap.add_argument("--mmu", default="direct")
    ap.add_argument("--program", required=True)
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("args", nargs="*")
    o = ap.parse_args()

    n_out, n_err, n_status = run([o.program] + o.args, o.timeout)
    # "<engine>-verify" runs that engine under --verify-jit (co-simulation with the interpreter).
    engine = o.engine.removesuffix("-verify")
    extra = ["--verify-jit"] if engine != o.engine else []
    v_out, v_err, v_status = run([o.vm, "run", "--engine", engine, "--mmu", o.mmu] + extra + [o.program] + o.args,
                                 o.timeout)

    ok = True
    if n_out != v_out:
        ok = False
        print("stdout differs:")
        show_diff("stdout", n_out, v_out)
    expected_err = n_err
    if n_status > 128:
        # The kernel prints nothing for a fatal signal; vm reports it in one line.
        lines = v_err.decode(errors="replace").splitlines(keepends=True)
        crash = [l for l in lines if re.match(r"vm: guest SIG[A-Z]+ at pc=0x[0-9a-f]+ \(.*\)\n?$", l)]
        if not crash and n_status - 128 in (4, 5, 7, 8, 11):  # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV
            ok = False
            print("vm did not print its crash line")
        if crash and engine != "interp":
            _, i_err, _ = run([o.vm, "run", "--engine", "interp", "--mmu", o.mmu, o.program] + o.args, o.timeout)
            want = [l for l in i_err.decode(errors="replace").splitlines(keepends=True) if l.startswith("vm: guest SIG")]
            if want != crash:
                ok = False
                print(f"crash line differs from the interpreter's: {want} vs {crash}")
        v_err = "".join(l for l in lines if l not in crash).encode()
    if expected_err != v_err:
        ok = False
        print("stderr differs:")
        show_diff("stderr", expected_err, v_err)
    if n_status != v_status:
        ok = False
        print(f"exit status: native {n_status}, vm {v_status}")
    print(("PASS" if ok else "FAIL") + f": {o.program} ({o.engine}, {o.mmu}) status {v_status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
