"""k-sparse probing (SAEBench's sparse probing): how few units carry a label?

Per probe target, one binary task per class (the class against the rest):

1. On the train items, every unit is standardised with its train mean and
   standard deviation (a constant unit scores 0), and units are ranked by the
   absolute difference of the class's mean and the rest's mean. Standardising
   first makes the ranking, and the probe, blind to a unit's scale: a layer and
   its random-weights twin, or an SAE and the layer, compete on information,
   not on units' magnitudes.
2. For each k (1, 2, 5, 10, 20; capped at the number of units), a logistic
   regression (scikit-learn, L2 with C = 1, classes weighted to balance) on the
   top k units only.
3. Balanced accuracy (the mean of the class's recall and the rest's) on the
   test items, with a bootstrap interval over test clips.

The summary per k is the mean balanced accuracy over the target's classes; its
interval resamples test clips once for all classes (`audiosae.bootstrap`'s
scheme: one generator seeded per call, the same resamples for every k and
every representation with the same seed and test set), so two representations'
summaries can be paired clip by clip (`paired_difference`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audiosae.bootstrap import percentile_interval

KS = (1, 2, 5, 10, 20)


def standardise(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each column scaled by the train mean and std (std 0 -> the column becomes 0)."""
    train = np.asarray(train, dtype=np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    scale = np.where(std > 0, std, np.inf)
    return tuple((np.asarray(x, dtype=np.float64) - mean) / scale for x in (train, *others))


def rank_units(x_train_std: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Units ordered by |mean over positives - mean over the rest| (largest first; ties by index), and the scores."""
    pos = np.asarray(positive, dtype=bool)
    if pos.all() or not pos.any():
        raise ValueError("a class-vs-rest task needs train items of both sides")
    score = np.abs(x_train_std[pos].mean(axis=0) - x_train_std[~pos].mean(axis=0))
    order = np.lexsort((np.arange(len(score)), -score))
    return order, score


def balanced_accuracy(positive: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall of the two sides (of the one side present, if only one is)."""
    pos, pred = np.asarray(positive, bool), np.asarray(predicted, bool)
    recalls = [float((pred[side] == want).mean()) for side, want in ((pos, True), (~pos, False)) if side.any()]
    return float(np.mean(recalls))


def _resampled_balanced(positive: np.ndarray, predicted: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Balanced accuracy on each bootstrap resample (rows of idx [R, n])."""
    pos = np.asarray(positive, bool)[idx]
    hit = (np.asarray(predicted, bool) == np.asarray(positive, bool))[idx]
    n_pos, n_neg = pos.sum(axis=1), (~pos).sum(axis=1)
    tpr = np.divide((hit & pos).sum(axis=1), n_pos, out=np.full(len(idx), np.nan), where=n_pos > 0)
    tnr = np.divide((hit & ~pos).sum(axis=1), n_neg, out=np.full(len(idx), np.nan), where=n_neg > 0)
    return np.nanmean(np.stack([tpr, tnr]), axis=0)


def resample_indices(n: int, resamples: int = 1000, seed: int = 42) -> np.ndarray:
    """[resamples, n] clip indices, drawn as audiosae.bootstrap.resample_means draws them."""
    if n == 0:
        raise ValueError("cannot bootstrap an empty test set")
    rng = np.random.default_rng(int(seed))
    return np.stack([rng.integers(0, n, size=n) for _ in range(int(resamples))])


@dataclass
class SparseProbeResult:
    """Per (class, k): chosen units, balanced accuracy and interval; per k the mean over classes."""

    target: str
    classes: list[str]
    ks: list[int]
    rows: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    test_clip_ids: list[str] = field(default_factory=list)
    predictions: dict[int, np.ndarray] = field(default_factory=dict)  # k -> [classes, n_test] bool
    y_test: np.ndarray | None = None

    def as_dict(self) -> dict:
        return {"target": self.target, "classes": self.classes, "ks": self.ks, "per_class": self.rows,
                "summary": self.summary, "test_clip_ids": self.test_clip_ids,
                "y_test": None if self.y_test is None else self.y_test.tolist(),
                "predictions": {str(k): p.astype(int).tolist() for k, p in self.predictions.items()}}


def _mean_over_classes(y_test: np.ndarray, preds: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.mean([_resampled_balanced(y_test == c, preds[c], idx) for c in range(len(preds))], axis=0)


def sparse_probe(x_train, y_train, x_test, y_test, classes: list[str], *, target: str = "",
                 ks=KS, resamples: int = 1000, ci: float = 0.95, seed: int = 42,
                 test_clip_ids: list[str] | None = None) -> SparseProbeResult:
    """k-sparse probes of every class of a target; `y_*` are integer class indices into `classes`."""
    from sklearn.linear_model import LogisticRegression

    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    xs_train, xs_test = standardise(x_train, x_test)
    n_units = xs_train.shape[1]
    ks = sorted({min(int(k), n_units) for k in ks})
    idx = resample_indices(len(y_test), resamples, seed)
    out = SparseProbeResult(target, list(classes), ks, test_clip_ids=list(test_clip_ids or []), y_test=y_test)
    preds = {k: np.zeros((len(classes), len(y_test)), bool) for k in ks}
    for c, name in enumerate(classes):
        positive = y_train == c
        order, score = rank_units(xs_train, positive)
        for k in ks:
            units = order[:k]
            probe = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
            probe.fit(xs_train[:, units], positive)
            pred = probe.predict(xs_test[:, units]).astype(bool)
            preds[k][c] = pred
            lo, hi = percentile_interval(_resampled_balanced(y_test == c, pred, idx), ci)
            out.rows.append({"target": target, "class": name, "k": k,
                             "balanced_accuracy": balanced_accuracy(y_test == c, pred), "lo": lo, "hi": hi,
                             "units": [int(u) for u in units], "unit_scores": [float(score[u]) for u in units],
                             "n_test": int(len(y_test)), "n_test_class": int((y_test == c).sum())})
    for k in ks:
        lo, hi = percentile_interval(_mean_over_classes(y_test, preds[k], idx), ci)
        est = float(np.mean([balanced_accuracy(y_test == c, preds[k][c]) for c in range(len(classes))]))
        out.summary.append({"target": target, "k": k, "balanced_accuracy": est, "lo": lo, "hi": hi,
                            "n_classes": len(classes), "n_test": int(len(y_test))})
    out.predictions = preds
    return out


def paired_difference(a: SparseProbeResult, b: SparseProbeResult, k: int, resamples: int = 1000,
                      ci: float = 0.95, seed: int = 42) -> tuple[float, float, float]:
    """Mean balanced accuracy of a minus b at k over the same resampled test clips: (estimate, lo, hi)."""
    if a.test_clip_ids != b.test_clip_ids or not np.array_equal(a.y_test, b.y_test):
        raise ValueError("paired sparse probes must cover the same test clips with the same labels")
    idx = resample_indices(len(a.y_test), resamples, seed)
    diff = _mean_over_classes(a.y_test, a.predictions[k], idx) - _mean_over_classes(b.y_test, b.predictions[k], idx)
    est = float(np.mean([balanced_accuracy(a.y_test == c, a.predictions[k][c]) for c in range(len(a.classes))])
                - np.mean([balanced_accuracy(b.y_test == c, b.predictions[k][c]) for c in range(len(b.classes))]))
    lo, hi = percentile_interval(diff, ci)
    return est, lo, hi


def from_probe_data(data, **kw) -> SparseProbeResult:
    """k-sparse probes on an `audiosae.probe.ProbeData` (train items to rank and fit, test items to score)."""
    return sparse_probe(data.x["train"], data.y["train"], data.x["test"], data.y["test"], data.classes,
                        target=data.target, test_clip_ids=data.test_clip_ids, **kw)


def from_dict(d: dict) -> SparseProbeResult:
    """A result read back from `as_dict`'s JSON (for pairing two representations in the report stage)."""
    out = SparseProbeResult(d["target"], list(d["classes"]), [int(k) for k in d["ks"]], rows=list(d["per_class"]),
                            summary=list(d["summary"]), test_clip_ids=list(d["test_clip_ids"]),
                            y_test=None if d.get("y_test") is None else np.asarray(d["y_test"]))
    out.predictions = {int(k): np.asarray(v, bool) for k, v in d.get("predictions", {}).items()}
    return out
