"""Dense path stages: text encoding, SCLIP sliding-window pass, cached re-query, SAM2 embedding
and prompted refinement, each beside the plain baseline it improves on; NACLIP's pass beside
SCLIP's, its PAMR beside the pass, and its re-queries.

Full-size architectures with random weights (ViT-B/16 quickgelu, SAM2.1 hiera-tiny at 1024 px);
``--models tiny`` uses the tiny models, ``quick`` smaller inputs.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np

from ovpaint.perf import FixedModels, PerfContext, Stage
from ovpaint.perf.proposals import _clip_bundle, _sam_bundle, _scene


def reference_loop(clip, x, text):
    """The reference-style dense pass: one window at a time, fp32, logits per window."""
    import torch
    import torch.nn.functional as F

    from ovpaint.pipelines.segmentation import dense as D

    h, w = x.shape[-2:]
    total = torch.zeros((text.shape[0], h, w))
    count = torch.zeros((1, h, w))
    with torch.no_grad():
        for y1, y2, x1, x2 in D.window_boxes(h, w):
            tokens, gh, gw = D.dense_embeddings(clip.model.visual, x[:, :, y1:y2, x1:x2])
            feat = F.normalize(tokens[0, 1:], dim=-1) @ text.T
            logits = feat.T.reshape(1, -1, gh, gw)
            logits = F.interpolate(
                logits, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False
            )
            total[:, y1:y2, x1:x2] += logits[0]
            count[:, y1:y2, x1:x2] += 1
    return total / count


def stages(ctx: PerfContext) -> list[Stage]:
    small = ctx.quick or ctx.tiny
    h, w = (188, 250) if small else (375, 500)
    cache: dict = {}
    models = FixedModels(clip=lambda: _clip_bundle(ctx), sam2=lambda: _sam_bundle(ctx))
    counter = itertools.count()

    def image():
        if "image" not in cache:
            cache["image"] = _scene(h, w)
        return cache["image"]

    def encoder():
        if "encoder" not in cache:
            from ovpaint.pipelines.text import TextEncoder

            tmp = Path(tempfile.mkdtemp(prefix="ovpaint-perf-text-"))
            cache["encoder"] = TextEncoder(_clip_bundle(ctx), "openai80", cache_dir=tmp)
        return cache["encoder"]

    def text():
        if "text" not in cache:
            cache["text"] = encoder().encode(["dog", "sky", "grass", "person", "car"])
        return cache["text"]

    def net_input():
        if "x" not in cache:
            from ovpaint.pipelines.segmentation.dense import preprocess

            clip = _clip_bundle(ctx)
            cache["x"] = preprocess(image(), 336, 2048, clip.mean, clip.std).to(clip.device)
        return cache["x"]

    def dense_pass(dtype: str, method: str = "sclip"):
        from ovpaint.pipelines.segmentation import dense as D

        settings = (D.NaclipSettings if method == "naclip" else D.DenseSettings)(
            compute_dtype=dtype
        )

        def run():
            return D.slide_logits(
                D.window_features(_clip_bundle(ctx), net_input(), settings), text()
            )

        return run

    def pamr_inputs(n_names: int):
        """(logits at the image size for ``n_names`` names, the guide), as the pipeline has
        them: the text of the first names of the implicit-background query."""
        key = ("pamr", n_names)
        if key not in cache:
            import torch

            from ovpaint.core.prompt import parse_prompt
            from ovpaint.pipelines.segmentation import dense as D

            names = D.class_names(parse_prompt("dog, sky"))[0][:n_names]
            feats = D.window_features(
                _clip_bundle(ctx), net_input(), D.NaclipSettings(compute_dtype="bf16")
            )
            logits = D.fast_final_logits(feats, encoder().encode(names) * 40.0, (h, w))
            guide = torch.nn.functional.interpolate(
                net_input().float().cpu(), size=(h, w), mode="bilinear", align_corners=False
            )[0]
            cache[key] = (logits, guide)
        return cache[key]

    def pamr_run(n_names: int):
        from ovpaint.pipelines.segmentation.pamr import pamr

        return lambda: pamr(*pamr_inputs(n_names))

    def naclip_requery(new_name: bool):
        from ovpaint.core.prompt import parse_prompt
        from ovpaint.pipelines.segmentation.dense import NaclipSettings, dense_probabilities

        fresh = itertools.count()

        def run():
            words = f"dog, thing {next(fresh)}" if new_name else "dog, sky"
            return dense_probabilities(
                session(), parse_prompt(words), models, NaclipSettings(compute_dtype="bf16")
            )

        def setup():
            encoder().encode([f"thing {i}" for i in range(64)])  # text cached, PAMR not
            run()

        return run, setup

    def session():
        if "session" not in cache:
            from ovpaint.pipelines.session import ImageSession

            cache["session"] = ImageSession(image())
        return cache["session"]

    def requery():
        from ovpaint.core.prompt import parse_prompt
        from ovpaint.pipelines.segmentation.dense import DenseSettings, dense_probabilities

        return dense_probabilities(
            session(), parse_prompt("dog, sky"), models, DenseSettings(compute_dtype="bf16")
        )

    def predictor():
        if "pred" not in cache:
            import torch

            pred = _sam_bundle(ctx).predictor()
            with torch.inference_mode():
                pred.set_image(image())
            cache["pred"] = pred
        return cache["pred"]

    def sam_embedding():
        import torch

        pred = _sam_bundle(ctx).predictor()
        with torch.inference_mode():
            pred.set_image(image())

    def points():
        rng = np.random.default_rng(0)
        return np.stack([rng.uniform(0, w - 1, 60), rng.uniform(0, h - 1, 60)], 1).astype(
            np.float32
        )

    def dense_labels():
        labels = np.zeros((h, w), np.int32)
        labels[:, w // 2 :] = 1
        return labels

    def refine_batched(precision: str):
        from ovpaint.pipelines.segmentation import refine as R

        def run():
            pts = points()
            labels = dense_labels()
            dtype = R.decoder_dtype(precision, _sam_bundle(ctx))
            low, _ = R.decode_points(predictor(), pts, dtype=dtype)
            prompts = [
                R.PromptPoint(float(x), float(y), int(labels[int(y), int(x)]), 0) for x, y in pts
            ]
            R.vote(low, prompts, labels, 2, R.RefineSettings())

        return run

    def product_precision() -> str:  # without building the model (``--list``)
        import torch

        from ovpaint.pipelines.segmentation.dense import compute_dtype

        return str(compute_dtype("auto", ctx.device, torch.float32)).replace("torch.", "")

    def refine_separate():
        pred = predictor()
        for p in points():
            pred.predict(point_coords=p[None], point_labels=np.array([1]), multimask_output=True)

    rep = ctx.repeats
    name_text = "text: new name, 80 templates"
    name_ref = f"dense {w}×{h}: reference loop (1 window at a time, fp32)"
    name_sep = "refine: 60 separate predict calls"
    name_naclip_fp32 = f"dense {w}×{h}: NACLIP windows fp32"
    name_naclip_bf16 = f"dense {w}×{h}: NACLIP windows bf16"
    requery_same, requery_new = naclip_requery(False), naclip_requery(True)
    return [
        Stage(
            "dense",
            f"{name_text}, padded 77 tokens (naive)",
            lambda: encoder().encode_naive([f"thing {next(counter)}"]),
            repeats=rep(3),
            setup=encoder,
        ),
        Stage(
            "dense",
            name_text,
            lambda: encoder().encode([f"thing {next(counter)}"]),
            repeats=rep(3),
            paired=True,
            baseline=f"{name_text}, padded 77 tokens (naive)",
            note="causal truncation + batched templates",
        ),
        Stage(
            "dense",
            "text: cached name lookup",
            lambda: encoder().encode(["dog"]),
            repeats=rep(20),
            setup=text,
            note="target < 1 ms",
        ),
        Stage(
            "dense",
            name_ref,
            lambda: reference_loop(_clip_bundle(ctx), net_input(), text()),
            repeats=rep(3),
            setup=lambda: (net_input(), text()),
        ),
        Stage(
            "dense",
            f"dense {w}×{h}: batched windows fp32",
            dense_pass("fp32"),
            repeats=rep(3),
            baseline=name_ref,
            paired=True,
        ),
        Stage(
            "dense",
            f"dense {w}×{h}: batched windows bf16 (fastest)",
            dense_pass("bf16"),
            repeats=rep(3),
            baseline=name_ref,
            paired=True,
        ),
        Stage(
            "dense",
            f"dense {w}×{h}: re-query of a cached image",
            requery,
            repeats=rep(10),
            setup=requery,
            note="target < 50 ms",
        ),
        *[
            Stage(
                "dense",
                name,
                dense_pass(dtype, "naclip"),
                repeats=rep(3),
                baseline=baseline,
                paired=True,
                note="target ≥ 0.91× (NACLIP within 1.1× of SCLIP)",
            )
            for name, dtype, baseline in (
                (name_naclip_fp32, "fp32", f"dense {w}×{h}: batched windows fp32"),
                (name_naclip_bf16, "bf16", f"dense {w}×{h}: batched windows bf16 (fastest)"),
            )
        ],
        *[
            Stage(
                "dense",
                f"PAMR {w}×{h}, {n} names (10 steps, dilations 8, 16)",
                pamr_run(n),
                repeats=rep(3),
                baseline=name_naclip_bf16,
                paired=True,
                setup=lambda n=n: pamr_inputs(n),
                note="target ≥ 4× (PAMR ≤ 25 % of the dense pass)",
            )
            for n in (5, 27)
        ],
        Stage(
            "dense",
            f"NACLIP {w}×{h}: re-query of a cached image (27 names, PAMR on)",
            requery_same[0],
            repeats=rep(10),
            setup=requery_same[1],
            note="target < 50 ms",
        ),
        Stage(
            "dense",
            f"NACLIP {w}×{h}: re-query with one name PAMR has not seen",
            requery_new[0],
            repeats=rep(10),
            setup=requery_new[1],
            note="the other 26 names' refined maps are kept",
        ),
        Stage("dense", f"SAM2 embedding {w}×{h} (set_image)", sam_embedding, repeats=rep(3)),
        Stage("dense", name_sep, refine_separate, repeats=rep(3), setup=predictor),
        Stage(
            "dense",
            "refine: 60 points, batched decoder fp32 (exact) + vote",
            refine_batched("fp32"),
            repeats=rep(3),
            paired=True,
            baseline=name_sep,
            setup=predictor,
        ),
        Stage(
            "dense",
            "refine: 60 points, batched decoder, product precision + vote",
            refine_batched("auto"),
            repeats=rep(3),
            paired=True,
            baseline=name_sep,
            setup=predictor,
            note=f"decoder in {product_precision()}",
        ),
    ]
