"""`ovpaint segment IMAGE --prompt "sky, dog"`: text-prompted segmentation of one image.

Writes a palette label PNG (index i = class i of the summary, 0 = background) with its class
file beside it (``labels.png`` → ``labels.classes.txt``) and optionally one black/white PNG per
class, in the layout batch and the app also write; prints a summary (or JSON with --json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ovpaint.cli.common import (
    add_method_option,
    add_settings_option,
    cancel_on_interrupt,
    new_cancel,
    print_json,
    settings_from_args,
    tqdm_progress,
)
from ovpaint.core.errors import BadInput
from ovpaint.core.limits import MAX_SHORT_SIDE, arg_int


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("segment", help="segment one image by text", description=__doc__)
    p.add_argument("image", help="input image (never modified)")
    p.add_argument(
        "--prompt",
        default=None,
        help="classes to find, e.g. 'sky, dog' (',' separates classes, "
        "'|' synonyms of one class); optional with --points/--box",
    )
    add_method_option(p)
    p.add_argument(
        "--out",
        required=True,
        help="label map PNG to write (its class file goes beside it: X.png -> X.classes.txt)",
    )
    p.add_argument(
        "--masks-dir",
        default=None,
        help="also write one mask PNG per class here (X.mask-NN-<class>.png)",
    )
    p.add_argument(
        "--preset",
        choices=("default", "voc"),
        default=None,
        help="the method's PASCAL VOC preset (dense: scale 65, prob/area thresholds; naclip: "
        "the whole image at once, prob threshold)",
    )
    p.add_argument(
        "--short-side",
        type=arg_int(32, MAX_SHORT_SIDE),
        default=None,
        help="dense input short side (336)",
    )
    add_settings_option(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--points",
        default=None,
        help="clicks 'x,y,+;x,y,-' (image pixels; + keeps, - removes) that correct "
        "the mask of --class (or the prompt's only class), or segment one "
        "object without --prompt; clicks outside the image are refused",
    )
    p.add_argument(
        "--box", default=None, help="box x0,y0,x1,y1 around the object (applied before the points)"
    )
    p.add_argument(
        "--class",
        dest="class_name",
        default=None,
        help="the class --points/--box correct (needed with several classes); "
        "without --prompt, the name of the clicked object (default: object)",
    )
    return p


def _settings(args: argparse.Namespace) -> dict:
    from ovpaint.pipelines.segmentation.settings import VOC_DENSE, VOC_NACLIP

    preset = {"dense": VOC_DENSE, "naclip": VOC_NACLIP} if args.preset == "voc" else None
    short_side = (
        {"dense.short_side": args.short_side, "naclip.short_side": args.short_side}
        if args.short_side is not None
        else None
    )
    return settings_from_args(args, preset, short_side)


def _mask_set(out: Path, masks_dir: Path | None) -> dict:
    """Where the set goes: the label map at ``out``, the class file beside it, the masks in
    ``masks_dir`` (none without it)."""
    from ovpaint.core.mask_export import base_of

    base = base_of(out)
    return {
        "base": base,
        "labels_file": out,
        "masks_base": masks_dir / base.name if masks_dir is not None else None,
    }


def check_outputs(out: Path, masks_dir: Path | None, classes: list[str], image: Path) -> None:
    """Every file this run will write, checked before any model loads: none is the input
    (links and hard links included), none is written twice, each can be written."""
    from ovpaint.core.fileio import check_output_dir
    from ovpaint.core.mask_export import check_mask_set, mask_set_paths

    where = _mask_set(out, masks_dir)
    if masks_dir is not None:
        check_output_dir(masks_dir, what="--masks-dir", inputs=[image])
    paths = mask_set_paths(
        where["base"],
        classes,
        with_masks=masks_dir is not None,
        masks_base=where["masks_base"],
        labels_file=out,
    )
    check_mask_set(paths, inputs=[image], what="--out" if masks_dir is None else "")


def write_outputs(result, out: Path, masks_dir: Path | None, image_path: Path) -> list[Path]:
    from ovpaint.core.mask_export import write_mask_set

    where = _mask_set(out, masks_dir)
    return write_mask_set(
        where["base"],
        result.classes,
        labels=result.labels,
        labels_file=out,
        masks=None if masks_dir is not None else [],
        masks_base=where["masks_base"],
        inputs=(image_path,),
    )


def run(args: argparse.Namespace) -> int:
    from ovpaint.cli.common import manager_for
    from ovpaint.core.image_io import load_image
    from ovpaint.core.prompt import parse_class_name, parse_prompt
    from ovpaint.pipelines.segmentation.interactive import (
        check_prompts,
        parse_box,
        parse_points,
        refine_class_with_clicks,
        segment_from_clicks,
    )
    from ovpaint.pipelines.segmentation.segment import as_rgb, segment
    from ovpaint.pipelines.session import ImageSession

    image_path, out = Path(args.image), Path(args.out)
    masks_dir = Path(args.masks_dir) if args.masks_dir else None
    if out.suffix.lower() != ".png":
        raise BadInput(f"--out must be a .png file, got {out}.")
    settings = _settings(args)
    clicks, box = parse_points(args.points), parse_box(args.box)
    if args.class_name is not None:
        args.class_name = parse_class_name(args.class_name)
    if args.prompt is None and not clicks and box is None:
        raise BadInput("Give --prompt, or --points/--box to segment one object by clicks.")
    # bad prompts, clicks and outputs fail before any model loads
    queries = parse_prompt(args.prompt) if args.prompt is not None else None
    names = [q.name for q in queries] if queries else [args.class_name or "object"]
    check_outputs(out, masks_dir, ["background", *names], image_path)
    image = load_image(image_path)
    rgb = as_rgb(image.rgb)
    check_prompts(rgb.shape[1], rgb.shape[0], clicks, box)
    manager = manager_for(args)
    session = ImageSession(rgb)  # one SAM2 embedding for the method and the clicks
    progress, close = tqdm_progress("segment", disable=True if args.quiet else None)
    try:
        with cancel_on_interrupt(new_cancel(), "the segmentation") as cancel:
            if queries is None:
                result = segment_from_clicks(
                    session, manager, clicks, box, name=args.class_name or "object"
                )
            else:
                result = segment(
                    rgb,
                    queries,
                    method=args.method,
                    manager=manager,
                    session=session,
                    settings=settings,
                    progress=progress,
                    cancel=cancel,
                )
                if clicks or box is not None:
                    cancel.check()
                    result = refine_class_with_clicks(
                        result, session, manager, clicks, box, args.class_name
                    )
    finally:
        close()
    written = write_outputs(result, out, masks_dir, image_path)
    summary = result.summary()
    summary["outputs"] = [str(p) for p in written]
    if args.json:
        print_json(summary)
    else:
        for c in summary["classes"]:
            print(
                f"{c['index']:3d}  {c['name']:<30} {c['pixels']:>10d} px  "
                f"{100 * c['fraction']:6.2f} %"
            )
        print(
            f"method {result.method}, {summary['timings'].get('total', 0.0):.2f} s; labels in {out}"
        )
    for message in result.messages:
        print(f"ovpaint: {message}", file=sys.stderr)
    return 0
