"""The results store and Google Benchmark JSON helpers.

Layout (all under bench-results/, ignored by git):

    runs/<run-id>/meta.json         who/where/what: commit, date, compiler, CPU, options
    runs/<run-id>/<binary>.json     the binary's own --benchmark_out JSON, untouched
    baselines/<name>/...            a copy of the run saved with --save-baseline NAME

A run id starts with a UTC timestamp, so sorting ids sorts runs by time. A run
may hold only some binaries (--bench, --filter); "the latest result of a
binary" therefore means the newest run that contains that binary.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import statistics
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
RESULTS_DIR = pathlib.Path(os.environ.get("VM_BENCH_RESULTS", ROOT / "bench-results"))
REPORT_DIR = pathlib.Path(os.environ.get("VM_BENCH_REPORT", ROOT / "bench-report"))
TARGETS_FILE = pathlib.Path(os.environ.get("VM_BENCH_TARGETS", ROOT / "benches" / "targets.json"))
GATE_CONFIG_FILE = ROOT / "benches" / "callgrind-gate.json"
GATE_BASELINE_FILE = ROOT / "benches" / "callgrind-baseline.json"
DOCS_FILE = ROOT / "docs" / "benchmarks.md"
DEFAULT_BIN_DIR = ROOT / "build" / "release" / "bench-bin"

TIME_UNIT_NS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}


def metric_of(name: str) -> str:
    """The time field that represents a benchmark. Google Benchmark appends
    /real_time or /manual_time to the name when the benchmark asked for wall
    time (multi-threaded work, subprocesses); otherwise CPU time is the less
    noisy figure on a shared machine."""
    if "/real_time" in name or "/manual_time" in name:
        return "real_time"
    return "cpu_time"


@dataclass
class Benchmark:
    """All repetitions of one benchmark instance of one binary."""
    binary: str
    name: str
    samples_ns: list = field(default_factory=list)   # metric per repetition, in ns
    counters: dict = field(default_factory=dict)     # counter -> list of values
    error: str | None = None

    @property
    def metric(self) -> str:
        return metric_of(self.name)

    @property
    def median_ns(self) -> float | None:
        return statistics.median(self.samples_ns) if self.samples_ns else None

    def counter_median(self, counter: str) -> float | None:
        values = self.counters.get(counter)
        return statistics.median(values) if values else None

    @property
    def family(self) -> str:
        return self.name.split("/", 1)[0]


# Keys of a Google Benchmark run entry that are not user counters.
_STANDARD_KEYS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type",
    "repetitions", "repetition_index", "threads", "iterations", "real_time",
    "cpu_time", "time_unit", "aggregate_name", "aggregate_unit", "label",
    "error_occurred", "error_message", "big_o", "rms",
}


def parse_benchmarks(binary: str, gb_json: dict) -> dict[str, Benchmark]:
    """Benchmark instances of one Google Benchmark JSON document, keyed by
    name, in the binary's own order. Aggregates are ignored: medians are
    recomputed from the repetitions so one- and many-repetition runs are
    treated alike."""
    out: dict[str, Benchmark] = {}
    for entry in gb_json.get("benchmarks", []):
        if entry.get("run_type", "iteration") != "iteration":
            continue
        name = entry.get("run_name", entry["name"])
        bench = out.setdefault(name, Benchmark(binary, name))
        if entry.get("error_occurred"):
            bench.error = entry.get("error_message", "error")
            continue
        unit = TIME_UNIT_NS.get(entry.get("time_unit", "ns"), 1.0)
        bench.samples_ns.append(float(entry[metric_of(name)]) * unit)
        for key, value in entry.items():
            if key not in _STANDARD_KEYS and isinstance(value, (int, float)):
                bench.counters.setdefault(key, []).append(float(value))
    return out


@dataclass
class Run:
    run_id: str
    path: pathlib.Path
    meta: dict

    def binaries(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.json") if p.name != "meta.json")

    def json_path(self, binary: str) -> pathlib.Path:
        return self.path / f"{binary}.json"

    def load(self, binary: str) -> dict:
        return json.loads(self.json_path(binary).read_text())

    def benchmarks(self, binary: str) -> dict[str, Benchmark]:
        return parse_benchmarks(binary, self.load(binary))

    @property
    def label(self) -> str:
        """Short x-axis label: date, time and commit."""
        date = self.meta.get("date", "")[5:16].replace("T", " ")
        commit = self.meta.get("git", {}).get("short", "?")
        dirty = "+" if self.meta.get("git", {}).get("dirty") else ""
        return f"{date}\n{commit}{dirty}"


def _load_run(path: pathlib.Path) -> Run | None:
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError:
        return None
    return Run(path.name, path, meta)


def runs_dir() -> pathlib.Path:
    return RESULTS_DIR / "runs"


def baselines_dir() -> pathlib.Path:
    return RESULTS_DIR / "baselines"


def list_runs() -> list[Run]:
    """Every stored run, oldest first."""
    if not runs_dir().is_dir():
        return []
    runs = [_load_run(p) for p in sorted(runs_dir().iterdir()) if p.is_dir()]
    return [r for r in runs if r is not None]


def latest_per_binary(runs: list[Run]) -> dict[str, Run]:
    """binary -> newest run holding a result for it."""
    latest: dict[str, Run] = {}
    for run in runs:
        for binary in run.binaries():
            latest[binary] = run
    return latest


def previous_run(runs: list[Run], current: Run, binary: str) -> Run | None:
    """The newest run older than `current` that measured at least one of the
    benchmarks `current` measured in `binary` (runs with --filter may hold
    other benchmarks of the same binary)."""
    names = set(current.benchmarks(binary)) if binary in current.binaries() else set()
    for run in reversed(runs):
        if run.run_id >= current.run_id or binary not in run.binaries():
            continue
        if not names or names & set(run.benchmarks(binary)):
            return run
    return None


def list_baselines() -> list[Run]:
    """Saved baselines, oldest saved first."""
    if not baselines_dir().is_dir():
        return []
    found = [_load_run(p) for p in baselines_dir().iterdir() if p.is_dir()]
    found = [b for b in found if b is not None]
    return sorted(found, key=lambda b: b.meta.get("saved_as_baseline_at", ""))


def load_baseline(name: str) -> Run | None:
    path = baselines_dir() / name
    return _load_run(path) if path.is_dir() else None


def save_baseline(run: Run, name: str, saved_at: str) -> Run:
    dest = baselines_dir() / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(run.path, dest)
    meta = dict(run.meta)
    meta["baseline_name"] = name
    meta["saved_as_baseline_at"] = saved_at
    (dest / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return Run(name, dest, meta)


def format_ns(ns: float | None) -> str:
    """A duration with a unit chosen so 3 significant digits remain."""
    if ns is None:
        return "—"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in TIME_UNIT_NS:
        return format_ns(value * TIME_UNIT_NS[unit])
    return f"{value:.3g} {unit}".rstrip()


def context_notes(old: Run, new: Run) -> list[str]:
    """Why two runs may differ for reasons other than the code: a different
    toolchain or CPU, or a busy machine (load average above 3/4 of the CPUs
    when either run started)."""
    notes = []
    for key in ("compiler", "build_type", "cxx_flags", "cpu_model"):
        if old.meta.get(key) != new.meta.get(key):
            notes.append(f"{key} differs: {old.meta.get(key)!r} -> {new.meta.get(key)!r}")
    loads = [r.meta.get("load_average", [None])[0] for r in (old, new)]
    cpus = new.meta.get("cpus") or old.meta.get("cpus")
    if cpus and all(isinstance(x, (int, float)) for x in loads) and max(loads) > 0.75 * cpus:
        notes.append(f"the machine was busy (1-minute load {loads[0]:.1f} -> {loads[1]:.1f} on {cpus} CPUs): "
                     "timing changes may come from the load, not the code")
    return notes
