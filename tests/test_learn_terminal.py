"""What ``mlagents-fast-learn`` shows: the banner, ML-Agents' summary lines in logs, live bars on
a terminal (run in a pseudo-terminal here)."""

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import mlagents_fast
import pytest
from mlagents_fast.trainers.progress import _make_progress, compact_count

pytestmark = pytest.mark.smoke

CONFIG = """\
behaviors:
  GoalSeeker1D:
    trainer_type: ppo
    hyperparameters: {batch_size: 64, buffer_size: 256, num_epoch: 1}
    network_settings: {hidden_units: 16, num_layers: 1}
    max_steps: 3000
    time_horizon: 16
    summary_freq: 512
"""

# mlagents-learn's summary line, as its ConsoleWriter logs it.
MLAGENTS_LINE = re.compile(
    r"\[INFO\] GoalSeeker1D\. Step: \d+\. Time Elapsed: \d+\.\d{3} s\. "
    r"(Mean Reward: -?\d+\.\d{3}\. Std of Reward: \d+\.\d{3}\.|"
    r"No episode was completed since last summary\.) (Not )?Training\."
)
SPEED_LINE = re.compile(r"\[INFO\] GoalSeeker1D\. Steps/s: \d+\.( Time Left: \w+\.)?")


def command(tmp_path):
    (tmp_path / "config.yaml").write_text(CONFIG)
    return [
        sys.executable,
        "-m",
        "mlagents_fast.trainers.learn",
        "config.yaml",
        "--env",
        "builtin:GoalSeeker1D",
        "--run-id",
        "shown",
        "--seed",
        "3",
    ]


def test_log_output_has_banner_and_mlagents_lines_with_speed_apart(tmp_path):
    completed = subprocess.run(
        command(tmp_path), capture_output=True, text=True, cwd=tmp_path, timeout=240, check=False
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    head = "\n".join(lines[:5])
    assert f"mlagents-fast {mlagents_fast.__version__}" in head
    assert "\u2563" not in completed.stdout  # none of Unity's logo
    summaries = [line for line in lines if "GoalSeeker1D. Step: " in line]
    assert len(summaries) >= 5
    for line in summaries:
        assert MLAGENTS_LINE.fullmatch(line), line
    speeds = [line for line in lines if "Steps/s" in line]
    assert speeds and all(SPEED_LINE.fullmatch(line) for line in speeds), speeds
    # Each speed line comes right after a summary line.
    assert all(lines[lines.index(speed) - 1] in summaries for speed in speeds)
    assert "\x1b[" not in completed.stdout  # no terminal codes in a log


def run_in_terminal(argv, cwd, timeout=240):
    """Run ``argv`` with stdout/stderr on an 80x24 pseudo-terminal (a new terminal window's
    size); return (rc, output)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("COLUMNS", None)
    for name in ("NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, cwd=cwd, env=env
    )
    os.close(terminal)
    chunks = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_terminal_shows_live_bars_with_speed_reward_and_time_left(tmp_path):
    rc, output = run_in_terminal(command(tmp_path), tmp_path)
    assert rc == 0, output[-3000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    bars = re.findall(
        r"GoalSeeker1D .*?(\d[\d,]*)/3,000 steps\W+(\S+) steps/s\W+reward (\S+)", plain
    )
    assert bars, plain[-3000:]
    # The bar moved, and finished at max_steps with the last summary's reward.
    steps = [int(s.replace(",", "")) for s, _, _ in bars]
    assert steps[-1] >= 3000 and min(steps) < 3000
    assert re.fullmatch(r"-?\d+\.\d{3}", bars[-1][2])
    assert "ETA" in plain
    # ML-Agents' lines still scroll above the bars; the speed is in the bars, not in a line.
    assert re.search(r"GoalSeeker1D\. Step: 512\. Time Elapsed: [\d.]+ s\. ", plain)
    assert "Steps/s:" not in plain


def test_compact_counts():
    assert [compact_count(v) for v in (0, 950, 9999, 10_000, 12_345, 99_950, 999_499)] == [
        "0",
        "950",
        "9,999",
        "10.0k",
        "12.3k",
        "100k",
        "999k",
    ]
    assert [compact_count(v) for v in (999_500, 1_500_000, 12_345_678)] == [
        "1.00M",
        "1.50M",
        "12.3M",
    ]


def render_bars(width, names, completed=123_456, total=500_000):
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    progress = _make_progress(console)
    for name in names:
        task = progress.add_task(name, total=total, completed=completed, reward=None)
        progress.update(task, reward=-93.125)
    console.print(progress.make_tasks_table(progress.tasks))
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_bars_are_one_line_per_behavior_on_an_80_column_terminal(width):
    lines = render_bars(width, ["3DBall"])
    assert len(lines) == 1 and len(lines[0].rstrip()) <= width
    assert re.fullmatch(
        r"3DBall \u2501+\S* +25% 123k/500k steps  \S+ steps/s  reward -93\.125  ETA \S+",
        lines[0].rstrip(),
    ), lines
    # Long names are cut; the figures stay whole, one line per behavior, names aligned.
    lines = render_bars(80, ["3DBall", "WalkerDynamicVariableSpeedLongName"])
    assert len(lines) == 2 and all(len(line.rstrip()) <= 80 for line in lines)
    assert lines[1].startswith("WalkerDynamicVariab\u2026 ")
    assert all("123k/500k steps" in line and "reward -93.125" in line for line in lines)
    assert lines[0].index("123k") == lines[1].index("123k")
