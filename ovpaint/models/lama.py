"""The LaMa inpainting generator (big-lama; Suvorov et al., WACV 2022), written from its
architecture description.

A fully convolutional ResNet whose blocks carry every feature map as a pair (local, global):
the local part goes through ordinary 3×3 convolutions, the global part through a spectral
transform whose Fourier unit mixes channels in the frequency domain, so one layer already sees
the whole image. That receptive field is why LaMa fills large holes with the surrounding
texture instead of inventing objects.

State-dict names and shapes follow the released big-lama generator exactly (``model.<N>....``),
so its converted weights load strictly. Eval semantics only: BatchNorm uses running statistics.

The prediction protocol (:func:`predict`): RGB in [0, 1] and a 0/1 mask (1 = hole) are padded
at the bottom and right to a multiple of 8 with numpy's "symmetric" mode, the generator sees
``image·(1−mask) ‖ mask`` and its sigmoid output is blended back on the mask, then cropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import nn

from ovpaint.core.errors import BadInput

PAD_MODULO = 8


@dataclass(frozen=True)
class LamaConfig:
    """The generator's shape. The defaults are big-lama (50,975,875 parameters)."""

    input_nc: int = 4
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 18
    max_features: int = 1024
    init_ratio_gin: float = 0.0
    init_ratio_gout: float = 0.0
    down_ratio_gin: float = 0.0
    down_ratio_gout: float = 0.0
    resnet_ratio_gin: float = 0.75
    resnet_ratio_gout: float = 0.75

    def __post_init__(self) -> None:
        for name in ("input_nc", "output_nc", "ngf", "n_downsampling", "max_features"):
            if not 1 <= int(getattr(self, name)) <= 4096:
                raise BadInput(f"LaMa setting {name} must be between 1 and 4096.")
        if not 0 <= self.n_blocks <= 64:
            raise BadInput("LaMa setting n_blocks must be between 0 and 64.")
        for f in fields(self):
            if f.name.endswith(("_gin", "_gout")) and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise BadInput(f"LaMa setting {f.name} must be between 0 and 1.")
        if self.init_ratio_gin > 0:
            raise BadInput("LaMa's first layer takes a plain image: its ratio_gin must be 0.")

    @classmethod
    def from_reference_kwargs(cls, kwargs: dict) -> LamaConfig:
        """The config from the reference ``FFCResNetGenerator`` keyword arguments (as in
        big-lama's training yaml). Features this implementation does not have (local Fourier
        units, other output activations, other norms) are refused, never ignored."""
        known = {
            "input_nc",
            "output_nc",
            "ngf",
            "n_downsampling",
            "n_blocks",
            "max_features",
            "add_out_act",
            "init_conv_kwargs",
            "downsample_conv_kwargs",
            "resnet_conv_kwargs",
        }
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise BadInput(f"Unsupported LaMa generator settings: {', '.join(unknown)}.")
        if kwargs.get("add_out_act", "sigmoid") != "sigmoid":
            raise BadInput("Only LaMa generators with a sigmoid output are supported.")
        values = {k: kwargs[k] for k in known if k in kwargs and not isinstance(kwargs[k], dict)}
        values.pop("add_out_act", None)
        for prefix in ("init", "down", "resnet"):
            section = kwargs.get(
                f"{prefix}_conv_kwargs" if prefix != "down" else "downsample_conv_kwargs"
            )
            section = dict(section or {})
            if section.pop("enable_lfu", False):
                raise BadInput(
                    "LaMa generators with a local Fourier unit (enable_lfu) are not supported."
                )
            extra = sorted(set(section) - {"ratio_gin", "ratio_gout"})
            if extra:
                raise BadInput(f"Unsupported LaMa {prefix} conv settings: {', '.join(extra)}.")
            for key, value in section.items():
                values[f"{prefix}_{key}"] = float(value)
        return cls(**values)


def _bn(channels: int) -> nn.BatchNorm2d | None:
    return nn.BatchNorm2d(channels) if channels > 0 else None


class FourierUnit(nn.Module):
    """Channel mixing in the frequency domain: real FFT over (H, W), a 1×1 conv + BN + ReLU over
    the real and imaginary parts (interleaved per channel: 2k = Re, 2k+1 = Im), inverse FFT
    back to the input's size. Both transforms are orthonormal."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        spectrum = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")
        parts = torch.stack((spectrum.real, spectrum.imag), dim=2).flatten(1, 2)
        parts = self.relu(self.bn(self.conv_layer(parts.to(x.dtype)))).float()
        parts = parts.unflatten(1, (-1, 2))
        spectrum = torch.complex(parts[:, :, 0], parts[:, :, 1])
        out = torch.fft.irfftn(spectrum, s=(height, width), dim=(-2, -1), norm="ortho")
        return out.to(x.dtype)


class SpectralTransform(nn.Module):
    """The global→global path: 1×1 conv halving the channels (+BN+ReLU), then the Fourier
    unit added to its own input, then a 1×1 conv to the output channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


Pair = tuple[torch.Tensor | None, torch.Tensor | None]


def _split(channels: int, ratio: float) -> tuple[int, int]:
    """(local, global) channel counts: the global part is ``int(channels * ratio)``."""
    global_channels = int(channels * ratio)
    return channels - global_channels, global_channels


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


@dataclass(frozen=True)
class FFCShape:
    """One FFC layer's channels, kernel and local/global split (``int(channels * ratio)`` of
    the channels are global)."""

    in_channels: int
    out_channels: int
    kernel_size: int
    ratio_gin: float
    ratio_gout: float
    stride: int = 1
    padding: int = 0


class FFC(nn.Module):
    """Fast Fourier convolution on a (local, global) pair: local_out = l2l(local) + g2l(global),
    global_out = l2g(local) + g2g(global), where g2g is the spectral transform. Paths whose
    input or output part is empty do not exist (and have no weights)."""

    def __init__(self, shape: FFCShape) -> None:
        super().__init__()
        in_l, in_g = _split(shape.in_channels, shape.ratio_gin)
        out_l, out_g = _split(shape.out_channels, shape.ratio_gout)
        if in_g and out_g and shape.stride != 1:
            raise BadInput("A strided LaMa layer with a global input is not supported.")

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if not (cin and cout):
                return None
            return nn.Conv2d(
                cin,
                cout,
                shape.kernel_size,
                stride=shape.stride,
                padding=shape.padding,
                bias=False,
                padding_mode="reflect",
            )

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g) if in_g and out_g else None

    @staticmethod
    def _path(module: nn.Module | None, x: torch.Tensor | None) -> torch.Tensor | None:
        return None if module is None or x is None else module(x)

    def forward(self, x: Pair) -> Pair:
        local, glob = x
        out_local = _add(self._path(self.convl2l, local), self._path(self.convg2l, glob))
        out_global = _add(self._path(self.convl2g, local), self._path(self.convg2g, glob))
        return out_local, out_global


class FFCBnAct(nn.Module):
    """FFC, then BatchNorm and ReLU on each part. A plain tensor input is all local."""

    def __init__(self, shape: FFCShape) -> None:
        super().__init__()
        self.ffc = FFC(shape)
        out_l, out_g = _split(shape.out_channels, shape.ratio_gout)
        self.bn_l = _bn(out_l)
        self.bn_g = _bn(out_g)
        self.act = nn.ReLU(inplace=True)

    def _norm_act(self, bn: nn.Module | None, x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        return self.act(bn(x) if bn is not None else x)

    def forward(self, x: torch.Tensor | Pair) -> Pair:
        pair = x if isinstance(x, tuple) else (x, None)
        local, glob = self.ffc(pair)
        return self._norm_act(self.bn_l, local), self._norm_act(self.bn_g, glob)


class FFCResnetBlock(nn.Module):
    """Two FFC+BN+ReLU layers (3×3, reflect padding 1) and the pair added to the input."""

    def __init__(self, channels: int, ratio_gin: float, ratio_gout: float) -> None:
        super().__init__()
        shape = FFCShape(channels, channels, 3, ratio_gin, ratio_gout, padding=1)
        self.conv1 = FFCBnAct(shape)
        self.conv2 = FFCBnAct(shape)

    def forward(self, x: Pair) -> Pair:
        local, glob = self.conv2(self.conv1(x))
        return _add(x[0], local), _add(x[1], glob)


class ConcatPair(nn.Module):
    """The (local, global) pair as one tensor, local channels first."""

    def forward(self, x: Pair) -> torch.Tensor:
        parts = [t for t in x if t is not None]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class LamaGenerator(nn.Module):
    """FFC ResNet generator: 7×7 stem, strided downsamplers, FFC residual blocks, transposed
    convolutions back up, 7×7 head with a sigmoid. Input: masked RGB ‖ mask (4 channels)."""

    def __init__(self, config: LamaConfig | None = None) -> None:
        super().__init__()
        c = config or LamaConfig()
        self.config = c
        width = [min(c.max_features, c.ngf * 2**i) for i in range(c.n_downsampling + 1)]
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FFCBnAct(FFCShape(c.input_nc, c.ngf, 7, c.init_ratio_gin, c.init_ratio_gout)),
        ]
        for i in range(c.n_downsampling):
            last = i == c.n_downsampling - 1
            layers.append(
                FFCBnAct(
                    FFCShape(
                        width[i],
                        width[i + 1],
                        3,
                        c.down_ratio_gin,
                        c.resnet_ratio_gin if last else c.down_ratio_gout,
                        stride=2,
                        padding=1,
                    )
                )
            )
        bottleneck = width[-1]
        layers += [
            FFCResnetBlock(bottleneck, c.resnet_ratio_gin, c.resnet_ratio_gout)
            for _ in range(c.n_blocks)
        ]
        layers.append(ConcatPair())
        for i in range(c.n_downsampling, 0, -1):
            layers += [
                nn.ConvTranspose2d(width[i], width[i - 1], 3, 2, padding=1, output_padding=1),
                nn.BatchNorm2d(width[i - 1]),
                nn.ReLU(inplace=True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(c.ngf, c.output_nc, 7),
            nn.Sigmoid(),
        ]
        self.model = nn.Sequential(*layers)
        self._tail = len(layers) - 3 * c.n_downsampling - 3  # first layer after ConcatPair
        self.channels_last_tail = False

    def prepare_for_inference(self) -> LamaGenerator:
        """Eval mode, and the decoder (transposed convolutions and the 7×7 head) in
        channels-last memory, where oneDNN runs transposed convolutions several times faster
        than in the default layout (``ovpaint perf --only lama``). Same weights and state
        dict; the results differ from the plain layout by float rounding only."""
        self.eval()
        for layer in self.model[self._tail :]:
            layer.to(memory_format=torch.channels_last)
        self.channels_last_tail = True
        return self

    @property
    def num_layers(self) -> int:
        return len(self.model)

    def forward(
        self, x: torch.Tensor, on_layer: Callable[[int], None] | None = None
    ) -> torch.Tensor:
        """``on_layer(k)`` after the k-th top-level layer (1-based): progress, and a place
        to stop a long pass by raising."""
        if on_layer is None and not self.channels_last_tail:
            return self.model(x)
        for index, layer in enumerate(self.model):
            if index == self._tail and self.channels_last_tail:
                x = x.contiguous(memory_format=torch.channels_last)
            x = layer(x)
            if on_layer is not None:
                on_layer(index + 1)
        return x


# --------------------------------------------------------------------------- protocol
def symmetric_pad_index(size: int, padded: int, device: torch.device | None = None):
    """Indices that extend ``size`` samples to ``padded`` at the end as numpy's "symmetric"
    mode does: mirrored *including* the edge sample (… c b a | a b c …), repeating with
    period 2·size when the padding is longer than the data."""
    index = torch.arange(padded, device=device) % (2 * size)
    return torch.where(index < size, index, 2 * size - 1 - index)


def pad_symmetric(x: torch.Tensor, modulo: int = PAD_MODULO) -> torch.Tensor:
    """Pad the bottom and right of an N×C×H×W tensor to multiples of ``modulo``."""
    height, width = x.shape[-2:]
    ph, pw = -(-height // modulo) * modulo, -(-width // modulo) * modulo
    if (ph, pw) == (height, width):
        return x
    x = x.index_select(-2, symmetric_pad_index(height, ph, x.device))
    return x.index_select(-1, symmetric_pad_index(width, pw, x.device))


@dataclass
class LamaPass:
    generator_input: torch.Tensor  # at the padded size
    generator_output: torch.Tensor  # at the padded size
    inpainted: torch.Tensor  # cropped back to the input size


def predict(
    generator: nn.Module,
    image: torch.Tensor,
    mask: torch.Tensor,
    on_layer: Callable[[int], None] | None = None,
) -> LamaPass:
    """LaMa's prediction protocol on N×3×H×W RGB in [0, 1] and an N×1×H×W mask (non-zero =
    hole), in the generator's dtype; returns the input, raw output and blended result."""
    height, width = image.shape[-2:]
    image = pad_symmetric(image)
    mask = (pad_symmetric(mask) > 0).to(image.dtype)
    generator_input = torch.cat([image * (1 - mask), mask], dim=1)
    output = (
        generator(generator_input) if on_layer is None else generator(generator_input, on_layer)
    )
    inpainted = mask * output + (1 - mask) * image
    return LamaPass(generator_input, output, inpainted[..., :height, :width])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
