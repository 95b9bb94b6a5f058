"""Unit tests of the suite's own logic on synthetic Google Benchmark JSON:
regression classification through the real compare.py, target evaluation,
the results store, the report and docs table, and the gate's parsing.

    python3 scripts/bench selftest     (or: scripts/suite bench --selftest)
"""
from __future__ import annotations

import json
import pathlib
import random
import statistics
import tempfile
import unittest

import comparison
import gate
import report
import store
import targets as tg


def gb_json(times: dict[str, list[float]], unit: str = "ns", counters: dict | None = None) -> dict:
    """A document shaped like Google Benchmark 1.7's --benchmark_out JSON:
    one iteration entry per repetition, aggregates when repeated."""
    entries = []
    for family, (name, samples) in enumerate(times.items()):
        reps = len(samples)
        for i, t in enumerate(samples):
            e = {"name": name, "family_index": family, "per_family_instance_index": 0,
                 "run_name": name, "run_type": "iteration", "repetitions": reps,
                 "repetition_index": i, "threads": 1, "iterations": 1000,
                 "real_time": t * 1.01, "cpu_time": t, "time_unit": unit}
            e.update((counters or {}).get(name, {}))
            entries.append(e)
        if reps > 1:
            for agg, value in (("mean", statistics.mean(samples)), ("median", statistics.median(samples))):
                entries.append({"name": f"{name}_{agg}", "family_index": family,
                                "per_family_instance_index": 0, "run_name": name,
                                "run_type": "aggregate", "repetitions": reps, "threads": 1,
                                "aggregate_name": agg, "aggregate_unit": "time", "iterations": reps,
                                "real_time": value * 1.01, "cpu_time": value, "time_unit": unit})
    return {"context": {"date": "x", "host_name": "test"}, "benchmarks": entries}


def noisy(center: float, n: int, spread: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


class TempStore(unittest.TestCase):
    """Points the results store at a temporary directory."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vm-bench-selftest-")
        self.dir = pathlib.Path(self.tmp.name)
        self.saved = store.RESULTS_DIR
        store.RESULTS_DIR = self.dir / "results"

    def tearDown(self):
        store.RESULTS_DIR = self.saved
        self.tmp.cleanup()

    def add_run(self, run_id: str, docs: dict[str, dict], date: str = "2026-01-01T00:00:00+00:00") -> store.Run:
        path = store.runs_dir() / run_id
        path.mkdir(parents=True)
        for binary, doc in docs.items():
            (path / f"{binary}.json").write_text(json.dumps(doc))
        meta = {"date": date, "git": {"short": run_id[-4:], "dirty": False}, "run_id": run_id}
        (path / "meta.json").write_text(json.dumps(meta))
        return store.Run(run_id, path, meta)


class ClassifyTest(unittest.TestCase):
    def test_needs_both_threshold_and_significance(self):
        self.assertEqual(comparison.classify(0.03, 0.001, 0.05, 0.05), "same")
        self.assertEqual(comparison.classify(0.20, 0.001, 0.05, 0.05), "regression")
        self.assertEqual(comparison.classify(-0.20, 0.001, 0.05, 0.05), "improvement")
        self.assertEqual(comparison.classify(0.20, 0.30, 0.05, 0.05), "noise")
        self.assertEqual(comparison.classify(0.20, None, 0.05, 0.05), "unconfirmed")

    def test_metric_follows_google_benchmark_name_suffix(self):
        self.assertEqual(store.metric_of("a/8"), "cpu_time")
        self.assertEqual(store.metric_of("a/8/real_time"), "real_time")
        self.assertEqual(store.metric_of("a/manual_time"), "real_time")


class CompareWithCompareDotPyTest(TempStore):
    def compare(self, old: dict, new: dict, threshold=0.05):
        a, b = self.dir / "a.json", self.dir / "b.json"
        a.write_text(json.dumps(old))
        b.write_text(json.dumps(new))
        comp = comparison.compare_files("bin", a, b, old_label="a", new_label="b",
                                        threshold=threshold, alpha=0.05)
        return {c.name: c for c in comp.changes}, comp

    def test_significant_slowdown_is_a_regression_and_small_change_is_not(self):
        old = gb_json({"slow": noisy(100, 9, 0.01, 1), "same": noisy(50, 9, 0.01, 2),
                       "fast": noisy(80, 9, 0.01, 3), "gone": [1.0] * 9})
        new = gb_json({"slow": noisy(130, 9, 0.01, 4), "same": noisy(51, 9, 0.01, 5),
                       "fast": noisy(40, 9, 0.01, 6), "new": [1.0] * 9})
        changes, comp = self.compare(old, new)
        self.assertEqual(changes["slow"].status, "regression")
        self.assertAlmostEqual(changes["slow"].change, 0.3, delta=0.03)
        self.assertLess(changes["slow"].pvalue, 0.05)
        self.assertEqual(changes["same"].status, "same")
        self.assertEqual(changes["fast"].status, "improvement")
        self.assertEqual(comp.only_old, ["gone"])
        self.assertEqual(comp.only_new, ["new"])
        self.assertIn("slow", comp.table)  # compare.py's own table is kept
        self.assertEqual([c.name for c in comp.regressions()], ["slow"])

    def test_overlapping_samples_are_noise(self):
        # Medians 10 % apart, but the samples interleave: not significant.
        old = gb_json({"x": [100, 140, 60, 100, 130, 70, 100, 150, 50]})
        new = gb_json({"x": [110, 60, 150, 110, 70, 140, 110, 55, 145]})
        changes, _ = self.compare(old, new)
        self.assertGreater(changes["x"].change, 0.05)
        self.assertEqual(changes["x"].status, "noise")

    def test_single_repetition_never_counts_as_regression(self):
        changes, _ = self.compare(gb_json({"x": [100]}), gb_json({"x": [200]}))
        self.assertIsNone(changes["x"].pvalue)
        self.assertEqual(changes["x"].status, "unconfirmed")

    def test_units_are_normalised(self):
        changes, _ = self.compare(gb_json({"x": [1.0] * 5}, unit="us"), gb_json({"x": [1000.0] * 5}))
        self.assertAlmostEqual(changes["x"].change, 0.0)


class TargetsTest(TempStore):
    def targets(self, entries: list[dict]) -> list[tg.Target]:
        path = self.dir / "targets.json"
        path.write_text(json.dumps({"targets": entries}))
        return tg.load_targets(path)

    def test_bounds_goals_ratios_counters_and_missing(self):
        run = self.add_run("20260101T000000Z-aaaa", {"mem": gb_json(
            {"pool/64": [10.0] * 3, "pool/4096": [30.0] * 3, "malloc/64": [40.0] * 3,
             "malloc/4096": [40.0] * 3, "batch": [2.0] * 3},
            unit="ns", counters={"batch": {"ratio": 0.7}})})
        ts = self.targets([
            {"binary": "mem", "benchmark": "pool/(\\d+)", "unit": "ns", "plan_bound": 25, "goal": 15},
            {"binary": "mem", "benchmark": "pool/(\\d+)", "relative_to": "malloc/$1", "unit": "x",
             "plan_bound": None, "goal": 0.5},
            {"binary": "mem", "benchmark": "batch", "counter": "ratio", "unit": "x", "plan_bound": 1.0,
             "goal": 0.8},
            {"binary": "mem", "benchmark": "batch", "unit": "us", "plan_bound": 1, "goal": 0.5,
             "higher_is_better": True},
            {"binary": "later", "benchmark": "x", "unit": "ms", "plan_bound": 1, "goal": 1},
        ])
        rows = tg.evaluate(ts, store.latest_per_binary([run]))
        got = [(r.label, round(r.measured, 4) if r.measured is not None else None, r.status) for r in rows]
        self.assertEqual(got, [
            ("pool/64", 10.0, tg.PASS),
            ("pool/4096", 30.0, tg.FAIL),
            ("pool/64 / malloc/64", 0.25, tg.PASS),
            ("pool/4096 / malloc/4096", 0.75, tg.GOAL_MISSED),
            ("batch [ratio]", 0.7, tg.PASS),
            ("batch", 0.002, tg.FAIL),
            ("x", None, tg.NOT_MEASURED),
        ])
        lines = tg.table_lines(rows)
        self.assertIn("plan bound", lines[0])
        self.assertTrue(any("not measured yet" in line for line in lines))

    def test_bad_entries_are_rejected_at_load(self):
        with self.assertRaises(ValueError):
            self.targets([{"binary": "b", "benchmark": "x", "unit": "furlongs"}])
        with self.assertRaises(ValueError):
            self.targets([{"binary": "b", "benchmark": "x", "unit": "ns", "typo": 1}])

    def test_project_targets_file_loads(self):
        self.assertGreater(len(tg.load_targets()), 10)

    def test_unmatched_targets_only_for_existing_binaries(self):
        ts = self.targets([{"binary": "a", "benchmark": "x.*", "unit": "ns"},
                           {"binary": "b", "benchmark": "y", "unit": "ns"}])
        stale = tg.unmatched_targets(ts, {"a": ["z"]})
        self.assertEqual([t.binary for t in stale], ["a"])


class StoreAndReportTest(TempStore):
    def test_latest_previous_baseline_and_report(self):
        r1 = self.add_run("20260101T000000Z-r1", {"a": gb_json({"x": noisy(100, 9, 0.01, 1)}),
                                                   "b": gb_json({"y": [5.0] * 9})},
                          "2026-01-01T00:00:00+00:00")
        r2 = self.add_run("20260102T000000Z-r2", {"a": gb_json({"x": noisy(100, 9, 0.01, 2)})},
                          "2026-01-02T00:00:00+00:00")
        r3 = self.add_run("20260103T000000Z-r3", {"a": gb_json({"x": noisy(150, 9, 0.01, 3)})},
                          "2026-01-03T00:00:00+00:00")
        runs = store.list_runs()
        self.assertEqual([r.run_id for r in runs], [r1.run_id, r2.run_id, r3.run_id])
        latest = store.latest_per_binary(runs)
        self.assertEqual((latest["a"].run_id, latest["b"].run_id), (r3.run_id, r1.run_id))
        self.assertEqual(store.previous_run(runs, r3, "a").run_id, r2.run_id)
        self.assertEqual(store.previous_run(runs, r3, "b").run_id, r1.run_id)
        self.assertIsNone(store.previous_run(runs, r1, "b"))
        # A filtered run measuring other benchmarks of `a` is skipped over.
        r4 = self.add_run("20260104T000000Z-r4", {"a": gb_json({"other": [1.0]})})
        r5 = self.add_run("20260105T000000Z-r5", {"a": gb_json({"x": [1.0]})})
        self.assertEqual(store.previous_run(store.list_runs(), r5, "a").run_id, r3.run_id)
        self.assertIsNone(store.previous_run(store.list_runs(), r4, "a"))
        for r in (r4, r5):
            import shutil
            shutil.rmtree(r.path)
        runs = store.list_runs()
        base = store.save_baseline(r1, "v1", "2026-01-04T00:00:00+00:00")
        self.assertEqual(store.load_baseline("v1").binaries(), ["a", "b"])
        self.assertEqual(base.meta["baseline_name"], "v1")

        docs = self.dir / "benchmarks.md"
        docs.write_text(f"intro\n{report.DOCS_BEGIN}\nold table\n{report.DOCS_END}\noutro\n")
        ts = [tg.Target("a", "x", "ns", 200, 120, "x"), tg.Target("later", "z", "ms", 1, 1)]
        out = self.dir / "report"
        report.write_report(runs, baseline=base, threshold=0.05, alpha=0.05, out_dir=out, docs=True,
                            log=lambda *_: None, targets=ts, docs_file=docs)
        page = (out / "index.html").read_text()
        self.assertRegex(page, r"<li class='bad'>a: 1 slower than 20260102T000000Z-r2: x \+(49|50)%")
        self.assertIn("goal(s) missed", page)          # 150 ns misses the 120 ns goal
        self.assertIn("not measured yet", page)
        self.assertTrue((out / "trend-a.png").stat().st_size > 1000)
        self.assertTrue((out / "trend-b.png").is_file())
        text = docs.read_text()
        self.assertTrue(text.startswith("intro\n") and text.endswith("outro\n"))
        self.assertNotIn("old table", text)
        self.assertIn("| a/x | 150 ns | ≤ 200 ns | ≤ 120 ns | bound ok, goal missed |", text)
        self.assertIn("| b/y | 5 ns | — | — | tracked |", text)


# A stand-in for a Google Benchmark binary, for testing the smoke check's
# handling of binaries: it answers --benchmark_list_tests and writes JSON like
# the real library, and misbehaves as its name says.
FAKE_BINARY = """#!{python}
import json, sys
mode = sys.argv[0].rsplit("/", 1)[-1]
names = ["a/1", "a/2", "b"]
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
if args.get("--benchmark_list_tests") == "true":
    if mode == "cannot_list":
        sys.exit(1)
    print("\\n".join(names)); sys.exit(0)
if mode == "crashes":
    sys.exit(134)
entries = []
for n in names:
    if mode == "drops" and n == "b":
        continue
    e = {{"name": n, "run_name": n, "run_type": "iteration", "iterations": 1,
          "real_time": 1.0, "cpu_time": 1.0, "time_unit": "ns"}}
    if mode == "errors" and n == "a/2":
        e.update(error_occurred=True, error_message="set-up failed")
    entries.append(e)
open(args["--benchmark_out"], "w").write(json.dumps({{"benchmarks": entries}}))
"""


class SmokeTest(unittest.TestCase):
    def test_smoke_catches_crashes_errors_and_missing_benchmarks(self):
        import importlib.util
        import sys
        import types
        # The entry module, loaded under its own name (its main() is guarded).
        spec = importlib.util.spec_from_file_location(
            "bench_main", pathlib.Path(__file__).with_name("__main__.py"))
        main = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(main)
        with tempfile.TemporaryDirectory() as tmp:
            bins = []
            for mode in ("good", "crashes", "errors", "drops", "cannot_list"):
                p = pathlib.Path(tmp) / mode
                p.write_text(FAKE_BINARY.format(python=sys.executable))
                p.chmod(0o755)
                bins.append(p)
            lines = []
            main.log = lines.append
            args = types.SimpleNamespace(filter=None)
            ts = [tg.Target("good", "c", "ns")]
            self.assertEqual(main.smoke(args, bins[:1], ts), 0)
            self.assertTrue(any("matches no benchmark" in line for line in lines))
            for bad in bins[1:]:
                lines.clear()
                self.assertEqual(main.smoke(args, [bad], []), 1, bad.name)
            lines.clear()
            main.smoke(args, bins, [])
            text = "\n".join(lines)
            self.assertIn("exit code 134", text)
            self.assertIn("a/2: set-up failed", text)
            self.assertIn("b: did not run", text)
            self.assertIn("cannot_list --benchmark_list_tests failed", text)


class ContextNotesTest(unittest.TestCase):
    def test_toolchain_and_load_are_called_out(self):
        def run(**meta):
            return store.Run("r", pathlib.Path("/nonexistent"), {"cpus": 2, **meta})
        quiet = run(compiler="g++ 12", load_average=[0.2, 0.1, 0.1])
        self.assertEqual(store.context_notes(quiet, run(compiler="g++ 12", load_average=[0.5, 0, 0])), [])
        notes = store.context_notes(quiet, run(compiler="clang 19", load_average=[3.0, 0, 0]))
        self.assertEqual(len(notes), 2)
        self.assertIn("compiler differs", notes[0])
        self.assertIn("busy", notes[1])


class GateTest(unittest.TestCase):
    def test_totals_needs_a_complete_dump(self):
        with tempfile.TemporaryDirectory() as tmp:
            f = pathlib.Path(tmp) / "cg.out.4"
            f.write_text("version: 1\nevents: Ir\nsummary: 2045\n")
            self.assertIsNone(gate._totals(f))
            f.write_text("version: 1\nevents: Ir\nsummary: 2045\n\ntotals: 20")
            self.assertIsNone(gate._totals(f))
            f.write_text("version: 1\nevents: Ir\nsummary: 2045\n\ntotals: 2045\n")
            self.assertEqual(gate._totals(f), 2045)

    def test_config_rejects_iterations_that_are_not_powers_of_ten(self):
        with tempfile.TemporaryDirectory() as tmp:
            f = pathlib.Path(tmp) / "gate.json"
            f.write_text(json.dumps({"benchmarks": [{"binary": "b", "name": "n", "iterations": 500}]}))
            with self.assertRaises(ValueError):
                gate.load_config(f)
            f.write_text(json.dumps({"benchmarks": [{"binary": "b", "name": "n/real_time/threads:2"}]}))
            with self.assertRaises(ValueError):
                gate.load_config(f)
            f.write_text(json.dumps({"tolerance_percent": 3, "benchmarks": [{"binary": "b", "name": "n"}]}))
            entries, tol = gate.load_config(f)
            self.assertEqual((entries[0].key, entries[0].iterations, tol), ("b/n", 1000, 3.0))

    def test_per_host_cpu_baselines_apply_on_their_cpu_only(self):
        with tempfile.TemporaryDirectory() as tmp:
            f = pathlib.Path(tmp) / "gate.json"
            f.write_text(json.dumps({"benchmarks": [{"binary": "b", "name": "n"},
                                                    {"binary": "j", "name": "m", "per_host_cpu": True}]}))
            (plain, jit), _ = gate.load_config(f)
            self.assertFalse(plain.per_host_cpu)
            self.assertTrue(jit.per_host_cpu)
            base = {"instructions_per_iteration": 100.0, "host_cpu": "cpu A"}
            self.assertEqual(gate.baseline_for(plain, base, "cpu B"), (100.0, None))
            self.assertEqual(gate.baseline_for(jit, base, "cpu A"), (100.0, None))
            value, reason = gate.baseline_for(jit, base, "cpu B")
            self.assertIsNone(value)
            self.assertIn("another CPU", reason)
            value, reason = gate.baseline_for(jit, {"instructions_per_iteration": 100.0}, "cpu A")
            self.assertIsNone(value)  # a per-host count without its CPU applies nowhere
            info = pathlib.Path(tmp) / "cpuinfo"
            info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: sse2 avx\n\n"
                            "processor\t: 1\nmodel name\t: Some CPU\nflags\t\t: avx sse2\n")
            self.assertTrue(gate.host_cpu(info).startswith("Some CPU (flags "))
            info.write_text("model name\t: Some CPU\nflags\t\t: sse2\n")
            self.assertNotEqual(gate.host_cpu(info), gate.host_cpu(pathlib.Path(tmp) / "cpuinfo2"))

    def test_project_gate_files_agree(self):
        entries, _ = gate.load_config()
        baseline = gate.load_baseline()
        missing = [e.key for e in entries if e.key not in baseline]
        self.assertEqual(missing, [], "entries of callgrind-gate.json without a baseline count")


if __name__ == "__main__":
    unittest.main()
