"""Linear probes: how much of a label (a probe target) a frozen representation keeps.

The paper's probe: ``Linear(dim -> n_classes)`` on the pooled vector (original
layer output or SAE codes), cross-entropy, Adam (lr 1e-3), batch 32, 120 epochs,
keeping the epoch with the lowest validation loss; accuracy on the test split.
The paper probes VocalSet's technique; here any label column of the manifest is
a target, split either by the corpus split (``corpus``: test groups unseen in
training, the paper's) or by a seeded split stratified by the label
(``random``: what identity labels such as singer need). We also report balanced
accuracy, macro-F1, per-class recall and the confusion matrix, train one probe
per seed (mean and sample std over seeds), and give the accuracy a bootstrap
interval over test clips (``audiosae.bootstrap``); each test clip's prediction is
kept so that the report can pair an SAE's probe with the original's.

Train items are every cached item of the train clips (the corpus split's train
clips have ``train_crops`` random crops, the others one crop); valid and test
items are one crop per clip, the store's crop 0 (for a corpus train clip drawn
into a random target's test split, that is its first random crop). Inputs are
used as they are, without standardisation, as in the paper (``standardize=True``
exists for experiments; it is not in the config).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np


class ProbeError(ValueError):
    """Inputs a probe cannot be trained on (a missing split, unknown labels, a stale store)."""


@dataclass
class ProbeData:
    """Features and integer labels of the three splits, and the test items' clip ids."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: list[str]
    test_clip_ids: list[str] = field(default_factory=list)
    target: str = ""
    split_strategy: str = "corpus"


@dataclass
class ProbeFit:
    """A trained probe: the weights of its best epoch and the training curve."""

    weight: np.ndarray
    bias: np.ndarray
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.mean is not None:
            x = (x - self.mean) / self.scale
        return x @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(axis=1)


def load_probe_data(store, array: str, manifest, label: str, split: str = "corpus", *,
                    valid_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 42) -> ProbeData:
    """Read a representation store and label its items with the manifest's `label`, split by `split`.

    Classes are the label's values over the whole manifest, sorted. Every class
    must have train, valid and test items, or the error names the class and split.
    """
    from audiosae.data.corpus import target_splits
    from audiosae.data.manifest import ManifestError, read_manifest
    from audiosae.store import read_array, read_index

    man = read_manifest(manifest)
    if label not in man.columns:
        raise ProbeError(f"the manifest has no label column '{label}' (columns: {', '.join(man.columns)}); "
                         f"fix probe.targets or rebuild the manifest")
    man = man.assign(clip_id=man["clip_id"].astype(str), **{label: man[label].astype(str)})
    try:
        clip_split = target_splits(man, {"label": label, "split": split},
                                   {"valid_fraction": valid_fraction, "test_fraction": test_fraction,
                                    "split_seed": split_seed})
    except ManifestError as err:
        raise ProbeError(str(err)) from None
    man = man.assign(_target_split=clip_split).set_index("clip_id")
    index = read_index(store)
    missing = sorted(set(index["clip_id"]) - set(man.index))
    if missing:
        raise ProbeError(f"store {store} holds {len(missing)} clips that the manifest does not list "
                         f"(e.g. {missing[0]!r}): the store is stale; rerun its rule")
    man_split = man.loc[index["clip_id"], "split"].astype(str).to_numpy()
    if (man_split != index["split"].to_numpy()).any():
        raise ProbeError(f"store {store}: item splits differ from the manifest's; the store is stale; rerun its rule")
    values_of = man.loc[index["clip_id"], label].to_numpy()
    classes = sorted(man[label].unique())
    if len(classes) < 2:
        raise ProbeError(f"label '{label}' has a single class {classes}; a probe needs two or more")
    lookup = {c: i for i, c in enumerate(classes)}
    labels = np.array([lookup[t] for t in values_of], dtype=np.int64)
    item_split = man.loc[index["clip_id"], "_target_split"].to_numpy()
    first_crop = (index["crop"] == 0).to_numpy()
    values = read_array(store, array)
    if not np.isfinite(values).all():
        raise ProbeError(f"store {store}, array {array!r} holds non-finite values; rerun the rule that wrote it")
    x, y = {}, {}
    test_ids: list[str] = []
    for part in ("train", "valid", "test"):
        mask = item_split == part
        if part != "train":
            mask &= first_crop  # one item per valid / test clip
        if not mask.any():
            raise ProbeError(f"store {store} has no {part!r} items for target '{label}' (split: {split}); "
                             f"check the manifest's split column")
        x[part], y[part] = values[mask], labels[mask]
        present = set(y[part].tolist())
        absent = [c for i, c in enumerate(classes) if i not in present]
        if absent:
            raise ProbeError(f"probe target '{label}' (split: {split}): class '{absent[0]}' has no {part} clip; "
                             f"every class must appear in every split"
                             + ("; use split: random for a label that never crosses the corpus split"
                                if split == "corpus" else ""))
        if part == "test":
            test_ids = index.loc[mask, "clip_id"].astype(str).tolist()
    return ProbeData(x=x, y=y, classes=classes, test_clip_ids=test_ids, target=label, split_strategy=split)


class Adam:
    """Adam as torch.optim.Adam computes it (betas 0.9/0.999, eps 1e-8, no weight decay), on numpy arrays."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, (self.b1, self.b2), self.eps, self.t = params, lr, betas, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        """Update the parameters in place from their gradients."""
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m += (1 - self.b1) * (g - m)
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v) / np.sqrt(c2) + self.eps)


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of `logits` [n, classes] against `y`, and the softmax probabilities."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    p = e / total
    loss = float(np.mean(np.log(total[:, 0]) - z[np.arange(len(y)), y]))
    return loss, p


def train_probe(x_train, y_train, x_valid, y_valid, n_classes: int, *, lr: float = 1e-3, batch_size: int = 32,
                epochs: int = 120, patience: int | None = None, seed: int = 42,
                standardize: bool = False) -> ProbeFit:
    """Train Linear(dim -> n_classes) with Adam and cross-entropy; keep the epoch of lowest valid loss.

    Plain numpy in float32: a probe is one small matrix, which a GPU does not
    speed up, and a job that imported torch for it would spend most of its time
    on the import.
    Deterministic for a given seed: one generator draws the initial weights
    (uniform ±1/sqrt(dim), as torch.nn.Linear) and then each epoch's order.
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    x_valid = np.asarray(x_valid, dtype=np.float32)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_valid = np.asarray(y_valid, dtype=np.int64)
    mean = scale = None
    if standardize:
        mean = x_train.mean(axis=0)
        scale = x_train.std(axis=0)
        scale[scale == 0] = 1.0
        x_train = (x_train - mean) / scale
        x_valid = (x_valid - mean) / scale
    n, dim = x_train.shape
    rng = np.random.default_rng(int(seed))
    bound = 1.0 / math.sqrt(dim)
    weight = rng.uniform(-bound, bound, size=(n_classes, dim)).astype(np.float32)
    bias = rng.uniform(-bound, bound, size=n_classes).astype(np.float32)
    optimiser = Adam([weight, bias], lr=lr)
    eye = np.eye(n_classes, dtype=np.float32)

    best_loss, best_epoch, best = math.inf, 0, (weight.copy(), bias.copy())
    history, stale = [], 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x_train[idx], y_train[idx]
            loss, p = _cross_entropy(xb @ weight.T + bias, yb)
            g = (p - eye[yb]) / len(idx)
            optimiser.step([g.T @ xb, g.sum(axis=0)])
            total += loss * len(idx)
        logits = x_valid @ weight.T + bias
        valid_loss, _ = _cross_entropy(logits, y_valid)
        valid_acc = float(np.mean(logits.argmax(axis=1) == y_valid))
        history.append({"epoch": epoch, "train_loss": total / n, "valid_loss": valid_loss,
                        "valid_accuracy": valid_acc})
        if valid_loss < best_loss:
            best_loss, best_epoch, stale = valid_loss, epoch, 0
            best = (weight.copy(), bias.copy())
        else:
            stale += 1
            if patience is not None and stale >= patience:
                break
    return ProbeFit(weight=best[0], bias=best[1], best_epoch=best_epoch, history=history, mean=mean, scale=scale)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro-F1 and per-class recall over the classes present in `y_true`.

    A class absent from the test set has no recall (NaN) and does not enter the
    balanced accuracy or macro-F1; the confusion matrix keeps every class. Macro-F1
    is scikit-learn's (labels = the present classes, zero_division = 0), computed
    here so that a probe job does not import scikit-learn.
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + np.nan_to_num(recall) > 0,
                      2 * precision * np.nan_to_num(recall) / (precision + np.nan_to_num(recall)), 0.0)
    present = support > 0
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(np.nanmean(recall)) if present.any() else math.nan,
        "macro_f1": float(f1[present].mean()) if present.any() else math.nan,
        "per_class_recall": {c: float(recall[i]) for i, c in enumerate(classes)},
        "confusion_matrix": cm.astype(int).tolist(),
    }


def _std(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def run_probe(data: ProbeData, *, seeds=(42,), lr: float = 1e-3, batch_size: int = 32, epochs: int = 120,
              patience: int | None = None, standardize: bool = False, bootstrap: int = 1000, ci: float = 0.95, bootstrap_seed: int = 42,
              model: str = "", layer: int = -1, rep: str = "", log=None) -> tuple[dict, dict]:
    """One probe per seed: (the JSON document of results/probe/{target}/{model}/layer{layer}/{rep}.json,
    the first seed's weights for the .npz beside it).

    accuracy, balanced_accuracy, macro_f1 and per_class_recall are means over
    seeds (their *_std the sample std, null with one seed); accuracy_ci is the
    bootstrap interval of the seed-mean accuracy over test clips; test_y_pred
    holds every seed's prediction per test clip (class indices, in test_clip_ids
    order); confusion_matrix, best_epoch and history are the first seed's.
    """
    from audiosae.bootstrap import accuracy_interval

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ProbeError("probe.seeds is empty; give at least one seed")
    per_seed, predictions = [], []
    first = None
    t0 = time.perf_counter()
    for seed in seeds:
        fit = train_probe(data.x["train"], data.y["train"], data.x["valid"], data.y["valid"], len(data.classes),
                          lr=lr, batch_size=batch_size, epochs=epochs, patience=patience, seed=seed,
                          standardize=standardize)
        pred = fit.predict(data.x["test"])
        predictions.append(pred)
        metrics = classification_metrics(data.y["test"], pred, data.classes)
        if log:
            log(f"seed {seed}: best epoch {fit.best_epoch}, test accuracy {metrics['accuracy']:.3f}")
        per_seed.append({"seed": seed, "best_epoch": fit.best_epoch, **{k: metrics[k] for k in
                         ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall")}})
        if first is None:
            first = (fit, metrics)
    fit, metrics = first
    correct = np.stack([p == data.y["test"] for p in predictions])
    interval = accuracy_interval(correct, resamples=bootstrap, ci=ci, seed=bootstrap_seed)
    doc = {"target": data.target, "label": data.target, "split_strategy": data.split_strategy,
           "model": model, "layer": int(layer), "rep": rep, "classes": list(data.classes)}
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        doc[key] = float(np.mean([s[key] for s in per_seed]))
    doc["accuracy_ci"] = interval.as_list()
    doc["ci"] = float(ci)
    doc["bootstrap"] = {"resamples": int(bootstrap), "seed": int(bootstrap_seed), "unit": "test clip",
                        "method": "percentile"}
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        doc[f"{key}_std"] = _std([s[key] for s in per_seed])
    recalls = np.array([[s["per_class_recall"][c] for c in data.classes] for s in per_seed])
    doc["per_class_recall"] = dict(zip(data.classes, recalls.mean(axis=0).tolist()))
    doc.update({
        "confusion_matrix": metrics["confusion_matrix"],
        "best_epoch": fit.best_epoch,
        "seeds": seeds,
        "n_train": int(len(data.y["train"])),
        "n_valid": int(len(data.y["valid"])),
        "n_test": int(len(data.y["test"])),
        "input_dim": int(data.x["train"].shape[1]),
        "majority_class_accuracy": float(np.bincount(data.y["test"], minlength=len(data.classes)).max() / len(data.y["test"])),
        "standardized_inputs": bool(standardize),
        "wall_time_s": time.perf_counter() - t0,
        "per_seed": per_seed,
        "test_clip_ids": list(data.test_clip_ids),
        "test_y_true": data.y["test"].astype(int).tolist(),
        "test_y_pred": [p.astype(int).tolist() for p in predictions],
        "history": fit.history,
    })
    weights = {"weight": fit.weight.astype(np.float32), "bias": fit.bias.astype(np.float32),
               "classes": np.asarray(data.classes, dtype=np.str_)}
    if fit.mean is not None:
        weights.update(mean=fit.mean.astype(np.float32), scale=fit.scale.astype(np.float32))
    return doc, weights
