"""The controls section end to end on planted stores: job JSONs -> tables -> figures -> claim against the twin."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audiosae.controls.report import build_tables, make_figures, sparse_probe_doc, stability_doc
from audiosae.report.claims import answer_claims
from audiosae.report.registry import CONTROLS
from audiosae.store import write_store

CLASSES = ["belt", "breathy", "trill"]


def _manifest(n=240, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(n)]
    return pd.DataFrame({"clip_id": ids, "path": [f"{c}.wav" for c in ids], "singer": "s1",
                         "technique": [CLASSES[i % 3] for i in range(n)],
                         "split": rng.choice(["train", "train", "valid", "test"], size=n).tolist(),
                         "duration_s": 1.0, "sample_rate": 16000})


def _store(path, man, values):
    write_store(path, {"layer0": values.astype(np.float32)}, man[["clip_id", "split"]].assign(crop=0))


def _values(man, informative: bool, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(man), 40))
    if informative:  # unit 4 says belt, unit 2 breathy, unit 9 trill
        for unit, cls in ((4, "belt"), (2, "breathy"), (9, "trill")):
            x[:, unit] += 3.0 * (man["technique"] == cls).to_numpy()
    return x


def test_sparse_probing_tables_figure_and_claim_against_the_twin(tmp_path):
    man = _manifest()
    targets = [{"label": "technique", "split": "corpus"}]
    docs = []
    # Trained model: the "SAE" store isolates the label in single units; its layer spreads it over all units
    # (a rotation). The twin: nothing in either.
    rot = np.linalg.qr(np.random.default_rng(7).standard_normal((40, 40)))[0]
    planted = _values(man, True, 1)
    reps = {("m", "original"): planted @ rot, ("m", "sae0.9"): planted,
            ("m_random", "original"): _values(man, False, 2), ("m_random", "sae0.9"): _values(man, False, 3)}
    for (model, rep), x in reps.items():
        _store(tmp_path / f"{model}-{rep}.zarr", man, x)
        doc = sparse_probe_doc(tmp_path / f"{model}-{rep}.zarr", "layer0", man, targets, model=model, layer=0,
                               rep=rep, ks=(1, 5), resamples=200)
        path = tmp_path / f"{model}-{rep}.json"
        path.write_text(json.dumps(doc))
        docs.append(path)
    tables = build_tables([], docs, resamples=200)
    sp = tables["sparse_probing"]
    sae_k1 = sp[(sp["model"] == "m") & (sp["rep"] == "sae0.9") & (sp["k"] == 1)].iloc[0]
    assert "belt:4" in sae_k1["units_k"] and "trill:9" in sae_k1["units_k"]
    assert sae_k1["delta_lo"] > 0  # one planted unit beats any one rotated dimension
    assert sp[sp["twin"]]["model"].eq("m_random").all()
    scale = tables["activation_scale"]
    assert scale.loc[0, "model"] == "m" and scale.loc[0, "scale_twin"] == pytest.approx(1.0, abs=0.1)
    claims = {c.key: c for c in answer_claims(tables, sections=[CONTROLS])}  # judged against the twin
    assert claims["stability"].verdict == "untestable"  # no seeds in these tables
    claim = claims["sparse-probing"]
    assert claim.numbers["trained_verdict"] == "supported" and claim.numbers["twin_verdict"] != "supported"
    # The twin's noise-only difference has a wide interval (about [-0.20, +0.04]) whose upper end passes the
    # trained lower end (about +0.04): trained holds, the twin does not, but not beyond the interval.
    t_eff, r_eff = claim.numbers["trained"]["effect"], claim.numbers["twin"]["effect"]
    assert claim.verdict == ("supported" if t_eff[1] > r_eff[2] else "inconclusive")
    assert claim.verdict == "inconclusive"
    captions = make_figures(tables, tmp_path / "figures", ["sparse_probing", "stability"])
    assert (tmp_path / "figures/sparse_probing.png").stat().st_size > 0
    assert "more than one seed" in captions["stability"]


def test_stability_doc_matches_seeds_and_gives_each_latent_its_recurrence(tmp_path):
    import torch

    from audiosae.sae.model import SAEConfig, SparseAutoencoder

    man = _manifest(n=12)
    torch.manual_seed(0)
    base = SparseAutoencoder(SAEConfig(input_dim=8, n_latents=10, k=2))
    dirs = {}
    for seed, perm in ((42, np.arange(10)), (43, np.random.default_rng(1).permutation(10))):
        sae = SparseAutoencoder(SAEConfig(input_dim=8, n_latents=10, k=2))
        with torch.no_grad():
            sae.decoder.weight.copy_(base.decoder.weight[:, torch.as_tensor(perm)])
        d = tmp_path / f"seed{seed}"
        d.mkdir()
        sae.save(d / "sae.safetensors")
        codes = np.ones((len(man), 10), np.float32)
        codes[:, 0 if seed == 42 else 5] = 0  # one dead latent each
        write_store(d / "latents.zarr", {"codes": codes}, man[["clip_id", "split"]].assign(crop=0))
        dirs[seed] = d
    doc = stability_doc(dirs, model="m", layer=1, level="clip", sparsity="0.9", default_seed=42)
    (pair,) = doc["pairs"]
    assert pair["n_a"] == 9 and pair["n_b"] == 9
    rec = doc["recurrence"]["43"]
    assert len(rec["latent"]) == 9
    path = tmp_path / "stab.json"
    path.write_text(json.dumps(doc))
    table = build_tables([path], [])["stability"]
    assert table.loc[0, "mean_cos"] > table.loc[0, "baseline_mean_cos"]
    captions = make_figures(build_tables([path], []), tmp_path / "fig", ["stability"])
    assert "Hungarian" in captions["stability"]


def test_stability_claim_says_when_the_dictionary_is_not_determined_by_the_data():
    from audiosae.controls.report import STABILITY_COLUMNS, claim_stability

    def table(cosines):
        return pd.DataFrame([{c: None for c in STABILITY_COLUMNS} | {
            "model": "m", "layer": i, "mean_cos": cos, "baseline_mean_cos": 0.19, "share_matched": 0.5 * (cos > 0.5),
            "baseline_share_matched": 0.0, "threshold": 0.7, "near_baseline": cos - 0.19 < 0.05}
            for i, cos in enumerate(cosines)])

    (near,) = claim_stability(table([0.21, 0.22, 0.20, 0.23]))
    assert near.verdict == "not supported" and "not determined by the data" in near.sentence
    (far,) = claim_stability(table([0.9, 0.85, 0.95, 0.88]))
    assert far.verdict == "supported" and "not determined" not in far.sentence
    (none,) = claim_stability(pd.DataFrame(columns=STABILITY_COLUMNS))
    assert none.verdict == "untestable"


def test_stability_claim_gives_the_clip_level_its_own_sentence():
    from audiosae.controls.report import STABILITY_COLUMNS, claim_stability

    rows = [{c: None for c in STABILITY_COLUMNS} | {
        "model": "m", "layer": i, "level": level, "mean_cos": cos, "baseline_mean_cos": 0.19,
        "share_matched": share, "baseline_share_matched": 0.01, "threshold": 0.7, "near_baseline": cos - 0.19 < 0.05}
        for i, (level, cos, share) in enumerate([("clip", 0.21, 0.02), ("clip", 0.40, 0.10), ("clip", 0.22, 0.04),
                                                 ("frame", 0.80, 0.60)])]
    (claim,) = claim_stability(pd.DataFrame(rows))
    assert "clip SAEs (its recipe, kept for the reproduction): 1 of 3 seed pairs determined by the data, " \
           "5 % of live latents recurring at cosine ≥ 0.7 (random: 1 %" in claim.sentence
    assert (claim.numbers["clip_pairs"], claim.numbers["clip_determined"]) == (3, 1)
    (frames,) = claim_stability(pd.DataFrame(rows[3:]))
    assert "clip SAEs" not in frames.sentence and "clip_pairs" not in frames.numbers
