"""Concept erasure curves: remove a class's top latents from the network and watch the class go.

For one SAE of a node and one probe target, per class c:

- the live latents are ranked by their one-vs-rest AUROC for c on the *train* clips
  (`audiosae.atlas.stats.auroc_matrix`, the statistic the atlas's cards show, here
  measured where the test clips cannot influence it);
- the top n are removed from the network (`patches.edit`: h - Σ_{j∈S} c_j d_j, the
  SAE's error term kept), for n on a grid of shares of the live latents up to all
  of them; the control removes n random live latents (`draws` draws, shared by
  every class: one pass per draw and n);
- on the test clips, the output-level probe's one-vs-rest balanced accuracy for c
  (the mean of its recall of c and its specificity), with a 95 % bootstrap interval
  over clips (positives and negatives resampled separately); the random control's
  estimate is the mean over draws, its interval the bootstrap of that mean; the
  other classes' mean one-vs-rest balanced accuracy under the same edit is the
  collateral damage;
- the class is *erased* at the smallest n whose interval reaches 0.5 (chance);
  *not erased* when none does; *untestable* when the clean network's interval
  already reaches 0.5 (the output cannot tell the class to begin with).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from audiosae.atlas.stats import auroc_matrix

ERASED, NOT_ERASED, UNTESTABLE = "erased", "not erased", "untestable"
CHANCE = 0.5

CURVE_COLUMNS = ["target", "class", "removal", "n", "share", "balanced_accuracy", "lo", "hi", "others_balanced_accuracy"]
SUMMARY_COLUMNS = ["target", "class", "n_live", "n_test", "n_positive", "clean_balanced_accuracy", "clean_lo",
                   "clean_hi", "status", "erased_n", "erased_share", "random_balanced_accuracy_at_erased",
                   "random_erased_n", "random_erased_share", "collateral_at_erased", "note"]


def rank_latents(codes: np.ndarray, y: np.ndarray, n_classes: int, live: np.ndarray) -> np.ndarray:
    """[classes, n_live] latent indices per class, by decreasing one-vs-rest AUROC on (codes [n, latents], y [n]);
    NaN AUROCs (a latent constant on these clips, a class absent) last, ties by latent index."""
    live_idx = np.flatnonzero(live)
    auc = auroc_matrix(np.asarray(codes, dtype=np.float64)[:, live_idx], np.asarray(y), n_classes)
    key = np.where(np.isfinite(auc), -auc, np.inf)
    return live_idx[np.argsort(key, axis=1, kind="stable")]


def removal_sizes(n_live: int, shares) -> list[int]:
    """The grid of n: each share of the live latents rounded (at least 1, at most all), once each, ascending."""
    if n_live < 1:
        return []
    return sorted({int(min(n_live, max(1, round(float(s) * n_live)))) for s in shares})


def _ovr(pred: np.ndarray, y: np.ndarray, c: int) -> float:
    pos = y == c
    if not pos.any() or pos.all():
        return float("nan")
    return 0.5 * (float(np.mean(pred[..., pos] == c)) + float(np.mean(pred[..., ~pos] != c)))


def ovr_interval(preds: np.ndarray, y: np.ndarray, c: int, resamples: int = 1000, seed: int = 42,
                 ci: float = 0.95) -> tuple[float, float, float]:
    """One-vs-rest balanced accuracy of class c (mean over the rows of `preds` [draws, n] or [n]) and its bootstrap
    interval over clips; positives and negatives are resampled separately (each resample keeps the class's size)."""
    preds = np.atleast_2d(np.asarray(preds))
    y = np.asarray(y)
    pos, neg = np.flatnonzero(y == c), np.flatnonzero(y != c)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan"), float("nan"), float("nan")
    hit_pos = (preds[:, pos] == c).astype(np.float64)  # [draws, n_pos]
    hit_neg = (preds[:, neg] != c).astype(np.float64)
    est = 0.5 * (hit_pos.mean() + hit_neg.mean())
    rng = np.random.default_rng(int(seed))
    ip = rng.integers(0, len(pos), size=(int(resamples), len(pos)))
    ineg = rng.integers(0, len(neg), size=(int(resamples), len(neg)))
    per_pos = hit_pos.mean(axis=0)  # mean over draws, per clip: the same resampled clips for every draw
    per_neg = hit_neg.mean(axis=0)
    stats = 0.5 * (per_pos[ip].mean(axis=1) + per_neg[ineg].mean(axis=1))
    lo, hi = np.quantile(stats, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(est), float(lo), float(hi)


def _others(pred: np.ndarray, y: np.ndarray, c: int, present: np.ndarray) -> float:
    vals = [np.mean([_ovr(p, y, d) for p in np.atleast_2d(pred)]) for d in present if d != c]
    return float(np.mean(vals)) if vals else float("nan")


def erasure_curves(predict: Callable[[np.ndarray], np.ndarray], y: np.ndarray, classes: list[str],
                   ranking: np.ndarray, live: np.ndarray, shares, *, target: str = "", draws: int = 5,
                   seed: int = 42, resamples: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curves, summary) of one SAE and one target — see the module docstring.

    `predict(indices)` runs the network with those latents removed and returns the output-level probe's class
    index for every test clip (aligned with `y`; -1 never predicted); `ranking` [classes, n_live] from
    `rank_latents`; `live` [latents] the latents that may be removed.
    """
    y = np.asarray(y, dtype=np.int64)
    live_idx = np.flatnonzero(live)
    n_live = len(live_idx)
    sizes = removal_sizes(n_live, shares)
    cache: dict[tuple, np.ndarray] = {}

    def run(indices) -> np.ndarray:
        key = tuple(sorted(int(i) for i in indices))
        if key not in cache:
            cache[key] = np.asarray(predict(np.asarray(key, dtype=np.int64)))
        return cache[key]

    clean = run([])
    present = np.array([c for c in range(len(classes)) if (y == c).any() and (y != c).any()], dtype=np.int64)
    rng = np.random.default_rng(int(seed))
    random_sets = {n: [rng.choice(live_idx, size=n, replace=False) for _ in range(int(draws))] for n in sizes}
    curves, summary = [], []
    for c in present:
        est, lo, hi = ovr_interval(clean, y, c, resamples, seed)
        row = {"target": target, "class": classes[c], "n_live": n_live, "n_test": int(len(y)),
               "n_positive": int((y == c).sum()), "clean_balanced_accuracy": est, "clean_lo": lo, "clean_hi": hi,
               "erased_n": np.nan, "erased_share": np.nan, "random_balanced_accuracy_at_erased": np.nan,
               "random_erased_n": np.nan, "random_erased_share": np.nan, "collateral_at_erased": np.nan, "note": ""}
        others_clean = _others(clean, y, c, present)
        curves.append({"target": target, "class": classes[c], "removal": "none", "n": 0, "share": 0.0,
                       "balanced_accuracy": est, "lo": lo, "hi": hi, "others_balanced_accuracy": others_clean})
        if n_live == 0:
            summary.append({**row, "status": UNTESTABLE, "note": "the SAE has no live latent"})
            continue
        if lo <= CHANCE:
            summary.append({**row, "status": UNTESTABLE, "note": "the clean output-level probe is already at chance "
                                                                 f"for this class (interval [{lo:.2f}, {hi:.2f}])"})
            continue
        erased = random_erased = None
        for n in sizes:
            top = run(ranking[c][:n])
            t_est, t_lo, t_hi = ovr_interval(top, y, c, resamples, seed)
            rand = np.stack([run(s) for s in random_sets[n]])
            r_est, r_lo, r_hi = ovr_interval(rand, y, c, resamples, seed)
            others_top = _others(top, y, c, present)
            share = n / n_live
            curves.append({"target": target, "class": classes[c], "removal": "top", "n": n, "share": share,
                           "balanced_accuracy": t_est, "lo": t_lo, "hi": t_hi, "others_balanced_accuracy": others_top})
            curves.append({"target": target, "class": classes[c], "removal": "random", "n": n, "share": share,
                           "balanced_accuracy": r_est, "lo": r_lo, "hi": r_hi,
                           "others_balanced_accuracy": _others(rand, y, c, present)})
            if erased is None and t_lo <= CHANCE:
                erased = n
                row.update(erased_n=n, erased_share=share, random_balanced_accuracy_at_erased=r_est,
                           collateral_at_erased=others_clean - others_top)
            if random_erased is None and r_lo <= CHANCE:
                random_erased = n
                row.update(random_erased_n=n, random_erased_share=share)
        status = ERASED if erased is not None else NOT_ERASED
        if erased is None:
            row["note"] = f"the interval stays above chance with all {n_live} live latents removed"
        summary.append({**row, "status": status})
    return (pd.DataFrame(curves, columns=CURVE_COLUMNS), pd.DataFrame(summary, columns=SUMMARY_COLUMNS))
