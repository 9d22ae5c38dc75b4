"""What the machine's matrix units can give: one ViT-B/16 MLP product (6 windows of 197 tokens,
768 → 3072) in fp32, in the half precision the pipelines use, and in int8.

A mode that does the same arithmetic as a baseline cannot beat it by more than its matrix
unit's speed-up, so these ratios bound the speed-ups of the dense pass and of mask scoring
(both are ViT-B/16 forwards, mostly such products) in the same run.

The last stage is a fresh precision calibration (``ovpaint models calibrate``): it stores the
choices the later stages' "product default" rows then use, and its note gives each workload's
choice and measured ratios.
"""

from __future__ import annotations

from ovpaint.perf import PerfContext, Stage

ROWS, IN, OUT = 6 * 197, 768, 3072


def stages(ctx: PerfContext) -> list[Stage]:
    data: dict = {}

    def operands():
        if not data:
            import torch

            gen = torch.Generator().manual_seed(0)
            a = torch.randn(ROWS, IN, generator=gen).to(ctx.device)
            w = torch.randn(OUT, IN, generator=gen).to(ctx.device)
            data.update(a=a, w=w, half=half_dtype())
            data.update(a16=a.to(data["half"]), w16=w.to(data["half"]))
            data.update(
                a8=torch.randint(-128, 127, (ROWS, IN), dtype=torch.int8, generator=gen).to(
                    ctx.device
                ),
                w8=torch.randint(-128, 127, (IN, OUT), dtype=torch.int8, generator=gen).to(
                    ctx.device
                ),
            )
        return data

    def half_dtype():
        import torch

        return torch.bfloat16 if ctx.device.type == "cpu" else torch.float16

    def product(kind: str):
        def run():
            import torch
            import torch.nn.functional as F

            d = operands()
            if kind == "fp32":
                out = F.linear(d["a"], d["w"])
            elif kind == "half":
                out = F.linear(d["a16"], d["w16"])
            else:
                out = torch._int_mm(d["a8"], d["w8"])
            if ctx.device.type == "cuda":
                torch.cuda.synchronize()
            return out

        return run

    calibration = Stage(
        "machine",
        "precision calibration (fresh)",
        lambda: None,
        repeats=1,
        warmup=0,
    )

    def calibrate() -> None:
        result = ctx.product_calibrator().calibrate(ctx.device, force=True)
        calibration.note = "; ".join(
            [f"measured in {result.seconds:.2f} s after {result.load_seconds:.2f} s of imports"]
            + [f"{name}: {result.results[name].describe()}" for name in sorted(result.results)]
        )

    calibration.run = calibrate
    name = f"matrix product {ROWS}×{IN}×{OUT}"
    base = f"{name} fp32"
    reps = ctx.repeats(10)
    return [
        Stage("machine", base, product("fp32"), repeats=reps, setup=operands),
        Stage(
            "machine",
            f"{name} bf16 (CPU) / fp16 (GPU)",
            product("half"),
            repeats=reps,
            baseline=base,
            setup=operands,
            paired=True,
            note="ceiling of any same-arithmetic speed-up in that precision",
        ),
        Stage(
            "machine",
            f"{name} int8",
            product("int8"),
            repeats=reps,
            baseline=base,
            setup=operands,
            paired=True,
            note="raw int8 units; no quantisation cost included",
        ),
        calibration,
    ]
