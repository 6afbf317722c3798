"""Fuzz campaign over the Python path of messages from Unity (issue 10).

    python benches/fuzz_decoder.py --inputs 1000000 [--workers N] [--seed S] [--timeout 10]
    python benches/fuzz_decoder.py --target host ...   # messages from a trainer, host side

Runs mutated Unity messages (``tests/unity_fuzz.py``: seeds from our encoder and protobuf
golden messages, structure-aware mutations) through ``decode_output`` -> specs ->
DecisionSteps/TerminalSteps -> side channels, in worker subprocesses so that a process death
is counted (and its input saved under ``--artifacts``), not fatal. Reports inputs/s, crashes
(worker deaths), hangs (an input over ``--timeout`` seconds), inputs that raised anything but
a documented ``UnityProtocolException`` subclass, and the histogram of outcomes.

Reference: the first ``--reference`` inputs (default 5000) also go through ML-Agents 1.1.0
(``FromString``, ``behavior_spec_from_proto``, ``steps_from_proto``, its side channels) in the
anchor venv, one process with a 4 GiB address-space limit and a per-input timer
(``ref_mlagents_fuzz.py``), for its rate and error types on the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))

import common
from unity_fuzz import DOCUMENTED_OUTCOMES, TARGETS, Mutator, build_seeds, run_campaign


def mlagents_reference(inputs: int, seed: int, timeout_s: float) -> dict | None:
    python = common.mlagents_python()
    if python is None or inputs <= 0:
        return None
    mutator = Mutator(build_seeds())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inputs.bin"
        with path.open("wb") as handle:
            for index in range(inputs):
                data = mutator.input(seed, index)
                handle.write(struct.pack("<I", len(data)) + data)
        proc = subprocess.run(
            [python, str(BENCH_DIR / "ref_mlagents_fuzz.py"), str(path), str(timeout_s)],
            check=False,
            capture_output=True,
            text=True,
            timeout=3600,
        )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        return {"died": proc.returncode, "stderr": proc.stderr[-500:]}
    result = json.loads(lines[-1])
    if proc.returncode != 0:
        result["died"] = proc.returncode
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--start", type=int, default=0, help="index of the first input")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--artifacts", type=Path, default=BENCH_DIR / "fuzz_artifacts")
    parser.add_argument("--reference", type=int, default=5_000)
    parser.add_argument(
        "--target",
        choices=sorted(TARGETS),
        default="unity",
        help="unity: messages from Unity through the trainer's path; host: messages from a "
        "trainer through the mlagents-fast-env host's path (no ML-Agents reference: it has "
        "no such decoder)",
    )
    args = parser.parse_args()

    print(f"# fuzz_decoder, {time.strftime('%Y-%m-%d %H:%M')}, {common.machine_line()}")
    print(
        f"inputs {args.start}..{args.start + args.inputs} of seed {args.seed}, "
        f"{args.workers} worker processes, {args.timeout:g} s per input, target {args.target}",
        flush=True,
    )
    last = [time.perf_counter()]

    def progress(done: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  {done:,} inputs", flush=True)

    result = run_campaign(
        args.inputs,
        seed=args.seed,
        workers=args.workers,
        start=args.start,
        chunk=args.chunk,
        timeout_s=args.timeout,
        artifacts=args.artifacts,
        progress=progress,
        target=args.target,
    )
    print(
        f"ours: {result.inputs:,} inputs in {result.seconds:.1f} s = {result.rate:,.0f} inputs/s; "
        f"crashes {len(result.crashes)}, hangs {len(result.hangs)}, "
        f"undocumented errors {len(result.undocumented)}; "
        f"slowest input {result.slowest[0] * 1e3:.1f} ms (#{result.slowest[1]})"
    )
    for kind, count in result.histogram.most_common():
        mark = "" if kind in DOCUMENTED_OUTCOMES else "   <- not documented"
        print(f"  {kind:<36} {count:>9,} ({100 * count / max(result.inputs, 1):.2f}%){mark}")
    for index, kind, message in result.undocumented[:10]:
        print(f"  undocumented #{index}: {kind}: {message}")
    for index, status in result.crashes[:10]:
        print(f"  crash #{index}: exit status {status}")
    for path in result.saved[:10]:
        print(f"  saved {path}")

    reference = (
        mlagents_reference(args.reference, args.seed, args.timeout)
        if args.target == "unity"
        else None
    )
    if reference is None:
        print("ML-Agents 1.1.0: n/a (anchor venv not built)")
    elif "inputs" in reference:
        rate = reference["inputs"] / reference["seconds"]
        print(
            f"ML-Agents 1.1.0 on inputs {0}..{reference['inputs']}: {rate:,.0f} inputs/s "
            f"(ours {result.rate / rate:.1f}x); hangs {reference['hangs']}"
            + (f"; process died with status {reference['died']}" if "died" in reference else "")
        )
        for kind, count in sorted(reference["histogram"].items(), key=lambda kv: -kv[1]):
            print(f"  {kind:<36} {count:>9,}")
    else:
        print(f"ML-Agents 1.1.0: the process died ({reference})")
    failed = result.crashes or result.hangs or result.undocumented
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
