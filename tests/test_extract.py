"""Extraction into a store: rows and order, every layer, determinism, metadata, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audiosae import store
from audiosae.config import ConfigError
from audiosae.data.audio import crop_starts
from audiosae.extract import ExtractionError, extract_embeddings
from tiny_models import FAKE_COMMIT, save_tiny_hf_model, write_corpus

AUDIO = dict(crop_seconds=1.0, train_crops=2, crop_seed=42)
MODELS = {
    "crepe": {"source": "crepe", "capacity": "tiny", "hop_ms": 50, "layers": [1, 5]},
    "resemblyzer": {"source": "resemblyzer", "layers": [2]},
    "wavlm": {"source": "hf", "id": "tiny/wavlm", "revision": "main", "layers": [1, -1]},
    "hubert": {"source": "hf", "id": "tiny/hubert", "revision": "main", "layers": "all"},
    "ast": {"source": "hf", "id": "tiny/ast", "revision": "main", "layers": [0, 3]},
}
WIDTHS = {"crepe": [128, 16, 16, 16, 32, 64, 360], "resemblyzer": [40, 256, 256, 256],
          "wavlm": [32] * 4, "hubert": [32] * 4, "ast": [32] * 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    manifest = write_corpus(root)
    for kind in ("wavlm", "hubert", "ast"):
        save_tiny_hf_model(kind, root / "resources/models" / kind)
    return root, manifest


def run(corpus, name, out, model_cfg=None, **kw):
    root, manifest = corpus
    weights = root / "resources/models" / name if MODELS[name]["source"] == "hf" else None
    args = dict(name=name, weights_dir=weights, batch_size=3, device="cpu", root=root, progress=False, **AUDIO)
    return extract_embeddings(manifest, out, model_cfg or MODELS[name], **{**args, **kw})


@pytest.mark.parametrize("name", list(MODELS))
def test_store_holds_every_layer_in_manifest_order_and_is_deterministic(name, corpus, tmp_path):
    root, manifest = corpus
    attrs = run(corpus, name, tmp_path / "a.zarr")
    run(corpus, name, tmp_path / "b.zarr")

    table = pd.read_csv(manifest)
    expected = [(c.clip_id, c.split, k) for c in table.itertuples()
                for k in range(len(crop_starts(c.clip_id, c.duration_s, 1.0, 2, 42, c.split)))]
    index = store.read_index(tmp_path / "a.zarr")
    assert list(index.itertuples(index=False, name=None)) == expected
    assert (index.groupby("clip_id")["crop"].max() + 1).to_dict() == {
        c.clip_id: (2 if c.split == "train" else 1) for c in table.itertuples()}

    # Every hidden state is stored, whatever `layers` asks for.
    assert store.layer_indices(tmp_path / "a.zarr") == list(range(len(WIDTHS[name])))
    for layer, width in enumerate(WIDTHS[name]):
        a = store.read_array(tmp_path / "a.zarr", f"layer{layer}")
        b = store.read_array(tmp_path / "b.zarr", f"layer{layer}")
        assert a.shape == (len(expected), width) and a.dtype == np.float32
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)

    # Metadata round trip.
    back = store.read_attrs(tmp_path / "a.zarr")
    for key in ("model", "source", "model_id", "revision", "sample_rate", "crop_seconds", "pooling", "hop",
                "device", "dtype", "packages", "extraction_time_s", "items_per_s", "layer_widths"):
        assert key in back, key
        assert back[key] == attrs[key], key
    assert back["model"] == name and back["source"] == MODELS[name]["source"]
    assert back["crop_seconds"] == 1.0 and back["train_crops"] == 2 and back["crop_seed"] == 42
    assert back["layer_widths"] == WIDTHS[name] and back["n_items"] == len(expected)
    assert back["device"] == "cpu" and back["dtype"] == "float32"
    assert "torch" in back["packages"] and back["complete"] is True
    if MODELS[name]["source"] == "hf":
        assert back["revision"] == FAKE_COMMIT and back["model_id"] == f"tiny/{name}"
        assert back["sample_rate"] == 16000


def test_batch_size_does_not_change_the_vectors(corpus, tmp_path):
    run(corpus, "crepe", tmp_path / "b1.zarr", batch_size=1)
    run(corpus, "crepe", tmp_path / "b5.zarr", batch_size=5)
    for layer in range(7):
        np.testing.assert_allclose(store.read_array(tmp_path / "b1.zarr", f"layer{layer}"),
                                   store.read_array(tmp_path / "b5.zarr", f"layer{layer}"), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["crepe", "resemblyzer", "ast"])
def test_out_of_range_layer_is_a_named_error_and_leaves_no_store(name, corpus, tmp_path):
    depth = len(WIDTHS[name])
    cfg = {**MODELS[name], "layers": [0, depth]}
    with pytest.raises(ConfigError, match=rf"layer {depth} is out of range for model '{name}'.*0\.\.{depth - 1}"):
        run(corpus, name, tmp_path / "x.zarr", model_cfg=cfg)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["crepe", "hubert"])
def test_corrupt_wav_is_an_error_naming_the_file(name, corpus, tmp_path):
    root, manifest = corpus
    table = pd.read_csv(manifest)
    bad = root / "resources/synthetic/broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    table.loc[2, "path"] = "resources/synthetic/broken.wav"
    broken = tmp_path / "manifest.csv"
    table.to_csv(broken, index=False)
    weights = root / "resources/models" / name if name == "hubert" else None
    with pytest.raises(ExtractionError, match=r"broken\.wav"):
        extract_embeddings(broken, tmp_path / "x.zarr", MODELS[name], name=name, weights_dir=weights, root=root,
                           device="cpu", progress=False, **AUDIO)
    assert not (tmp_path / "x.zarr").exists()
    assert not list(tmp_path.glob("x.zarr.tmp-*"))


def test_manifest_without_columns_is_refused(corpus, tmp_path):
    bad = tmp_path / "manifest.csv"
    pd.DataFrame({"clip_id": ["a"], "path": ["a.wav"], "group": ["g"], "label": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(ExtractionError, match=r"lacks column\(s\) \['split', 'duration_s', 'sample_rate'\]"):
        extract_embeddings(bad, tmp_path / "x.zarr", MODELS["crepe"], name="crepe", device="cpu", **AUDIO)


def test_every_store_row_is_the_models_output_on_its_own_crop(corpus, tmp_path):
    """Each row against a direct forward of the model on that item's crop alone: the clip's audio at the
    model's rate, from the crop's start (crop_starts for the row's clip and crop number), zero-padded.

    One model suffices (the batching, cropping and row placement are the same for every model); the
    tiny WavLM is the quickest to run item by item."""
    name = "wavlm"
    import torch

    from audiosae.data.audio import load_audio
    from audiosae.encoders.registry import build_encoder

    root, manifest = corpus
    run(corpus, name, tmp_path / "s.zarr")
    weights = root / "resources/models" / name if MODELS[name]["source"] == "hf" else None
    enc = build_encoder(MODELS[name], None if weights is None else str(weights), "cpu", name=name)
    sr, n = enc.sample_rate, int(round(AUDIO["crop_seconds"] * enc.sample_rate))
    table = pd.read_csv(manifest).set_index("clip_id")
    index = store.read_index(tmp_path / "s.zarr")
    stored = {layer: store.read_array(tmp_path / "s.zarr", f"layer{layer}") for layer in range(len(WIDTHS[name]))}
    starts_used = []
    for row, item in enumerate(index.itertuples(index=False)):
        clip = table.loc[item.clip_id]
        start = crop_starts(item.clip_id, clip.duration_s, AUDIO["crop_seconds"], AUDIO["train_crops"],
                            AUDIO["crop_seed"], clip.split)[item.crop]
        starts_used.append(start)
        wave = load_audio(root / clip.path, sr)
        piece = np.zeros(n, np.float32)
        chunk = wave[int(round(start * sr)):][:n]
        piece[:len(chunk)] = chunk
        with torch.no_grad():
            states = enc.hidden_states(torch.from_numpy(piece)[None])
        for layer, values in enumerate(states):
            np.testing.assert_allclose(stored[layer][row], values[0].numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name} row {row} ({item.clip_id} crop {item.crop}) layer {layer}")
    assert sum(s > 0.05 for s in starts_used) >= 2  # some crops start inside the clip, not at 0
