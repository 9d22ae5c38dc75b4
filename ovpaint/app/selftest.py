"""``ovpaint-app --self-test``: the installation self-test, through the real window.

Opens the main window on the tiny models, waits until it is really shown (a build whose Qt
platform plugin or fonts are broken fails here), opens a generated image, segments it with the
prompt box's Segment button (the job runs in the window's worker pool), saves the project and
reads it back; then runs the engine checks of :mod:`ovpaint.selftest` on the same models.
Everything is written into a temporary home that is removed afterwards. Exit code 0 only if
every check passed. Each check is printed, and the report is also left in the temporary folder
(``ovpaint-app-selftest.txt``): a windowed build has no console to print to.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

from ovpaint.selftest import (
    PROMPT,
    Check,
    CheckFailed,
    SelfTest,
    digest,
    format_check,
    isolated_home,
    require,
    run_engine_checks,
    scene,
)

REPORT_NAME = "ovpaint-app-selftest.txt"
WINDOW_METHOD = "dense"  # the tiny models find a class with it (refined's filters drop it)
WINDOW_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 600.0


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Process events until ``condition()`` holds; a check failure after ``timeout_s``."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what} did not happen within {timeout_s:.0f} s")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)


def _open_window(args, manager):
    from ovpaint.app.launch import build_window
    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings

    if manager is None:
        args.models = "tiny"
        window = build_window(args)
    else:
        window = MainWindow(manager, settings=Settings.load())
    require(window.manager.is_tiny, "the window did not get the tiny models")
    window.resize(1000, 700)
    window.show()
    return window, window.manager.banner()


def _window_appeared(window) -> str:
    wait_for(
        lambda: (
            window.isVisible()
            and window.windowHandle() is not None
            and window.windowHandle().isExposed()
        ),
        WINDOW_TIMEOUT_S,
        "the window being shown",
    )
    image = window.grab().toImage()
    require(not image.isNull() and image.width() > 0, "the window could not be drawn")
    require(not QApplication.windowIcon().isNull(), "the application icon did not load")
    platform = QApplication.platformName()
    return f"{image.width()}×{image.height()} on the '{platform}' platform"


def _finished(window, what: str):
    """Wait for the job the last action started; a check failure unless it succeeded."""
    from ovpaint.app.workers import error_message

    handle = window.context.current_job
    require(handle is not None, f"{what}: no job was started")
    wait_for(lambda: handle.is_finished, JOB_TIMEOUT_S, what)
    if handle.state != handle.DONE:
        reason = error_message(handle.error) if handle.error is not None else handle.state
        raise CheckFailed(f"{what}: {reason}")
    wait_for(lambda: not window.context.busy, JOB_TIMEOUT_S, what)
    return handle


def _open_image(window, folder: Path) -> str:
    from ovpaint.core.image_io import save_image

    path = save_image(folder / "scene.png", scene())
    window.open_path(str(path))
    _finished(window, "opening the image")
    doc = window.context.document
    require(doc is not None, "no document after opening the image")
    require((doc.height, doc.width) == scene().shape[:2], f"opened {doc.width}×{doc.height}")
    return f"{path.name} {doc.width}×{doc.height}"


def _segment(window):
    """Segment through the prompt box; the layers must hold exactly what the engine finds."""
    from ovpaint.pipelines.segmentation.segment import segment

    prompt = window.prompt
    prompt.prompt.setText(PROMPT)
    index = prompt.method.findData(WINDOW_METHOD)
    require(index >= 0, f"the method list has no '{WINDOW_METHOD}'")
    prompt.method.setCurrentIndex(index)
    require(prompt.button.isEnabled(), "the Segment button is disabled")
    prompt.button.click()
    _finished(window, "the segmentation job")
    doc = window.context.document
    expected = segment(doc.rgb, PROMPT, method=WINDOW_METHOD, manager=window.manager)
    found = {
        name: expected.labels == i
        for i, name in enumerate(expected.classes)
        if i > 0 and (expected.labels == i).any()
    }
    require(bool(found), f"the tiny models found none of '{PROMPT}' (the check needs one)")
    layers = {layer.name: layer.binary for layer in doc.layers if layer.kind == "mask"}
    for name, mask in found.items():
        require(name in layers, f"no layer for '{name}' (layers: {sorted(layers)})")
        require(np.array_equal(layers[name], mask), f"layer '{name}' differs from the engine's")
    for name, mask in layers.items():
        require(name in expected.classes, f"unexpected layer '{name}'")
        require(name in found or not mask.any(), f"layer '{name}' has pixels the engine has not")
    detail = ", ".join(f"{name} {int(mask.sum())} px" for name, mask in found.items())
    return list(layers.values()), f"layers as the engine's: {detail}", digest(*found.values())


def _save_project(window, folder: Path) -> str:
    from ovpaint.core.project import load_project

    path = folder / "selftest.ovpaint"
    doc = window.context.document
    window.files.save_project(path)
    _finished(window, "saving the project")
    require(path.is_file(), "no project file was written")
    require(not doc.dirty, "the document is still marked unsaved")
    again = load_project(path)
    require(
        [(layer.name, layer.mask.tobytes()) for layer in again.layers]
        == [(layer.name, layer.mask.tobytes()) for layer in doc.layers],
        "the saved project reads back different layers",
    )
    require(np.array_equal(again.rgb, doc.rgb), "the saved project reads back another image")
    return f"{path.name}, {path.stat().st_size:,} bytes, read back identical"


def _close(window) -> str:
    doc = window.context.document
    if doc is not None:
        doc.dirty = False  # a failed step must not leave a question dialog blocking the exit
    window.close()
    wait_for(lambda: not window.isVisible(), WINDOW_TIMEOUT_S, "the window closing")
    return ""


def _print(check: Check) -> None:
    print(format_check(check), flush=True)


def report_path() -> Path:
    return Path(tempfile.gettempdir()) / REPORT_NAME


def run_app_selftest(args, manager=None, on_check: Callable[[Check], None] = _print) -> int:
    """Run the window flow and the engine checks; 0 if all passed, 1 otherwise.

    ``manager`` is for tests that already hold tiny models; by default the window builds its
    own from ``args`` (``--device``/``--dtype`` are honoured, ``--models`` is always tiny).
    """
    test = SelfTest(on_check)
    from ovpaint.app.launch import set_app_icon

    set_app_icon(QApplication.instance() or QApplication(sys.argv[:1]))
    with isolated_home() as home:
        window = test.check("open the window", lambda: _open_window(args, manager))
        if window is not None:
            try:
                if test.check("window appeared", lambda: (True, _window_appeared(window))):
                    test.check("open an image", lambda: _open_image(window, home))
                    test.check("segment in the worker pool", lambda: _segment(window))
                    test.check("save and reopen a project", lambda: _save_project(window, home))
                run_engine_checks(test, window.manager, home)
            finally:
                test.check("close the window", lambda: _close(window))
    failed = [c.name for c in test.report.checks if not c.ok]
    verdict = (
        f"self-test FAILED: {', '.join(failed)}"
        if failed
        else f"self-test passed: {len(test.report.checks)} checks"
    )
    lines = [format_check(c) for c in test.report.checks] + [verdict]
    try:
        report_path().write_text("\n".join(lines) + "\n", "utf-8")
    except OSError:
        pass  # the printed report and the exit code still tell
    print(verdict, f"(report: {report_path()})", flush=True)
    return 1 if failed else 0
