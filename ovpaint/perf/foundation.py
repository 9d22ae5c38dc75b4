"""Foundation stages: building the tiny profile and loading a large image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ovpaint.perf import PerfContext, Stage


def stages(ctx: PerfContext) -> list[Stage]:
    from ovpaint.core.image_io import load_image, save_image
    from ovpaint.models import clip_loader, sam2_loader

    side = (1200, 900) if ctx.quick else (6000, 4000)

    def big() -> Path:
        return ctx.temp_dir("foundation") / "photo.jpg"

    def make_image() -> None:
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (side[1] // 8, side[0] // 8, 3), dtype=np.uint8)
        save_image(big(), np.repeat(np.repeat(img, 8, 0), 8, 1), quality=90)

    return [
        Stage(
            "foundation",
            f"load {side[0]}×{side[1]} JPEG",
            lambda: load_image(big()),
            repeats=ctx.repeats(3),
            setup=make_image,
        ),
        Stage(
            "foundation",
            "build tiny CLIP",
            lambda: clip_loader.build_tiny(0),
            repeats=ctx.repeats(3),
        ),
        Stage(
            "foundation",
            "build tiny SAM2",
            lambda: sam2_loader.build_tiny(0),
            repeats=ctx.repeats(3),
        ),
    ]
