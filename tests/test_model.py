from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from streamsr.errors import WeightsError
from streamsr.model import PRESETS, Generator, fold_batchnorm, load_generator, read_weights_preset, save_weights


@pytest.mark.parametrize("name", ["srgan-x4-tiny", "srgan-x4-lite", "srgan-x4"])
def test_generator_is_4x_and_has_the_papers_layout(name):
    g = Generator(name).eval()
    p = PRESETS[name]
    assert len(g.body) == p.blocks
    assert g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    assert [m.conv.out_channels for m in g.upsample] == [4 * p.channels] * 2
    with torch.no_grad():
        assert g(torch.rand(2, 3, 7, 11)).shape == (2, 3, 28, 44)


def test_batchnorm_folding_keeps_the_function():
    torch.manual_seed(0)
    g = Generator("srgan-x4-tiny")
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    g.eval()
    folded = fold_batchnorm(g)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), g(x), rtol=1e-4, atol=1e-5)


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
