"""The benchmark suite behind `scripts/suite bench` and `scripts/suite report`.

    python3 scripts/bench bench  [options]   run, store, compare, check targets, report
    python3 scripts/bench report [options]   rebuild bench-report/ and the docs table
    python3 scripts/bench selftest           unit tests of this tool

Python 3 standard library plus matplotlib (charts) and scipy (compare.py's
U-test), both from Debian. docs/benchmarks.md explains every option.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import signal
import sys
import tempfile
import time

# No __pycache__ next to the sources: the checkout stays clean.
sys.dont_write_bytecode = True


def _ensure_debian_python() -> None:
    """Debian's matplotlib and scipy live in /usr/bin/python3; a python3
    found first in PATH (pyenv, venv) may lack them, so switch over."""
    import importlib.util
    if not all(importlib.util.find_spec(m) for m in ("matplotlib", "scipy")):
        system = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(system) and os.access(system, os.X_OK):
            os.execv(system, [system, *sys.argv])
        raise SystemExit("bench: python3-matplotlib and python3-scipy are needed (scripts/install-deps)")


_ensure_debian_python()
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import comparison  # noqa: E402
import gate  # noqa: E402
import runner  # noqa: E402
import store  # noqa: E402
import targets as tg  # noqa: E402


def log(msg: str = "") -> None:
    print(msg, flush=True)


def add_compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=5.0, metavar="PCT",
                   help="a slowdown counts as a regression only beyond this many percent (default 5)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="U-test significance level (default 0.05)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="run the benchmarks", epilog=(
        "scripts/suite bench also takes --build-dir DIR (build and use DIR instead of build/release, "
        "configured with the release preset), --no-build, and --selftest (unit tests of this tool)."))
    b.add_argument("--bin-dir", type=pathlib.Path, default=store.DEFAULT_BIN_DIR,
                   help="directory of benchmark binaries (default build/release/bench-bin)")
    b.add_argument("--bench", metavar="NAME", action="append",
                   help="run only this binary (repeatable)")
    b.add_argument("--filter", metavar="REGEX", help="only benchmarks whose name matches (Google Benchmark regex)")
    b.add_argument("--repetitions", type=int, default=9, metavar="N",
                   help="repetitions per benchmark; the U-test wants >= 9 (default 9)")
    b.add_argument("--min-time", type=float, default=0.1, metavar="SECONDS",
                   help="minimum (CPU) time per repetition (default 0.1)")
    b.add_argument("--save-baseline", metavar="NAME", help="save this run as baseline NAME")
    b.add_argument("--baseline", metavar="NAME",
                   help="compare with baseline NAME; exit 1 when a benchmark regressed")
    b.add_argument("--smoke", action="store_true",
                   help="run every benchmark once (one iteration), store nothing: for CI")
    b.add_argument("--check-targets", action="store_true",
                   help="exit 1 when a measured median misses its plan bound")
    b.add_argument("--list", action="store_true",
                   help="list the built binaries and their benchmarks, then stop")
    b.add_argument("--no-run", action="store_true",
                   help="run nothing: compare/check/report the stored results")
    b.add_argument("--no-report", action="store_true", help="do not rewrite bench-report/")
    b.add_argument("--gate", action="store_true",
                   help="the callgrind instruction-count gate instead of timing runs")
    b.add_argument("--gate-update", action="store_true",
                   help="re-measure the gate benchmarks and rewrite benches/callgrind-baseline.json")
    b.add_argument("--gate-only", metavar="REGEX", help="gate: only entries whose binary/name matches")
    b.add_argument("--gate-tolerance", type=float, metavar="PCT",
                   help="gate: override the tolerance of benches/callgrind-gate.json")
    b.add_argument("-v", "--verbose", action="store_true", help="print compare.py's full tables")
    add_compare_options(b)

    r = sub.add_parser("report", help="write bench-report/ from the stored results")
    r.add_argument("--baseline", metavar="NAME",
                   help="baseline to compare with (default: the most recently saved one)")
    r.add_argument("--no-docs", action="store_true",
                   help="do not rewrite the medians table of docs/benchmarks.md")
    r.add_argument("--out", type=pathlib.Path, default=store.REPORT_DIR, help="output directory")
    add_compare_options(r)

    sub.add_parser("selftest", help="unit tests of the suite's own logic")
    args = parser.parse_args(argv)
    if args.command == "bench":
        if args.repetitions < 1:
            parser.error("--repetitions must be >= 1")
        if args.save_baseline and not re.fullmatch(r"[A-Za-z0-9._-]+", args.save_baseline):
            parser.error("--save-baseline NAME: letters, digits, '.', '_' and '-' only")
    return args


def select_binaries(bin_dir: pathlib.Path, wanted: list[str] | None) -> list[pathlib.Path]:
    found = runner.find_binaries(bin_dir)
    if not wanted:
        return found
    by_name = {p.name: p for p in found}
    missing = [w for w in wanted if w not in by_name]
    if missing:
        raise SystemExit(f"bench: no benchmark binary {', '.join(missing)} in {bin_dir} "
                         f"(built: {', '.join(by_name) or 'none'})")
    return [by_name[w] for w in wanted]


def smoke(args, binaries: list[pathlib.Path], targets: list[tg.Target]) -> int:
    """Every benchmark once. Fails when a binary crashes, exits non-zero,
    reports a benchmark error or leaves out a benchmark it listed."""
    rc = 0
    names_by_binary = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vm-bench-smoke-") as tmp:
        for binary in binaries:
            try:
                names = runner.list_benchmarks(binary, args.filter)
                names_by_binary[binary.name] = runner.list_benchmarks(binary)
            except RuntimeError as err:
                rc = 1
                log(f"smoke: {binary.name}: FAIL: {err}")
                continue
            if not names:
                log(f"smoke: {binary.name}: no benchmark matches the filter, skipped")
                continue
            out = pathlib.Path(tmp) / f"{binary.name}.json"
            code, secs, output = runner.run_binary(binary, out, regex=args.filter, repetitions=1,
                                                   min_time=0, quiet=True)
            problems = []
            if code != 0:
                problems.append(f"exit code {code}")
            if out.is_file():
                benches = store.parse_benchmarks(binary.name, json.loads(out.read_text()))
                problems += [f"{n}: {b.error}" for n, b in benches.items() if b.error]
                problems += [f"{n}: did not run" for n in names if n not in benches]
            else:
                problems.append("no JSON output")
            if problems:
                rc = 1
                log(f"smoke: {binary.name}: FAIL ({len(names)} benchmarks, {secs:.1f} s)")
                for p in problems:
                    log(f"  {p}")
                log("  output (last 20 lines):")
                for line in output.splitlines()[-20:]:
                    log(f"    {line}")
            else:
                log(f"smoke: {binary.name}: ok ({len(names)} benchmarks, {secs:.1f} s)")
    for t in tg.unmatched_targets(targets, names_by_binary):
        log(f"smoke: warning: benches/targets.json entry '{t.binary}/{t.benchmark}' matches no "
            f"benchmark of {t.binary} (renamed, or not written yet?)")
    log(f"smoke: {len(binaries)} binaries in {time.monotonic() - start:.1f} s: {'PASS' if rc == 0 else 'FAIL'}")
    return rc


def run_all(args, binaries: list[pathlib.Path]) -> tuple[store.Run | None, int]:
    """Runs the binaries into a new stored run. Returns (run or None, rc)."""
    options = {"bench": args.bench, "filter": args.filter, "repetitions": args.repetitions,
               "min_time": args.min_time}
    meta = runner.collect_metadata(args.bin_dir, options)
    run_id = runner.new_run_id(meta)
    path = store.runs_dir() / run_id
    path.mkdir(parents=True)
    rc = 0
    ran = 0
    for binary in binaries:
        try:
            if args.filter and not runner.list_benchmarks(binary, args.filter):
                continue
        except RuntimeError as err:
            log(f"bench: {err}")
            rc = 1
            continue
        log(f"== {binary.name}")
        out = path / f"{binary.name}.json"
        code, secs, _ = runner.run_binary(binary, out, regex=args.filter, repetitions=args.repetitions,
                                       min_time=args.min_time, quiet=False)
        try:
            benches = store.parse_benchmarks(binary.name, json.loads(out.read_text()))
        except (OSError, json.JSONDecodeError):
            benches = None
        if code != 0 or benches is None:
            log(f"bench: {binary.name} failed (exit code {code}); its result is not stored")
            out.unlink(missing_ok=True)
            rc = 1
            continue
        for name, bench in benches.items():
            if bench.error:
                log(f"bench: {binary.name}/{name}: error: {bench.error}")
                rc = 1
        ran += 1
        meta.setdefault("seconds", {})[binary.name] = round(secs, 1)
    if ran == 0:
        shutil.rmtree(path)
        if args.filter and rc == 0:
            log(f"bench: no benchmark matches --filter {args.filter!r}; nothing stored")
        return None, rc
    meta["run_id"] = run_id
    runner.write_json(path / "meta.json", meta)
    log(f"bench: stored {ran} result(s) in {path.relative_to(store.ROOT) if path.is_relative_to(store.ROOT) else path}")
    return store.Run(run_id, path, meta), rc


def print_comparison(comp: comparison.Comparison, verbose: bool) -> None:
    moved = [c for c in comp.changes if c.moved]
    noisy = [c for c in comp.changes if c.status == "noise"]
    log(f"  {comp.binary}: {len(comp.changes)} compared, {len(comp.regressions())} regression(s), "
        f"{len(moved) - len(comp.regressions())} other move(s), {len(noisy)} within noise")
    for note in comp.notes:
        log(f"    note: {note}")
    for c in sorted(moved, key=lambda c: -c.change):
        log("    " + comparison.describe(c))
    if verbose:
        log(comp.table)


def list_benchmarks(args, targets: list[tg.Target]) -> int:
    binaries = select_binaries(args.bin_dir, args.bench)
    if not binaries:
        log(f"bench: no benchmark binaries in {args.bin_dir} yet")
    for binary in binaries:
        names = runner.list_benchmarks(binary, args.filter)
        log(f"{binary.name} ({len(names)} benchmarks)")
        for name in names:
            covering = [t for t in targets if t.binary == binary.name and t.pattern().fullmatch(name)]
            note = "  [target]" if covering else ""
            log(f"  {name}{note}")
    return 0


def cmd_bench(args) -> int:
    if args.gate or args.gate_update:
        meta = runner.collect_metadata(args.bin_dir, {"gate": True})
        log(f"gate: callgrind instruction counts, binaries from {args.bin_dir}")
        return gate.run_gate(args.bin_dir, update=args.gate_update, meta=meta, only=args.gate_only,
                             tolerance=args.gate_tolerance, log=log)

    targets = tg.load_targets()
    if args.list:
        return list_benchmarks(args, targets)
    if args.baseline and store.load_baseline(args.baseline) is None:
        # Checked before measuring: a typo should not cost a whole run.
        known = ", ".join(b.run_id for b in store.list_baselines()) or "none"
        log(f"bench: no baseline named '{args.baseline}' (saved baselines: {known})")
        return 2
    rc = 0
    current = None
    if not args.no_run:
        binaries = select_binaries(args.bin_dir, args.bench)
        if not binaries:
            log(f"bench: no benchmark binaries in {args.bin_dir} yet; nothing to run")
        if args.smoke:
            return smoke(args, binaries, targets)
        if binaries:
            current, rc = run_all(args, binaries)

    runs = store.list_runs()
    if current is None and runs and args.no_run:
        current = runs[-1]
    threshold, alpha = args.threshold / 100, args.alpha

    if current is not None:
        log(f"\nComparison with the previous run (threshold {args.threshold:g} %, alpha {alpha:g}):")
        any_prev = False
        for binary in current.binaries():
            prev = store.previous_run(runs, current, binary)
            if prev is None:
                log(f"  {binary}: first stored result")
                continue
            any_prev = True
            comp = comparison.compare_files(
                binary, prev.json_path(binary), current.json_path(binary), old_label=prev.run_id,
                new_label=current.run_id, threshold=threshold, alpha=alpha)
            comp.notes = store.context_notes(prev, current)
            print_comparison(comp, args.verbose)
        if not any_prev:
            log("  (no earlier run to compare with)")

    if args.baseline:
        base = store.load_baseline(args.baseline)
        if current is None:
            log("bench: nothing measured to compare with the baseline")
            return 2
        log(f"\nComparison with baseline '{args.baseline}' (threshold {args.threshold:g} %, alpha {alpha:g}):")
        regressions = []
        few_reps = False
        for binary in current.binaries():
            if binary not in base.binaries():
                log(f"  {binary}: not in the baseline")
                continue
            comp = comparison.compare_files(
                binary, base.json_path(binary), current.json_path(binary),
                old_label=f"baseline {args.baseline}", new_label=current.run_id,
                threshold=threshold, alpha=alpha)
            comp.notes = store.context_notes(base, current)
            print_comparison(comp, args.verbose)
            regressions += [(binary, c) for c in comp.regressions()]
            few_reps |= any(min(c.repetitions) < 4 for c in comp.changes)
        if few_reps:
            log("  note: with fewer than 4 repetitions on a side the U-test cannot reach p < 0.05 "
                "(9 recommended), so nothing can count as a regression")
        if regressions:
            log(f"bench: {len(regressions)} benchmark(s) regressed against baseline '{args.baseline}' "
                "(the SLOWER lines above)")
            rc = rc or 1
        else:
            log(f"bench: no regression against baseline '{args.baseline}'")

    if args.save_baseline:
        if current is None:
            log("bench: nothing measured; no baseline saved")
            rc = rc or 2
        else:
            store.save_baseline(current, args.save_baseline, runner.utc_now().isoformat(timespec="seconds"))
            log(f"bench: saved run {current.run_id} as baseline '{args.save_baseline}'")

    rows = tg.evaluate(targets, store.latest_per_binary(runs))
    shown = store.TARGETS_FILE.relative_to(store.ROOT) if store.TARGETS_FILE.is_relative_to(store.ROOT) \
        else store.TARGETS_FILE
    log(f"\nTargets ({shown}):")
    for line in tg.table_lines(rows):
        log("  " + line)
    missed = [r for r in rows if r.status == tg.FAIL]
    if missed:
        log(f"bench: {len(missed)} plan bound(s) missed")
        if args.check_targets:
            rc = rc or 1

    if not args.no_report:
        import report
        base_run = store.load_baseline(args.baseline) if args.baseline else None
        if base_run is None and store.list_baselines():
            base_run = store.list_baselines()[-1]
        report.write_report(runs, baseline=base_run, threshold=threshold, alpha=alpha, docs=False, log=log)
    return rc


def cmd_report(args) -> int:
    import report
    base = None
    if args.baseline:
        base = store.load_baseline(args.baseline)
        if base is None:
            log(f"report: no baseline named '{args.baseline}'")
            return 2
    elif store.list_baselines():
        base = store.list_baselines()[-1]
    runs = store.list_runs()
    report.write_report(runs, baseline=base, threshold=args.threshold / 100, alpha=args.alpha,
                        out_dir=args.out, docs=not args.no_docs, log=log)
    return 0


def cmd_selftest() -> int:
    import unittest
    import selftest
    suite = unittest.defaultTestLoader.loadTestsFromModule(selftest)
    result = unittest.TextTestRunner(verbosity=1).run(suite)
    return 0 if result.wasSuccessful() else 1


def main(argv: list[str]) -> int:
    # Behave like a Unix tool when piped into head: no traceback on EPIPE.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = parse_args(argv)
    if args.command == "bench":
        return cmd_bench(args)
    if args.command == "report":
        return cmd_report(args)
    return cmd_selftest()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
