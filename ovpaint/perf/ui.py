"""The editor's responsiveness: for each action (open, segment apply, click, brush, feather,
inpaint apply, undo) the longest UI-thread stall on a 24 MP image, measured through the real
window by ``ovpaint.app.perf_ui`` in a process of its own (offscreen Qt, tiny models: the
model's own time runs on the worker and is measured by the other stages). Target: < 100 ms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ovpaint.perf import PerfContext, Stage

ACTIONS = ("open", "segment apply", "click", "brush", "feather", "inpaint apply", "undo")
TARGET_S = 0.100
TIMEOUT_S = 1800


def measure_all(repeats: int, size: str = "6000x4000") -> dict[str, list[float]]:
    """Run the window's measurement in a child process; {action: [stall seconds, ...]}."""
    with tempfile.TemporaryDirectory(prefix="ovpaint-perf-ui-") as folder:
        out = Path(folder) / "ui.json"
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        command = [sys.executable, "-m", "ovpaint.app.perf_ui", "--json", str(out)]
        command += ["--repeats", str(repeats), "--size", size]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError("the UI measurement failed: " + " | ".join(tail))
        data = json.loads(out.read_text("utf-8"))
    return {action: [float(v) for v in data[action]] for action in ACTIONS}


def stages(ctx: PerfContext) -> list[Stage]:
    repeats = ctx.repeats(3)
    size = "1500x1000" if ctx.quick else "6000x4000"
    cache = ctx.cache

    def setup() -> None:
        if "ui" not in cache:
            cache["ui"] = measure_all(repeats, size)

    def reader(action: str):
        position = {"next": 0}

        def run() -> float:
            values = cache["ui"][action]
            value = values[position["next"] % len(values)]
            position["next"] += 1
            return value

        return run

    megapixels = "1.5 MP (quick)" if ctx.quick else "24 MP"
    return [
        Stage(
            "ui",
            f"longest UI stall: {action}, {megapixels}",
            reader(action),
            repeats=repeats,
            warmup=0,
            setup=setup,
            measured=True,
            note=f"target < {TARGET_S * 1000:.0f} ms",
        )
        for action in ACTIONS
    ]
