"""The deterministic CI gate: instructions per iteration under callgrind.

Timings on a shared machine move by tens of percent; instruction counts do
not. For each benchmark listed in benches/callgrind-gate.json we count the
instructions executed inside Google Benchmark's timed loop and divide by the
iteration count, then compare with benches/callgrind-baseline.json.

How a fixed iteration count is obtained without touching the benchmarks
(Debian's Google Benchmark 1.7 has no `--benchmark_min_time=<N>x`): with an
unreachable --benchmark_min_time, the library's iteration predictor grows the
count by exactly 10x per attempt (1, 10, 100, ...) because no attempt takes a
significant share of the min time. callgrind dumps its counters when the
timed loop starts (after State::StartKeepRunning) and when it ends (before
State::FinishKeepRunning), so every attempt's loop gets its own dump. The
count per iteration is the difference between the loops of N and N/10
iterations divided by 0.9 N, which cancels the constant cost of entering and
leaving the loop; the process is stopped once the N-iteration dump exists.
Multi-threaded benchmarks and benchmarks that fix their own Iterations() or
MinTime() are not suitable for the gate.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from store import GATE_BASELINE_FILE, GATE_CONFIG_FILE

DUMP_AFTER = "benchmark::State::StartKeepRunning*"
DUMP_BEFORE = "benchmark::State::FinishKeepRunning*"


@dataclass
class GateEntry:
    binary: str
    name: str
    iterations: int
    timeout: float
    # The count depends on the host CPU, not only on our code: the JIT
    # generates code for the CPU it runs on (LLVM's host detection picks the
    # instruction set and the scheduling model). Such an entry's baseline
    # records the CPU it was measured on and is compared only on that CPU.
    per_host_cpu: bool = False

    @property
    def key(self) -> str:
        return f"{self.binary}/{self.name}"


def load_config(path: pathlib.Path = GATE_CONFIG_FILE) -> tuple[list[GateEntry], float]:
    doc = json.loads(path.read_text())
    default_iters = int(doc.get("iterations", 1000))
    default_timeout = float(doc.get("timeout_seconds", 300))
    entries = []
    for item in doc.get("benchmarks", []):
        iters = int(item.get("iterations", default_iters))
        if iters < 10 or 10 ** round(math.log10(iters)) != iters:
            raise ValueError(f"{path}: {item}: iterations must be a power of ten >= 10")
        if re.search(r"/threads:(?!1$)\d+$", item["name"]):
            # Every thread enters the timed loop, so the dumps no longer pair up.
            raise ValueError(f"{path}: {item}: multi-threaded benchmarks cannot be gated")
        entries.append(GateEntry(item["binary"], item["name"], iters,
                                 float(item.get("timeout_seconds", default_timeout)),
                                 bool(item.get("per_host_cpu", False))))
    return entries, float(doc.get("tolerance_percent", 2.0))


def host_cpu(cpuinfo: pathlib.Path = pathlib.Path("/proc/cpuinfo")) -> str:
    """The CPU as a per-host-CPU baseline records it: the model name and a
    digest of the feature flags (a virtual machine may hide features behind
    the same name)."""
    model, flags = "unknown", ""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "unknown":
                model = value.strip()
            elif key == "flags" and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    return f"{model} (flags {hashlib.sha256(flags.encode()).hexdigest()[:12]})"


def baseline_for(entry: GateEntry, base: dict, cpu: str) -> tuple[float | None, str | None]:
    """The baseline count that applies to `entry` here, or None with the
    reason it does not (a per-host-CPU count from another CPU)."""
    value = base.get("instructions_per_iteration")
    if value is None or not entry.per_host_cpu:
        return value, None
    if base.get("host_cpu") != cpu:
        return None, f"baseline measured on another CPU ({base.get('host_cpu', 'not recorded')}; here: {cpu})"
    return value, None


def _totals(path: pathlib.Path) -> int | None:
    """The Ir total of a complete callgrind dump (the totals line comes last)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    # The newline matters: a dump still being written may end mid-number.
    m = re.search(r"^totals:\s+(\d+)\n", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def measure(entry: GateEntry, bin_dir: pathlib.Path) -> tuple[float, str | None]:
    """Instructions per iteration of one benchmark, and a warning when the
    counts do not look like a 10x iteration sequence. Raises RuntimeError."""
    binary = bin_dir / entry.binary
    if not binary.is_file():
        raise RuntimeError(f"binary {binary} not built")
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind not installed (Debian package 'valgrind', scripts/install-deps)")
    exponent = round(math.log10(entry.iterations))
    # Dumps come in pairs per attempt: (set-up before the loop, the loop).
    # The loop of the attempt with 10^k iterations is dump number 2k + 2.
    hi_part, lo_part = 2 * exponent + 2, 2 * exponent
    with tempfile.TemporaryDirectory(prefix="vm-gate-") as tmp:
        out = pathlib.Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               f"--dump-after={DUMP_AFTER}", f"--dump-before={DUMP_BEFORE}",
               str(binary), f"--benchmark_filter=^{re.escape(entry.name)}$",
               "--benchmark_min_time=1e9", "--benchmark_repetitions=1"]
        log = pathlib.Path(tmp) / "log.txt"
        with open(log, "w") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + entry.timeout
        hi_file = pathlib.Path(f"{out}.{hi_part}")
        hi = None
        try:
            while time.monotonic() < deadline:
                hi = _totals(hi_file)
                if hi is not None or proc.poll() is not None:
                    break
                time.sleep(0.05)
            hi = _totals(hi_file)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if hi is None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
            raise RuntimeError(
                f"no callgrind dump for {entry.iterations} iterations (timeout {entry.timeout:g} s, "
                "or the benchmark fixes its own Iterations/MinTime, or uses threads)\n" + tail)
        lo = _totals(pathlib.Path(f"{out}.{lo_part}"))
        if lo is None:
            raise RuntimeError(f"callgrind dump {lo_part} missing")
        n_hi, n_lo = entry.iterations, entry.iterations // 10
        per_iteration = (hi - lo) / (n_hi - n_lo)
        # Cross-check with the step below (N/100 -> N/10). A benchmark with its
        # own MinTime() gets a time-dependent iteration sequence, which shows
        # up here as two different per-iteration figures.
        warning = None
        lower = _totals(pathlib.Path(f"{out}.{lo_part - 2}")) if exponent >= 3 else None
        if lower is not None and per_iteration > 0:
            earlier = (lo - lower) / (n_lo - n_lo // 10)
            if abs(earlier - per_iteration) / per_iteration > 0.05:
                warning = (f"per-iteration count is not steady ({earlier:.1f} at {n_lo} iterations vs "
                           f"{per_iteration:.1f} at {n_hi}): does the benchmark set MinTime(), or does "
                           "its per-iteration work change as it runs?")
        return per_iteration, warning


def valgrind_version() -> str:
    try:
        return subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def load_baseline(path: pathlib.Path = GATE_BASELINE_FILE) -> dict:
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("counts", {})


def run_gate(bin_dir: pathlib.Path, *, update: bool, meta: dict, only: str | None = None,
             tolerance: float | None = None, log=print) -> int:
    entries, config_tolerance = load_config()
    tol = config_tolerance if tolerance is None else tolerance
    if only:
        entries = [e for e in entries if re.search(only, e.key)]
    baseline = load_baseline()
    measured: dict[str, dict] = {}
    failures = []
    cpu = host_cpu()
    start = time.monotonic()
    for entry in entries:
        t0 = time.monotonic()
        try:
            value, warning = measure(entry, bin_dir)
        except RuntimeError as err:
            failures.append(f"{entry.key}: {err}")
            log(f"  ERROR   {entry.key}: {err}")
            continue
        if warning:
            log(f"  warning {entry.key}: {warning}")
        measured[entry.key] = {"instructions_per_iteration": round(value, 2),
                               "iterations": entry.iterations}
        if entry.per_host_cpu:
            measured[entry.key]["host_cpu"] = cpu
        base, not_here = baseline_for(entry, baseline.get(entry.key, {}), cpu)
        took = time.monotonic() - t0
        if not_here and not update:
            log(f"  skipped {entry.key}: {value:.1f} instructions/iteration, not compared: {not_here} ({took:.1f} s)")
            continue
        if base is None:
            verdict = "new" if update else "NO BASELINE"
            if not update:
                failures.append(f"{entry.key}: no baseline (run the gate with --gate-update)")
            log(f"  {verdict:<8}{entry.key}: {value:.1f} instructions/iteration ({took:.1f} s)")
            continue
        change = (value - base) / base if base else 0.0
        if change > tol / 100:
            verdict = "GREW"
            if not update:
                failures.append(f"{entry.key}: {base:.1f} -> {value:.1f} instructions/iteration "
                                f"({change:+.2%}, tolerance {tol:g} %)")
        elif change < -tol / 100:
            verdict = "shrank"
        else:
            verdict = "ok"
        log(f"  {verdict:<8}{entry.key}: {base:.1f} -> {value:.1f} instructions/iteration "
            f"({change:+.2%}) ({took:.1f} s)")
    log(f"gate: {len(entries)} benchmark(s) in {time.monotonic() - start:.1f} s, tolerance {tol:g} %")
    if update:
        if failures:
            log("gate: baseline NOT updated because some measurements failed:")
            for f in failures:
                log(f"  {f}")
            return 1
        doc = {
            "_doc": "Generated by `scripts/suite bench --gate-update`; instructions per iteration of "
                    "the benchmarks in benches/callgrind-gate.json (release build). See docs/benchmarks.md.",
            "generated": {"date": meta.get("date"), "commit": meta.get("git", {}).get("commit"),
                          "compiler": meta.get("compiler"), "cxx_flags": meta.get("cxx_flags"),
                          "valgrind": valgrind_version()},
            "counts": {**({} if not only else baseline), **measured},
        }
        GATE_BASELINE_FILE.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
        log(f"gate: wrote {GATE_BASELINE_FILE.relative_to(GATE_BASELINE_FILE.parent.parent)}")
        return 0
    if failures:
        log("gate: FAIL")
        for f in failures:
            log(f"  {f}")
        log("If the growth is intended, update the baseline: scripts/suite bench --gate-update "
            "(and commit benches/callgrind-baseline.json with the reason).")
        return 1
    log("gate: PASS")
    return 0
