"""Targets: the plan's bounds and our goals, read from benches/targets.json,
checked against the latest stored median of every benchmark.

Each entry names a binary and a benchmark pattern (a regular expression that
must match the whole Google Benchmark name, so one entry can cover
`memory_pool_allocation/1024`, `/4096`, ...). The measured value is the
median of the benchmark's metric, converted to the entry's unit, or:

- with "counter": the median of that user counter (e.g. a ratio a benchmark
  computes itself);
- with "relative_to": the ratio of this benchmark's median to the median of
  another benchmark of the same binary measured in the same run. `$1`..`$9`
  in relative_to stand for the groups of the benchmark pattern, so
  "memory_pool_allocation/(\\d+)" relative to "malloc_allocation/$1" pairs
  equal sizes.

A missed plan bound fails `--check-targets`; a missed goal is reported but
does not fail. An entry whose binary or benchmark does not exist yet is shown
as "not measured yet".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from store import TARGETS_FILE, TIME_UNIT_NS, Benchmark, Run, format_value

NOT_MEASURED = "not measured yet"
PASS = "pass"
GOAL_MISSED = "bound ok, goal missed"
FAIL = "FAIL (plan bound)"
ERROR = "benchmark error"
TRACKED = "tracked"


@dataclass
class Target:
    binary: str
    benchmark: str
    unit: str
    plan_bound: float | None = None
    goal: float | None = None
    what: str = ""
    source: str = ""
    relative_to: str | None = None
    counter: str | None = None
    higher_is_better: bool = False

    def pattern(self) -> re.Pattern:
        return re.compile(self.benchmark)


@dataclass
class Row:
    target: Target
    name: str                 # benchmark name, or the pattern when nothing matched
    measured: float | None    # in target.unit
    status: str
    run_id: str | None = None
    label: str = ""           # what is shown: "a / b" for ratios, "a [counter]" for counters

    def __post_init__(self):
        if not self.label:
            self.label = self.name


_KNOWN_KEYS = {"binary", "benchmark", "unit", "plan_bound", "goal", "what", "source",
               "relative_to", "counter", "higher_is_better"}


def load_targets(path=TARGETS_FILE) -> list[Target]:
    doc = json.loads(path.read_text())
    targets = []
    for i, entry in enumerate(doc.get("targets", [])):
        unknown = set(entry) - _KNOWN_KEYS
        if unknown:
            raise ValueError(f"{path}: entry {i}: unknown key(s) {sorted(unknown)}")
        for key in ("binary", "benchmark", "unit"):
            if key not in entry:
                raise ValueError(f"{path}: entry {i}: missing '{key}'")
        target = Target(**{k: entry.get(k) for k in _KNOWN_KEYS if k in entry})
        if target.relative_to is None and target.counter is None and target.unit not in TIME_UNIT_NS:
            raise ValueError(f"{path}: entry {i}: unit '{target.unit}' is not a time unit "
                             "(use relative_to or counter for other units)")
        target.pattern()  # a bad regex fails here, at load time
        targets.append(target)
    return targets


def _meets(value: float, limit: float, higher_is_better: bool) -> bool:
    return value >= limit if higher_is_better else value <= limit


def status_of(target: Target, value: float) -> str:
    if target.plan_bound is not None and not _meets(value, target.plan_bound, target.higher_is_better):
        return FAIL
    if target.goal is not None and not _meets(value, target.goal, target.higher_is_better):
        return GOAL_MISSED
    if target.plan_bound is None and target.goal is None:
        return TRACKED
    return PASS


def relative_pattern(target: Target, match: re.Match) -> re.Pattern:
    template = target.relative_to
    for i in range(9, 0, -1):
        group = match.group(i) if i <= (match.re.groups or 0) else None
        template = template.replace(f"${i}", re.escape(group or ""))
    return re.compile(template)


def measure(target: Target, bench: Benchmark, match: re.Match,
            all_benches: dict[str, Benchmark]) -> tuple[float | None, str]:
    """(value in the target's unit or None, label of what was measured)."""
    if target.counter is not None:
        return bench.counter_median(target.counter), f"{bench.name} [{target.counter}]"
    if target.relative_to is not None:
        other_pattern = relative_pattern(target, match)
        other = next((b for n, b in all_benches.items() if other_pattern.fullmatch(n)), None)
        if other is None:
            return None, f"{bench.name} / {other_pattern.pattern} (missing)"
        label = f"{bench.name} / {other.name}"
        if bench.median_ns is None or not other.median_ns:
            return None, label
        return bench.median_ns / other.median_ns, label
    if bench.median_ns is None:
        return None, bench.name
    return bench.median_ns / TIME_UNIT_NS[target.unit], bench.name


def evaluate(targets: list[Target], latest: dict[str, Run]) -> list[Row]:
    """One row per (target, matching benchmark) in the latest result of the
    target's binary; one "not measured yet" row when nothing matches."""
    cache: dict[str, dict[str, Benchmark]] = {}
    rows = []
    for target in targets:
        run = latest.get(target.binary)
        benches = {}
        if run is not None:
            if target.binary not in cache:
                cache[target.binary] = run.benchmarks(target.binary)
            benches = cache[target.binary]
        pattern = target.pattern()
        matched = False
        for name, bench in benches.items():
            m = pattern.fullmatch(name)
            if not m:
                continue
            matched = True
            if bench.error is not None:
                rows.append(Row(target, name, None, ERROR, run.run_id))
                continue
            value, label = measure(target, bench, m, benches)
            status = NOT_MEASURED if value is None else status_of(target, value)
            rows.append(Row(target, name, value, status, run.run_id, label))
        if not matched:
            rows.append(Row(target, target.benchmark, None, NOT_MEASURED))
    return rows


def unmatched_targets(targets: list[Target], names_by_binary: dict[str, list[str]]) -> list[Target]:
    """Targets whose binary exists but none of whose benchmarks match: a
    renamed benchmark or a typo in targets.json, worth a warning."""
    stale = []
    for target in targets:
        names = names_by_binary.get(target.binary)
        if names is None:
            continue
        if not any(target.pattern().fullmatch(n) for n in names):
            stale.append(target)
    return stale


def bound_text(target: Target, value: float | None) -> str:
    if value is None:
        return "—"
    op = "≥" if target.higher_is_better else "≤"
    return f"{op} {format_value(value, target.unit)}"


def checked_rows(rows: list[Row]) -> list[Row]:
    """Rows worth a line in a targets table: measured rows of entries
    without bound or goal ("tracked") only add length; the medians table
    lists them."""
    return [r for r in rows if r.status != TRACKED]


def table_lines(rows: list[Row]) -> list[str]:
    header = ("benchmark", "median", "plan bound", "goal", "status")
    body = []
    for row in checked_rows(rows):
        body.append((f"{row.target.binary}/{row.label}", format_value(row.measured, row.target.unit),
                     bound_text(row.target, row.target.plan_bound),
                     bound_text(row.target, row.target.goal), row.status))
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r).rstrip() for r in body]
    return lines
