"""The encoder registry: each encoder module owns its facts (widths, frame grid), the config asks it."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from audiosae.config import ConfigError, validate
from audiosae.encoders import registry
from audiosae.encoders.registry import build_encoder, model_facts
from audiosae.errors import FrameError
from tiny_models import HF_KINDS, save_tiny_hf_model

LENGTHS = (399, 400, 4000, 16000, 16123)  # samples at 16 kHz: shorter than one conv frame, one, and longer


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {k: save_tiny_hf_model(k, root / k) for k in HF_KINDS}


def hf_cfg(kind: str) -> dict:
    return {"source": "hf", "id": f"tiny/{kind}", "revision": "main", "layers": "all"}


def _wave(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    return 0.1 * torch.randn(1, n, generator=g)


# ---------------------------------------------------------------- frame counts


@pytest.mark.parametrize("kind", ["wavlm", "hubert"])
def test_hf_frame_count_is_the_conv_stack_formula_and_the_models_own_length(kind, hf_dirs):
    facts = model_facts(kind, hf_cfg(kind), hf_dirs[kind])
    enc = build_encoder(hf_cfg(kind), str(hf_dirs[kind]), "cpu", name=kind)
    assert facts.frame_rate() == 16000 / 320 and facts.hop_samples() == 320
    assert facts.layer_widths() == enc.layer_widths and facts.depth() == enc.num_hidden_states
    for n in LENGTHS:
        want = int(enc.model._get_feat_extract_output_lengths(torch.tensor(n)))
        assert facts.num_frames(n) == want
        if want > 0:
            states = enc.frame_states(_wave(n))
            assert [tuple(s.shape) for s in states] == [(1, want, 32)] * 4
            # Pooling the frames gives the clip vector (the embedding store's definition).
            for pooled, frames in zip(enc.hidden_states(_wave(n)), states):
                torch.testing.assert_close(pooled, frames.mean(dim=1), rtol=1e-5, atol=1e-6)
    # Frame 0's receptive field is 400 samples: its centre lies 199.5 samples in.
    assert facts.first_frame_s() == pytest.approx(199.5 / 16000)
    np.testing.assert_allclose(facts.frame_times(3), (199.5 + 320 * np.arange(3)) / 16000)


def test_ast_frames_are_patch_columns_inside_the_audio(hf_dirs):
    import torchaudio.compliance.kaldi as kaldi

    facts = model_facts("ast", hf_cfg("ast"), hf_dirs["ast"])
    enc = build_encoder(hf_cfg("ast"), str(hf_dirs["ast"]), "cpu", name="ast")
    cfg = json.loads((hf_dirs["ast"] / "config.json").read_text())
    assert facts.hop_samples() == cfg["time_stride"] * 160 and facts.frame_rate() == 100 / cfg["time_stride"]
    freq, time = facts.ast_grid()
    assert freq * time + 2 == enc.model.embeddings.position_embeddings.shape[1]
    for n in (8000, 12000, 16000):
        fbank = kaldi.fbank(_wave(n), sample_frequency=16000, num_mel_bins=32, frame_shift=10).shape[0]
        fbank = min(fbank, cfg["max_length"])
        want = (fbank - cfg["patch_size"]) // cfg["time_stride"] + 1  # columns whose 16 fbank frames are all audio
        assert facts.num_frames(n) == want
        states = enc.frame_states(_wave(n))
        assert [tuple(s.shape) for s in states] == [(1, want, 32)] * 4
        with torch.no_grad():
            tokens = enc.model(**enc.inputs(_wave(n)), output_hidden_states=True).hidden_states[2][0, 2:]
        # Column t of a frequency-major token grid, averaged over frequency.
        torch.testing.assert_close(states[2][0, 1], tokens.reshape(freq, time, 32)[:, 1].mean(0))
    assert facts.max_window_samples() == 400 + (cfg["max_length"] - 1) * 160


@pytest.mark.parametrize("cfg, hop", [({"source": "crepe", "capacity": "tiny", "hop_ms": 20, "layers": "all"}, 320),
                                      ({"source": "resemblyzer", "layers": "all"}, 160)])
def test_packaged_models_frame_count_equals_their_output(cfg, hop):
    facts = model_facts("m", cfg)
    enc = build_encoder(cfg, None, "cpu")
    assert facts.hop_samples() == hop and facts.frame_rate() == 16000 / hop and facts.first_frame_s() == 0
    for n in (3000, 3200, 8001):
        states = enc.frame_states(_wave(n))
        assert [s.shape[:2] for s in states] == [(1, facts.num_frames(n))] * len(states) == [(1, 1 + n // hop)] * len(states)
        for pooled, frames in zip(enc.hidden_states(_wave(n)), states):
            torch.testing.assert_close(pooled, frames.mean(dim=1), rtol=1e-5, atol=1e-6)


def test_unknown_frame_grid_names_the_model_and_what_to_do(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper", "hidden_size": 8,
                                                      "num_hidden_layers": 2}))
    facts = model_facts("speechy", {"source": "hf", "id": "x/y", "layers": [1]}, tmp_path)
    assert facts.layer_widths() == [8, 8, 8]  # widths are known from config.json ...
    with pytest.raises(FrameError, match=r"model 'speechy'.*'whisper'.*remove 'frame' from sae\.levels"):
        facts.num_frames(16000)  # ... its frame grid is not


def test_hf_facts_before_download_are_unknown_not_wrong(tmp_path):
    facts = model_facts("wavlm", hf_cfg("wavlm"), tmp_path / "not-yet")
    assert facts.layer_widths() is None and facts.depth() is None and facts.needs_weights


# ---------------------------------------------------------------- adding an encoder type


def test_a_new_encoder_is_one_module_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(registry.SOURCES, "fake", "fake_encoder")
    cfg = validate({"models": {"f": {"source": "fake", "knob": 3, "layers": "all"}}, "sae": {"dim": 64, "sparsities": [0.5]}})
    facts = model_facts("f", cfg["models"]["f"])
    assert facts.depth() == 3 and facts.layer_resolution() == ["frame", "frame", "clip"]
    assert facts.frame_rate() == 100 and facts.num_frames(8000) == 100
    bad = {"models": {"c": {"source": "crepe", "knob": 3, "layers": [0]}}}
    with pytest.raises(ConfigError, match=r"'models\.c\.knob' applies to source 'fake' only"):
        validate(copy.deepcopy(bad))
    with pytest.raises(ConfigError, match=r"'models\.f\.knob'"):
        validate({"models": {"f": {"source": "fake", "knob": 0, "layers": [0]}}})


def test_unregistered_source_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"'models\.x\.source'.*hf.*crepe.*resemblyzer"):
        validate({"models": {"x": {"source": "onnx", "layers": [0]}}})
