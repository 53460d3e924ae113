"""Linear probes: learning, determinism, metrics and the JSON document."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audiosae import probe as P
from audiosae.jsonio import write_json
from audiosae.store import write_store

CLASSES = ["belt", "breathy", "spoken", "vibrato"]


def _data(n_per_class=30, dim=16, noise=0.1, seed=0, crops=1):
    """Gaussian blobs around one random centre per class; returns ProbeData."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CLASSES), dim)) * 3
    x, y = {}, {}
    for split, n in (("train", n_per_class * crops), ("valid", n_per_class // 2), ("test", n_per_class // 2)):
        labels = np.repeat(np.arange(len(CLASSES)), n)
        x[split] = (centres[labels] + noise * rng.normal(size=(len(labels), dim)) * 3).astype(np.float32)
        y[split] = labels
    return P.ProbeData(x=x, y=y, classes=list(CLASSES))


def test_probe_learns_a_separable_problem():
    doc, _ = P.run_probe(_data(), epochs=25, batch_size=16, lr=1e-2, seeds=[0])
    assert doc["accuracy"] >= 0.98
    assert doc["balanced_accuracy"] >= 0.98 and doc["macro_f1"] >= 0.98
    assert np.trace(np.array(doc["confusion_matrix"])) == doc["n_test"] * doc["accuracy"]


def test_probe_beats_chance_on_noisy_data():
    doc, _ = P.run_probe(_data(noise=1.0, seed=1), epochs=30, batch_size=16, lr=1e-2, seeds=[0])
    assert doc["majority_class_accuracy"] == pytest.approx(0.25)
    assert 0.4 < doc["accuracy"]


def test_probe_is_deterministic_for_a_seed():
    data = _data(noise=1.5, seed=2)
    a, _ = P.run_probe(data, epochs=8, seeds=[5])
    b, _ = P.run_probe(data, epochs=8, seeds=[5])
    assert a["history"] == b["history"]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    c, _ = P.run_probe(data, epochs=8, seeds=[6])
    assert c["history"] != a["history"]


def test_best_epoch_is_the_lowest_valid_loss_and_patience_stops():
    data = _data(noise=2.0, seed=3)
    doc, _ = P.run_probe(data, epochs=40, lr=5e-2, seeds=[0])
    losses = [h["valid_loss"] for h in doc["history"]]
    assert doc["best_epoch"] == 1 + int(np.argmin(losses))
    short, _ = P.run_probe(data, epochs=40, lr=5e-2, patience=2, seeds=[0])
    assert len(short["history"]) <= 40
    assert len(short["history"]) - short["best_epoch"] <= 2


def test_seed_spread_is_null_with_one_seed_and_sample_std_with_more():
    data = _data(noise=1.5, seed=4)
    one, _ = P.run_probe(data, epochs=5, seeds=[1])
    assert one["accuracy_std"] is None and one["macro_f1_std"] is None
    two, _ = P.run_probe(data, epochs=5, seeds=[1, 2])
    accs = [s["accuracy"] for s in two["per_seed"]]
    assert two["accuracy"] == pytest.approx(np.mean(accs))
    assert two["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert two["seeds"] == [1, 2]


def test_metrics_ignore_classes_absent_from_test():
    m = P.classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    assert np.isnan(m["per_class_recall"]["c"])
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]


def _store(tmp_path, rng, dim=8):
    """A store of 4 techniques (2 crops per train clip) and its manifest; singers alternate across clips."""
    rows = []
    for split, n in (("train", 12), ("valid", 4), ("test", 4)):
        for c in CLASSES:
            for i in range(n // 4 * 2):
                singer = f"s{i % 2}" if split != "test" else "s9"
                rows.append({"clip_id": f"{split}_{c}_{i}", "path": f"{split}_{c}_{i}.wav", "group": singer,
                             "technique": c, "singer": singer, "split": split, "duration_s": 1.0,
                             "sample_rate": 8000})
    manifest = pd.DataFrame(rows)
    index = pd.concat([manifest.assign(crop=0), manifest[manifest.split == "train"].assign(crop=1)])
    index = index.reset_index(drop=True)
    centres = rng.normal(size=(len(CLASSES), dim)) * 3
    labels = index["technique"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    values = centres[labels] + 0.2 * rng.normal(size=(len(index), dim))
    write_store(tmp_path / "emb.zarr", {"layer2": values}, index[["clip_id", "split", "crop"]])
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "emb.zarr", tmp_path / "manifest.csv", manifest


def test_probe_from_store_writes_the_contract(tmp_path):
    store, man, manifest = _store(tmp_path, np.random.default_rng(0))
    data = P.load_probe_data(store, "layer2", man, "technique")
    assert len(data.y["train"]) == 2 * (manifest.split == "train").sum()  # every cached crop
    assert len(data.y["test"]) == (manifest.split == "test").sum()
    doc, weights = P.run_probe(data, epochs=15, lr=1e-2, seeds=[42, 7], model="m", layer=2, rep="original",
                               bootstrap=200)
    write_json(tmp_path / "out.json", doc)
    d = json.loads((tmp_path / "out.json").read_text())
    for key in ("target", "label", "split_strategy", "model", "layer", "rep", "classes", "accuracy", "accuracy_ci",
                "balanced_accuracy", "macro_f1", "accuracy_std", "balanced_accuracy_std", "macro_f1_std",
                "per_class_recall", "confusion_matrix", "best_epoch", "seeds", "n_train", "n_valid", "n_test",
                "input_dim", "history", "test_clip_ids", "test_y_true", "test_y_pred", "ci", "bootstrap"):
        assert key in d, key
    assert d["target"] == d["label"] == "technique" and d["split_strategy"] == "corpus"
    assert d["classes"] == CLASSES and d["input_dim"] == 8 and d["layer"] == 2
    assert set(d["per_class_recall"]) == set(CLASSES)
    assert set(d["history"][0]) == {"epoch", "train_loss", "valid_loss", "valid_accuracy"}
    assert d["accuracy"] > 0.9
    # Per-clip predictions: one per test clip and seed, and they give the accuracy.
    assert sorted(d["test_clip_ids"]) == sorted(manifest.loc[manifest.split == "test", "clip_id"])
    truth = manifest.set_index("clip_id").loc[d["test_clip_ids"], "technique"].map(CLASSES.index).tolist()
    assert d["test_y_true"] == truth and len(d["test_y_pred"]) == 2
    accs = [np.mean(np.array(p) == np.array(truth)) for p in d["test_y_pred"]]
    assert d["accuracy"] == pytest.approx(np.mean(accs))
    lo, hi = d["accuracy_ci"]
    assert 0 <= lo <= d["accuracy"] <= hi <= 1
    # The first seed's weights, for the atlas: they reproduce its predictions.
    assert weights["weight"].shape == (4, 8) and weights["bias"].shape == (4,) and list(weights["classes"]) == CLASSES
    logits = data.x["test"] @ weights["weight"].T.astype(np.float64) + weights["bias"]
    assert logits.argmax(axis=1).tolist() == d["test_y_pred"][0]


def _width(doc) -> float:
    lo, hi = doc["accuracy_ci"]
    assert lo <= doc["accuracy"] <= hi
    return hi - lo


def _normal_width(acc: float, n: int, ci: float) -> float:
    """The width of the normal-approximation interval of a proportion: independent of the bootstrap."""
    from scipy.stats import norm

    return 2 * norm.ppf(0.5 + ci / 2) * np.sqrt(acc * (1 - acc) / n)


def test_the_interval_follows_the_test_set_size_ci_resamples_and_seed():
    """One trained probe (same data, same seed) scored on 400 and on 100 test clips, with several settings.

    The percentile bootstrap of an accuracy must have about the normal approximation's width: twice as
    wide on a quarter of the clips, narrower at ci 0.8 than 0.95, and another bootstrap seed moves it.
    """
    data = _data(n_per_class=200, noise=2.0, seed=5)
    assert len(data.y["test"]) == 400
    quarter = P.ProbeData(x={**data.x, "test": data.x["test"][::4]}, y={**data.y, "test": data.y["test"][::4]},
                          classes=data.classes)
    kw = dict(epochs=6, lr=1e-2, seeds=[0])
    big, _ = P.run_probe(data, **kw)
    assert 0.5 < big["accuracy"] < 0.9, big["accuracy"]  # an interval of some width, not [1, 1]
    small, _ = P.run_probe(quarter, **kw)
    for doc in (big, small):
        want = _normal_width(doc["accuracy"], doc["n_test"], 0.95)
        assert _width(doc) == pytest.approx(want, rel=0.25), doc["n_test"]
    assert 1.6 < _width(small) / _width(big) < 2.6
    narrow, _ = P.run_probe(data, ci=0.8, **kw)
    assert narrow["ci"] == 0.8 and narrow["accuracy"] == big["accuracy"]
    assert _width(narrow) == pytest.approx(_normal_width(big["accuracy"], 400, 0.8), rel=0.25)
    moved, _ = P.run_probe(data, bootstrap_seed=7, **kw)
    assert moved["bootstrap"]["seed"] == 7 and moved["accuracy"] == big["accuracy"]
    assert moved["accuracy_ci"] != big["accuracy_ci"]
    assert _width(moved) == pytest.approx(_width(big), rel=0.2)
    few, _ = P.run_probe(data, bootstrap=50, **kw)
    assert few["bootstrap"]["resamples"] == 50 and few["accuracy_ci"] != big["accuracy_ci"]


def test_a_random_target_resplits_clips_by_its_own_label(tmp_path):
    store, man, manifest = _store(tmp_path, np.random.default_rng(2))
    data = P.load_probe_data(store, "layer2", man, "singer", "random", valid_fraction=0.2, test_fraction=0.25,
                             split_seed=3)
    assert data.classes == ["s0", "s1", "s9"] and data.split_strategy == "random"
    n_clips = len(manifest)
    assert len(data.y["test"]) == round(0.25 * n_clips) and len(set(data.test_clip_ids)) == len(data.y["test"])
    for part in ("train", "valid", "test"):
        assert set(data.y[part].tolist()) == {0, 1, 2}
    again = P.load_probe_data(store, "layer2", man, "singer", "random", valid_fraction=0.2, test_fraction=0.25,
                              split_seed=3)
    assert again.test_clip_ids == data.test_clip_ids


def test_probe_refuses_missing_labels_unsplittable_targets_and_stale_stores(tmp_path):
    store, man, manifest = _store(tmp_path, np.random.default_rng(1))
    with pytest.raises(P.ProbeError, match="no label column 'emotion'"):
        P.load_probe_data(store, "layer2", man, "emotion")
    with pytest.raises(P.ProbeError, match=r"probe target 'singer' \(split: corpus\): class 's9' has no train clip.*split: random"):
        P.load_probe_data(store, "layer2", man, "singer", "corpus")
    stale = manifest.copy()
    stale.loc[0, "split"] = "valid"
    stale.to_csv(tmp_path / "stale.csv", index=False)
    with pytest.raises(P.ProbeError, match="stale"):
        P.load_probe_data(store, "layer2", tmp_path / "stale.csv", "technique")


# ---------------------------------------------------------------- the tiny study


@pytest.mark.workflow
def test_demo_probe_on_original_beats_chance(demo_run):
    """Every model's best original layer (CREPE included) at least doubles chance (10 classes: 10 %)."""
    best = {}
    for path in sorted((demo_run / "results/probe/technique").glob("*/layer*/original.json")):
        d = json.loads(path.read_text())
        chance = 1 / len(d["classes"])
        best[d["model"]] = max(best.get(d["model"], 0.0), d["accuracy"])
    assert "crepe" in best, best
    assert all(acc >= 2 * chance for acc in best.values()), best


@pytest.mark.workflow
def test_the_probe_settings_reach_the_probe_json(demo_run, tmp_path):
    """probe.ci, probe.bootstrap and probe.bootstrap_seed of the config reach the job's result.

    On a copy of the session's run, only the probe job reruns; its probes are the same (same seeds),
    so the accuracy is unchanged while the interval, drawn with other settings, narrows and moves.
    """
    import shutil

    from conftest import run_snakemake, tiny_config

    work = tmp_path / "run"
    shutil.copytree(demo_run, work, symlinks=True, ignore=shutil.ignore_patterns("atlas", "atlas_site"))
    target = "results/probe/technique/resemblyzer/layer2/original.json"
    cfg = tiny_config()
    cfg["probe"] = {**cfg["probe"], "ci": 0.8, "bootstrap": 300, "bootstrap_seed": 7}
    proc = run_snakemake(work, target, config=cfg)
    assert "rule probe:" in proc.stdout + proc.stderr
    before = json.loads((demo_run / target).read_text())
    after = json.loads((work / target).read_text())
    assert after["ci"] == 0.8 and after["bootstrap"]["resamples"] == 300 and after["bootstrap"]["seed"] == 7
    assert before["ci"] == 0.95 and before["bootstrap"]["resamples"] == 1000 and before["bootstrap"]["seed"] == 42
    assert after["test_y_pred"] == before["test_y_pred"] and after["accuracy"] == before["accuracy"]
    assert after["accuracy_ci"][1] - after["accuracy_ci"][0] < before["accuracy_ci"][1] - before["accuracy_ci"][0]


def test_numpy_adam_follows_torch_optim_adam():
    import torch

    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 6)).astype(np.float32)
    ours_w = w0.copy()
    theirs = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    ours, torch_adam = P.Adam([ours_w], lr=1e-2), torch.optim.Adam([theirs], lr=1e-2)
    for _ in range(50):
        g = rng.normal(size=(4, 6)).astype(np.float32)
        ours.step([g])
        theirs.grad = torch.from_numpy(g.copy())
        torch_adam.step()
    assert np.allclose(ours_w, theirs.detach().numpy(), atol=1e-6)


def _mean_cross_entropy(x, y, w, b) -> float:
    """Mean cross-entropy of Linear(w, b) on (x, y) in float64, written here from its definition."""
    z = x @ w.T + b
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def test_train_probes_own_gradient_is_the_cross_entropys(monkeypatch):
    """The gradients that train_probe hands its optimiser (weight AND bias), against finite differences.

    One batch holds the whole train set, so each step's gradient is that of the mean cross-entropy over
    it at the parameters of the moment; a recording optimiser keeps both for the first three steps.
    """
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(23, 5)).astype(np.float32), rng.integers(0, 3, 23)
    steps = []

    class Recording(P.Adam):
        def step(self, grads):
            steps.append(([p.astype(np.float64) for p in self.params], [np.array(g, np.float64) for g in grads]))
            super().step(grads)

    monkeypatch.setattr(P, "Adam", Recording)
    P.train_probe(x, y, x[:4], y[:4], 3, lr=0.05, batch_size=len(x), epochs=3, seed=0)
    assert len(steps) == 3
    x64, eps = x.astype(np.float64), 1e-6
    for (w, b), (grad_w, grad_b) in steps:
        assert grad_w.shape == w.shape and grad_b.shape == b.shape
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                wp, wm = w.copy(), w.copy()
                wp[i, j] += eps
                wm[i, j] -= eps
                numeric = (_mean_cross_entropy(x64, y, wp, b) - _mean_cross_entropy(x64, y, wm, b)) / (2 * eps)
                assert grad_w[i, j] == pytest.approx(numeric, abs=1e-5), ("weight", i, j)
            bp, bm = b.copy(), b.copy()
            bp[i] += eps
            bm[i] -= eps
            numeric = (_mean_cross_entropy(x64, y, w, bp) - _mean_cross_entropy(x64, y, w, bm)) / (2 * eps)
            assert grad_b[i] == pytest.approx(numeric, abs=1e-5), ("bias", i)


def test_metrics_match_scikit_learn():
    from sklearn.metrics import confusion_matrix, f1_score, recall_score

    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 6, 200)
    y_true[y_true == 3] = 4  # class 3 absent from the truth, class 5 only predicted
    m = P.classification_metrics(y_true, y_pred, list("abcdef"))
    present = sorted(set(y_true.tolist()))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    assert m["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=list(range(6))).tolist()
    assert m["balanced_accuracy"] == pytest.approx(recall_score(y_true, y_pred, labels=present, average="macro"))
