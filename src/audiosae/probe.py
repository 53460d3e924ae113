"""Linear probes: how much of the singing technique a frozen representation keeps.

The paper's probe: ``Linear(dim -> n_classes)`` on the pooled vector (original
layer output or SAE codes), cross-entropy, Adam (lr 1e-3), batch 32, 120 epochs,
keeping the epoch with the lowest validation loss; accuracy on the test
singers. We also report balanced accuracy, macro-F1, per-class recall and the
confusion matrix, and train one probe per seed (mean and sample std over seeds).

Train items are every cached crop of the train clips; valid and test items are
one crop per clip. Inputs are used as they are, without standardisation, as in
the paper (``standardize=True`` exists for experiments; it is not in the config).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class ProbeError(ValueError):
    """Inputs a probe cannot be trained on (a missing split, unknown labels, a stale store)."""


@dataclass
class ProbeData:
    """Features and integer labels of the three splits."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: list[str]


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


def load_probe_data(store, array: str, manifest, classes: list[str]) -> ProbeData:
    """Read a representation store and label its items with the manifest's technique."""
    from audiosae.store import read_array, read_index

    man = pd.read_csv(manifest) if not isinstance(manifest, pd.DataFrame) else manifest
    man = man.assign(clip_id=man["clip_id"].astype(str)).set_index("clip_id")
    index = read_index(store)
    missing = sorted(set(index["clip_id"]) - set(man.index))
    if missing:
        raise ProbeError(f"store {store} holds {len(missing)} clips that the manifest does not list "
                         f"(e.g. {missing[0]!r}): the store is stale; rerun its rule")
    technique = man.loc[index["clip_id"], "technique"].astype(str).to_numpy()
    man_split = man.loc[index["clip_id"], "split"].astype(str).to_numpy()
    if (man_split != index["split"].to_numpy()).any():
        raise ProbeError(f"store {store}: item splits differ from the manifest's; the store is stale; rerun its rule")
    unknown = sorted(set(technique) - set(classes))
    if unknown:
        raise ProbeError(f"manifest techniques {unknown} are not in data.techniques {classes}; "
                         "add them to the config or rebuild the manifest")
    lookup = {c: i for i, c in enumerate(classes)}
    labels = np.array([lookup[t] for t in technique], dtype=np.int64)
    values = read_array(store, array)
    if not np.isfinite(values).all():
        raise ProbeError(f"store {store}, array {array!r} holds non-finite values; rerun the rule that wrote it")
    x, y = {}, {}
    for split in ("train", "valid", "test"):
        mask = (index["split"] == split).to_numpy()
        if not mask.any():
            raise ProbeError(f"store {store} has no {split!r} items; check the manifest's split column")
        x[split], y[split] = values[mask], labels[mask]
    return ProbeData(x=x, y=y, classes=list(classes))


def train_probe(x_train, y_train, x_valid, y_valid, n_classes: int, *, lr: float = 1e-3, batch_size: int = 32,
                epochs: int = 120, patience: int | None = None, seed: int = 42, device="cpu",
                standardize: bool = False, threads: int | None = 1) -> ProbeFit:
    """Train Linear(dim -> n_classes) with Adam and cross-entropy; keep the epoch of lowest valid loss.

    Deterministic on CPU for a given seed: the seed sets the initial weights and
    the order of the mini-batches (its own generator, not the global one).
    `threads` sets torch's intra-op threads (None leaves them alone): one is the
    fastest for a matrix this small, and many threads on a busy machine spin.
    """
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    device = torch.device(device)
    mean = scale = None
    x_train = np.asarray(x_train, dtype=np.float32)
    x_valid = np.asarray(x_valid, dtype=np.float32)
    if standardize:
        mean = x_train.mean(axis=0)
        scale = x_train.std(axis=0)
        scale[scale == 0] = 1.0
        x_train = (x_train - mean) / scale
        x_valid = (x_valid - mean) / scale
    xt = torch.from_numpy(x_train).to(device)
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64)).to(device)
    xv = torch.from_numpy(x_valid).to(device)
    yv = torch.from_numpy(np.asarray(y_valid, dtype=np.int64)).to(device)

    torch.manual_seed(seed)
    model = torch.nn.Linear(xt.shape[1], n_classes).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)

    best_loss, best_epoch, best_state, stale = math.inf, 0, copy.deepcopy(model.state_dict()), 0
    history = []
    n = xt.shape[0]
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=order).to(device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(xv)
            valid_loss = loss_fn(logits, yv).item()
            valid_acc = (logits.argmax(dim=1) == yv).float().mean().item()
        history.append({"epoch": epoch, "train_loss": total / n, "valid_loss": valid_loss,
                        "valid_accuracy": valid_acc})
        if valid_loss < best_loss:
            best_loss, best_epoch, stale = valid_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if patience is not None and stale >= patience:
                break
    return ProbeFit(weight=best_state["weight"].cpu().numpy(), bias=best_state["bias"].cpu().numpy(),
                    best_epoch=best_epoch, history=history, mean=mean, scale=scale)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro-F1 and per-class recall over the classes present in `y_true`.

    A class absent from the test set has no recall (NaN) and does not enter the
    balanced accuracy or macro-F1; the confusion matrix keeps every class.
    """
    from sklearn.metrics import confusion_matrix, f1_score

    labels = list(range(len(classes)))
    present = sorted(set(np.asarray(y_true).tolist()))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, np.diag(cm) / support, np.nan)
    return {
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "balanced_accuracy": float(np.nanmean(recall)) if present else math.nan,
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class_recall": {c: float(recall[i]) for i, c in enumerate(classes)},
        "confusion_matrix": cm.astype(int).tolist(),
    }


def _std(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def run_probe(data: ProbeData, *, seeds=(42,), lr: float = 1e-3, batch_size: int = 32, epochs: int = 120,
              patience: int | None = None, device="cpu", standardize: bool = False, threads: int | None = 1,
              model: str = "", layer: int = -1, rep: str = "", log=None) -> dict:
    """One probe per seed; the JSON document of results/probe/{model}/layer{layer}/{rep}.json.

    accuracy, balanced_accuracy, macro_f1 and per_class_recall are means over
    seeds (their *_std the sample std, null with one seed); confusion_matrix,
    best_epoch and history are the first seed's; per_seed lists each seed.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ProbeError("probe.seeds is empty; give at least one seed")
    per_seed = []
    first = None
    t0 = time.perf_counter()
    for seed in seeds:
        fit = train_probe(data.x["train"], data.y["train"], data.x["valid"], data.y["valid"], len(data.classes),
                          lr=lr, batch_size=batch_size, epochs=epochs, patience=patience, seed=seed, device=device,
                          standardize=standardize, threads=threads)
        metrics = classification_metrics(data.y["test"], fit.predict(data.x["test"]), data.classes)
        if log:
            log(f"seed {seed}: best epoch {fit.best_epoch}, test accuracy {metrics['accuracy']:.3f}")
        per_seed.append({"seed": seed, "best_epoch": fit.best_epoch, **{k: metrics[k] for k in
                         ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall")}})
        if first is None:
            first = (fit, metrics)
    fit, metrics = first
    doc = {"model": model, "layer": int(layer), "rep": rep, "classes": list(data.classes)}
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        doc[key] = float(np.mean([s[key] for s in per_seed]))
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
        "device": str(device),
        "wall_time_s": time.perf_counter() - t0,
        "per_seed": per_seed,
        "history": fit.history,
    })
    return doc
