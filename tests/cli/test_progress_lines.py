"""The CLI's progress: plain lines when stderr is not a terminal (a log, a pipe), a tqdm bar
when it is."""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from ovpaint.cli import main
from ovpaint.cli.common import tqdm_progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_have_stage_and_count():
    stream = io.StringIO()
    progress, close = tqdm_progress("segment", stream=stream)
    progress.stage("windows", 9)
    for i in range(1, 10):
        progress.update(i)
    progress.stage("SAM2 points", 60)
    progress.update(60)
    close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "segment: windows 0/9"
    assert "segment: windows 9/9" in lines
    assert lines[-1] == "segment: SAM2 points 60/60"
    assert "\r" not in stream.getvalue()
    assert len(lines) <= 5  # not one line per update


def test_a_terminal_gets_a_bar():
    stream = _Tty()
    progress, close = tqdm_progress("inpaint", stream=stream)
    progress.stage("step", 50)
    progress.update(14)
    close()
    assert "step" in stream.getvalue() and "14/50" in stream.getvalue()
    assert "\r" in stream.getvalue()


def test_quiet_prints_nothing():
    stream = io.StringIO()
    progress, close = tqdm_progress("batch", disable=True, stream=stream)
    progress.stage("batch", 2)
    progress.update(2)
    close()
    assert stream.getvalue() == ""


def test_segment_command_reports_stages_with_counts(tmp_path, capsys):
    rng = np.random.default_rng(0)
    photo = tmp_path / "in.png"
    Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8)).save(photo)
    rc = main(
        ["--models", "tiny", "segment", str(photo), "--prompt", "dog, sky, tree"]
        + ["--method", "dense", "--out", str(tmp_path / "labels.png")]
    )
    assert rc == 0
    err = capsys.readouterr().err
    # the three classes plus the implicit background names
    assert re.search(r"^segment: text \d+/(\d+) names$", err, re.M)
    assert re.search(r"^segment: windows (\d+)/\1$", err, re.M)
