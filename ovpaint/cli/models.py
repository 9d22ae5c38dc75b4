"""`ovpaint models list|download|import|verify|calibrate`: see, fetch and check the model
weights, and measure which compute precision is fastest on this machine.

Downloads resume: Ctrl-C keeps the part already fetched (exit 130) and the same command later
continues from it. A model that cannot be had exits 3 with one line saying what to do.
"""

from __future__ import annotations

import argparse
import sys

from ovpaint.core.errors import BadInput, Cancelled, ModelUnavailable
from ovpaint.core.jobs import CancelToken, Progress, ProgressEvent
from ovpaint.core.options import add_global_options


def _ids_help() -> str:
    """The known model ids by family, for ``--help`` (generated from the registry)."""
    from ovpaint.models.registry import FAMILIES

    return "; ".join(
        f"{f.role} ({f.title}): {', '.join(m.id for m in f.models)}" for f in FAMILIES.values()
    )


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models",
        help="list, download, import or verify model weights",
        description="Manage the model weights (see `ovpaint models list`).",
    )
    actions = p.add_subparsers(dest="models_action", metavar="ACTION", parser_class=type(p))
    ls = actions.add_parser("list", help="every known model, its size and whether it is here")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    dl = actions.add_parser("download", help="download models (resumes a broken download)")
    dl.add_argument("ids", nargs="+", metavar="ID", help="model ids. " + _ids_help())
    dl.add_argument("--force", action="store_true", help="download again even if installed")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    im = actions.add_parser("import", help="use weights you already have (file or folder)")
    im.add_argument("id", metavar="ID")
    im.add_argument("path", metavar="PATH")
    ve = actions.add_parser("verify", help="recompute the checksums of installed models")
    ve.add_argument("ids", nargs="*", metavar="ID", help="default: every installed model")
    ca = actions.add_parser(
        "calibrate",
        help="measure which precision is fastest here for each workload (done once "
        "automatically; run again after changing hardware)",
    )
    ca.add_argument("--json", action="store_true", help="machine-readable output")
    for action_parser in (ls, dl, im, ve, ca):  # global options also after the action
        add_global_options(action_parser, suppress=True)
    return p


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "models_action", None)
    if action is None:
        raise BadInput("Say what to do: ovpaint models list|download|import|verify|calibrate")
    actions = {
        "list": _list,
        "download": _download,
        "import": _import,
        "verify": _verify,
        "calibrate": _calibrate,
    }
    return actions[action](args)


def _context(args: argparse.Namespace):
    from ovpaint.cli.common import load_settings
    from ovpaint.models import device as devices
    from ovpaint.models.store import ModelStore

    settings = load_settings()
    store = ModelStore.from_settings(settings)
    try:
        choice = devices.choose(getattr(args, "device", None) or settings["device"], "auto")
        device_type = choice.device.type
    except BadInput:
        device_type = "cpu"
    return settings, store, device_type


def _list(args: argparse.Namespace) -> int:
    from ovpaint.cli.common import print_json
    from ovpaint.models.download import PART_SUFFIX
    from ovpaint.models.registry import FAMILIES, all_models

    settings, store, device_type = _context(args)
    chosen = {
        role: settings[f.setting] or f.default_model(device_type) for role, f in FAMILIES.items()
    }
    rows = []
    for spec in all_models():
        if store.override_path(spec) is not None:
            path = store.installed_path(spec)
            state = "local" if path is not None else "missing"
        else:
            path = store.downloaded_path(spec)
            state = "installed" if path is not None else "missing"
        folder = store.folder(spec)
        partial = state == "missing" and folder.is_dir() and any(folder.rglob("*" + PART_SUFFIX))
        default = chosen[spec.role] == spec.id
        rows.append(
            {
                "id": spec.id,
                "role": spec.role,
                "title": spec.title,
                "size_bytes": spec.approx_bytes,
                "state": state,
                "partial": partial,
                "path": str(path) if path is not None else None,
                "default": default,
            }
        )
    stored = _stored_precision(settings, device_type)
    if args.json:
        print_json(
            {
                "device": device_type,
                "model_dir": str(store.root),
                "models": rows,
                "precision": _precision_json(stored, settings, device_type),
            }
        )
        return 0
    print(f"Models in {store.root} (default for {device_type} marked *):")
    for r in rows:
        mark = "*" if r["default"] else " "
        state = r["state"] + (" (partial download: resume with `download`)" if r["partial"] else "")
        where = f"  {r['path']}" if r["path"] else ""
        print(
            f"{mark} {r['id']:18s} {r['role']:8s} {r['size_bytes'] / 1e9:6.2f} GB  "
            f"{state:10s} {r['title']}{where}"
        )
    _print_precision(stored, settings)
    return 0


def _calibrator(settings):
    from ovpaint.models.calibration import Calibrator

    return Calibrator(allow_int8=bool(settings["int8_vit"]))


def _stored_precision(settings, device_type: str, calibration=None):
    """This machine's precision choices: ``calibration`` when just measured, else the stored
    ones (nothing is measured here)."""
    import torch

    from ovpaint.models.precision_summary import stored_precision

    return stored_precision(_calibrator(settings), torch.device(device_type), calibration)


def _precision_json(stored, settings, device_type: str) -> dict:
    return {
        "device": device_type,
        "dtype_setting": settings["dtype"],
        "signature": stored.signature,
        "measured_in_s": stored.measured_in_s,
        "workloads": {row.name: row.as_json() for row in stored.rows},
    }


def _print_precision(stored, settings) -> None:
    print(
        f"\nCompute precision on {stored.where()} (measured; `ovpaint models calibrate` to redo):"
    )
    for row in stored.rows:
        if row.choice is None:
            text = "not measured yet (measured on first use)"
        else:
            ratios = row.speed_text()
            text = row.choice + (f"  ({ratios} the speed of fp32)" if ratios else "")
        print(f"  {row.name:8s} {text}  — {row.title}")
    if settings["dtype"] != "auto":
        print(f"  (the dtype setting '{settings['dtype']}' overrides these choices)")


def _calibrate(args: argparse.Namespace) -> int:
    import torch

    from ovpaint.cli.common import print_json

    settings, _store, device_type = _context(args)
    device = torch.device(device_type)
    calibrator = _calibrator(settings)
    print(f"ovpaint: measuring each workload's precisions on {device.type}…", file=sys.stderr)
    calibration = calibrator.calibrate(device, force=True)
    stored = _stored_precision(settings, device_type, calibration)
    if args.json:
        print_json(_precision_json(stored, settings, device_type))
        return 0
    loading = (
        f" (after {calibration.load_seconds:.1f} s loading the code it runs)"
        if calibration.load_seconds >= 0.05
        else ""
    )
    print(f"Measured in {calibration.seconds:.1f} s{loading}; stored in {calibrator.path}.")
    _print_precision(stored, settings)
    return 0


def _bytes_bar(desc: str, disable: bool):
    """A tqdm bar in bytes on stderr fed by Progress events; returns (progress, close).

    The bar appears with the first event, so an error before the transfer starts (offline,
    unknown repository) prints one line and no empty bar."""
    from tqdm import tqdm

    bars: list = []
    progress = Progress()

    def on_event(event: ProgressEvent) -> None:
        if not bars:
            bars.append(
                tqdm(
                    total=event.total,
                    desc=desc,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1000,
                    file=sys.stderr,
                    disable=disable,
                    dynamic_ncols=True,
                    leave=True,
                )
            )
        bar = bars[0]
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        delta = event.done - bar.n
        if delta:
            bar.update(delta)
        if event.message:
            bar.set_postfix_str(event.message.split(" · ")[0][-40:], refresh=False)

    def close() -> None:
        for bar in bars:
            bar.close()
        bars.clear()

    progress.subscribe(on_event)
    return progress, close


def _download(args: argparse.Namespace) -> int:
    from ovpaint.models.download import download
    from ovpaint.models.registry import get_spec

    _settings, store, _device = _context(args)
    specs = [get_spec(i) for i in dict.fromkeys(args.ids)]  # unknown id -> exit 2 before work
    cancel = CancelToken()
    for spec in specs:
        progress, close = _bytes_bar(spec.id, disable=args.quiet)
        try:
            result = download(spec, store, progress=progress, cancel=cancel, force=args.force)
        except (KeyboardInterrupt, Cancelled):
            close()
            print(
                f"ovpaint: download of {spec.id} cancelled; the part already fetched is kept "
                f"in {store.folder(spec)}. Run the same command again to resume.",
                file=sys.stderr,
            )
            return 130
        finally:
            close()
        if result.already_installed:
            print(f"{spec.id}: already installed at {result.path}")
        else:
            print(
                f"{spec.id}: installed at {result.path} "
                f"({result.bytes_downloaded / 1e6:.1f} MB downloaded)"
            )
    return 0


def _import(args: argparse.Namespace) -> int:
    from ovpaint.models.download import import_local
    from ovpaint.models.registry import get_spec

    settings, _store, _device = _context(args)
    spec = get_spec(args.id)
    path = import_local(spec, args.path, settings)
    print(f"{spec.id}: using the local copy at {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ovpaint.models.download import verify
    from ovpaint.models.registry import all_models, get_spec

    _settings, store, _device = _context(args)
    if args.ids:
        specs = [get_spec(i) for i in dict.fromkeys(args.ids)]
    else:
        specs = [
            s
            for s in all_models()
            if store.override_path(s) is not None or store.read_manifest(s) is not None
        ]
        if not specs:
            print("No models are installed. See `ovpaint models list`.")
            return 0
    failed = []
    for spec in specs:
        report = verify(spec, store)
        print(f"{spec.id}: {report.state} — {report.message}")
        if not report.ok:
            failed.append(report)
    if failed:
        if len(failed) == 1 and len(specs) == 1:
            raise ModelUnavailable(
                f"{failed[0].model_id} is {failed[0].state}: {failed[0].message}"
            )
        ids = ", ".join(r.model_id for r in failed)
        raise ModelUnavailable(f"{len(failed)} model(s) failed verification: {ids}")
    return 0
