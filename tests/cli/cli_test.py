#!/usr/bin/env python3
"""End-to-end tests of `vm lift` and `vm exec`: argument handling, the JSON
state schema of docs/cli.md (input, output, round trip), exit reasons and
error messages. Instruction semantics are tested against Unicorn and native
execution in vm-translate's own tests; here only the plumbing is checked.
Usage: cli_test.py PATH/TO/vm"""
import json
import os
import subprocess
import sys
import tempfile

VM = sys.argv[1]
failures = []


def run(*args, expect_rc=0):
    p = subprocess.run([VM, *args], capture_output=True, text=True, timeout=60)
    if p.returncode != expect_rc:
        failures.append(f"{args}: exit {p.returncode}, expected {expect_rc}; stderr: {p.stderr.strip()}")
    return p


def check(cond, what):
    if not cond:
        failures.append(what)


def exec_json(*args):
    p = run("exec", *args)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        failures.append(f"exec {args}: output is not JSON ({e})")
        return {"registers": {}, "flags": {}, "exit": {}}


# Default state: rsp in a 64 KiB stack, everything else zero, ends at the end of the code.
out = exec_json("--asm", "mov eax, 5; add rax, rsp; push rax")
check(out["exit"]["reason"] == "end", f"default run: exit {out['exit']}")
check(out["registers"]["rsp"] == "0x7ffeeff8", f"default rsp after push: {out['registers']['rsp']}")
check(out["registers"]["rax"] == "0x7ffef005", f"rax: {out['registers']['rax']}")
check(out["registers"]["rip"] == out["exit"]["pc"], "rip == exit.pc at the end")
stack = [r for r in out["memory"] if r["address"] == "0x7ffe0000"]
check(len(stack) == 1 and stack[0]["perms"] == "rw-" and len(stack[0]["bytes"]) == 2 * 0x10000, "default stack region")
check(out["flags"] == {"cf": 0, "pf": 1, "af": 0, "zf": 0, "sf": 0, "of": 0, "df": 0}, f"flags: {out['flags']}")
check(list(out["registers"])[:3] == ["rax", "rcx", "rdx"], "registers in state-table order")

# Exit reasons.
out = exec_json("--code", "0f0b", "--no-memory")
check(out["exit"]["reason"] == "trap" and out["exit"]["trap"] == "invalid_opcode" and out["exit"]["pc"] == "0x1000000",
      f"ud2: {out['exit']}")
check("memory" not in out, "--no-memory")
out = exec_json("--asm", "mov ecx, 1; mov rax, qword ptr [0x10]", "--no-memory")
check(out["exit"]["reason"] == "fault" and out["exit"]["fault_address"] == "0x10" and out["exit"]["pc"] == "0x1000005",
      f"fault: {out['exit']}")
check(out["registers"]["rcx"] == "0x1", "state before the faulting instruction is kept")
out = exec_json("--asm", "xor ecx, ecx; div rcx", "--no-memory")
check(out["exit"]["reason"] == "trap" and out["exit"]["trap"] == "divide_error", f"#DE: {out['exit']}")
out = exec_json("--asm", "mov eax, 60; syscall; nop", "--no-memory")
check(out["exit"]["reason"] == "syscall" and out["exit"]["pc"] == "0x1000007", f"syscall: {out['exit']}")
out = exec_json("--asm", "1: jmp 1b", "--max-steps", "100", "--no-memory")
check(out["exit"]["reason"] == "step_limit", f"step limit: {out['exit']}")
out = exec_json("--asm", "fnsave [rsp]", "--no-memory")
check(out["exit"]["trap"] == "unsupported" and "fnsave" in out["exit"]["message"], f"x87: {out['exit']}")
out = exec_json("--code", "4889d8", "--at", "0x400000", "--no-memory")
check(out["exit"]["pc"] == "0x400003", f"--at: {out['exit']}")

# --state: registers, flags, xmm, memory; the output reads back as input.
with tempfile.TemporaryDirectory() as d:
    state = {
        "registers": {"rbx": "0x200000", "rsp": "0x300100", "xmm1": "0102030405060708090a0b0c0d0e0f10"},
        "flags": {"cf": 1},
        "memory": [{"address": "0x200000", "perms": "rw-", "bytes": "11223344"},
                   {"address": "0x300000", "size": "0x200"}],
    }
    path = os.path.join(d, "in.json")
    with open(path, "w") as f:
        json.dump(state, f)
    out = exec_json("--asm", "mov eax, dword ptr [rbx]; adc eax, 0; mov dword ptr [rbx], eax; movdqa xmm0, xmm1",
                    "--state", path)
    check(out["registers"]["rax"] == "0x44332212", f"state run rax: {out['registers']['rax']}")
    check(out["registers"]["xmm0"] == "0102030405060708090a0b0c0d0e0f10", "xmm round trip")
    data = [r for r in out["memory"] if r["address"] == "0x200000"][0]
    check(data["bytes"] == "12223344", f"memory written: {data['bytes']}")
    # Feed the output back (code region dropped, since exec maps the code itself).
    out["memory"] = [r for r in out["memory"] if r["address"] != "0x1000000"]
    path2 = os.path.join(d, "again.json")
    with open(path2, "w") as f:
        json.dump(out, f)
    again = exec_json("--code", "90", "--state", path2)
    regs_a = {k: v for k, v in out["registers"].items() if k != "rip"}
    regs_b = {k: v for k, v in again["registers"].items() if k != "rip"}
    check(regs_a == regs_b and again["flags"] == out["flags"], "output -> input round trip")

    # Clear errors.
    for bad, needle in [("{", "state JSON"), ('{"registers": {"rqx": "1"}}', "unknown register 'rqx'"),
                        ('{"memory": [{"address": "0x1000000", "size": "0x10"}]}', "overlaps")]:
        with open(path, "w") as f:
            f.write(bad)
        p = run("exec", "--code", "90", "--state", path, expect_rc=1)
        check(needle in p.stderr, f"error for {bad!r}: {p.stderr.strip()}")

p = run("exec", "--code", "0g", expect_rc=1)
check("not hex" in p.stderr, f"bad hex: {p.stderr.strip()}")
p = run("exec", "--asm", "mov eax,", expect_rc=1)
check(p.stderr.startswith("vm: "), f"bad asm: {p.stderr.strip()}")
p = run("exec", "--code", "90", "--asm", "nop", expect_rc=1)
check("exactly one" in p.stderr, "both --code and --asm")

# vm lift prints the vm-ir text form.
p = run("lift", "--code", "4801d8c3")
check(p.stdout.startswith("block 0x1000000 len 4 {") and "add" in p.stdout and "ret" in p.stdout, f"lift: {p.stdout}")
p = run("lift", "--asm", "add eax, ebx; add eax, ecx", "--opt")
check(p.stdout.count("set_reg cf") == 1, "lift --opt removes the first add's dead flag writes")

if failures:
    print("\n".join(f"FAIL: {f}" for f in failures))
    sys.exit(1)
print("vm CLI tests passed")
