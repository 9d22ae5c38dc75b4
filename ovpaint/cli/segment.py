"""`ovpaint segment IMAGE --prompt "sky, dog"`: text-prompted segmentation of one image.

Writes a palette label PNG (index i = class i of the summary, 0 = background) and optionally
one black/white PNG per class; prints a summary (or JSON with --json).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ovpaint.cli.common import cancel_on_interrupt, new_cancel, print_json, tqdm_progress
from ovpaint.core.errors import BadInput


def _methods() -> list[str]:
    from ovpaint.pipelines.segment import METHODS

    return list(METHODS)


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("segment", help="segment one image by text", description=__doc__)
    p.add_argument("image", help="input image (never modified)")
    p.add_argument("--prompt", required=True,
                   help="classes to find, e.g. 'sky, dog' (',' separates classes, "
                        "'|' synonyms of one class)")
    methods = _methods()
    p.add_argument("--method", choices=methods, default="refined" if "refined" in methods
                   else methods[0], help="segmentation method (default: refined)")
    p.add_argument("--out", required=True, help="label map PNG to write")
    p.add_argument("--masks-dir", default=None, help="also write one mask PNG per class here")
    p.add_argument("--preset", choices=("default", "voc"), default=None,
                   help="dense post-processing preset (voc: scale 65, prob/area thresholds)")
    p.add_argument("--short-side", type=int, default=None, help="dense input short side (336)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # Interactive prompts (--points / --box) attach here: add the options above this line
    # and pass them through ``_settings`` / the result correction in ``run``.
    return p


def _settings(args: argparse.Namespace) -> dict:
    settings: dict = {}
    if args.preset:
        settings["preset"] = args.preset
    if args.short_side is not None:
        settings["short_side"] = args.short_side
    return settings


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^\w\-]+", "_", name, flags=re.UNICODE).strip("_")
    return cleaned[:60] or "class"


def write_outputs(result, out: Path, masks_dir: Path | None) -> list[Path]:
    from ovpaint.core.masks import save_label_png, save_mask_png

    written = [save_label_png(out, result.labels)]
    if masks_dir is not None:
        masks_dir.mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(result.classes):
            if i == 0:
                continue
            path = masks_dir / f"{i:02d}_{_safe(name)}.png"
            written.append(save_mask_png(path, result.labels == i))
    return written


def run(args: argparse.Namespace) -> int:
    from ovpaint.cli.common import manager_for
    from ovpaint.core.image_io import load_image
    from ovpaint.core.prompt import parse_prompt
    from ovpaint.pipelines.segment import segment

    image_path, out = Path(args.image), Path(args.out)
    if out.suffix.lower() != ".png":
        raise BadInput(f"--out must be a .png file, got {out}.")
    if out.exists() and image_path.exists() and out.resolve() == image_path.resolve():
        raise BadInput("--out is the input image; choose another file (originals are never "
                       "overwritten).")
    queries = parse_prompt(args.prompt)  # bad prompts fail before any model loads
    image = load_image(image_path)
    manager = manager_for(args)
    progress, close = tqdm_progress("segment", disable=True if args.quiet else None)
    try:
        with cancel_on_interrupt(new_cancel(), "the segmentation") as cancel:
            result = segment(image.rgb, queries, method=args.method, manager=manager,
                             settings=_settings(args), progress=progress, cancel=cancel)
    finally:
        close()
    written = write_outputs(result, out, Path(args.masks_dir) if args.masks_dir else None)
    summary = result.summary()
    summary["outputs"] = [str(p) for p in written]
    if args.json:
        print_json(summary)
    else:
        for c in summary["classes"]:
            print(f"{c['index']:3d}  {c['name']:<30} {c['pixels']:>10d} px  "
                  f"{100 * c['fraction']:6.2f} %")
        print(f"method {result.method}, {summary['timings'].get('total', 0.0):.2f} s; "
              f"labels in {out}")
    for message in result.messages:
        print(f"ovpaint: {message}", file=sys.stderr)
    return 0
