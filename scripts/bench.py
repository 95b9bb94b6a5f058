#!/usr/bin/env python3
"""Runs every Google Benchmark binary of the release build (placeholder for
the benchmark-suite issue, which adds baselines, comparison and reports)."""
import pathlib, subprocess, sys

root = pathlib.Path(__file__).resolve().parent.parent
bins = sorted(p for p in (root / "build/release/bench-bin").glob("*") if p.is_file())
if not bins:
    print("bench: no benchmark binaries built yet")
    sys.exit(0)
rc = 0
for b in bins:
    print(f"== {b.name}")
    rc |= subprocess.call([str(b)] + sys.argv[1:])
sys.exit(rc)
