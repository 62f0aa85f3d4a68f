"""EnhancerSpec: every accepted weights form (a shipped name, a str path, a Path, None) resolves once to the
same file and preset, and works wherever weights are taken (the API here, the CLI here, Ray in test_ray)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import streamsr
from helpers import run_main
from streamsr.errors import InputError, WeightsError
from streamsr.model import DEFAULT_WEIGHTS, SHIPPED
from streamsr.spec import EnhancerSpec
from streamsr.testing import make_clip

FORMS = {"name": lambda p: "srgan-x4-fast", "str": lambda p: str(p), "Path": lambda p: Path(p)}


@pytest.mark.parametrize("form", FORMS)
def test_every_weights_form_resolves_to_one_file_and_preset(form):
    path = SHIPPED["srgan-x4-fast"].path
    spec = EnhancerSpec.resolve(FORMS[form](path), engine="torch", device="cpu")
    assert spec.weights == path.resolve() and spec.weights.is_absolute()
    assert spec.preset.name == "srgan-x4-fast" and spec.label == "srgan-x4-fast"
    assert spec == EnhancerSpec.resolve("srgan-x4-fast", engine="torch", device="cpu")  # one key for the API
    assert pickle.loads(pickle.dumps(spec)) == spec  # what a Ray worker receives


def test_none_is_the_shipped_default_and_a_relative_path_is_made_absolute(tiny_weights, monkeypatch):
    assert EnhancerSpec.resolve().weights == SHIPPED[DEFAULT_WEIGHTS].path.resolve()
    monkeypatch.chdir(tiny_weights.parent)
    assert EnhancerSpec.resolve(tiny_weights.name).weights == tiny_weights.resolve()
    assert EnhancerSpec.resolve(tiny_weights).label == tiny_weights.stem


def test_bad_weights_and_settings_are_one_line_errors(tiny_weights, tmp_path):
    cases = [
        (WeightsError, dict(weights="srgan-x4-nope"), "not a file and not a shipped name"),
        (WeightsError, dict(weights=str(tmp_path / "missing.safetensors")), "does not exist"),
        (WeightsError, dict(weights=tiny_weights, preset="srgan-x4-lite"), "is for preset"),
        (InputError, dict(weights=tiny_weights, precision="fp8"), "precision must be one of"),
        (InputError, dict(weights=tiny_weights, batch=0), "batch must be >= 1"),
        (InputError, dict(weights=tiny_weights, halo=-1), "halo must be >= 0"),
    ]
    for error, kwargs, needle in cases:
        weights = kwargs.pop("weights")
        with pytest.raises(error, match=needle) as info:
            EnhancerSpec.resolve(weights, **kwargs)
        assert "\n" not in str(info.value)


def test_with_weights_keeps_the_settings_and_takes_any_preset(tiny_weights):
    spec = EnhancerSpec.resolve(tiny_weights, engine="torch", device="cpu", tile=24, halo=4)
    other = spec.with_weights("srgan-x4-fast")
    assert (other.engine, other.device, other.tile, other.halo) == ("torch", "cpu", 24, 4)
    assert other.preset.name == "srgan-x4-fast" and spec.preset.name == "srgan-x4-tiny"


@pytest.mark.parametrize("form", FORMS)
def test_the_api_takes_every_weights_form(form):
    img = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    weights = FORMS[form](SHIPPED["srgan-x4-fast"].path)
    out = streamsr.upscale(img, weights=weights, engine="torch", device="cpu")
    spec = EnhancerSpec.resolve("srgan-x4-fast", engine="torch", device="cpu")
    assert np.array_equal(out, streamsr.upscale(img, spec=spec))  # the same kept enhancer, the same pixels
    with pytest.raises(InputError, match="either spec= or weights="):
        streamsr.upscale(img, spec=spec, weights=weights)


@pytest.mark.parametrize("form", ["name", "str"])  # on a command line a Path is a str
def test_the_cli_takes_a_shipped_name_and_a_path(form, tmp_path, capsys):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=24, height=16)
    weights = FORMS[form](SHIPPED["srgan-x4-fast"].path)
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--weights", str(weights),
                         "--engine", "torch", "--device", "cpu", "-q")
    assert code == 0, err
    assert (tmp_path / "out.mp4").is_file()
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "o2.mp4"), "--weights", "srgan-x4-nope")
    assert code == 1 and "unknown weights 'srgan-x4-nope'" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", list(SHIPPED))
def test_every_shipped_name_resolves_with_its_preset(name):
    spec = EnhancerSpec.resolve(name)
    assert spec.label == name and spec.preset.name == SHIPPED[name].preset
    assert spec.weights == SHIPPED[name].path.resolve()


def test_the_gan_weights_work_by_name_in_the_api_and_as_compare_with(tmp_path, capsys):
    assert SHIPPED["srgan-x4-lite-gan"].stage == "gan"
    img = np.random.default_rng(1).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    assert streamsr.upscale(img, weights="srgan-x4-lite-gan", engine="torch", device="cpu").shape == (32, 40, 3)
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=24, height=16)
    code, err = run_main(capsys, "enhance", str(clip), "-o", str(tmp_path / "out.mp4"), "--engine", "torch",
                         "--device", "cpu", "--compare-with", "srgan-x4-lite-gan")
    assert code == 0, err
    assert "compare video panels: bicubic | srgan-x4-lite | srgan-x4-lite-gan" in err
    assert (tmp_path / "out.compare.mp4").is_file()
