"""Finding and running the benchmark binaries, and describing the run.

Every binary `vm_bench` registers lands in <build>/bench-bin/, so the suite
needs no list of benchmarks: whatever is built is run, zero binaries included.
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import re
import subprocess
import time

from store import ROOT


def find_binaries(bin_dir: pathlib.Path) -> list[pathlib.Path]:
    if not bin_dir.is_dir():
        return []
    return sorted(p for p in bin_dir.iterdir()
                  if p.is_file() and os.access(p, os.X_OK) and not p.suffix)


def list_benchmarks(binary: pathlib.Path, regex: str | None = None) -> list[str]:
    cmd = [str(binary), "--benchmark_list_tests=true"]
    if regex:
        cmd.append(f"--benchmark_filter={regex}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{binary.name} --benchmark_list_tests failed: {proc.stderr.strip()}")
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def run_binary(binary: pathlib.Path, out_json: pathlib.Path, *, regex: str | None,
               repetitions: int, min_time: float | None, quiet: bool) -> tuple[int, float, str]:
    """Runs one binary, its JSON going to out_json. Returns (exit code,
    seconds, console output when quiet, else "")."""
    cmd = [str(binary), f"--benchmark_out={out_json}", "--benchmark_out_format=json",
           f"--benchmark_repetitions={repetitions}"]
    if min_time is not None:
        cmd.append(f"--benchmark_min_time={min_time:g}")
    if repetitions > 1:
        # The JSON keeps every repetition (the U-test needs them); the
        # console only shows mean/median/stddev/cv.
        cmd.append("--benchmark_display_aggregates_only=true")
    if regex:
        cmd.append(f"--benchmark_filter={regex}")
    start = time.monotonic()
    if quiet:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace")
        return proc.returncode, time.monotonic() - start, proc.stdout
    proc = subprocess.run(cmd)
    return proc.returncode, time.monotonic() - start, ""



def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cmake_cache(build_dir: pathlib.Path) -> dict[str, str]:
    cache = build_dir / "CMakeCache.txt"
    values = {}
    if cache.is_file():
        for line in cache.read_text(errors="replace").splitlines():
            m = re.match(r"^([A-Za-z_0-9]+):[A-Z]+=(.*)$", line)
            if m:
                values[m.group(1)] = m.group(2)
    return values


def _compiler_version(compiler: str) -> str:
    if not compiler:
        return "unknown"
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else compiler
    except OSError:
        return compiler


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def collect_metadata(bin_dir: pathlib.Path, options: dict) -> dict:
    build_dir = bin_dir.parent
    cache = _cmake_cache(build_dir)
    build_type = cache.get("CMAKE_BUILD_TYPE", "unknown")
    flags = " ".join(x for x in (cache.get("CMAKE_CXX_FLAGS", ""),
                                 cache.get(f"CMAKE_CXX_FLAGS_{build_type.upper()}", "")) if x)
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "date": utc_now().isoformat(timespec="seconds"),
        "git": {"commit": commit, "short": commit[:10], "dirty": dirty,
                "subject": _git("log", "-1", "--format=%s")},
        "compiler": _compiler_version(cache.get("CMAKE_CXX_COMPILER", "")),
        "build_type": build_type,
        "cxx_flags": flags,
        "build_dir": os.path.relpath(build_dir, ROOT),
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "host": platform.node(),
        "kernel": platform.release(),
        "load_average": list(os.getloadavg()),
        "options": options,
    }


def new_run_id(meta: dict) -> str:
    stamp = meta["date"].replace("-", "").replace(":", "").replace("+0000", "Z")
    stamp = stamp.split("+")[0]
    return f"{stamp}-{meta['git']['short'] or 'nogit'}-{os.getpid()}"


def write_json(path: pathlib.Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n")
