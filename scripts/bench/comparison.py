"""Comparison of two results of the same binary with Google Benchmark's own
compare.py (Debian: libbenchmark-tools) and its Mann-Whitney U-test.

compare.py supplies the U-test p-value per benchmark and the human-readable
table; the relative change is taken between the medians of the repetitions,
the figure every other part of the suite reports. A benchmark has *regressed*
only when its median grew by more than the threshold AND the U-test says the
two samples differ (p < alpha). A change beyond the threshold without enough
repetitions for the U-test is reported as "unconfirmed", never as a
regression: one noisy run on a shared machine must not fail a build.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from store import Benchmark, format_ns, parse_benchmarks

# Where Debian's libbenchmark-tools puts the script (`dpkg -L libbenchmark-tools`).
DEFAULT_COMPARE_PY = pathlib.Path("/usr/share/benchmark/compare.py")


def compare_py() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("VM_BENCH_COMPARE_PY", DEFAULT_COMPARE_PY))
    if not path.is_file():
        raise SystemExit(
            f"bench: Google Benchmark's compare.py not found at {path}; install the Debian "
            "package 'libbenchmark-tools' (scripts/install-deps) or set VM_BENCH_COMPARE_PY")
    return path


@dataclass
class Change:
    name: str
    old_ns: float
    new_ns: float
    change: float            # (new - old) / old of the medians
    pvalue: float | None     # U-test p-value of the benchmark's metric, None if not computable
    repetitions: tuple       # (old, new)
    status: str              # regression | improvement | same | noise | unconfirmed

    @property
    def moved(self) -> bool:
        return self.status in ("regression", "improvement", "unconfirmed")


@dataclass
class Comparison:
    binary: str
    old_label: str
    new_label: str
    changes: list
    table: str               # compare.py's own output
    only_old: list           # benchmarks that disappeared
    only_new: list           # benchmarks that are new
    notes: list = field(default_factory=list)  # context: toolchain or load differences

    def regressions(self) -> list:
        return [c for c in self.changes if c.status == "regression"]


def classify(change: float, pvalue: float | None, threshold: float, alpha: float) -> str:
    if abs(change) <= threshold:
        return "same"
    if pvalue is None:
        return "unconfirmed"
    if pvalue >= alpha:
        return "noise"
    return "regression" if change > 0 else "improvement"


def _run_compare_py(old_path: pathlib.Path, new_path: pathlib.Path, alpha: float) -> tuple[str, list]:
    with tempfile.TemporaryDirectory(prefix="vm-bench-cmp-") as tmp:
        dump = pathlib.Path(tmp) / "diff.json"
        cmd = [sys.executable, str(compare_py()), "--no-color", "-a", "--alpha", str(alpha),
               "-d", str(dump), "benchmarks", str(old_path), str(new_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not dump.is_file():
            raise RuntimeError(f"compare.py failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout, json.loads(dump.read_text())


def _usable(bench: Benchmark | None) -> bool:
    return bench is not None and bench.error is None and bench.median_ns is not None


def compare_files(binary: str, old_path: pathlib.Path, new_path: pathlib.Path, *,
                  old_label: str, new_label: str, threshold: float, alpha: float) -> Comparison:
    old = parse_benchmarks(binary, json.loads(old_path.read_text()))
    new = parse_benchmarks(binary, json.loads(new_path.read_text()))
    table, diff = _run_compare_py(old_path, new_path, alpha)
    # compare.py reports the U-test on the entry named like the benchmark
    # itself (the per-repetition rows), for both CPU and wall time.
    pvalues = {}
    for entry in diff:
        utest = entry.get("utest") or {}
        if utest:
            pvalues[entry["name"]] = utest
    changes = []
    for name, bench in new.items():
        before = old.get(name)
        if not (_usable(before) and _usable(bench)) or before.median_ns == 0:
            continue
        change = (bench.median_ns - before.median_ns) / before.median_ns
        utest = pvalues.get(name)
        pvalue = None
        if utest:
            pvalue = utest["time_pvalue"] if bench.metric == "real_time" else utest["cpu_pvalue"]
        changes.append(Change(name, before.median_ns, bench.median_ns, change, pvalue,
                              (len(before.samples_ns), len(bench.samples_ns)),
                              classify(change, pvalue, threshold, alpha)))
    return Comparison(binary, old_label, new_label, changes, table,
                      only_old=[n for n in old if n not in new],
                      only_new=[n for n in new if n not in old])


STATUS_TEXT = {
    "regression": "SLOWER",
    "improvement": "faster",
    "unconfirmed": "moved?",
    "noise": "noise",
    "same": "same",
}


def describe(c: Change) -> str:
    p = "n/a" if c.pvalue is None else f"{c.pvalue:.4f}"
    return (f"{STATUS_TEXT[c.status]:>7}  {c.name}: {format_ns(c.old_ns)} -> {format_ns(c.new_ns)} "
            f"({c.change:+.1%}, U-test p={p}, repetitions {c.repetitions[0]} vs {c.repetitions[1]})")
