"""A node where almost nothing lives (a random twin's sparse layer) finishes, with the reason stated."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from audiosae.atlas.ablation import ablation_effects, ablation_m, selection_aurocs
from audiosae.atlas.truth import matched_correlation


def test_fewer_finite_units_than_factors_leaves_factors_unmatched_with_a_note():
    rho = np.array([[0.9, 0.1, 0.2], [np.nan, np.nan, np.nan], [np.nan, np.nan, np.nan]])  # 1 live unit, 3 factors
    match = matched_correlation(rho)
    assert match["unit"].tolist() == [0, -1, -1]
    assert match["rho"][0] == pytest.approx(0.9) and np.isnan(match["rho"][1:]).all()
    assert match["mcc"] == pytest.approx(0.9)
    assert match["note"] == "2 of 3 factors unmatched: only 1 unit with a finite ρ"
    none = matched_correlation(np.full((2, 2), np.nan))
    assert np.isnan(none["mcc"]) and (none["unit"] == -1).all() and "only 0 units" in none["note"]
    assert matched_correlation(np.eye(3))["note"] == ""


def test_ablation_m_is_lowered_or_the_test_skipped():
    assert ablation_m(20, 8) == (8, "")
    assert ablation_m(7, 8) == (3, "only 7 live latents: m lowered from 8 to 3 (half of them)")
    assert ablation_m(1, 8) == (0, "skipped: 1 live latent, too few to ablate and compare")


def _node(n=12, sr=16000, root=None):
    """A clip store of 5 units of which only unit 0 fires, two true factors, and the media of the clips."""
    import soundfile as sf

    from audiosae.store import write_store

    wavs = root / "wavs"
    wavs.mkdir(parents=True)
    ids, f0 = [f"c{i:02d}" for i in range(n)], 110.0 * 2 ** (np.arange(n) / 12)
    t = np.arange(int(1.1 * sr)) / sr
    for cid, f in zip(ids, f0):
        sf.write(wavs / f"{cid}.wav", (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)
    manifest = pd.DataFrame({"clip_id": ids, "path": [str(wavs / f"{c}.wav") for c in ids],
                             "singer": ["s1", "s2", "s3"] * (n // 3), "technique": ["belt", "vibrato"] * (n // 2),
                             "split": ["train", "valid", "test"] * (n // 3), "duration_s": 1.1, "sample_rate": sr})
    codes = np.zeros((n, 5), np.float32)
    codes[:, 0] = np.log(f0)
    index = pd.DataFrame({"clip_id": ids, "split": manifest["split"], "crop": 0})
    write_store(root / "latents.zarr", {"codes": codes}, index)
    rng = np.random.default_rng(0)
    pd.DataFrame({"clip_id": ids, "loudness_sma3_amean": rng.normal(size=n), "factor_f0_hz": f0,
                  "factor_noise_ratio": rng.normal(size=n)}).to_parquet(root / "attributes.parquet")
    return manifest


def test_atlas_page_of_a_node_with_fewer_live_units_than_factors_is_written(tmp_path):
    from audiosae.atlas.build import build_atlas
    from audiosae.atlas.clips import write_clips

    manifest = _node(root=tmp_path)
    clips = tmp_path / "clips"
    write_clips(manifest, clips, crop_seconds=1.0, train_crops=1, crop_seed=42, progress=False)
    out = tmp_path / "atlas/m/layer0/sae0.9"
    summary = build_atlas(tmp_path / "latents.zarr", "codes", manifest, tmp_path / "attributes.parquet", clips, out,
                          model="m", layer=0, rep="sae0.9", top_clips=2, median_clips=1, ridge_folds=3)
    assert summary["live"] == 1
    truth = json.loads((out / "summary.json").read_text())["truth"]
    by = {f["factor"]: f for f in truth["factors"]}
    assert by["factor_f0_hz"]["unit"] == 0 and by["factor_noise_ratio"]["unit"] == -1
    assert by["factor_noise_ratio"]["rho"] is None and "1 of 2 factors unmatched" in truth["note"]
    html = (out / "index.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="atlas-data">(.*?)</script>', html, re.S).group(1).replace("<\\/", "</"))
    assert data["summary"]["truth"]["note"] == truth["note"]


def _ablate(n_live, m=8, n_lat=16, seed=0):
    rng = np.random.default_rng(seed)
    classes = ["A", "B"]
    decoder = rng.normal(size=(n_lat, 3))
    live = np.zeros(n_lat, bool)
    live[:n_live] = True
    y = np.arange(40) % 2
    codes = np.abs(rng.normal(size=(40, n_lat))) * live
    codes[y == 0, 0] += 2.0
    auc = selection_aurocs(codes, [classes[i] for i in y], classes)
    weight, bias = rng.normal(size=(2, 3)), np.zeros(2)
    return ablation_effects(lambda c: np.asarray(c) @ decoder, codes, y, weight, bias, classes, auc, live,
                            m=m, draws=3, seed=seed)


def test_ablation_of_a_node_with_fewer_live_latents_than_m_runs_and_reaches_the_table_and_figure(tmp_path):
    from audiosae.atlas.figures import fig_ablation
    from audiosae.atlas.report import ablation_table
    from audiosae.jsonio import write_json

    table7, summary7 = _ablate(7)
    assert summary7["m"] == 3 and summary7["m_requested"] == 8 and "m lowered from 8 to 3" in summary7["note"]
    assert all(len(lat.split(";")) == 3 for lat in table7["latents"])
    table1, summary1 = _ablate(1)
    assert summary1["skipped"] and table1["drop_class"].isna().all() and (table1["m"] == 0).all()
    doc = {"model": "m_random", "layer": 1, "target": "technique", "classes": ["A", "B"], "m": 8, "reps": {
        "sae0.5": {**summary7, "classes": table7.to_dict(orient="records")},
        "sae0.9": {**summary1, "classes": table1.to_dict(orient="records")}}}
    write_json(tmp_path / "ablation.json", doc)
    table = ablation_table([tmp_path / "ablation.json"])
    assert set(table["m"]) == {3, 0}
    assert table.loc[table["rep"] == "sae0.9", "note"].str.startswith("skipped: 1 live latent").all()
    fig, caption = fig_ablation({"ablation": table})
    assert fig is not None and caption
