"""Training-only networks: the SRGAN discriminator, a VGG19 feature extractor, and the generator's
interpolator initialisation. The generator itself is streamsr.model.Generator (what ships).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from streamsr.model import Generator

# ---- generator initialisation ---------------------------------------------------------------------------


@torch.no_grad()
def init_as_interpolator(g: Generator) -> Generator:
    """Make an untrained SRResNet start as (roughly) bicubic 4x upsampling, then learn the residual.

    SRResNet has no global input->output skip, so from a random init it spends its first thousands of
    steps learning to reproduce the image at all. Here channels 0..2 of every stage carry the RGB image:
    head 9x9 centre tap = identity; each upsample conv maps channel c to its 4 sub-pixels with the
    separable 2x bicubic kernel truncated to 3 taps; the tail's centre tap reads them back.
    Their PReLU slopes start at 1 (linear). The body's closing BN gets gamma = 0, so the residual body adds
    nothing at step 0 while still receiving gradients (Adam's normalised steps move gamma off zero at once);
    the tail's weights on the other channels start at 0 for the same reason. All of it is ordinary,
    trainable parameters: the architecture is unchanged and the result is a plain Generator state dict.
    """
    c = g.preset.channels
    if c < 3:
        raise ValueError(f"interpolator init needs >= 3 channels, preset has {c}")
    head_conv, head_act = g.head[0], g.head[1]
    k = head_conv.kernel_size[0] // 2
    head_conv.weight[:3].zero_()
    head_conv.bias[:3].zero_()
    for i in range(3):
        head_conv.weight[i, i, k, k] = 1.0
    head_act.weight[:3] = 1.0

    g.body_bn.weight.zero_()
    g.body_bn.bias.zero_()

    # 2x bicubic (a = -0.5) weights for sub-pixels at -1/4 and +1/4, truncated to the 3 taps a 3x3 conv
    # has and renormalised: [w(0.75), w(0.25), w(1.25)] / sum = [0.2266, 0.8672, -0.0703] / 1.0235
    t = torch.tensor([0.2266, 0.8672, -0.0703]) / 1.0235
    taps = torch.stack([t, t.flip(0)])  # sub-pixel 0 / 1 along one axis
    for up in g.upsample:
        w, b = up.conv.weight, up.conv.bias  # (4C, C, 3, 3): PixelShuffle reads out channel c*4 + i*2 + j
        for ch in range(3):
            for i in range(2):
                for j in range(2):
                    o = ch * 4 + i * 2 + j
                    w[o].zero_()
                    w[o, ch] = torch.outer(taps[i], taps[j])
                    b[o] = 0.0
        up.act.weight[:3] = 1.0

    tail = g.tail
    kt = tail.kernel_size[0] // 2
    tail.weight.zero_()
    tail.bias.zero_()
    for i in range(3):
        tail.weight[i, i, kt, kt] = 1.0
    return g


@torch.no_grad()
def artifact_map(hr: torch.Tensor, sr: torch.Tensor, sr_ema: torch.Tensor, ksize: int = 7) -> torch.Tensor:
    """LDL's artifact map (Liang et al., CVPR 2022): where a GAN's output has noisy, high-variance error it
    is inventing artifacts rather than texture, so those pixels get extra pixel loss.

    hr, sr, sr_ema: (N, 3, H, W) float; sr_ema is the output of an EMA of the generator (a steadier model).
    Returns (N, 1, H, W) weights, no gradient: the local variance (ksize x ksize) of the per-pixel residual
    |hr - sr| summed over channels, times the crop's residual variance ** 0.2, and 0 wherever the EMA model's
    residual is larger than the current one's (there the current model is already the better of the two).
    Loss: l1(map * sr, map * hr).
    """
    with torch.no_grad():
        residual = (hr - sr).abs().sum(1, keepdim=True).float()
        residual_ema = (hr - sr_ema).abs().sum(1, keepdim=True).float()
        pad = ksize // 2
        padded = F.pad(residual, (pad, pad, pad, pad), mode="reflect")
        mean = F.avg_pool2d(padded, ksize, stride=1)
        local_var = (F.avg_pool2d(padded * padded, ksize, stride=1) - mean * mean).clamp_min(0)
        crop_var = residual.var(dim=(1, 2, 3), keepdim=True) ** 0.2
        weights = local_var * crop_var
        return weights.masked_fill(residual < residual_ema, 0.0)


def highlight_ring(hr: torch.Tensor, *, level: float = 200 / 255, spread: float = 0.3,
                   ring: tuple[int, int] = (1, 6)) -> torch.Tensor:
    """Pixels `ring[0]`..`ring[1]` px (Chebyshev) outside the specular highlights of HR crops, where a
    sharpened output draws dark halos. hr: (N, 3, H, W) float in [0, 1]; returns (N, 1, H, W) bool.
    A highlight is bright and nearly white, as `streamsr eval` defines it (brightest channel >= level, channel
    spread <= spread x that); the ring is wider than eval's 3-4 px so the whole halo is covered."""
    hi, lo = hr.amax(1, keepdim=True), hr.amin(1, keepdim=True)
    core = ((hi >= level) & (hi - lo <= spread * hi)).float()

    def dilate(r: int) -> torch.Tensor:
        return F.max_pool2d(core, 2 * r + 1, stride=1, padding=r) > 0 if r else core > 0

    return dilate(ring[1]) & ~dilate(ring[0] - 1)


def dark_ring_loss(sr: torch.Tensor, hr: torch.Tensor, ring: torch.Tensor) -> torch.Tensor:
    """Mean squared darkening (sr below hr; brighter is not penalised) over the ring pixels of the batch:
    a fidelity term against the dark halos around reflections that sharpening invents (0 without rings)."""
    mask = ring.expand_as(sr)
    if not bool(mask.any()):
        return sr.new_zeros(())
    return (F.relu(hr - sr) ** 2)[mask].mean()


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy into `model` every tensor of `state` whose name and shape match; returns (copied, kept): the
    names copied and the names of `model` left as initialised. Initialises one preset from another's
    weights (the residual body of srgan-x4-lite is the body of an lr-space 8 x 32 model)."""
    own = model.state_dict()
    copied = [k for k, v in state.items() if k in own and own[k].shape == v.shape]
    for k in copied:
        own[k].copy_(state[k])
    return copied, [k for k in own if k not in copied]


# ---- discriminator (Ledig et al. 2017, Fig. 4) -----------------------------------------------------------


class Discriminator(nn.Module):
    """conv3x3(64)-LReLU, then 7 x conv3x3-BN-LReLU(0.2) with channels 64,128,128,256,256,512,512 and strides
    2,1,2,1,2,1,2, then dense 1024 - LReLU - dense 1. forward: (N, 3, S, S) float in [0, 1] -> (N,) logits.

    The paper ends in a sigmoid; we return the logit and train with BCEWithLogits (the same loss, computed
    stably). `channels` scales the widths (64 in the paper; smaller only for tests). S must be `size`.

    norm: "batch" (the paper's BatchNorm) or "spectral": every conv and dense layer spectrally normalised
    (Miyato et al. 2018; torch.nn.utils.parametrizations.spectral_norm) and no BatchNorm, which bounds D's
    Lipschitz constant so a short fine-tune from a good generator does not start with D winning outright.
    """

    def __init__(self, size: int = 128, channels: int = 64, norm: str = "batch") -> None:
        super().__init__()
        if size % 16:
            raise ValueError(f"discriminator input size must be a multiple of 16, got {size}")
        if norm not in ("batch", "spectral"):
            raise ValueError(f"unknown discriminator norm {norm!r}; known: batch, spectral")
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        c = channels
        layers: list[nn.Module] = [sn(nn.Conv2d(3, c, 3, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
        plan = [(c, c, 2), (c, 2 * c, 1), (2 * c, 2 * c, 2), (2 * c, 4 * c, 1), (4 * c, 4 * c, 2),
                (4 * c, 8 * c, 1), (8 * c, 8 * c, 2)]  # fmt: skip
        for cin, cout, stride in plan:
            layers.append(sn(nn.Conv2d(cin, cout, 3, stride=stride, padding=1)))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), sn(nn.Linear(8 * c * (size // 16) ** 2, 1024)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Linear(1024, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x * 2.0 - 1.0)).squeeze(1)  # paper feeds D images in [-1, 1]


# ---- VGG19 features ------------------------------------------------------------------------------------

# torchvision's vgg19 "E" configuration; "M" = 2x2 max-pool. Indices of our nn.Sequential equal
# torchvision's `vgg19().features` indices, so its state dict ("features.N.weight") loads as is.
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
VGG_LAYERS = {"relu2_2": 8, "relu5_4": 35}  # index of the ReLU in features; "VGG22" / "VGG54" in the paper
TORCHVISION_VGG19 = "vgg19-dcbb9e9d.pth"  # torchvision's IMAGENET1K_V1 file name in its hub cache


class VGG19Features(nn.Module):
    """torchvision-compatible VGG19 `features`, truncated after `layer`, with ImageNet input normalisation.

    forward: (N, 3, H, W) float RGB in [0, 1] -> (N, C, H/2^p, W/2^p) features (C = 512 for relu5_4).
    `width_div` divides every width (1 = real VGG19; >1 only for randomly initialised test networks).
    Parameters are frozen (requires_grad False); the module stays in eval mode.
    """

    def __init__(self, layer: str = "relu5_4", width_div: int = 1) -> None:
        super().__init__()
        if layer not in VGG_LAYERS:
            raise ValueError(f"unknown VGG layer {layer!r}; known: {', '.join(VGG_LAYERS)}")
        layers: list[nn.Module] = []
        cin = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                cout = max(1, v // width_div)
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
                cin = cout
        self.features = nn.Sequential(*layers[: VGG_LAYERS[layer] + 1])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:  # frozen feature extractor: always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)


def _torchvision_cache() -> Path | None:
    """torchvision's cached VGG19 weights, if the user has them (TORCH_HOME or ~/.cache/torch)."""
    try:
        hub = Path(torch.hub.get_dir())
    except Exception:  # get_dir only fails on broken environments; then there is no cache either
        return None
    p = hub / "checkpoints" / TORCHVISION_VGG19
    return p if p.is_file() else None


def load_vgg19(weights: str, layer: str = "relu5_4") -> VGG19Features:
    """VGG19 features for the perceptual loss.

    weights: a path to a torchvision-format VGG19 state dict (.pth, keys "features.N.weight/bias";
    classifier keys are ignored), or "" to use torchvision's cached IMAGENET1K_V1 file, or "random:K" for a
    randomly initialised VGG19 with widths divided by K (tests only: its features mean nothing).
    Raises FileNotFoundError saying where to put the file when no weights are found.
    """
    if weights.startswith("random:"):
        torch.manual_seed(0)
        return VGG19Features(layer, width_div=int(weights.split(":", 1)[1]))
    path = Path(weights) if weights else _torchvision_cache()
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"VGG19 weights not found ({weights or 'torchvision cache'}): pass vgg_weights=PATH to a torchvision "
            f"vgg19 state dict, or put {TORCHVISION_VGG19} in {Path(torch.hub.get_dir()) / 'checkpoints'}"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = VGG19Features(layer)
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    feats = {k: v for k, v in feats.items() if int(k.split(".")[0]) <= VGG_LAYERS[layer]}
    missing, unexpected = net.features.load_state_dict(feats, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} is not a torchvision VGG19 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net
