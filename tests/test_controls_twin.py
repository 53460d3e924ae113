"""The random-weights twin of each encoder type: seeded, different from the trained weights, and alive."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosae.encoders.crepe import CrepeEncoder
from audiosae.encoders.registry import build_encoder
from audiosae.encoders.resemblyzer import ResemblyzerEncoder
from audiosae.encoders.twin import add_twins, check_model_names, twin_spec
from audiosae.errors import ConfigError
from tiny_models import save_tiny_hf_model, write_corpus


def _state(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _all_differ(a: dict, b: dict, keys) -> bool:
    return all(not torch.allclose(a[k].float(), b[k].float()) for k in keys)


def _voiced_crops(n: int = 12, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """Harmonic tones at several pitches with a little noise: audio a pitch network reacts to."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    out = []
    for i in range(n):
        f0 = 110 * 2 ** (i / 5)
        wave = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
        out.append((0.2 * wave + 0.02 * rng.standard_normal(t.size)).astype(np.float32))
    return out


def test_twin_names_are_reserved_and_added_after_the_models():
    models = {"a": {"source": "crepe"}, "b": {"source": "resemblyzer"}}
    both = add_twins(models, 3)
    assert list(both) == ["a", "b", "a_random", "b_random"]
    assert both["a_random"] == {"source": "crepe", "random_init": 3}
    with pytest.raises(ConfigError, match="models.x_random.*reserved"):
        check_model_names({"x_random": {"source": "crepe"}})


# ---------------------------------------------------------------- CREPE


@pytest.fixture(scope="module")
def crops():
    return _voiced_crops()


@pytest.fixture(scope="module")
def crepe_pair(crops):
    trained = CrepeEncoder("tiny", hop_ms=40)
    twin = CrepeEncoder("tiny", hop_ms=40, random_seed=5)
    twin.calibrate(crops)
    return trained, twin


def test_crepe_twin_weights_differ_from_trained_and_repeat_for_the_same_seed(crepe_pair, crops):
    trained, twin = crepe_pair
    t, w = _state(trained.model), _state(twin.model)
    conv = [k for k in t if k.endswith("weight") and "BN" not in k]
    assert conv and _all_differ(t, w, conv)
    again = CrepeEncoder("tiny", hop_ms=40, random_seed=5)
    again.calibrate(crops)
    assert _same(w, _state(again.model))  # batch-norm statistics included
    other = CrepeEncoder("tiny", hop_ms=40, random_seed=6)
    assert _all_differ(w, _state(other.model), conv)
    assert twin.describe()["revision"].startswith("random initialisation, seed 5")
    assert "re-estimated" in twin.describe()["batch_norm_statistics"]


def test_crepe_twin_deep_layers_do_not_vanish_once_calibrated(crepe_pair):
    """Std over clips at blocks 2, 5 and the output: the calibrated twin's is of the trained model's order,
    the default-statistics twin's collapses by orders of magnitude (what calibration is for)."""
    trained, twin = crepe_pair
    test = torch.from_numpy(np.stack(_voiced_crops(10, seed=1)))
    raw = CrepeEncoder("tiny", hop_ms=40, random_seed=5)
    raw.calibration = {"frames": 0, "crops": 0}  # default statistics, extracted anyway
    scale = {name: [float(h.std(dim=0).mean()) for h in enc.hidden_states(test)]
             for name, enc in (("trained", trained), ("twin", twin), ("raw", raw))}
    for state in (1, 4, 6):
        ratio = scale["twin"][state] / scale["trained"][state]
        assert 0.1 < ratio < 10, (state, scale)
    assert scale["raw"][4] < 0.01 * scale["trained"][4]
    assert scale["raw"][6] < 0.01 * scale["trained"][6]


def test_uncalibrated_crepe_twin_refuses_to_extract():
    twin = CrepeEncoder("tiny", hop_ms=40, random_seed=1)
    with pytest.raises(RuntimeError, match="calibrate"):
        twin.hidden_states(torch.zeros(1, 16000))


def test_extraction_calibrates_the_crepe_twin_on_train_clips_and_records_its_provenance(tmp_path):
    from audiosae.extract import extract_embeddings

    manifest = write_corpus(tmp_path, n_clips=5)
    cfg = twin_spec({"source": "crepe", "capacity": "tiny", "hop_ms": 40, "layers": [1]}, 9)
    attrs = extract_embeddings(manifest, tmp_path / "twin.zarr", cfg, name="crepe_random", root=tmp_path,
                               crop_seconds=0.5, train_crops=1, crop_seed=0, device="cpu", progress=False)
    assert attrs["revision"].startswith("random initialisation, seed 9")
    assert attrs["model_config"]["random_init"] == 9
    assert "train crops" in attrs["batch_norm_statistics"]


# ---------------------------------------------------------------- Resemblyzer


def test_resemblyzer_twin_weights_differ_and_repeat_for_the_same_seed():
    trained = _state(ResemblyzerEncoder().layers)
    twin = ResemblyzerEncoder(random_seed=2)
    w = _state(twin.layers)
    assert _all_differ(trained, w, list(trained))
    assert _same(w, _state(ResemblyzerEncoder(random_seed=2).layers))
    assert _all_differ(w, _state(ResemblyzerEncoder(random_seed=3).layers), list(w))
    out = twin.hidden_states(torch.from_numpy(np.stack(_voiced_crops(4))))
    assert all(float(h.std(dim=0).mean()) > 1e-4 for h in out[1:])  # a live network
    assert twin.describe()["revision"].startswith("random initialisation, seed 2")


def test_building_a_twin_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ResemblyzerEncoder(random_seed=4)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- Hugging Face


@pytest.fixture(scope="module")
def wavlm_dir(tmp_path_factory):
    return save_tiny_hf_model("wavlm", tmp_path_factory.mktemp("hf") / "wavlm")


def test_hf_twin_is_built_from_the_config_with_its_own_init(wavlm_dir):
    cfg = {"source": "hf", "id": "tiny/wavlm", "revision": "main", "layers": "all"}
    trained = build_encoder(cfg, str(wavlm_dir), "cpu", name="w")
    twin = build_encoder(twin_spec(cfg, 7), str(wavlm_dir), "cpu", name="w_random")
    t, w = _state(trained.model), _state(twin.model)
    linear = [k for k in t if k.endswith(".weight") and t[k].ndim == 2 and "layer_norm" not in k]
    assert linear and _all_differ(t, w, linear)
    assert _same(w, _state(build_encoder(twin_spec(cfg, 7), str(wavlm_dir), "cpu", name="w_random").model))
    assert _all_differ(w, _state(build_encoder(twin_spec(cfg, 8), str(wavlm_dir), "cpu").model), linear)
    # The architecture's own initialisation: LayerNorm at scale 1, linear weights at initializer_range.
    norms = [k for k in w if "layer_norm.weight" in k]
    assert norms and all(torch.equal(w[k], torch.ones_like(w[k])) for k in norms)
    q = next(k for k in linear if "q_proj" in k)
    assert abs(float(w[q].std()) - twin.model.config.initializer_range) < 0.3 * twin.model.config.initializer_range
    assert twin.describe()["revision"].startswith("random initialisation, seed 7")
    assert twin.layer_widths == trained.layer_widths
