"""Shared helpers for the benchmarks in this folder.

Conventions every ``bench_<area>.py`` follows:
- ``main()`` runs its workloads and prints one row per workload through :func:`report`.
- Each workload is timed for our implementation and for a plain numpy reference in the
  same process; where the ML-Agents 1.1.0 anchor venv exists, the same workload runs
  there in a subprocess (:func:`run_reference`), and the row shows that ratio too.
- Sizes come from the issue that set the target, so rows compare like with like.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent

MLAGENTS_VENV = Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
PEERS_VENV = Path(os.environ.get("PEERS_VENV", Path.home() / ".cache/rl-peers-venv"))


def best_time(fn: Callable[[], object], repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """Best wall time in seconds of ``number`` calls of ``fn`` over ``repeat`` rounds, per call."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def venv_python(venv: Path, probe_module: str) -> str | None:
    """The interpreter of ``venv`` if it exists and can import ``probe_module``, else None."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    ok = subprocess.run(
        [str(python), "-c", f"import {probe_module}"],
        capture_output=True,
        timeout=120,
        check=False,  # a failed import means "not usable", read from returncode
    )
    return str(python) if ok.returncode == 0 else None


def mlagents_python() -> str | None:
    """The ML-Agents 1.1.0 anchor interpreter (docs/reference-venvs.md), if built."""
    return venv_python(MLAGENTS_VENV, "mlagents.trainers.buffer")


def peers_python() -> str | None:
    """The rlox/SB3/TorchRL peer interpreter (docs/reference-venvs.md), if built."""
    return venv_python(PEERS_VENV, "rlox")


def run_reference(python: str | None, script: str, *args: str, timeout: float = 900) -> dict | None:
    """Runs ``benches/<script>`` under another interpreter; it prints one JSON object
    (workload name -> seconds) as its last line. Returns None when ``python`` is None."""
    if python is None:
        return None
    proc = subprocess.run(
        [python, str(BENCH_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,  # a failed reference is reported and skipped below
    )
    if proc.returncode != 0:
        print(f"  [{script} failed under {python}]\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def report(
    workload: str,
    ours_s: float,
    references: dict[str, float | None],
    throughput: str = "",
) -> None:
    """Prints one table row: our time, throughput, then time and speed-up per reference."""
    cells = [f"{workload:<44}", f"{fmt_seconds(ours_s):>10}", f"{throughput:>16}"]
    for name, ref_s in references.items():
        if ref_s is None:
            cells.append(f"{name}: n/a")
        else:
            cells.append(f"{name}: {fmt_seconds(ref_s)} ({ref_s / ours_s:.1f}x)")
    print(" | ".join(cells), flush=True)


def cpu_model() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """Host, CPU, core count, load average (timings on a busy machine are noisier), Python."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{platform.node()} | {cpu_model()} | {os.cpu_count()} cores | load {load} | "
        f"Python {platform.python_version()}"
    )
