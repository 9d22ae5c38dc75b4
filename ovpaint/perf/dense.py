"""Dense path stages: text encoding, SCLIP sliding-window pass, cached re-query, SAM2 embedding
and prompted refinement, each beside the plain baseline it improves on; NACLIP's pass beside
SCLIP's, its PAMR beside the pass, and its re-queries.

Full-size architectures with random weights (ViT-B/16 quickgelu, SAM2.1 hiera-tiny at 1024 px);
``--models tiny`` uses the tiny models, ``quick`` smaller inputs.
"""

from __future__ import annotations

import itertools
from functools import cached_property

import numpy as np

from ovpaint.perf import INT8_NOTE, FixedModels, PerfContext, Stage, precision_modes
from ovpaint.perf.bundles import clip_bundle, sam2_bundle, scene


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


class DenseBench:
    """The inputs the dense-path stages share, each built on first use (not when the stage
    list is collected, so ``--list`` builds nothing)."""

    def __init__(self, ctx: PerfContext) -> None:
        self.ctx = ctx
        self.h, self.w = (188, 250) if ctx.quick or ctx.tiny else (375, 500)
        self.models = FixedModels(ctx, clip=self.clip, sam2=self.sam)
        self.names = itertools.count()  # a new name per call: never a cached text
        self.unseen = itertools.count()
        self._kept: dict = {}

    def clip(self):
        return clip_bundle(self.ctx)

    def sam(self):
        return sam2_bundle(self.ctx)

    @cached_property
    def image(self) -> np.ndarray:
        return scene(self.h, self.w)

    @cached_property
    def encoder(self):
        from ovpaint.pipelines.text import TextEncoder

        return TextEncoder(self.clip(), "openai80", cache_dir=self.ctx.temp_dir("text-cache"))

    @cached_property
    def text(self):
        return self.encoder.encode(["dog", "sky", "grass", "person", "car"])

    @cached_property
    def net_input(self):
        from ovpaint.pipelines.segmentation.dense import preprocess

        clip = self.clip()
        return preprocess(self.image, 336, 2048, clip.mean, clip.std).to(clip.device)

    @cached_property
    def session(self):
        from ovpaint.pipelines.session import ImageSession

        return ImageSession(self.image)

    @cached_property
    def predictor(self):
        return self.new_predictor()

    def new_predictor(self):
        import torch

        from ovpaint.pipelines.sam2_adapter import new_predictor

        pred = new_predictor(self.sam())
        with torch.inference_mode():
            pred.set_image(self.image)
        return pred

    def points(self) -> np.ndarray:
        rng = np.random.default_rng(0)
        xs, ys = rng.uniform(0, self.w - 1, 60), rng.uniform(0, self.h - 1, 60)
        return np.stack([xs, ys], 1).astype(np.float32)

    def dense_labels(self) -> np.ndarray:
        labels = np.zeros((self.h, self.w), np.int32)
        labels[:, self.w // 2 :] = 1
        return labels

    # ------------------------------------------------------------------ what the stages run
    def new_name_naive(self):
        return self.encoder.encode_naive([f"thing {next(self.names)}"])

    def new_name(self):
        return self.encoder.encode([f"thing {next(self.names)}"])

    def dense_pass(self, dtype: str, method: str = "dense"):
        from ovpaint.pipelines.segmentation.dense import slide_logits, window_features
        from ovpaint.pipelines.segmentation.settings import DenseSettings, NaclipSettings

        settings = (NaclipSettings if method == "naclip" else DenseSettings)(compute_dtype=dtype)
        feats = window_features(self.clip(), self.net_input, settings)
        return slide_logits(feats, self.text)

    def pamr_inputs(self, n_names: int):
        """(logits at the image size for the first ``n_names`` names of a one-word query with
        the implicit background, the guide), as the pipeline has them."""
        key = ("pamr", n_names)
        if key not in self._kept:
            import torch

            from ovpaint.core.prompt import parse_prompt
            from ovpaint.pipelines.segmentation import dense as D
            from ovpaint.pipelines.segmentation.settings import NaclipSettings

            names = D.class_names(parse_prompt("dog, sky"))[0][:n_names]
            settings = NaclipSettings(compute_dtype="bf16")
            feats = D.window_features(self.clip(), self.net_input, settings)
            logits = D.fast_final_logits(feats, self.encoder.encode(names) * 40.0, (self.h, self.w))
            guide = torch.nn.functional.interpolate(
                self.net_input.float().cpu(),
                size=(self.h, self.w),
                mode="bilinear",
                align_corners=False,
            )[0]
            self._kept[key] = (logits, guide)
        return self._kept[key]

    def pamr(self, n_names: int):
        from ovpaint.pipelines.segmentation.pamr import pamr

        return pamr(*self.pamr_inputs(n_names))

    def naclip_requery(self, words: str):
        from ovpaint.core.prompt import parse_prompt
        from ovpaint.pipelines.segmentation.dense import dense_probabilities
        from ovpaint.pipelines.segmentation.settings import NaclipSettings

        settings = NaclipSettings(compute_dtype="bf16")
        return dense_probabilities(self.session, parse_prompt(words), self.models, settings)

    #: Names the "name PAMR has not seen" stage may use: its warm-up and repeats, with room.
    UNSEEN_NAMES = 16

    def naclip_requery_new_name(self):
        """A cached image and text, and a name PAMR has not refined yet."""
        return self.naclip_requery(f"dog, unseen {next(self.unseen)}")

    def naclip_requery_setup(self):
        """The image's features and PAMR for "dog, sky" cached, and the text of every name
        the unseen-name stage will ask for (so it times PAMR, not the text encoder)."""
        from ovpaint.pipelines.segmentation.settings import NaclipSettings
        from ovpaint.pipelines.text import text_encoder_for

        encoder = text_encoder_for(self.models, NaclipSettings().templates)  # the pipeline's
        encoder.encode([f"unseen {i}" for i in range(self.UNSEEN_NAMES)])
        self.unseen = itertools.count()
        self.naclip_requery("dog, sky")

    def requery(self):
        from ovpaint.core.prompt import parse_prompt
        from ovpaint.pipelines.segmentation.dense import DenseSettings, dense_probabilities

        settings = DenseSettings()
        return dense_probabilities(self.session, parse_prompt("dog, sky"), self.models, settings)

    def refine_separate(self) -> None:
        for p in self.points():
            self.predictor.predict(
                point_coords=p[None], point_labels=np.array([1]), multimask_output=True
            )

    def refine_batched(self, precision: str) -> None:
        from ovpaint.pipelines.segmentation import refine as R

        pts, labels = self.points(), self.dense_labels()
        dtype = R.decoder_dtype(precision, self.sam())
        low, _ = R.decode_points(self.predictor, pts, dtype=dtype)
        prompts = [
            R.PromptPoint(float(x), float(y), int(labels[int(y), int(x)]), 0) for x, y in pts
        ]
        R.vote(low, prompts, labels, 2, R.RefineSettings())


def text_stages(b: DenseBench) -> list[Stage]:
    rep = b.ctx.repeats
    name = "text: new name, 80 templates"
    naive = f"{name}, padded 77 tokens (naive)"
    return [
        Stage("dense", naive, b.new_name_naive, repeats=rep(3), setup=lambda: b.encoder),
        Stage(
            "dense",
            name,
            b.new_name,
            repeats=rep(3),
            paired=True,
            baseline=naive,
            note="causal truncation + batched templates",
        ),
        Stage(
            "dense",
            "text: cached name lookup",
            lambda: b.encoder.encode(["dog"]),
            repeats=rep(20),
            setup=lambda: b.text,
            note="target < 1 ms",
        ),
    ]


def dense_pass_stages(b: DenseBench) -> list[Stage]:
    rep = b.ctx.repeats
    size = f"{b.w}×{b.h}"
    reference = f"dense {size}: reference loop (1 window at a time, fp32)"
    return [
        Stage(
            "dense",
            reference,
            lambda: reference_loop(b.clip(), b.net_input, b.text),
            repeats=rep(3),
            setup=lambda: (b.net_input, b.text),
        ),
        *precision_modes(
            b.ctx,
            "dense",
            "dense",
            b.dense_pass,
            {"fp32": "", "bf16": "", "int8": INT8_NOTE},
            lambda mode: (
                f"dense {size}: " + (mode if "default" in mode else f"batched windows {mode}")
            ),
            repeats=rep(3),
            baseline=reference,
            paired=True,
        ),
        Stage(
            "dense",
            f"dense {size}: re-query of a cached image",
            b.requery,
            repeats=rep(10),
            setup=b.requery,
            note="target < 50 ms",
        ),
    ]


def naclip_stages(b: DenseBench) -> list[Stage]:
    rep = b.ctx.repeats
    size = f"{b.w}×{b.h}"
    naclip_bf16 = f"dense {size}: NACLIP windows bf16"
    stages = [
        Stage(
            "dense",
            f"dense {size}: NACLIP windows {dtype}",
            lambda dtype=dtype: b.dense_pass(dtype, "naclip"),
            repeats=rep(3),
            baseline=baseline,
            paired=True,
            note="target ≥ 0.91× (NACLIP within 1.1× of SCLIP)",
        )
        for dtype, baseline in (
            ("fp32", f"dense {size}: batched windows fp32"),
            ("bf16", f"dense {size}: batched windows bf16"),
        )
    ]
    stages += [
        Stage(
            "dense",
            f"PAMR {size}, {n} names (10 steps, dilations 8, 16)",
            lambda n=n: b.pamr(n),
            repeats=rep(3),
            baseline=naclip_bf16,
            paired=True,
            setup=lambda n=n: b.pamr_inputs(n),
            note="target ≥ 4× (PAMR ≤ 25 % of the dense pass)",
        )
        for n in (5, 27)
    ]
    return stages + [
        Stage(
            "dense",
            f"NACLIP {size}: re-query of a cached image (27 names, PAMR on)",
            lambda: b.naclip_requery("dog, sky"),
            repeats=rep(10),
            setup=b.naclip_requery_setup,
            note="target < 50 ms",
        ),
        Stage(
            "dense",
            f"NACLIP {size}: re-query with one name PAMR has not seen",
            b.naclip_requery_new_name,
            repeats=min(rep(10), DenseBench.UNSEEN_NAMES - 2),
            setup=b.naclip_requery_setup,
            note="the other 26 names' refined maps are kept",
        ),
    ]


def refine_stages(b: DenseBench) -> list[Stage]:
    rep = b.ctx.repeats
    separate = "refine: 60 separate predict calls"

    def predictor():
        return b.predictor

    return [
        Stage("dense", f"SAM2 embedding {b.w}×{b.h} (set_image)", b.new_predictor, repeats=rep(3)),
        Stage("dense", separate, b.refine_separate, repeats=rep(3), setup=predictor),
        *precision_modes(
            b.ctx,
            "dense",
            "decoder",
            b.refine_batched,
            {"fp32": "", "bf16": ""},
            lambda mode: (
                "refine: 60 points, "
                + (mode if "default" in mode else f"batched decoder {mode}")
                + (" (exact)" if mode == "fp32" else "")
                + " + vote"
            ),
            repeats=rep(3),
            paired=True,
            baseline=separate,
            setup=predictor,
        ),
    ]


def stages(ctx: PerfContext) -> list[Stage]:
    bench = DenseBench(ctx)
    return (
        text_stages(bench) + dense_pass_stages(bench) + naclip_stages(bench) + refine_stages(bench)
    )
