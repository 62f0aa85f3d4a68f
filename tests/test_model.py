from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from streamsr.errors import WeightsError
from streamsr.model import (
    PRESETS,
    SHIPPED,
    SHIPPED_WEIGHTS,
    Generator,
    Preset,
    fold_batchnorm,
    fold_for_inference,
    load_generator,
    read_weights_preset,
    save_weights,
    subpixel_tail,
)


@pytest.mark.parametrize("name", list(PRESETS))
def test_generator_is_4x_at_any_size(name):
    g = Generator(name).eval()
    with torch.no_grad():
        assert g(torch.rand(2, 3, 7, 11)).shape == (2, 3, 28, 44)


def _paper_receptive_field(arch: str, blocks: int, y: int) -> tuple[int, int]:
    """The first and last LR row output row `y` depends on, from the layout (not from the code): a 9x9 head,
    two 3x3 convs per residual block, a 3x3 body conv (radius 4 + 2 * blocks + 1 around the LR pixel), then
    progressive: conv3x3 + shuffle(2) twice and a 9x9 tail on the 4x grid, each undone here from the output
    back; lr-space: a 3x3 tail on the LR grid (the bicubic skip's 5 taps lie inside)."""
    r = 4 + 2 * blocks + 1
    if arch == "lr-space":
        return y // 4 - r - 1, y // 4 + r + 1
    lo, hi = y - 4, y + 4  # the 9x9 tail on the 4x grid
    lo, hi = lo // 2 - 1, hi // 2 + 1  # shuffle back to the 2x grid, its 3x3 conv
    lo, hi = lo // 2 - 1, hi // 2 + 1  # shuffle back to the LR grid, its 3x3 conv
    return lo - r, hi + r


def _measured_receptive_field(g: torch.nn.Module, size: int, y: int, x: int) -> tuple[tuple[int, int], ...]:
    """(first, last) LR row and column with a nonzero gradient of output pixel (y, x), in float64 (the
    weight products at the field's edge are tiny, never zero)."""
    lr = torch.rand(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    g(lr)[0, :, y, x].sum().backward()
    seen = lr.grad[0].abs().sum(0) != 0
    rows, cols = torch.nonzero(seen.any(1)).flatten(), torch.nonzero(seen.any(0)).flatten()
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


@pytest.mark.parametrize("preset", [
    "srgan-x4-tiny", "srgan-x4-lr-tiny",
    Preset(name="deep", blocks=4, channels=4), Preset(name="deep-lr", blocks=4, channels=4, arch="lr-space"),
], ids=["tiny", "lr-tiny", "4-blocks", "4-blocks-lr"])
def test_receptive_field_is_the_papers_in_training_and_inference_form(preset):
    """Which LR pixels an output pixel sees (what the tiler's halo stands in for), measured by the gradient:
    exactly the paper's layout, for the training form and the engines' folded form alike, at the sub-pixel
    phases 0 (rows) and 3 (columns), with more residual blocks seeing further."""
    torch.manual_seed(0)
    g = Generator(preset)
    if g.preset.arch == "lr-space":
        torch.nn.init.normal_(g.tail.weight, std=0.05)  # a trained tail, not the zero one
    g = g.double().eval()
    reach = 8 + 2 * g.preset.blocks
    size = 2 * reach + 3  # the field stays clear of the zero padding
    y, x = 4 * (size // 2), 4 * (size // 2) + 3
    want = (_paper_receptive_field(g.preset.arch, g.preset.blocks, y),
            _paper_receptive_field(g.preset.arch, g.preset.blocks, x))
    assert _measured_receptive_field(g, size, y, x) == want
    assert _measured_receptive_field(fold_for_inference(g).double(), size, y, x) == want


def _randomised(name: str, seed: int) -> Generator:
    """An eval-mode generator whose BN statistics and affine parameters and PReLU slopes are far from their
    init, so a rewrite that drops or misplaces one of them changes the output."""
    torch.manual_seed(seed)
    g = Generator(name)
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
        if isinstance(m, torch.nn.PReLU):
            m.weight.data.uniform_(-0.5, 0.9)
    return g.eval()


def test_batchnorm_folding_keeps_the_function():
    g = _randomised("srgan-x4-tiny", seed=0)
    folded = fold_batchnorm(g)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), g(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["srgan-x4-tiny", "srgan-x4-lite"])
def test_subpixel_tail_keeps_the_function_to_the_border(name):
    g = _randomised(name, seed=1)
    fast = subpixel_tail(g)
    assert fast.tail[0].kernel_size == (5, 5) and fast.tail[0].out_channels == 12
    assert fast.tail[0].in_channels == 4 * PRESETS[name].channels
    x = torch.rand(2, 3, 11, 17)  # odd sizes: every sub-pixel phase meets a border
    with torch.no_grad():
        ref, out = g(x), fast(x)
    assert ref.shape == out.shape == (2, 3, 44, 68)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="already"):
        subpixel_tail(fast)


@pytest.mark.parametrize("k", [3, 5, 7, 11])
def test_subpixel_tail_holds_for_other_tail_kernels(k):
    """The index arithmetic is general in k (p = k // 2 odd or even vs the shuffle factor), not tuned to 9."""
    g = _randomised("srgan-x4-tiny", seed=k)
    torch.manual_seed(k)
    g.tail = torch.nn.Conv2d(PRESETS["srgan-x4-tiny"].channels, 3, k, padding=k // 2)
    fast = subpixel_tail(g)
    w = fast.tail[0].weight
    for edge in (w[:, :, 0], w[:, :, -1], w[:, :, :, 0], w[:, :, :, -1]):  # the smallest kernel that holds the
        assert edge.abs().sum() > 0  # k x k taps: no all-zero border row or column (those would be wasted MACs)
    x = torch.rand(1, 3, 9, 10)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), g(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(SHIPPED))
def test_fold_for_inference_is_the_engines_form_of_the_shipped_weights(name):
    paper = load_generator(name, fold=False)
    engines = load_generator(name)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in engines.modules())
    # progressive: the tail moved onto the 2x grid (conv + shuffle); lr-space: already on the LR grid
    assert isinstance(engines.tail, torch.nn.Sequential) == (paper.preset.arch == "progressive")
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(engines(x), paper(x), rtol=1e-4, atol=2e-5)


def _fold_by_hand(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BN(conv(x)) = conv'(x) with w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta."""
    k = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return conv.weight * k[:, None, None, None], (conv.bias - bn.running_mean) * k + bn.bias


def test_shipped_batchnorms_are_folded_by_the_formula():
    """Independently of torch's fuse helper: every folded conv of the shipped weights holds the BN fold
    written out by hand, and the shipped BNs are far enough from identity that skipping them would show."""
    paper = load_generator(SHIPPED_WEIGHTS, fold=False)  # both architectures share the folded body
    folded = fold_batchnorm(paper)
    pairs = [(b.conv1, b.bn1, f.conv1) for b, f in zip(paper.body, folded.body)]
    pairs += [(b.conv2, b.bn2, f.conv2) for b, f in zip(paper.body, folded.body)]
    pairs.append((paper.body_conv, paper.body_bn, folded.body_conv))
    with torch.no_grad():
        for conv, bn, fused in pairs:
            w, b = _fold_by_hand(conv, bn)
            torch.testing.assert_close(fused.weight, w, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(fused.bias, b, rtol=1e-5, atol=1e-6)
        scales = torch.cat([bn.weight / torch.sqrt(bn.running_var + bn.eps) for _, bn, _ in pairs])
        assert float((scales - 1).abs().max()) > 0.05  # trained statistics: the fold is not a no-op


def test_weights_round_trip(tmp_path: Path):
    g = Generator("srgan-x4-tiny")
    path = save_weights(g, tmp_path / "w.safetensors")
    assert read_weights_preset(path).name == "srgan-x4-tiny"
    loaded = load_generator(path, preset="srgan-x4-tiny", fold=False)
    for (k, a), (_, b) in zip(g.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_missing_weights_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_generator(tmp_path / "nope.safetensors")


def test_weights_of_another_preset_are_refused(tmp_path: Path):
    path = save_weights(Generator("srgan-x4-tiny"), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="is for preset 'srgan-x4-tiny'.*not 'srgan-x4-lite'"):
        load_generator(path, preset="srgan-x4-lite")


def test_tensor_shape_mismatch_is_refused(tmp_path: Path):
    good = tmp_path / "w.safetensors"
    save_weights(Generator("srgan-x4-tiny"), good)
    # a file that claims the tiny preset but holds the lite preset's tensors
    lite = Generator("srgan-x4-lite").state_dict()
    meta = {"format": "streamsr-generator-v1", "preset": __import__("safetensors").safe_open(str(good), "pt").metadata()["preset"]}
    save_file({k: v.contiguous() for k, v in lite.items()}, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="does not fit preset|has shape"):
        load_generator(tmp_path / "bad.safetensors")


def test_not_a_safetensors_file(tmp_path: Path):
    p = tmp_path / "w.safetensors"
    p.write_bytes(b"definitely not safetensors")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_generator(p)


def test_shipped_weights_resolve_by_name_and_unknown_names_list_the_valid_ones(tmp_path) -> None:
    from streamsr.errors import WeightsError
    from streamsr.model import SHIPPED, SHIPPED_WEIGHTS, resolve_weights

    assert resolve_weights(None) == SHIPPED_WEIGHTS and SHIPPED_WEIGHTS.is_file()
    for name, w in SHIPPED.items():
        assert resolve_weights(name) == w.path and w.path.is_file()
        assert read_weights_preset(name).name == w.preset
    with pytest.raises(WeightsError, match=r"unknown weights 'srgan-x4-nope'.*srgan-x4-lite"):
        load_generator("srgan-x4-nope")
    with pytest.raises(WeightsError, match="does not exist"):
        load_generator(tmp_path / "missing.safetensors")


# ---- lr-space generators ------------------------------------------------------------------------------------

LR_SPACE = [name for name, p in PRESETS.items() if p.arch == "lr-space"]


def test_bicubic_phase_kernels_are_torch_bicubic_to_the_border():
    from streamsr.model import BicubicSkip

    x = torch.rand(2, 3, 9, 14)
    ref = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    out = torch.nn.functional.pixel_shuffle(BicubicSkip(4)(x), 4)
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-6)


@pytest.mark.parametrize("name", LR_SPACE)
def test_a_fresh_lr_space_generator_is_bicubic_interpolation(name):
    g = Generator(name).eval()
    x = torch.rand(2, 3, 11, 7)
    ref = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(g(x), ref, rtol=0, atol=2e-6)
        torch.testing.assert_close(fold_for_inference(g)(x), ref, rtol=0, atol=2e-6)
    assert not any(k.startswith("skip") for k in g.state_dict())  # the fixed skip is not a weight


@pytest.mark.parametrize("name", [*PRESETS])
def test_every_presets_inference_form_equals_its_training_form(name):
    g = _randomised(name, seed=3)
    if g.preset.arch == "lr-space":
        torch.nn.init.normal_(g.tail.weight, std=0.05)  # a trained tail, not the zero one
    x = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        ref = g(x)
        torch.testing.assert_close(fold_for_inference(g)(x), ref, rtol=1e-4, atol=1e-4)
    assert ref.shape == (2, 3, 48, 40)


def test_lr_space_output_stays_fp32_under_bf16_autocast():
    """Training autocasts the convs to bf16; the image (skip + residual) must not be rounded to bf16's 8 bits."""
    g = Generator("srgan-x4-lr-tiny").train()
    x = torch.rand(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = g(x)
    assert y.dtype == torch.float32
    ref = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert (y - ref).abs().max() < 1e-5  # zero tail: exactly the fp32 interpolation, no bf16 rounding


def test_lr_space_weights_round_trip_with_their_arch(tmp_path: Path):
    torch.manual_seed(0)
    g = Generator("srgan-x4-lr-tiny")
    torch.nn.init.normal_(g.tail.weight, std=0.05)
    path = save_weights(g, tmp_path / "lr.safetensors")
    assert read_weights_preset(path).arch == "lr-space"
    back = load_generator(path, fold=False)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(back(x), g.eval()(x))
    with pytest.raises(WeightsError, match="srgan-x4-lr-tiny"):
        load_generator(path, preset="srgan-x4-tiny")


def test_older_weights_files_without_arch_are_progressive(tmp_path: Path):
    g = Generator("srgan-x4-tiny")
    old_record = '{"name": "srgan-x4-tiny", "blocks": 1, "channels": 8, "scale": 4, "description": ""}'
    state = {k: v.contiguous() for k, v in g.state_dict().items()}
    save_file(state, str(tmp_path / "old.safetensors"), metadata={"format": "streamsr-generator-v1", "preset": old_record})
    assert read_weights_preset(tmp_path / "old.safetensors").arch == "progressive"
    assert isinstance(load_generator(tmp_path / "old.safetensors").tail, torch.nn.Sequential)  # sub-pixel form
