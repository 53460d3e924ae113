"""Tables of the report stage, built from a small fake results tree."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from fake_results import MODELS, PROBE_TARGETS, SPARSITIES, write_fake_results

from audiosae.report import TABLES
from audiosae.bootstrap import difference_verdict, paired_interval
from audiosae.report.aggregate import ReportInputError, build_tables, markdown, probe_table, write_tables

N_NODES = sum(len(layers) for layers in MODELS.values())
N_REPS = 1 + len(SPARSITIES)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake_results")
    paths = write_fake_results(root)
    tables = write_tables(paths["metrics"], paths["probes"], paths["disentangle"], root / "results/tables")
    return root, paths, tables


def test_every_table_written_as_csv_and_markdown(fake):
    root, _, tables = fake
    assert tuple(tables) == TABLES
    for name in TABLES:
        csv = root / f"results/tables/{name}.csv"
        md = root / f"results/tables/{name}.md"
        assert csv.exists() and md.exists(), name
        assert len(pd.read_csv(csv)) == len(tables[name]) > 0
        assert md.read_text().startswith("| target" if name in ("probe", "confusion") else "| model")
    assert "±" in (root / "results/tables/disentanglement.md").read_text()
    assert "inconclusive" in (root / "results/tables/probe.md").read_text()


def test_one_row_per_model_layer_rep(fake):
    _, _, t = fake
    probe, rec, dis = t["probe"], t["reconstruction"], t["disentanglement"]
    assert len(probe) == len(PROBE_TARGETS) * N_NODES * N_REPS
    assert not probe.duplicated(["target", "model", "layer", "rep"]).any()
    assert list(dict.fromkeys(probe["target"])) == list(PROBE_TARGETS)
    assert len(rec) == N_NODES * len(SPARSITIES)  # SAEs only: the original has nothing to reconstruct
    assert set(rec["rep"]) == {f"sae{s}" for s in SPARSITIES}
    assert len(dis) == N_NODES * N_REPS * 2  # egemaps and factors (synthetic corpus)
    assert not dis.duplicated(["model", "layer", "rep", "target"]).any()
    # order: models as given, layers ascending, original first then sparsity ascending
    first = probe.iloc[:N_REPS]
    assert list(first["rep"]) == ["original"] + [f"sae{s}" for s in SPARSITIES]
    assert list(dict.fromkeys(probe["model"])) == list(MODELS)
    assert first["sparsity"].isna().iloc[0] and list(first["sparsity"].iloc[1:]) == [float(s) for s in SPARSITIES]


def test_probe_differences_to_original(fake):
    _, paths, t = fake
    raw = {(d["target"], d["model"], d["layer"], d["rep"]): d
           for d in (json.loads(p.read_text()) for p in paths["probes"])}
    for _, row in t["probe"].iterrows():
        key = (row["target"], row["model"], row["layer"])
        orig, this = raw[(*key, "original")], raw[(*key, row["rep"])]
        for m in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert row[f"delta_{m}"] == pytest.approx(this[m] - orig[m])
        assert [row["accuracy_lo"], row["accuracy_hi"]] == pytest.approx(this["accuracy_ci"])
        if row["rep"] != "original":
            # The paired interval: the same resampled test clips for both probes.
            right = np.array(this["test_y_pred"]) == np.array(this["test_y_true"])
            oright = np.array(orig["test_y_pred"]) == np.array(orig["test_y_true"])
            iv = paired_interval(right, oright)
            assert (row["delta_accuracy_lo"], row["delta_accuracy_hi"]) == pytest.approx((iv.lo, iv.hi))
            assert row["delta_accuracy_lo"] <= row["delta_accuracy"] <= row["delta_accuracy_hi"]
            assert row["delta_verdict"] in ("higher", "lower", "inconclusive", "no change (identical on every test clip)")
            assert row["delta_verdict"] == difference_verdict(iv.lo, iv.hi, iv.estimate)
    orig_rows = t["probe"]["rep"] == "original"
    assert (t["probe"].loc[orig_rows, "delta_accuracy"] == 0).all()
    assert (t["probe"].loc[orig_rows, "delta_verdict"].fillna("") == "").all()


def test_disentanglement_values_and_differences(fake):
    _, paths, t = fake
    dis = t["disentanglement"]
    d = json.loads(paths["disentangle"][1].read_text())  # crepe layer 1 sae0.5
    o = json.loads(paths["disentangle"][0].read_text())  # its original
    row = dis[(dis["model"] == d["model"]) & (dis["layer"] == d["layer"]) & (dis["rep"] == d["rep"])
              & (dis["target"] == "egemaps")].iloc[0]
    tr, otr = d["targets"]["egemaps"]["top_r2"], o["targets"]["egemaps"]["top_r2"]
    assert row["r2_mean"] == pytest.approx(tr["r2_mean"])
    assert row["completeness_std"] == pytest.approx(tr["completeness_std"])
    assert row["delta_completeness_mean"] == pytest.approx(tr["completeness_mean"] - otr["completeness_mean"])
    assert row["delta_effective_codes_mean"] == pytest.approx(
        d["targets"]["egemaps"]["effective_codes_mean"] - o["targets"]["egemaps"]["effective_codes_mean"])
    assert row["n_undefined"] == 1 and row["undefined_attributes"] == d["targets"]["egemaps"]["undefined_attributes"][0]


def test_reconstruction_columns(fake):
    _, paths, t = fake
    rec = t["reconstruction"]
    for split in ("valid", "test"):
        for m in ("mse", "fvu", "cosine", "l0", "dead_fraction"):
            assert rec[f"{split}_{m}"].notna().all()
    d = json.loads(paths["metrics"][0].read_text())
    assert rec.iloc[0]["test_fvu"] == pytest.approx(d["splits"]["test"]["fvu"])
    assert rec.iloc[0]["k"] == d["k"]


def test_factors_and_categories(fake):
    _, _, t = fake
    fac, cats = t["factors"], t["categories"]
    per = fac.groupby(["model", "layer", "rep", "target", "ranking"]).size()
    assert set(per.xs("egemaps", level="target")) == {10}
    assert set(fac["ranking"]) == {"r2", "completeness"}
    sums = cats.groupby(["model", "layer", "rep", "target", "ranking"])["count"].sum()
    assert (sums == per.reindex(sums.index)).all()  # counts add up to the top-n
    eg = cats[cats["target"] == "egemaps"]
    assert list(dict.fromkeys(eg["category"]))[:2] == ["formants", "pitch"]  # the paper's order


def test_confusion_long_format(fake):
    _, paths, t = fake
    conf = t["confusion"]
    d = json.loads(paths["probes"][0].read_text())
    cell = conf[(conf["target"] == d["target"]) & (conf["model"] == d["model"]) & (conf["layer"] == d["layer"])
                & (conf["rep"] == d["rep"])]
    assert len(cell) == len(d["classes"]) ** 2
    assert cell["count"].sum() == np.asarray(d["confusion_matrix"]).sum()


def test_missing_original_is_an_error(fake):
    _, paths, _ = fake
    probes = [p for p in paths["probes"] if not (p.stem == "original" and p.parent.name == "layer5")]
    with pytest.raises(ReportInputError, match="no 'original' result for target=technique, model=crepe, layer=5"):
        build_tables(paths["metrics"], probes, paths["disentangle"])


def test_bad_inputs_name_the_file(fake, tmp_path):
    _, paths, _ = fake
    crepe1_sae = next(p for p in paths["probes"] if p.parts[-4:] == ("technique", "crepe", "layer1", "sae0.5.json"))
    bad = tmp_path / "results/probe/technique/crepe/layer1/original.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(ReportInputError, match="original.json: not valid JSON"):
        build_tables(paths["metrics"], [bad], [])
    moved = tmp_path / "results/probe/technique/crepe/layer5/sae0.5.json"
    moved.parent.mkdir(parents=True)
    shutil.copy(crepe1_sae, moved)  # crepe layer 1's file under layer 5
    with pytest.raises(ReportInputError, match="mislabelled"):
        build_tables([], [moved], [])
    other = tmp_path / "results/probe/singer/crepe/layer1/sae0.5.json"
    other.parent.mkdir(parents=True)
    shutil.copy(crepe1_sae, other)  # technique's file under singer
    with pytest.raises(ReportInputError, match="says target 'technique'.*belongs at probe/technique/.*mislabelled"):
        build_tables([], [other], [])
    with pytest.raises(ReportInputError, match="two probe results"):
        build_tables([], [paths["probes"][0], paths["probes"][0]], [])
    d = json.loads(paths["metrics"][0].read_text())
    del d["splits"]["test"]
    broken = tmp_path / "metrics.json"
    broken.write_text(json.dumps(d))
    with pytest.raises(ReportInputError, match="no 'test' entry"):
        build_tables([broken], [], [])


def test_markdown_merges_std():
    df = pd.DataFrame({"model": ["m"], "layer": [1], "accuracy": [0.5], "accuracy_std": [0.01],
                       "r2_mean": [0.8], "r2_std": [float("nan")]})
    md = markdown(df)
    assert "0.500 ± 0.010" in md and "| r2 " in md and "0.800 |" in md and "accuracy_std" not in md


def test_markdown_appends_intervals():
    df = pd.DataFrame({"model": ["m"], "accuracy": [0.5], "accuracy_lo": [0.4], "accuracy_hi": [0.61],
                       "accuracy_std": [0.02], "delta_accuracy": [-0.01], "delta_accuracy_lo": [-0.03],
                       "delta_accuracy_hi": [0.01]})
    md = markdown(df)
    assert "0.500 ± 0.020 [0.400, 0.610]" in md and "-0.010 [-0.030, 0.010]" in md
    assert "accuracy_lo" not in md and "delta_accuracy_hi" not in md


def _planted_probe(tmp_path, rep: str, right: dict[str, bool], order: list[str]) -> "Path":
    """A probe JSON of node (m, layer 1) that got exactly the clips in `right` right, listed in `order`."""
    classes = ["a", "b"]
    truth = [i % 2 for i in range(len(order))]
    pred = [t if right[c] else 1 - t for c, t in zip(order, truth)]
    acc = float(np.mean([right[c] for c in order]))
    doc = {"target": "technique", "label": "technique", "split_strategy": "corpus", "model": "m", "layer": 1,
           "rep": rep, "classes": classes, "accuracy": acc, "balanced_accuracy": acc, "macro_f1": acc,
           "accuracy_ci": [acc, acc], "confusion_matrix": [[0, 0], [0, 0]], "seeds": [42],
           "test_clip_ids": list(order), "test_y_true": truth, "test_y_pred": [pred]}
    path = tmp_path / f"{rep}.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("plant", ["same", "sae_gains", "sae_loses"])
def test_the_paired_difference_pairs_clips_by_id_not_by_position(tmp_path, plant):
    """Two probes list the same 40 test clips in different orders; the pairing must follow the clip ids.

    Planted per clip (by id): `same`: the SAE is right exactly where the original is, so every paired
    difference is 0 and the interval is [0, 0]; `sae_gains`: the SAE is also right on 16 clips the original
    missed, so every paired difference is 0 or +1 and the interval lies above 0 ("higher"); `sae_loses`, the
    mirror ("lower"). Paired by list position instead, the differences are scrambled and none of this holds.
    """
    rng = np.random.default_rng(3)
    ids = [f"clip{i:02d}" for i in range(40)]
    orig_right = {c: i % 2 == 0 for i, c in enumerate(ids)}  # 20 of 40
    missed = [c for c in ids if not orig_right[c]]
    if plant == "same":
        sae_right = dict(orig_right)
    elif plant == "sae_gains":
        sae_right = {c: orig_right[c] or c in missed[:16] for c in ids}
    else:
        sae_right = {c: orig_right[c] and c not in [c2 for c2 in ids if orig_right[c2]][:16] for c in ids}
    a = _planted_probe(tmp_path, "original", orig_right, list(rng.permutation(ids)))
    b = _planted_probe(tmp_path, "sae0.5", sae_right, list(rng.permutation(ids)))
    row = probe_table([a, b]).set_index("rep").loc["sae0.5"]
    want = np.mean([sae_right[c] for c in ids]) - np.mean([orig_right[c] for c in ids])
    assert row["delta_accuracy"] == pytest.approx(want)
    lo, hi = row["delta_accuracy_lo"], row["delta_accuracy_hi"]
    if plant == "same":
        assert (lo, hi, row["delta_verdict"]) == (0.0, 0.0, "no change (identical on every test clip)")
    elif plant == "sae_gains":
        assert 0 < lo <= want <= hi <= 16 / 40 * 2 and row["delta_verdict"] == "higher"
    else:
        assert -16 / 40 * 2 <= lo <= want <= hi < 0 and row["delta_verdict"] == "lower"


def test_probes_scored_on_different_test_clips_are_refused_naming_both(tmp_path):
    ids = [f"clip{i:02d}" for i in range(10)]
    right = {c: True for c in ids + ["other"]}
    a = _planted_probe(tmp_path, "original", right, ids)
    b = _planted_probe(tmp_path, "sae0.5", right, ids[:-1] + ["other"])
    with pytest.raises(ReportInputError, match=rf"{b}.* and .*{a}.* were scored on different test clips"):
        probe_table([a, b])
