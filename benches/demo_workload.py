"""Demonstration files timed by ``bench_demo.py`` and its ML-Agents side.

The files are the Unity-recorded experts in tests/fixtures/demos (see the README there).
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "demos"

# name -> what it holds (for the table)
WORKLOADS = {
    "ExpertGridWorld.demo": "53 steps, (64, 84, 3) float images",
    "ExpertHallway.demo": "4395 steps, (105,) + (3,) vectors",
    "testhybridvis.demo": "25 steps, (3, 84, 84) PNG + (1,)",
}


def path_of(name: str) -> str:
    return str(DEMO_DIR / name)
