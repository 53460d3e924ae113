"""Frame level: the frame store, the streaming loader, frame SAEs and the acoustics over time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import zarr

from audiosae import store as zstore
from audiosae.data.audio import load_audio
from audiosae.encoders.registry import build_encoder, model_facts
from audiosae.errors import FrameError
from audiosae.extract import extract_embeddings, plan_items
from audiosae.frames import store as fstore
from audiosae.frames.acoustics import (F0_LLD, TRUE_F0, ArraySource, FrameSource, frame_acoustics, lld_names,
                                      semitones, signal_llds)
from audiosae.frames.extract import extract_frames, windows
from audiosae.frames.stream import FrameStream
from audiosae.frames.train import FrameSAEPaths, read_frame_codes, train_frame_sae
from audiosae.sae.model import SparseAutoencoder
from tiny_models import save_tiny_hf_model, write_corpus

AUDIO = dict(crop_seconds=1.0, train_crops=2, crop_seed=42)
CREPE = {"source": "crepe", "capacity": "tiny", "hop_ms": 20, "layers": [1, 6]}
HUBERT = {"source": "hf", "id": "tiny/hubert", "revision": "main", "layers": [0, 2]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames_corpus")
    manifest = write_corpus(root, n_clips=6)
    save_tiny_hf_model("hubert", root / "resources/models/hubert")
    return root, manifest


def _extract(corpus, name, out, **kw):
    root, manifest = corpus
    cfg = CREPE if name == "crepe" else HUBERT
    weights = root / "resources/models/hubert" if name == "hubert" else None
    args = dict(name=name, layers=cfg["layers"], weights_dir=weights, chunk_frames=32, device="cpu", root=root,
                progress=False, **AUDIO)
    args.update(kw)
    return extract_frames(manifest, out, cfg, **args)


@pytest.fixture(scope="module")
def crepe_store(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("crepe_frames") / "crepe.zarr"
    _extract(corpus, "crepe", out)
    return out


# ---------------------------------------------------------------- the frame store


@pytest.mark.parametrize("name", ["crepe", "hubert"])
def test_each_clips_frames_are_the_models_own_output_for_its_whole_audio(name, corpus, crepe_store, tmp_path):
    root, manifest = corpus
    store = crepe_store if name == "crepe" else tmp_path / "hubert.zarr"
    if name == "hubert":
        _extract(corpus, name, store)
    cfg = CREPE if name == "crepe" else HUBERT
    weights = root / "resources/models/hubert" if name == "hubert" else None
    facts = model_facts(name, cfg, weights)
    enc = build_encoder(cfg, None if weights is None else str(weights), "cpu", name=name)
    clips = fstore.clip_index(store)
    times = zstore.open_store(store)["time_s"]
    table = pd.read_csv(manifest)
    assert list(clips["clip_id"]) == list(table["clip_id"]) and list(clips["split"]) == list(table["split"])
    for clip, path in zip(clips.itertuples(index=False), table["path"]):
        wave = load_audio(root / path, facts.sample_rate())
        # The clip's own length, not a crop's or a padded batch's.
        want = facts.num_frames(len(wave))
        if name == "hubert":
            want_hf = int(enc.model._get_feat_extract_output_lengths(torch.tensor(len(wave))))
            assert want == want_hf
        else:
            assert want == 1 + len(wave) // 320
        assert clip.n_frames == want
        a, b = clip.first_frame, clip.first_frame + clip.n_frames
        t = np.asarray(times[a:b])
        assert np.all(np.diff(t) > 0) and t[-1] < len(wave) / facts.sample_rate() + 0.5 / facts.frame_rate()
        ref = enc.frame_states(torch.from_numpy(wave)[None])
        for layer in cfg["layers"]:
            got = np.asarray(fstore.layer_array(store, layer)[a:b], dtype=np.float32)
            assert got.dtype == np.float32 and fstore.layer_array(store, layer).dtype == np.float16
            np.testing.assert_allclose(got, ref[layer][0].numpy(), rtol=2e-3, atol=2e-3)
    attrs = zstore.read_attrs(store)
    assert attrs["frame_rate"] == facts.frame_rate() and attrs["n_frames"] == int(clips["n_frames"].sum())
    assert attrs["estimated_frames"] == attrs["n_frames"]  # the size estimate counts frames as the model does
    assert not list(store.parent.glob("*.tmp-*"))


def test_long_clips_are_cut_into_equal_windows_on_the_frame_grid(corpus, tmp_path):
    root, manifest = corpus
    store = tmp_path / "windowed.zarr"
    _extract(corpus, "crepe", store, window_seconds=0.5)
    facts = model_facts("crepe", CREPE)
    enc = build_encoder(CREPE, None, "cpu")
    clips = fstore.clip_index(store)
    longest = clips.loc[clips["duration_s"].idxmax()]
    wave = load_audio(root / pd.read_csv(manifest).set_index("clip_id").loc[longest.clip_id, "path"], 16000)
    wins = windows(len(wave), 8000, 320)
    assert len(wins) > 1 and all(n <= 8000 and n % 320 == 0 for _, n in wins[:-1])
    assert wins[0][0] == 0 and sum(n for _, n in wins) == len(wave)
    # Each window but the last keeps the frames centred inside it: the grid runs on without repeats.
    kept = [facts.num_frames(n) - (k < len(wins) - 1) for k, (_, n) in enumerate(wins)]  # CREPE: one at the end
    assert longest.n_frames == sum(kept)
    first = enc.frame_states(torch.from_numpy(wave[: wins[0][1]])[None])[6][0].numpy()[:-1]  # the end's frame is dropped
    got = np.asarray(fstore.layer_array(store, 6)[longest.first_frame: longest.first_frame + len(first)], np.float32)
    np.testing.assert_allclose(got, first, rtol=2e-3, atol=2e-3)
    t = np.asarray(zstore.open_store(store)["time_s"][longest.first_frame: longest.first_frame + longest.n_frames])
    np.testing.assert_allclose(t, np.arange(len(t)) * 0.02, atol=1e-9)  # one frame every hop, none twice


def test_items_are_the_embedding_stores_rows_and_their_crops_frames(corpus, crepe_store, tmp_path):
    root, manifest = corpus
    extract_embeddings(manifest, tmp_path / "emb.zarr", CREPE, name="crepe", root=root, device="cpu",
                       progress=False, **AUDIO)
    items = fstore.item_index(crepe_store)
    emb = zstore.read_index(tmp_path / "emb.zarr")
    pd.testing.assert_frame_equal(items[["clip_id", "split", "crop"]], emb)
    plan = plan_items(pd.read_csv(manifest, dtype={"clip_id": str}), **{k: AUDIO[k] for k in AUDIO})
    np.testing.assert_allclose(items["start_s"], plan["start_s"])
    clips = fstore.clip_index(crepe_store).set_index("clip_id")
    times = np.asarray(zstore.open_store(crepe_store)["time_s"][:])
    for it in items.itertuples(index=False):
        c = clips.loc[it.clip_id]
        t = times[c.first_frame: c.first_frame + c.n_frames]
        inside = np.flatnonzero((t >= it.start_s) & (t < it.start_s + AUDIO["crop_seconds"])) + c.first_frame
        assert it.first_frame == inside[0] and it.n_frames == len(inside)


def test_a_disk_too_small_stops_before_any_store_is_visible(corpus, tmp_path):
    out = tmp_path / "results/frames/crepe.zarr"
    with pytest.raises(fstore.FrameStoreError) as err:
        _extract(corpus, "crepe", out, free_bytes=10_000)
    msg = str(err.value)
    assert str(out) in msg and "frames of 6 clips" in msg and "free" in msg and "Nothing was written" in msg
    assert not out.exists() and not list(out.parent.glob("*")) if out.parent.exists() else True


def test_a_model_with_an_unknown_frame_grid_stops_naming_it(corpus, tmp_path):
    root, manifest = corpus
    weights = tmp_path / "speechy"
    weights.mkdir()
    (weights / "config.json").write_text(json.dumps({"model_type": "whisper", "hidden_size": 8, "num_hidden_layers": 2}))
    out = tmp_path / "speechy.zarr"
    with pytest.raises(FrameError, match=r"model 'speechy'.*remove 'frame' from sae\.levels"):
        extract_frames(manifest, out, {"source": "hf", "id": "x/y", "layers": [1]}, name="speechy", layers=[1],
                       weights_dir=weights, root=root, device="cpu", progress=False, **AUDIO)
    assert not out.exists() and not list(tmp_path.glob("speechy.zarr*"))


# ---------------------------------------------------------------- the streaming loader


def _id_store(path, clip_frames: list[int], splits: list[str], chunk: int):
    """A frame store whose frame i holds (i mod 1000, i // 1000): every frame identifiable after float16."""
    n = sum(clip_frames)
    ids = np.arange(n)
    root = zarr.open_group(str(path), mode="w")
    root.create_array("layer0", data=np.stack([ids % 1000, ids // 1000], 1).astype(np.float16), chunks=(chunk, 2))
    root.create_array("clip_id", shape=(len(clip_frames),), dtype=str)
    root["clip_id"][:] = np.array([f"c{i}" for i in range(len(clip_frames))], dtype=object)
    root.create_array("split", shape=(len(clip_frames),), dtype=str)
    root["split"][:] = np.array(splits, dtype=object)
    root.create_array("first_frame", data=np.concatenate([[0], np.cumsum(clip_frames)[:-1]]).astype(np.int64))
    root.create_array("n_frames", data=np.array(clip_frames, dtype=np.int64))
    root.create_array("duration_s", data=np.ones(len(clip_frames)))
    root.attrs["complete"] = True
    first = np.concatenate([[0], np.cumsum(clip_frames)[:-1]])
    return {s: np.concatenate([np.arange(f, f + c) for f, c, sp in zip(first, clip_frames, splits) if sp == s])
            for s in set(splits)}


def _ids(batches) -> np.ndarray:
    return np.concatenate([(b[:, 0] + 1000 * b[:, 1]).astype(np.int64) for b in batches])


@pytest.mark.parametrize("buffer", [5, 64, 10_000])
def test_the_stream_yields_every_frame_once_per_epoch_in_a_seeded_order(tmp_path, buffer):
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(1, 60, size=40))
    splits = list(rng.choice(["train", "valid", "test"], size=40, p=[0.6, 0.2, 0.2]))
    expected = _id_store(tmp_path / "ids.zarr", lengths, splits, chunk=32)
    stream = FrameStream(tmp_path / "ids.zarr", 0, ["train"], batch_size=7, buffer_frames=buffer, seed=3)
    assert stream.n_frames == len(expected["train"])
    epoch0 = list(stream.epoch(0))
    got = _ids(epoch0)
    assert len(got) == len(expected["train"]) and np.array_equal(np.sort(got), expected["train"])
    assert all(len(b) == 7 for b in epoch0[:-1]) and 1 <= len(epoch0[-1]) <= 7
    again = FrameStream(tmp_path / "ids.zarr", 0, ["train"], batch_size=7, buffer_frames=buffer, seed=3)
    assert np.array_equal(_ids(again.epoch(0)), got)  # seeded: the same order
    epoch1 = _ids(stream.epoch(1))
    assert not np.array_equal(epoch1, got) and np.array_equal(np.sort(epoch1), expected["train"])
    other = _ids(FrameStream(tmp_path / "ids.zarr", 0, ["train"], 7, buffer, seed=4).epoch(0))
    assert not np.array_equal(other, got)
    assert not np.array_equal(got, np.sort(got))  # shuffled, not store order
    assert np.array_equal(_ids(stream.sequential()), expected["train"])


def _random_store(path, n_clips: int, clip_frames: int, dim: int, chunk: int) -> int:
    """A frame store of `n_clips` train clips of `clip_frames` random float16 frames of width `dim`; its size in
    bytes as float32 (what a loader that read it whole would hold)."""
    n = n_clips * clip_frames
    root = zarr.open_group(str(path), mode="w")
    arr = root.create_array("layer0", shape=(n, dim), dtype="float16", chunks=(chunk, dim))
    rng = np.random.default_rng(0)
    for start in range(0, n, 8 * chunk):  # written in pieces: the test itself stays small
        stop = min(n, start + 8 * chunk)
        arr[start:stop] = rng.standard_normal((stop - start, dim)).astype(np.float16)
    root.create_array("clip_id", shape=(n_clips,), dtype=str)
    root["clip_id"][:] = np.array([f"c{i}" for i in range(n_clips)], dtype=object)
    root.create_array("split", shape=(n_clips,), dtype=str)
    root["split"][:] = np.array(["train"] * n_clips, dtype=object)
    root.create_array("first_frame", data=np.arange(n_clips, dtype=np.int64) * clip_frames)
    root.create_array("n_frames", data=np.full(n_clips, clip_frames, dtype=np.int64))
    root.create_array("duration_s", data=np.ones(n_clips))
    root.attrs["complete"] = True
    return n * dim * 4


def _stream_peak_bytes(store) -> tuple[int, int]:
    """(peak traced bytes of opening the stream and running one shuffled epoch and one sequential pass,
    frames seen in the epoch)."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        # a keep budget below both stores' size: selected frames within it are kept decoded, up to that size
        stream = FrameStream(store, 0, ["train"], batch_size=256, buffer_frames=2048, seed=0, keep_bytes=2**20)
        assert stream.kept is None
        seen = sum(len(b) for b in stream.epoch(1))
        seen_seq = sum(len(b) for b in stream.sequential())
        assert seen == seen_seq == stream.n_frames
        return tracemalloc.get_traced_memory()[1] - base, seen
    finally:
        tracemalloc.stop()


def test_the_streams_memory_does_not_grow_with_the_store(tmp_path):
    """Peak traced memory of the stream over a store of N frames and one of 4N (same width, chunks, buffer):
    the same within a small margin, and far below the 4N store's size. A loader that read the array (or a
    split) whole would need at least the store's size."""
    n_clips, frames, dim, chunk = 40, 500, 64, 512  # N = 20 000 frames of width 64: 5 MB as float32
    size_n = _random_store(tmp_path / "n.zarr", n_clips, frames, dim, chunk)
    size_4n = _random_store(tmp_path / "4n.zarr", 4 * n_clips, frames, dim, chunk)
    peak_n, seen_n = _stream_peak_bytes(tmp_path / "n.zarr")
    peak_4n, seen_4n = _stream_peak_bytes(tmp_path / "4n.zarr")
    assert (seen_n, seen_4n) == (n_clips * frames, 4 * n_clips * frames)
    buffer_bytes = (2048 + chunk) * dim * 4  # the shuffle buffer plus one chunk, float32
    assert peak_4n < 1.25 * peak_n + 256 * 1024, (peak_n, peak_4n)
    assert peak_4n < size_4n / 4, (peak_4n, size_4n)
    assert peak_n >= buffer_bytes  # the measurement sees the stream's own buffer
    print(f"stream peak: {peak_n / 1e6:.2f} MB at {seen_n} frames ({size_n / 1e6:.1f} MB of float32), "
          f"{peak_4n / 1e6:.2f} MB at {seen_4n} frames ({size_4n / 1e6:.1f} MB)")


# ---------------------------------------------------------------- frame SAEs


@pytest.fixture(scope="module")
def frame_sae(crepe_store, tmp_path_factory, one_torch_thread):
    out = FrameSAEPaths.in_dir(tmp_path_factory.mktemp("fsae") / "crepe/layer6/sparsity0.9")
    metrics = train_frame_sae(crepe_store, model="crepe", layer=6, sparsity=0.9, outputs=out, dim="x2",
                              batch_size=32, epochs=3, shuffle_buffer=64, device="cpu", progress=False)
    return out, metrics


def test_a_clips_pooled_frame_code_is_the_mean_of_its_frame_codes_over_its_crop(crepe_store, frame_sae):
    out, metrics = frame_sae
    sae = SparseAutoencoder.load(out.weights)
    items = fstore.item_index(crepe_store)
    arr = fstore.layer_array(crepe_store, 6)
    codes = zstore.read_array(out.latents, "codes")
    cmax = zstore.read_array(out.latents, "codes_max")
    assert codes.shape == (len(items), sae.cfg.n_latents)
    pd.testing.assert_frame_equal(zstore.read_index(out.latents), items[["clip_id", "split", "crop"]])
    with torch.no_grad():
        for i, it in enumerate(items.itertuples(index=False)):
            x = torch.from_numpy(np.asarray(arr[it.first_frame: it.first_frame + it.n_frames], np.float32))
            c = sae.encode(x)
            np.testing.assert_allclose(codes[i], c.mean(0).numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(cmax[i], c.max(0).values.numpy(), rtol=1e-6, atol=1e-7)
    # The test clips' frame codes, kept sparsely, are the SAE's codes of exactly those frames.
    clips = fstore.clip_index(crepe_store)
    test = clips[clips["split"] == "test"]
    dense, attrs = read_frame_codes(out.frame_codes)
    rows = np.concatenate([np.arange(c.first_frame, c.first_frame + c.n_frames) for c in test.itertuples()])
    with torch.no_grad():
        ref = sae.encode(torch.from_numpy(np.asarray(arr[:], np.float32)[rows])).numpy()
    np.testing.assert_allclose(dense, ref, rtol=1e-5, atol=1e-6)
    assert attrs["nnz"] == len(rows) * sae.cfg.k
    # metrics.json: the clip SAE's keys, measured over frames.
    assert metrics["level"] == "frame" and set(metrics["splits"]) == {"train", "valid", "test"}
    for split in ("train", "valid", "test"):
        assert {"mse", "fvu", "cosine", "l0", "dead_fraction"} <= set(metrics["splits"][split])
        assert metrics["splits"][split]["n_frames"] == int(clips.loc[clips["split"] == split, "n_frames"].sum())
    assert metrics["splits"]["test"]["l0"] == sae.cfg.k
    assert json.loads(out.metrics.read_text())["level"] == "frame"


def test_frame_training_is_seeded(crepe_store, frame_sae, tmp_path):
    out, _ = frame_sae
    again = FrameSAEPaths.in_dir(tmp_path / "again")
    train_frame_sae(crepe_store, model="crepe", layer=6, sparsity=0.9, outputs=again, dim="x2", batch_size=32,
                    epochs=3, shuffle_buffer=64, device="cpu", progress=False)
    a, b = SparseAutoencoder.load(out.weights), SparseAutoencoder.load(again.weights)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(v, w, rtol=0, atol=0, equal_nan=True, msg=k)


def test_a_frame_sae_on_a_layer_missing_from_the_store_names_store_and_layer(crepe_store, tmp_path):
    out = FrameSAEPaths.in_dir(tmp_path / "fsae/crepe/layer3/sparsity0.9")
    with pytest.raises(fstore.FrameStoreError) as err:
        train_frame_sae(crepe_store, model="crepe", layer=3, sparsity=0.9, outputs=out, device="cpu", progress=False)
    msg = str(err.value)
    assert str(crepe_store) in msg and "layers [1, 6]" in msg and "layer 3" in msg and "rerun extract_frames" in msg
    assert not (tmp_path / "fsae").exists() or not any((tmp_path / "fsae").rglob("*.json"))


# ---------------------------------------------------------------- acoustics over time


def test_a_planted_f0_glide_is_followed_by_the_f0_lld_and_a_unit_that_tracks_it(tmp_path):
    sr = 16000
    t = np.arange(int(2.4 * sr)) / sr
    f0 = np.where(t < 1.2, 150 + 150 * t / 1.2, 300 - 150 * (t - 1.2) / 1.2)  # up an octave, back down
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wave = sum(0.3 / k * np.sin(k * phase) for k in range(1, 6)).astype(np.float32)
    sf.write(tmp_path / "glide.wav", wave, sr)
    lld_t, lld_v = signal_llds(wave, sr)
    names = lld_names()
    assert len(names) == 25 == lld_v.shape[1] and np.all(np.diff(lld_t) > 0)
    facts = model_facts("crepe", CREPE)
    times = facts.frame_times(facts.num_frames(len(wave)))
    true_f0 = np.interp(times, t, f0)
    rng = np.random.default_rng(0)
    units = np.column_stack([
        semitones(true_f0),                                  # follows the glide
        rng.standard_normal(len(times)),                     # noise
        semitones(np.interp(times + 0.6, t, f0)),            # the glide half a slope late
        -true_f0,                                            # follows it upside down
    ])
    track = np.interp((np.arange(int(2.4 * 100)) + 0.5) / 100, t, f0)
    out = frame_acoustics(ArraySource({"glide": (times, units)}), (names, {"glide": (lld_t, lld_v)}),
                          {"glide": track}, max_frames=10_000)
    rows = {r["target"]: r for r in out["targets"]}
    f0_row, true_row = rows[F0_LLD], rows[TRUE_F0]
    assert f0_row["best_unit"] in (0, 3) and f0_row["best_abs_rho"] > 0.95
    rho = out["rho"][names.index(F0_LLD)]
    assert rho[0] > 0.95 and rho[3] < -0.95 and abs(rho[1]) < 0.3 and abs(rho[2]) < rho[0] - 0.3
    assert true_row["best_abs_rho"] > 0.99 and abs(out["rho"][-1][0]) > 0.99
    # One to one: no unit serves two targets in the matched MCC.
    matched = [r["matched_unit"] for r in out["targets"] if r["matched_unit"] >= 0]
    assert len(matched) == len(set(matched)) == 4 and 0 < out["mcc"] <= 1


# ---------------------------------------------------------------- atlas traces


def test_atlas_traces_are_the_latent_over_the_crop_frames_and_clips_rank_by_their_peak(crepe_store, frame_sae):
    from audiosae.atlas.stats import unit_statistics
    from audiosae.frames.traces import crop0_traces

    out, _ = frame_sae
    sae = SparseAutoencoder.load(out.weights)
    items = fstore.item_index(crepe_store)
    crop0 = items[items["crop"] == 0]
    units = {0, 5, 17}
    traces = crop0_traces(crepe_store, out.weights, 6, {c: units for c in crop0["clip_id"]}, max_points=100)
    arr = fstore.layer_array(crepe_store, 6)
    times = np.asarray(zstore.open_store(crepe_store)["time_s"][:])
    for it in crop0.itertuples(index=False):
        rows = slice(it.first_frame, it.first_frame + it.n_frames)
        with torch.no_grad():
            codes = sae.encode(torch.from_numpy(np.asarray(arr[rows], np.float32))).numpy()
        for u in units:
            t = traces[(u, it.clip_id)]
            assert len(t) == 50  # 1 s crop at 50 frames/s, one slot per frame
            slots = np.floor((times[rows] - it.start_s) * 50).astype(int)
            got = np.array([t[s] for s in slots], dtype=float)
            # a slot holds the max of its frames (two frames of adjacent windows can share a 20 ms slot)
            best = {}
            for s, v in zip(slots, codes[:, u]):
                best[s] = max(best.get(s, -np.inf), float(v))
            np.testing.assert_allclose(got, [best[s] for s in slots], rtol=1e-5, atol=1e-6)
            assert all(v is None for i, v in enumerate(t) if i not in set(slots))  # padding: no value
    # Pooled to fewer points: the max of each group of slots.
    pooled = crop0_traces(crepe_store, out.weights, 6, {crop0["clip_id"].iloc[0]: {0}}, max_points=10)
    full = traces[(0, crop0["clip_id"].iloc[0])]
    want = [max([v for v in full[i:i + 5] if v is not None], default=None) for i in range(0, 50, 5)]
    assert pooled[(0, crop0["clip_id"].iloc[0])] == want
    # Clips ranked by their highest frame activation (codes_max), statistics on the mean (codes).
    ids = list(crop0["clip_id"])
    codes = zstore.read_array(out.latents, "codes")[crop0.index]
    peaks = zstore.read_array(out.latents, "codes_max")[crop0.index]
    stats = unit_statistics(codes, ids, sparse=True, top_k=3, rank_by=peaks)
    sort = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    for u in range(codes.shape[1]):
        top = stats.top[u][stats.top[u] >= 0]
        if len(top):
            assert stats.ranked[top[0], u] == peaks[sort][:, u].max()


def test_frame_sources_read_the_sampled_rows_of_the_stores(crepe_store, frame_sae):
    out, _ = frame_sae
    orig = FrameSource("original", crepe_store, 6)
    fsae = FrameSource("fsae", out.frame_codes)
    assert [c for c, _, _ in orig.clips] == [c for c, _, _ in fsae.clips]
    rows = np.array([c[2] for c in orig.clips])
    np.testing.assert_array_equal(orig.rows(rows), np.asarray(fstore.layer_array(crepe_store, 6)[:], np.float32)[rows])
    dense, _ = read_frame_codes(out.frame_codes)
    pick = np.array([0, 3, 4, len(dense) - 1])
    np.testing.assert_array_equal(fsae.rows(pick), dense[pick])
