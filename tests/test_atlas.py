"""The latent atlas's statistics, ground truth and ablation on planted data."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from audiosae.atlas.ablation import ablation_effects, selection_aurocs
from audiosae.atlas.stats import (CONSTANT, DEAD, UNCLEAR, AtlasError, auroc_matrix, interpretable_share,
                                  spearman_matrix, unit_statistics)
from audiosae.atlas.truth import matched_correlation, ridge_readout


def _ids(n):
    return [f"clip{i:04d}" for i in range(n)]


@pytest.fixture(scope="module")
def planted():
    """200 clips, 12 units: unit 5 = indicator of technique 'vibrato' + noise, unit 7 = exp(f0),
    unit 3 never fires (dead), the others sparse noise."""
    rng = np.random.default_rng(0)
    n = 200
    labels = pd.DataFrame({"technique": rng.choice(["belt", "breathy", "vibrato", "trill"], n),
                           "singer": rng.choice(["female1", "male1", "male2"], n)})
    attrs = pd.DataFrame({"F0semitoneFrom27.5Hz_sma3nz_amean": rng.normal(size=n),
                          "loudness_sma3_amean": rng.normal(size=n)})
    codes = np.maximum(rng.normal(size=(n, 12)) - 1.0, 0.0)
    codes[:, 5] = (labels["technique"] == "vibrato") * 1.0 + 0.3 * rng.random(n)
    codes[:, 7] = np.exp(attrs.iloc[:, 0].to_numpy())
    codes[:, 3] = 0.0
    stats = unit_statistics(codes, _ids(n), labels, {"egemaps": attrs}, sparse=True)
    return stats, codes, labels, attrs


def test_indicator_unit_gets_its_class(planted):
    stats, *_ = planted
    row = stats.table.loc[5]
    assert row["technique_class"] == "vibrato" and row["technique_auroc"] >= 0.95
    assert row["clear"] and row["label"].startswith("technique=vibrato (AUROC")


def test_monotone_transform_of_an_attribute_has_rho_one(planted):
    stats, *_ = planted
    row = stats.table.loc[7]
    assert row["attr1"] == "F0semitoneFrom27.5Hz_sma3nz_amean" and row["attr1_rho"] == pytest.approx(1.0, abs=1e-12)
    assert "↑ ρ 1.00" in row["label"]


def test_dead_unit_is_dead_with_nan_statistics(planted):
    stats, *_ = planted
    row = stats.table.loc[3]
    assert row["dead"] and row["label"] == DEAD and not row["clear"]
    assert np.isnan(row["technique_auroc"]) and np.isnan(row["attr1_rho"]) and np.isnan(row["clarity"])
    assert row["top_clips"] == "" and row["firing_rate"] == 0


def test_noise_units_are_unclear_and_share_counts_live_units(planted):
    stats, *_ = planted
    noise = stats.table.drop(index=[3, 5, 7])
    assert (noise["label"] == UNCLEAR).all()
    share = interpretable_share(stats.table)
    assert share == {**share, "units": 12, "live": 11, "dead": 1, "constant": 0, "clear": 2, "clear_by_auroc": 1,
                     "clear_by_rho": 1}
    assert share["share"] == pytest.approx(2 / 11)


def test_constant_unit_of_the_original_layer_is_constant_not_dead():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 3))
    x[:, 1] = 2.5  # constant, non-zero
    x[:, 2] = 0.0
    labels = pd.DataFrame({"technique": rng.choice(["a", "b"], 30)})
    attrs = pd.DataFrame({"f0": rng.normal(size=30)})
    t = unit_statistics(x, _ids(30), labels, {"egemaps": attrs}, sparse=False).table
    assert list(t["label"][1:]) == [CONSTANT, CONSTANT] and not t["dead"].any()
    assert t.loc[1:, ["technique_auroc", "attr1_rho", "clarity"]].isna().all().all()
    # and as SAE codes, the all-zero unit is dead while the constant 2.5 one is constant
    t = unit_statistics(x.clip(0), _ids(30), labels, {"egemaps": attrs}, sparse=True).table
    assert list(t["label"][1:]) == [CONSTANT, DEAD]


def test_average_ranks_equal_scipys():
    from scipy.stats import rankdata as scipy_rankdata

    from audiosae.atlas.stats import rankdata

    rng = np.random.default_rng(7)
    for x in (rng.integers(0, 3, size=(50, 6)).astype(float), rng.normal(size=(40, 3)), np.zeros((5, 2)),
              np.array([[1.0], [np.inf], [-np.inf], [1.0]])):
        assert np.array_equal(rankdata(x), scipy_rankdata(x, axis=0))


def test_auroc_and_rho_equal_sklearn_and_scipy_on_data_with_ties():
    rng = np.random.default_rng(2)
    n = 150
    x = rng.integers(0, 4, size=(n, 9)).astype(float)  # many ties
    x[:, 4] = np.round(rng.normal(size=n), 1)
    y = rng.integers(0, 4, size=n)
    auc = auroc_matrix(x, y)
    for c, u in itertools.product(range(4), range(9)):
        assert auc[c, u] == pytest.approx(roc_auc_score(y == c, x[:, u]), abs=1e-12)
    a = rng.integers(0, 6, size=(n, 5)).astype(float)
    a[[3, 10, 40], 2] = np.nan  # an attribute missing on some clips
    rho = spearman_matrix(x, a)
    for u, j in itertools.product(range(9), range(5)):
        ok = np.isfinite(a[:, j])
        assert rho[u, j] == pytest.approx(spearmanr(x[ok, u], a[ok, j]).statistic, abs=1e-12)


def test_best_class_margin_and_top_clips_ties_by_clip_id():
    ids = ["d", "b", "a", "c", "e", "f"]
    x = np.array([[1.0], [3.0], [3.0], [0.0], [2.0], [3.0]])
    labels = pd.DataFrame({"technique": ["p", "q", "q", "p", "p", "q"]})
    st = unit_statistics(x, ids, labels, None, top_k=4, median_k=2)
    row = st.table.loc[0]
    assert row["technique_class"] == "q"
    assert row["technique_auroc"] == pytest.approx(roc_auc_score([0, 1, 1, 0, 0, 1], x[:, 0]))
    assert row["technique_margin"] == pytest.approx(row["technique_auroc"] - (1 - row["technique_auroc"]))
    assert row["top_clips"] == "a;b;f;e"  # the three 3.0s by clip id, then 2.0; "c" (0) never fires
    assert row["median_clips"] == "f;e"  # firing clips a b f e d (5): the median is f, the pair around it f e


def test_one_class_label_column_is_an_error_naming_it():
    x = np.ones((5, 2))
    with pytest.raises(AtlasError, match=r"label column 'context' holds a single class \('scales'\)"):
        unit_statistics(x, _ids(5), pd.DataFrame({"context": ["scales"] * 5}), None)


def test_mcc_equals_brute_force_on_a_4x4_matrix():
    rng = np.random.default_rng(3)
    for _ in range(20):
        rho = rng.uniform(-1, 1, size=(4, 4))  # [units, factors]
        best = max(np.mean([abs(rho[perm[f], f]) for f in range(4)]) for perm in itertools.permutations(range(4)))
        got = matched_correlation(rho)
        assert got["mcc"] == pytest.approx(best, abs=1e-12)
        assert sorted(got["unit"]) == [0, 1, 2, 3]
        assert np.allclose(got["rho"], rho[got["unit"], range(4)])


def test_ridge_readout_finds_a_linear_factor_and_not_noise():
    rng = np.random.default_rng(4)
    n, d = 120, 30
    x = rng.normal(size=(n, d))
    groups = np.repeat([f"s{i}" for i in range(6)], n // 6)
    y = np.column_stack([x @ rng.normal(size=d) + 0.1 * rng.normal(size=n), rng.normal(size=n), np.ones(n)])
    r2 = ridge_readout(x, y, groups, folds=3)
    assert r2[0] > 0.9 and r2[1] < 0.2 and np.isnan(r2[2])
    with pytest.raises(AtlasError, match="at least two groups"):
        ridge_readout(x, y, np.zeros(n), folds=3)


def test_ablating_a_class_latents_removes_that_class(one_torch_thread):
    """Latents 0-3 write class A's direction, 4-7 B's, 8-11 C's, and an A clip is a B clip plus A's
    latents: zeroing A's latents turns A clips into B clips for a probe trained on the original
    vectors, and leaves B and C alone; zeroing 4 random latents does much less to A."""
    from audiosae.probe import train_probe

    rng = np.random.default_rng(5)
    dim, n_lat, per = 6, 24, 4
    classes = ["A", "B", "C"]
    decoder = rng.normal(scale=0.05, size=(n_lat, dim))
    for c in range(3):
        decoder[c * per:(c + 1) * per, c] += 1.0  # class c's latents write dimension c

    def make(n):
        y = rng.integers(0, 3, size=n)
        codes = np.abs(rng.normal(scale=0.2, size=(n, n_lat))) * (rng.random((n, n_lat)) < 0.3)
        for c in range(3):
            codes[y == c, c * per:(c + 1) * per] += 1.0
        codes[y == 0, per:2 * per] += 1.0  # A = B + A's own latents
        return codes, y

    def decode(codes):
        return np.asarray(codes) @ decoder

    fit_codes, fit_y = make(300)
    test_codes, test_y = make(150)
    probe = train_probe(decode(fit_codes), fit_y, decode(fit_codes[:60]), fit_y[:60], 3, epochs=80, seed=0)
    auc = selection_aurocs(fit_codes, [classes[i] for i in fit_y], classes)
    table, summary = ablation_effects(decode, test_codes, test_y, probe.weight.astype(float),
                                      probe.bias.astype(float), classes, auc, np.ones(n_lat, bool), m=per,
                                      draws=5, seed=0)
    assert list(table["class"]) == classes
    a = table.iloc[0]
    assert sorted(map(int, a["latents"].split(";"))) == list(range(per))
    assert a["recall"] > 0.9 and a["drop_class"] > 0.8 and abs(a["drop_others"]) < 0.1
    assert a["control_drop_class"] < 0.5 and a["specificity"] > a["control_specificity"] + 0.5
    assert summary["classes"] == 3 and summary["m"] == per


# ---------------------------------------------------------------- one job on a tiny corpus, and bad input


def _tiny_corpus(root, n=12, sr=16000, seconds=1.0):
    """n sine-tone clips (f0 rising with the clip index), a manifest, a store of 4 units and attributes."""
    import soundfile as sf

    from audiosae.store import write_store

    wavs = root / "wavs"
    wavs.mkdir(parents=True)
    ids, f0 = [f"c{i:02d}" for i in range(n)], 110.0 * 2 ** (np.arange(n) / 12)
    t = np.arange(int(1.3 * sr)) / sr
    for cid, f in zip(ids, f0):
        sf.write(wavs / f"{cid}.wav", (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)
    manifest = pd.DataFrame({"clip_id": ids, "path": [str(wavs / f"{c}.wav") for c in ids],
                             "singer": ["s1", "s2", "s3"] * (n // 3), "technique": ["belt", "vibrato"] * (n // 2),
                             "split": ["train", "valid", "test"] * (n // 3), "duration_s": 1.3, "sample_rate": sr})
    codes = np.zeros((n, 4), np.float32)
    codes[:, 0] = np.log(f0)  # a monotone transform of f0
    codes[:, 1] = (manifest["technique"] == "vibrato") * 2.0
    codes[:, 3] = np.where(np.arange(n) % 4 == 0, 1.0, 0.0)
    index = pd.DataFrame({"clip_id": ids, "split": manifest["split"], "crop": 0})
    write_store(root / "latents.zarr", {"codes": codes}, index)
    attrs = pd.DataFrame({"clip_id": ids, "F0semitoneFrom27.5Hz_sma3nz_amean": f0 + 0.0,
                          "loudness_sma3_amean": np.random.default_rng(0).normal(size=n), "factor_f0_hz": f0,
                          "factor_noise_ratio": np.random.default_rng(1).normal(size=n)})
    attrs.to_parquet(root / "attributes.parquet")
    return manifest, ids


def test_atlas_job_writes_units_summary_and_a_page_with_playable_media(tmp_path):
    import soundfile as sf

    from audiosae.atlas.build import build_atlas
    from audiosae.atlas.clips import write_clips

    manifest, ids = _tiny_corpus(tmp_path)
    clips = tmp_path / "results/atlas/clips"
    write_clips(manifest, clips, crop_seconds=1.0, train_crops=2, crop_seed=42, progress=False)
    out = tmp_path / "results/atlas/m/layer0/sae0.5"
    asked = []

    def traces(unit, clip_ids):  # a frame-level SAE's activation over time, as issue 13 provides it
        asked.append(unit)
        return {c: [0.0, 0.5 * unit, 1.0] for c in clip_ids}

    summary = build_atlas(tmp_path / "latents.zarr", "codes", manifest, tmp_path / "attributes.parquet", clips, out,
                          model="m", layer=0, rep="sae0.5", top_clips=3, median_clips=2, ridge_folds=3,
                          traces=traces)
    units = pd.read_csv(out / "units.csv", keep_default_na=False, na_values=[""])
    assert list(units["label"][[1, 2]]) == ["technique=vibrato (AUROC 1.00)", "dead"]
    assert units.loc[0, "factor1"] == "factor_f0_hz" and units.loc[0, "factor1_rho"] == pytest.approx(1.0)
    assert summary["live"] == 3 and summary["dead"] == 1 and summary["clear"] == 2
    truth = summary["truth"]
    assert truth["factors"][0]["factor"] == "factor_f0_hz" and truth["factors"][0]["unit"] == 0
    assert truth["factors"][0]["rho"] == pytest.approx(1.0)
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "</html>" in html and '"units":[' in html
    import json
    import re

    data = json.loads(re.search(r'id="atlas-data">(.*?)</script>', html, re.S).group(1).replace("<\\/", "</"))
    assert data["clips"] and all(c["audio"].startswith("../../../clips/") for c in data["clips"])
    card = next(u for u in data["units"] if u["u"] == 1)
    assert card["top"] and all(item["trace"] == [0.0, 0.5, 1.0] for item in card["top"] + card["med"])
    assert 2 not in asked  # the dead unit shows no clips
    for c in data["clips"]:
        wave, sr = sf.read(out / c["audio"])  # the relative path resolves, the crop decodes: 1 s at the file's rate
        assert len(wave) == sr
    # a clip longer than the crop: a train clip's crop 0 starts where the extraction's first crop starts
    index = pd.read_csv(clips / "index.csv")
    from audiosae.data.audio import crop_starts

    row = index[index["clip_id"] == ids[0]].iloc[0]
    assert row["start_s"] == crop_starts(ids[0], 1.3, 1.0, 2, 42, "train")[0] and row["start_s"] > 0


def test_atlas_for_a_rep_without_a_store_names_it(tmp_path):
    from audiosae.atlas.build import build_atlas

    manifest, _ = _tiny_corpus(tmp_path)
    with pytest.raises(AtlasError, match=r"atlas for rep 'sae0.99': no store at .*sae0.99"):
        build_atlas(tmp_path / "sae0.99/latents.zarr", "codes", manifest, tmp_path / "attributes.parquet",
                    tmp_path / "clips", tmp_path / "out", model="m", layer=0, rep="sae0.99")
    assert not (tmp_path / "out").exists()


def test_unreadable_audio_stops_the_clips_naming_the_clip(tmp_path):
    from audiosae.atlas.clips import write_clips

    manifest, ids = _tiny_corpus(tmp_path)
    Path(manifest.loc[5, "path"]).write_bytes(b"RIFF this is not audio")
    with pytest.raises(AtlasError, match=rf"clip '{ids[5]}': cannot read audio file .*{ids[5]}.wav"):
        write_clips(manifest, tmp_path / "clips", crop_seconds=1.0, train_crops=2, crop_seed=42, progress=False)
    assert not (tmp_path / "clips").exists() and not list(tmp_path.glob("clips.tmp-*"))


def test_unencodable_audio_names_the_clip(tmp_path):
    from audiosae.atlas.clips import write_clip_media

    with pytest.raises(AtlasError, match="cannot encode clip 'c07' as Ogg Vorbis: its sample rate 384000 Hz"):
        write_clip_media(np.zeros(100, np.float32), 384_000, tmp_path / "x.ogg", tmp_path / "x.png", "c07")
    with pytest.raises(AtlasError, match="cannot encode clip 'c08' as Ogg Vorbis: its samples hold NaN"):
        write_clip_media(np.full(100, np.nan, np.float32), 16000, tmp_path / "x.ogg", tmp_path / "x.png", "c08")
    assert not (tmp_path / "x.ogg").exists()


def test_probe_weights_of_a_standardised_probe_fold_into_raw_inputs(tmp_path, one_torch_thread):
    from audiosae.atlas.ablation import load_probe_weights
    from audiosae.probe import train_probe

    rng = np.random.default_rng(6)
    x, y = rng.normal(loc=3.0, scale=[1, 5, 0.2], size=(90, 3)), rng.integers(0, 3, 90)
    fit = train_probe(x, y, x[:30], y[:30], 3, epochs=5, standardize=True)
    path = tmp_path / "original.npz"
    np.savez(path, weight=fit.weight, bias=fit.bias, classes=np.array(["a", "b", "c"]), mean=fit.mean,
             scale=fit.scale)
    weight, bias, classes = load_probe_weights(path)
    assert classes == ["a", "b", "c"] and np.allclose(x @ weight.T + bias, fit.logits(x), atol=1e-5)
    with pytest.raises(AtlasError, match="no probe weights at .*missing.npz; run the probe"):
        load_probe_weights(tmp_path / "missing.npz")


def test_ablation_job_on_a_saved_sae_and_its_table_and_figure(tmp_path, one_torch_thread):
    """run_ablation end to end: an SAE on disk whose latent 0 marks class A (A = B + latent 0's direction),
    its latents.zarr, a probe's .npz trained on the original vectors; then the report's table and figure."""
    import json

    import torch

    from audiosae.atlas.ablation import run_ablation
    from audiosae.atlas.figures import fig_ablation
    from audiosae.atlas.report import ablation_table
    from audiosae.probe import train_probe
    from audiosae.sae.model import SAEConfig, SparseAutoencoder
    from audiosae.store import write_store

    rng = np.random.default_rng(8)
    classes, n = ["A", "B", "C"], 150
    y = np.arange(n) % 3
    x = np.zeros((n, 4))
    x[:, 3] = 1.0  # every clip
    x[y == 0, 0] = 1.0
    x[y <= 1, 1] = 1.0  # A and B
    x[y == 2, 2] = 1.0
    x += 0.05 * rng.normal(size=x.shape)
    sae = SparseAutoencoder(SAEConfig(input_dim=4, n_latents=8, k=3))
    with torch.no_grad():
        directions = np.vstack([np.eye(4), 0.3 * rng.normal(size=(4, 4))])
        sae.decoder.weight.copy_(torch.tensor(directions.T, dtype=torch.float32))
        sae.encoder.weight.copy_(torch.tensor(directions, dtype=torch.float32))
        sae.encoder.bias.zero_()
        codes = sae.encode(torch.tensor(x, dtype=torch.float32)).numpy()
    sae_dir = tmp_path / "results/sae/m/layer0/sparsity0.5"
    sae_dir.mkdir(parents=True)
    sae.save(sae_dir / "sae.safetensors")
    ids = [f"c{i:03d}" for i in range(n)]
    split = np.where(np.arange(n) < 90, "train", "test")
    write_store(sae_dir / "latents.zarr", {"codes": codes}, pd.DataFrame({"clip_id": ids, "split": split, "crop": 0}))
    manifest = pd.DataFrame({"clip_id": ids, "path": "x.wav", "technique": [classes[i] for i in y], "split": split,
                             "duration_s": 1.0, "sample_rate": 16000})
    fit = train_probe(x[:90], y[:90], x[:90], y[:90], 3, epochs=60, lr=0.05, seed=0)  # trained to fit its classes
    npz = tmp_path / "original.npz"
    np.savez(npz, weight=fit.weight, bias=fit.bias, classes=np.array(classes))

    doc = run_ablation({"sae0.5": sae_dir}, npz, manifest, label="technique", model="m", layer=0, m=1, draws=20,
                       seed=0)
    rows = {r["class"]: r for r in doc["reps"]["sae0.5"]["classes"]}
    assert rows["A"]["latents"] == "0" and rows["A"]["recall"] > 0.9
    assert rows["A"]["drop_class"] > 0.9 and abs(rows["A"]["drop_others"]) < 0.05
    assert rows["A"]["control_drop_class"] < 0.5
    path = tmp_path / "results/ablation/m/layer0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    table = ablation_table([path])
    assert list(table["class"]) == classes and set(table["rep"]) == {"sae0.5"} and (table["m"] == 1).all()
    fig, caption = fig_ablation({"ablation": table})
    assert "zeroing" in caption and len(fig.axes) == 1

    # the same SAE imported in SAELens's layout (sae.external): its folder holds its codes and no sae.safetensors;
    # the ablation decodes it with the interop reader and finds the same drops
    from safetensors.torch import save_file

    lens = tmp_path / "lens"
    lens.mkdir()
    save_file({"W_enc": sae.encoder.weight.detach().T.contiguous(), "b_enc": sae.encoder.bias.detach().clone(),
               "W_dec": sae.decoder.weight.detach().T.contiguous(), "b_dec": torch.zeros(4)},
              str(lens / "sae_weights.safetensors"))
    (lens / "cfg.json").write_text(json.dumps({"architecture": "topk", "d_in": 4, "d_sae": 8, "k": 3,
                                               "apply_b_dec_to_input": True, "normalize_activations": "none"}))
    ext_dir = tmp_path / "results/ext/m/layer0/lens"
    write_store(ext_dir / "latents.zarr", {"codes": codes}, pd.DataFrame({"clip_id": ids, "split": split, "crop": 0}))
    both = run_ablation({"sae0.5": sae_dir, "ext-lens": ext_dir}, npz, manifest, label="technique", model="m",
                        layer=0, m=1, draws=20, seed=0, external={"ext-lens": {"format": "saelens", "path": lens}})
    theirs = {r["class"]: r for r in both["reps"]["ext-lens"]["classes"]}
    for c in classes:
        for key in ("latents", "recall", "drop_class", "drop_others"):
            assert theirs[c][key] == pytest.approx(rows[c][key]), (c, key)
    with pytest.raises(FileNotFoundError):  # without `external` it would look for our weights beside the codes
        run_ablation({"ext-lens": ext_dir}, npz, manifest, label="technique", model="m", layer=0, m=1, draws=2)


def test_claim_five_verdict_follows_the_interpretable_table():
    from audiosae.atlas.report import claim_interpretable

    def table(deltas, frame_deltas=()):
        rows = [{"model": "m", "layer": i, "rep": "original", "level": "original", "sparsity": np.nan, "share": 0.2,
                 "clear": 2, "delta_share": 0.0} for i in range(len(deltas))]
        rows += [{"model": "m", "layer": i, "rep": "sae0.9", "level": "clip", "sparsity": 0.9, "share": 0.2 + d,
                  "clear": 5, "delta_share": d} for i, d in enumerate(deltas)]
        rows += [{"model": "m", "layer": i, "rep": "fsae0.9", "level": "frame", "sparsity": 0.9, "share": 0.2 + d,
                  "clear": 5, "delta_share": d} for i, d in enumerate(frame_deltas)]
        return {"interpretable": pd.DataFrame(rows).assign(auroc_threshold=0.9, rho_threshold=0.7)}

    assert claim_interpretable(table([0.1, 0.2, 0.05, 0.01])).verdict == "supported"
    assert claim_interpretable(table([0.1, -0.2, 0.05, -0.01])).verdict == "mixed"
    no = claim_interpretable(table([-0.1, -0.2, 0.05, -0.01], frame_deltas=[0.3, 0.3, 0.3, 0.3]))
    assert no.verdict == "not supported" and no.numbers["sae_share_higher"] == 1
    assert "1 of 4 (node, sparsity) pairs" in no.sentence and "Frame-level SAEs: higher in 4 of 4" in no.sentence
    assert claim_interpretable({"interpretable": pd.DataFrame()}).verdict == "untestable"
