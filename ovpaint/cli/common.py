"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ovpaint.core.jobs import CancelToken, Progress, ProgressEvent


def load_settings():
    """The user's settings; what could not be used is said on stderr, one line each."""
    from ovpaint.core.settings import Settings

    settings = Settings.load()
    for problem in settings.problems:
        print(f"ovpaint: {problem}", file=sys.stderr)
    return settings


def manager_for(args: argparse.Namespace):
    from ovpaint.models.manager import manager_from_options

    manager = manager_from_options(
        getattr(args, "models", None),
        getattr(args, "device", None),
        getattr(args, "dtype", None),
        load_settings(),
    )
    if manager.is_tiny or manager.choice.note:
        print(f"ovpaint: {manager.banner()}", file=sys.stderr)
    manager.calibrator.announce = lambda line: print(f"ovpaint: {line}", file=sys.stderr)
    return manager


def tqdm_progress(
    desc: str = "", disable: bool | None = None, stream=None
) -> tuple[Progress, callable]:
    """A Progress rendered on stderr: a tqdm bar on a terminal, plain lines otherwise (a log
    or a pipe gets "segment: windows 5/9", not carriage returns). Returns (progress, close)."""
    stream = sys.stderr if stream is None else stream
    progress = Progress()
    if disable:
        return progress, lambda: None
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return _tqdm_bar(progress, desc, stream)
    return _plain_lines(progress, desc, stream)


def _tqdm_bar(progress: Progress, desc: str, stream) -> tuple[Progress, callable]:
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, file=stream, leave=False, dynamic_ncols=True)

    def on_event(event: ProgressEvent) -> None:
        if event.total is not None and bar.total != event.total:
            bar.reset(total=event.total)
        bar.unit = event.unit or "it"
        bar.set_description(event.stage or desc, refresh=False)
        if event.message:  # e.g. the file just done, or the running mIoU
            bar.set_postfix_str(event.message[-60:], refresh=False)
        bar.n = event.done
        bar.refresh()

    progress.subscribe(on_event)
    return progress, bar.close


PLAIN_INTERVAL_S = 2.0  # plain lines: at most one per stage every 2 s, plus its first and last


def _plain_lines(progress: Progress, desc: str, stream) -> tuple[Progress, callable]:
    state = {"stage": None, "at": 0.0}

    def on_event(event: ProgressEvent) -> None:
        now = time.monotonic()
        new_stage = event.stage != state["stage"]
        finished = event.total is not None and event.done >= event.total
        if not (new_stage or finished or now - state["at"] >= PLAIN_INTERVAL_S):
            return
        if not new_stage and finished and state.get("finished") == event.stage:
            return
        state.update(stage=event.stage, at=now, finished=event.stage if finished else None)
        line = event.describe() or desc
        if event.message:
            line += f" — {event.message[-80:]}"
        print(f"{desc}: {line}" if desc else line, file=stream, flush=True)

    progress.subscribe(on_event)
    return progress, lambda: None


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def new_cancel() -> CancelToken:
    return CancelToken()


class cancel_on_interrupt:  # noqa: N801 - used as a context manager, reads like a function
    """Turn the first Ctrl-C into a cooperative cancel (the job stops cleanly at its next safe
    point and says so); a second Ctrl-C interrupts at once."""

    def __init__(self, cancel: CancelToken, what: str = "the current item") -> None:
        self.cancel = cancel
        self.what = what
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.cancel.cancelled:
            raise KeyboardInterrupt
        self.cancel.cancel()
        print(
            f"\novpaint: stopping after {self.what}… (Ctrl-C again to abort now)", file=sys.stderr
        )

    def __enter__(self) -> CancelToken:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self.cancel

    def __exit__(self, *exc) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def add_method_option(
    parser: argparse.ArgumentParser, default: str | None = None, *, several: bool = False
) -> None:
    """``--method``: choices, default and help generated from the method registry. With
    ``several`` it takes a comma-separated list (checked by :func:`methods_from_args`)."""
    from ovpaint.pipelines.segmentation.methods import DEFAULT_METHOD, METHODS, method_names

    default = default or DEFAULT_METHOD
    described = "; ".join(
        f"{name}{' (default)' if name == default else ''}: {METHODS[name].describe()}"
        for name in method_names()
    )
    if several:
        parser.add_argument(
            "--method",
            default=default,
            metavar="METHOD[,METHOD...]",
            help="segmentation method, or several separated by commas to compare them on the "
            "same images. " + described.replace("%", "%%"),
        )
    else:
        parser.add_argument(
            "--method",
            choices=method_names(),
            default=default,
            help="segmentation method. " + described.replace("%", "%%"),
        )


def methods_from_args(args: argparse.Namespace) -> list[str]:
    """The methods of a ``--method`` taking several: known, in order, each once."""
    from ovpaint.eval.compare import parse_methods
    from ovpaint.pipelines.segmentation.methods import method_names

    return parse_methods(args.method, method_names())


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    """``--set SECTION.KEY=VALUE``, repeatable: any typed segmentation setting."""
    from ovpaint.pipelines.segmentation.settings import SECTIONS

    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a segmentation setting (value as JSON), e.g. --set dense.prob_thd=0.2; "
        f"sections: {', '.join(SECTIONS)}; an unknown key is refused",
    )


MAX_SET_CHARS = 16_384  # one --set value: a list of numbers or a few words
MAX_SET_DEPTH = 2  # a list, or a list of lists


def _set_value(key: str, text: str):
    """A ``--set`` value: JSON when it parses (``0.2``, ``[3, 6]``, ``"four"``, ``NaN`` for
    the range check to refuse by name), else the text itself; bounded in length and depth."""
    from ovpaint.core.errors import BadInput
    from ovpaint.core.safeio import depth

    if len(text) > MAX_SET_CHARS:
        raise BadInput(
            f"--set {key[:60]}: the value is {len(text)} characters long; "
            f"at most {MAX_SET_CHARS} are allowed."
        )
    deep = BadInput(f"--set {key[:60]}: the value is nested too deeply.")
    try:
        value = json.loads(text)
    except RecursionError:
        raise deep from None
    except ValueError:
        return text
    if depth(value) > MAX_SET_DEPTH:
        raise deep
    return value


def settings_from_args(args: argparse.Namespace, *presets: dict | None) -> dict:
    """The nested settings of ``presets`` and ``--set`` (which wins), checked now: a bad key
    or value stops the command (exit 2) before any image or model loads."""
    from ovpaint.core.errors import BadInput
    from ovpaint.pipelines.segmentation.settings import merge_settings, parse_settings

    pairs = {}
    for pair in getattr(args, "settings", None) or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set expects SECTION.KEY=VALUE, got '{pair[:60]}'.")
        pairs[key.strip()] = _set_value(key.strip(), value)
    merged = merge_settings(*presets, pairs)
    parse_settings(merged)
    return merged
