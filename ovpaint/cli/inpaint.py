"""`ovpaint inpaint IMAGE --mask MASK.png --prompt "..." --mode remove|replace|restyle`.

The mask may be any grayscale or palette PNG: non-zero is masked, or ``--class N`` picks one
label of a palette mask (for instance one class of ``ovpaint segment``'s output). The input is
never modified; the output is written atomically and keeps the input's transparency.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ovpaint.cli.common import cancel_on_interrupt, new_cancel, print_json, tqdm_progress
from ovpaint.core.errors import BadInput
from ovpaint.core.limits import (
    MAX_DILATE_PX,
    MAX_STEPS,
    MAX_VARIANTS,
    SEED_MAX,
    arg_float,
    arg_int,
)


def engine_help() -> str:
    """The engines as one help text, from the registry."""
    from ovpaint.pipelines.inpainting.engines import ENGINES

    names = "; ".join(f"{e.name} = {e.title} ({'/'.join(e.modes)})" for e in ENGINES.values())
    return (
        "auto (default) = LaMa for remove when installed, else Stable Diffusion, else OpenCV "
        f"(the message says which ran); {names}"
    )


def engine_choices() -> list[str]:
    from ovpaint.pipelines.inpainting.engines import engine_names
    from ovpaint.pipelines.inpainting.settings import AUTO_ENGINE

    return [AUTO_ENGINE, *engine_names()]


def register(sub) -> argparse.ArgumentParser:
    from ovpaint.pipelines.inpainting import settings as defaults
    from ovpaint.pipelines.inpainting.settings import MODES, SCHEDULERS

    p = sub.add_parser(
        "inpaint", help="remove, replace or restyle a masked region", description=__doc__
    )
    p.add_argument("image", help="input image (never modified)")
    p.add_argument("--mask", required=True, help="mask PNG: non-zero = inpaint")
    p.add_argument(
        "--class",
        dest="class_index",
        type=arg_int(0, 255),
        default=None,
        help="use only this label of a palette/label mask",
    )
    p.add_argument("--out", required=True, help="output image (.png, .jpg, .webp)")
    p.add_argument("--mode", choices=MODES, default="remove")
    p.add_argument("--prompt", default="", help="what to paint (replace/restyle)")
    p.add_argument(
        "--negative",
        default=None,
        help="negative prompt; when given, --prompt is used verbatim (no expansion)",
    )
    p.add_argument(
        "--removed-class",
        default=None,
        help="name of what is removed (goes into the negative prompt)",
    )
    p.add_argument(
        "--steps",
        type=arg_int(1, MAX_STEPS),
        default=None,
        help=f"denoising steps (default: {defaults.CPU_STEPS} on a CPU, "
        f"{defaults.GPU_STEPS} on a GPU)",
    )
    p.add_argument("--guidance", type=arg_float(0.0, 50.0), default=7.5)
    p.add_argument(
        "--strength",
        type=arg_float(0.0, 1.0),
        default=None,
        help="default 1.0 for remove/replace, 0.7 for restyle",
    )
    p.add_argument(
        "--seed", type=arg_int(0, SEED_MAX), default=None, help="random when not given; printed"
    )
    p.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="auto",
        help="auto = DPM-Solver++ on a CPU, the model's own (default) on a GPU",
    )
    p.add_argument(
        "--variants",
        type=arg_int(1, MAX_VARIANTS),
        default=1,
        help="write this many results (OUT, OUT-2, ...) with consecutive seeds",
    )
    p.add_argument(
        "--grow",
        type=arg_int(0, MAX_DILATE_PX),
        default=None,
        help="grow the mask first by this many pixels (default: "
        f"{defaults.REMOVE_GROW_PX} for remove, else 0)",
    )
    p.add_argument(
        "--dilate",
        type=arg_int(0, MAX_DILATE_PX),
        default=8,
        help="soft paste band around the mask, px",
    )
    p.add_argument("--engine", choices=engine_choices(), default="auto", help=engine_help())
    p.add_argument(
        "--refine",
        type=arg_float(0.0, 1.0),
        default=0.0,
        metavar="STRENGTH",
        help="remove with LaMa, then refine with Stable Diffusion at this strength (e.g. 0.3)",
    )
    p.add_argument(
        "--lama-max-side",
        type=arg_int(64, 8192),
        default=None,
        help="LaMa works at the crop's own size up to this long side (default: "
        f"{defaults.CPU_LAMA_MAX_SIDE} on a CPU, {defaults.GPU_LAMA_MAX_SIDE} on a GPU)",
    )
    p.add_argument("--no-color-match", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    return p


def _variant_path(out: Path, index: int) -> Path:
    return out if index == 0 else out.with_name(f"{out.stem}-{index + 1}{out.suffix}")


def run(args: argparse.Namespace) -> int:
    from ovpaint.cli.common import manager_for
    from ovpaint.core.fileio import check_output_file
    from ovpaint.core.image_io import EXPORT_FORMATS, load_image, save_image
    from ovpaint.core.masks import load_mask
    from ovpaint.pipelines.inpainting.engines import ENGINES
    from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, inpaint

    image_path, out = Path(args.image), Path(args.out)
    if out.suffix.lower() not in EXPORT_FORMATS:
        raise BadInput(f"--out must end in one of {', '.join(sorted(EXPORT_FORMATS))}.")
    outputs = [_variant_path(out, i) for i in range(max(1, args.variants))]
    for path in outputs:  # before anything loads: none is an input, each can be written
        check_output_file(
            path,
            what="--out",
            overwrite=args.overwrite,
            inputs=[image_path, Path(args.mask)],
            exists_hint="pass --overwrite to replace it",
        )
    settings = InpaintSettings(
        mode=args.mode,
        prompt=args.prompt,
        negative_prompt=args.negative,
        removed_class=args.removed_class,
        steps=args.steps,
        guidance=args.guidance,
        strength=args.strength,
        seed=args.seed,
        scheduler=args.scheduler,
        variants=args.variants,
        grow_px=args.grow,
        dilate_px=args.dilate,
        color_match=not args.no_color_match,
        engine=args.engine,
        refine_strength=args.refine,
        lama_max_side=args.lama_max_side,
    ).validated()  # bad settings fail before anything loads
    image = load_image(image_path)
    # a mask of another size is refused from its header, before it is decoded
    mask = load_mask(
        args.mask, args.class_index, size=(image.width, image.height), what="The image"
    )
    engine = ENGINES.get(settings.engine)  # None for auto
    manager = None if engine is not None and engine.model_role is None else manager_for(args)
    progress, close = tqdm_progress("inpaint", disable=True if args.quiet else None)
    try:
        with cancel_on_interrupt(new_cancel(), "the inpainting") as cancel:
            result = inpaint(
                image.rgb, mask, settings, manager=manager, progress=progress, cancel=cancel
            )
    finally:
        close()
    for path, rgb in zip(outputs, result.images, strict=False):
        check_output_file(path, inputs=[image_path, Path(args.mask)])  # changed meanwhile?
        save_image(path, rgb, image.alpha)
    summary = {
        "outputs": [str(p) for p in outputs[: len(result.images)]],
        "seeds": result.seeds,
        "engine": result.engine,
        "edited_boxes": [
            [[p.box.x0, p.box.y0, p.box.x1, p.box.y1] for p in patches]
            for patches in result.variants
        ],
        "prompt": result.prompt,
        "negative_prompt": result.negative_prompt,
        "messages": result.messages,
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
    }
    if args.json:
        print_json(summary)
    else:
        for path, seed in zip(summary["outputs"], result.seeds, strict=False):
            print(f"{path}  (seed {seed})")
    for message in result.messages:
        print(f"ovpaint: {message}", file=sys.stderr)
    return 0
