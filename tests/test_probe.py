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


def test_the_gradient_is_the_cross_entropys():
    """The probe's analytic gradient (softmax minus one-hot, over the batch) against finite differences."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    w, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    _, p = P._cross_entropy(x @ w.T + b, y)
    g = (p - np.eye(3)[y]) / len(y)
    grad_w = g.T @ x
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (2, 4)]:
        wp, wm = w.copy(), w.copy()
        wp[i, j] += eps
        wm[i, j] -= eps
        numeric = (P._cross_entropy(x @ wp.T + b, y)[0] - P._cross_entropy(x @ wm.T + b, y)[0]) / (2 * eps)
        assert grad_w[i, j] == pytest.approx(numeric, abs=1e-6)


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
