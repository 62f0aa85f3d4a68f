"""The SRGAN generator (SRResNet, Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", Fig. 4), its presets, safetensors weight I/O and BatchNorm folding.

Two architectures share the paper's head and residual body, for B residual blocks of C channels, scale 4:
    conv9x9(3->C) + PReLU                                   (head)
    B x [conv3x3-BN-PReLU-conv3x3-BN, identity skip]        (body)
    conv3x3-BN, + head output (long skip)
then, `arch="progressive"` (the paper's; presets srgan-x4, srgan-x4-lite):
    2 x [conv3x3(C->4C) + PixelShuffle(2) + PReLU]          (upsampler)
    conv9x9(C->3)                                           (tail)
or `arch="lr-space"` (the efficient form: every conv stays on the LR grid):
    conv3x3(C->48) + fixed bicubic 4x of the input, added on the 4x4 sub-pixel grid, PixelShuffle(4)
The progressive upsampler and 9x9 tail run at 2x and 4x resolution and cost 65% of srgan-x4-lite's MACs;
the lr-space tail is one GEMM of 48 outputs per LR pixel, and the bicubic skip (as in Real-ESRGAN's
SRVGGNetCompact) means the network only learns the residual; its tail starts at zero, so an untrained model
is exactly bicubic interpolation. Measured: benchmarks/results/generators.md.

For inference, `fold_for_inference` folds the BNs into their convs and moves the tail onto the 2x grid
(`subpixel_tail`): the same function, about 2x faster on CPUs (see its doc).

Input and output are RGB in [0, 1] (the paper scales LR to [0,1] and HR to [-1,1]; streamsr keeps [0,1] on
both sides so no engine needs an extra affine op). Output is not clamped inside the network; callers clamp.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .errors import WeightsError


@dataclass(frozen=True, slots=True, kw_only=True)
class Preset:
    """A named generator shape: `blocks` residual blocks of `channels` channels, 4x upscaling, and `arch`
    ("progressive": the paper's two x2 upsamplers and 9x9 tail; "lr-space": one sub-pixel x4 tail and a
    bicubic skip, see the module doc). Weights files record their preset; files written before `arch`
    existed are progressive."""

    name: str
    blocks: int
    channels: int
    scale: int = 4
    arch: str = "progressive"
    description: str = ""

    def __post_init__(self) -> None:
        if self.blocks < 1:
            raise ValueError(f"Preset.blocks must be >= 1, got {self.blocks}")
        if self.channels < 1:
            raise ValueError(f"Preset.channels must be >= 1, got {self.channels}")
        if self.scale != 4:
            raise ValueError(f"Preset.scale must be 4, got {self.scale}")
        if self.arch not in ARCHS:
            raise ValueError(f"Preset.arch must be one of {ARCHS}, got {self.arch!r}")


ARCHS = ("progressive", "lr-space")


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(name="srgan-x4", blocks=16, channels=64, description="the paper's SRResNet/SRGAN generator"),
        Preset(name="srgan-x4-lite", blocks=8, channels=32, description="light preset for CPUs (~5x fewer MACs)"),
        Preset(name="srgan-x4-tiny", blocks=1, channels=8, description="tests and plumbing only"),
        Preset(name="srgan-x4-fast", blocks=8, channels=32, arch="lr-space",
               description="srgan-x4-lite's body on the LR grid, sub-pixel x4 tail, bicubic skip (2.6x fewer MACs)"),
        Preset(name="srgan-x4-lr-tiny", blocks=1, channels=8, arch="lr-space",
               description="tests and plumbing only"),
    )
}
DEFAULT_PRESET = "srgan-x4-lite"


def get_preset(name: str) -> Preset:
    """Look a preset up by name; WeightsError naming the known presets if it does not exist."""
    try:
        return PRESETS[name]
    except KeyError:
        raise WeightsError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}") from None


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN with an identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class UpsampleBlock(nn.Module):
    """conv3x3(C->4C) + PixelShuffle(2) + PReLU: doubles height and width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


def bicubic_phase_kernels(scale: int = 4, a: float = -0.75) -> torch.Tensor:
    """(scale*scale, 1, 5, 5) float32: the kernels that make PyTorch's bicubic upsampling by `scale`
    (`F.interpolate(mode="bicubic", align_corners=False)`, Keys' kernel with a = -0.75) as a conv on the LR
    grid, one output channel per sub-pixel phase in PixelShuffle order (channel py*scale + px).

    Output pixel 4k + p samples the input at k + (p + 0.5) / 4 - 0.5, i.e. at offsets -0.375, -0.125,
    +0.125, +0.375 from pixel k for p = 0..3: four taps each, inside the 5 taps k-2..k+2. With the input's
    edge pixels repeated twice (replicate padding), the conv equals F.interpolate at the borders too, as
    PyTorch clamps its source indices there (tests hold it).
    """

    def keys(t: torch.Tensor) -> torch.Tensor:
        t = t.abs()
        near = ((a + 2) * t - (a + 3)) * t * t + 1
        far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))

    taps = torch.arange(-2, 3, dtype=torch.float64)
    phases = (torch.arange(scale, dtype=torch.float64) + 0.5) / scale - 0.5  # (scale,) source offsets
    one_d = keys(taps[None, :] - phases[:, None])  # (scale, 5): weight of tap k+j for phase p
    kernels = one_d[:, None, :, None] * one_d[None, :, None, :]  # (py, px, 5, 5)
    return kernels.reshape(scale * scale, 1, 5, 5).float()


class BicubicSkip(nn.Module):
    """Fixed bicubic 4x of the input on the sub-pixel grid: (N, 3, h, w) -> (N, 48, h, w), channel
    c*16 + py*4 + px holding output pixel (4y + py, 4x + px) of colour c, so that PixelShuffle(4) of it is
    `F.interpolate(x, scale_factor=4, mode="bicubic")`. Not trained; not in the state dict (a buffer
    rebuilt from the formula), so weights files hold only learned tensors."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.register_buffer("weight", bicubic_phase_kernels(scale).repeat(3, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.weight.to(x.dtype), groups=3)


class Generator(nn.Module):
    """SRResNet generator. forward: (N, 3, h, w) float in [0, 1] -> (N, 3, 4h, 4w) float, same dtype/device."""

    def __init__(self, preset: Preset | str = DEFAULT_PRESET) -> None:
        super().__init__()
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        c = self.preset.channels
        self.head = nn.Sequential(nn.Conv2d(3, c, 9, padding=4), nn.PReLU(c))
        self.body = nn.Sequential(*[ResidualBlock(c) for _ in range(self.preset.blocks)])
        self.body_conv = nn.Conv2d(c, c, 3, padding=1)
        self.body_bn = nn.BatchNorm2d(c)
        if self.preset.arch == "progressive":
            self.upsample = nn.Sequential(UpsampleBlock(c), UpsampleBlock(c))
            self.tail = nn.Conv2d(c, 3, 9, padding=4)
        else:  # lr-space: the tail predicts the residual over bicubic on the sub-pixel grid, starting at zero
            self.tail = nn.Conv2d(c, 3 * 16, 3, padding=1)
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
            self.skip = BicubicSkip(4)
            self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        y = self.body_bn(self.body_conv(self.body(h))) + h
        if self.preset.arch == "progressive":
            return self.tail(self.upsample(y))
        if torch.is_autocast_enabled(x.device.type):
            # training under bf16/fp16 autocast: the image itself (bicubic skip + residual) stays fp32, or
            # bf16's 8-bit mantissa would round every output pixel by up to 2 of 255 levels
            residual = self.tail(y).float()
            with torch.autocast(x.device.type, enabled=False):
                return self.shuffle(residual + self.skip(x.float()))
        return self.shuffle(self.tail(y) + self.skip(x))


def fold_batchnorm(model: Generator) -> Generator:
    """A copy of `model` for inference with every BatchNorm folded into the conv before it.

    The copy is in eval mode, computes the same function as `model.eval()` (to float rounding), and has
    `nn.Identity` where the BNs were, so engines see plain conv/PReLU/PixelShuffle graphs.
    """
    folded = copy.deepcopy(model).eval()
    for block in folded.body:
        block.conv1 = fuse_conv_bn_eval(block.conv1, block.bn1)
        block.bn1 = nn.Identity()
        block.conv2 = fuse_conv_bn_eval(block.conv2, block.bn2)
        block.bn2 = nn.Identity()
    folded.body_conv = fuse_conv_bn_eval(folded.body_conv, folded.body_bn)
    folded.body_bn = nn.Identity()
    return folded


def subpixel_tail(model: Generator) -> Generator:
    """A copy of `model` computing the same function with the tail conv moved before the last PixelShuffle.

    Why: the paper's tail is a 9x9 conv with only 3 output channels at 4x resolution. As an implicit GEMM
    its N dimension is 3, so CPU conv kernels (MLAS, oneDNN), which work in blocks of 8-16 output channels,
    waste most of every vector: on the 2-core EPYC the tail took 41-77% of the lite preset's time in torch
    eager (channels_last / NCHW), at 38 / 6 GFLOP/s while the body ran at ~100. A kxk conv on a
    PixelShuffle(r) output equals a conv on the pre-shuffle grid with r*r times the channels in and out,
    followed by the shuffle (Shi et al. 2016, "Is the deconvolution layer the same as a convolutional
    layer?"). For r = 2, k = 9 that is a 5x5 conv 4C -> 12 on the 2x grid: 1.23x the tail's MACs (19% of
    the 5x5 taps are structural zeros) but a GEMM shape that runs at 64-76 GFLOP/s; ONNX Runtime runs the
    whole model 1.9x faster (benchmarks/layers.py). The last upsampler's per-channel PReLU moves before its
    shuffle (an elementwise op commutes with it; each slope is repeated for its r*r sub-pixel channels).

    After the rewrite `upsample[-1]` is conv -> PReLU(4C) and `tail` is conv(4C -> 3r^2) -> PixelShuffle(r);
    `Generator.forward` is unchanged. Weights: sub-kernel W[o*r^2 + a*r + b, c*r^2 + s*r + t, ey, ex] =
    K[o, c, r*ey + s - a + p, r*ex + t - b + p] (zero outside the kxk), p = k // 2; zero padding of the 4x
    grid is exactly zero padding of the 2x grid, so borders match too.
    """
    if model.preset.arch != "progressive":
        raise ValueError(f"subpixel_tail: preset {model.preset.name!r} has no progressive upsampler")
    out = copy.deepcopy(model).eval()
    up = out.upsample[-1]
    if isinstance(out.tail, nn.Sequential):
        raise ValueError("subpixel_tail: the model's tail is already on the sub-pixel grid")
    r = up.shuffle.upscale_factor
    tail = out.tail
    k = tail.kernel_size[0]
    p = k // 2
    e_lo, e_hi = -((p + r - 1) // r), (p + r - 1) // r  # sub-grid offsets floor((a + dy) / r) reach these
    if tail.kernel_size != (k, k) or tail.padding != (p, p) or k % 2 == 0 or tail.stride != (1, 1):
        raise ValueError(f"subpixel_tail needs an odd square 'same' tail conv, got {tail}")
    with torch.no_grad():
        kernel = tail.weight.detach()  # (O, C, k, k)
        o_ch, c_ch = kernel.shape[:2]
        margin = r * e_hi + r - 1 - p  # enough zeros that every index below lands inside `padded`
        padded = F.pad(kernel, (margin, margin, margin, margin))  # index = d + p + margin
        phase = torch.arange(r)
        offset = torch.arange(e_lo, e_hi + 1)
        # idx[a, s, e] = r*e + s - a + p + margin: the original tap each sub-pixel tap reads (or a zero)
        idx = r * offset[None, None, :] + phase[None, :, None] - phase[:, None, None] + p + margin
        taps = padded[:, :, idx[:, None, :, None, :, None], idx[None, :, None, :, None, :]]
        # (O, C, a, b, s, t, ey, ex) -> (O, a, b, C, s, t, ey, ex) -> (O*r*r, C*r*r, ks, ks)
        ks = e_hi - e_lo + 1
        weight = taps.permute(0, 2, 3, 1, 4, 5, 6, 7).reshape(o_ch * r * r, c_ch * r * r, ks, ks)
        conv = nn.Conv2d(c_ch * r * r, o_ch * r * r, ks, padding=e_hi)
        conv.weight.copy_(weight)
        conv.bias.copy_(tail.bias.detach().repeat_interleave(r * r))
        act = nn.PReLU(up.conv.out_channels)
        act.weight.copy_(up.act.weight.detach().expand(c_ch).repeat_interleave(r * r))
    out.upsample[-1] = nn.Sequential(up.conv, act)
    out.tail = nn.Sequential(conv, nn.PixelShuffle(r))
    return out.eval()


def fold_for_inference(model: Generator) -> Generator:
    """The form every engine compiles: BNs folded (`fold_batchnorm`), and for progressive presets the tail on
    the 2x grid (`subpixel_tail`; an lr-space tail is on the LR grid already).

    Same function as `model.eval()` to float rounding (tests hold it to 1e-4); different module layout, so
    it cannot be trained or saved as a Generator state dict.
    """
    folded = fold_batchnorm(model)
    return subpixel_tail(folded) if model.preset.arch == "progressive" else folded


def count_macs(preset: Preset, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass of `preset` on an (h, w) LR input (convs only).

    The architecture's count, used for every variant alike: `fold_for_inference` executes 1.23x the tail's
    MACs (1.06x of the whole lite preset) to run them faster, so efficiency figures based on this undercount
    the engine's executed work slightly.
    """
    c, hw = preset.channels, height * width
    macs = 81 * 3 * c * hw  # head
    macs += (2 * preset.blocks + 1) * 9 * c * c * hw  # body + body_conv
    if preset.arch == "lr-space":
        return macs + 9 * c * 48 * hw + 25 * 48 * hw  # tail and bicubic skip, both on the LR grid
    macs += 9 * c * 4 * c * hw + 9 * c * 4 * c * hw * 4  # upsample at 1x and 2x
    macs += 81 * c * 3 * hw * 16  # tail at 4x
    return macs


# ---- weights -----------------------------------------------------------------------------------------------

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShippedWeights:
    """A weights file that ships with the package, usable by name (`--weights NAME`).

    stage: "psnr" (pixel-loss SRResNet: fidelity first, the default) or "gan" (adversarially fine-tuned:
    sharper texture that may be invented; for viewing only). use: one line on what it is for.
    """

    name: str
    preset: str
    stage: str
    use: str

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"


SHIPPED: dict[str, ShippedWeights] = {
    w.name: w
    for w in (
        ShippedWeights(name="srgan-x4-lite", preset="srgan-x4-lite", stage="psnr",
                       use="the default: fidelity-first SRResNet, trained on many kinds of LR"),
        ShippedWeights(name="srgan-x4-fast", preset="srgan-x4-fast", stage="psnr",
                       use="the fast one for CPUs and live streams: 2.8x srgan-x4-lite's fps at 384x288 on a "
                           "2-core CPU; +0.08 / -0.15 dB against it on the two held-out sets"),
        ShippedWeights(name="srgan-x4-lite-gan", preset="srgan-x4-lite", stage="gan",
                       use="for viewing only: srgan-x4-lite fine-tuned adversarially (SRGAN-MSE); a little more "
                           "fine texture, which may be invented: never for measuring or diagnosis"),
    )
}
DEFAULT_WEIGHTS = "srgan-x4-lite"
SHIPPED_WEIGHTS = SHIPPED[DEFAULT_WEIGHTS].path


def resolve_weights(spec: str | Path | None) -> Path:
    """The weights file a user means: None -> the default shipped file; a shipped name -> its file; anything
    else is a path (checked by the loader). A bare word that is neither a file nor a shipped name raises
    WeightsError listing the shipped names."""
    if spec is None:
        return SHIPPED_WEIGHTS
    text = str(spec)
    if text in SHIPPED:
        return SHIPPED[text].path
    path = Path(spec)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        raise WeightsError(f"unknown weights {text!r}: not a file and not a shipped name ({', '.join(SHIPPED)})")
    return path


def save_weights(model: Generator, path: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Write the (unfolded) state dict to safetensors with the preset recorded in the file's metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": "streamsr-generator-v1", "preset": json.dumps(asdict(model.preset))}
    meta.update(metadata or {})
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return path


def read_weights_preset(path: str | Path) -> Preset:
    """The preset recorded in a weights file's metadata (WeightsError if absent or unreadable)."""
    from safetensors import safe_open

    path = resolve_weights(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own SafetensorError / OSError on a bad header
        raise WeightsError(f"weights file {path} is not a readable safetensors file ({e})") from None
    if "preset" not in meta:
        raise WeightsError(f"weights file {path} has no streamsr preset in its metadata")
    try:
        return Preset(**json.loads(meta["preset"]))
    except (TypeError, ValueError) as e:
        raise WeightsError(f"weights file {path} has a malformed preset record ({e})") from None


def load_generator(path: str | Path | None = None, *, preset: str | None = None, fold: bool = True) -> Generator:
    """Build a Generator from a safetensors file (the shipped default when `path` is None; a shipped name
    such as "srgan-x4-lite" is accepted too, see resolve_weights).

    `preset`, when given, must match the file's recorded preset; a mismatch, a missing file or tensors of
    the wrong shape raise WeightsError with one line saying which. Returns an eval-mode CPU float32 model
    in the engines' form (`fold_for_inference`), or the paper's layout with its BNs when `fold=False`
    (training resumes from it, baselines run it).
    """
    from safetensors.torch import load_file

    path = resolve_weights(path)
    file_preset = read_weights_preset(path)
    if preset is not None and get_preset(preset) != file_preset and preset != file_preset.name:
        raise WeightsError(
            f"weights file {path} is for preset {file_preset.name!r} "
            f"({file_preset.blocks} blocks x {file_preset.channels} ch), not {preset!r}"
        )
    model = Generator(file_preset)
    state = load_file(str(path))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"weights file {path} does not fit preset {file_preset.name!r}: "
            f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}"
        )
    for k, v in state.items():
        if v.shape != expected[k].shape:
            raise WeightsError(
                f"weights file {path}: tensor {k} has shape {tuple(v.shape)}, "
                f"preset {file_preset.name!r} needs {tuple(expected[k].shape)}"
            )
    model.load_state_dict(state)
    model.eval()
    return fold_for_inference(model) if fold else model


def weights_digest(path: str | Path | None = None) -> str:
    """First 16 hex digits of the SHA-256 of a weights file's bytes: names the exact file a result was
    measured with (benchmark reports). Engine cache keys do not use it: they hash the inference-form tensors
    (`backends.cache.model_digest`), so the same weights saved twice share one engine."""
    path = resolve_weights(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
