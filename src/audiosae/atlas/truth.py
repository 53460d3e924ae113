"""Ground truth on the synthetic corpus: does one unit carry a true factor, and does the layer know it?

- **MCC** (mean correlation coefficient of the identifiability literature):
  factors are matched to units one-to-one so that the summed |Spearman ρ| is
  largest (Hungarian assignment, ``scipy.optimize.linear_sum_assignment``);
  each factor's matched unit and ρ, and the mean matched |ρ|, answer "does one
  unit carry it?".
- **Read-out R²**: a ridge regression of each factor from the whole
  representation, cross-validated with folds grouped by singer (a singer's clips
  never sit on both sides), R² over the pooled out-of-fold predictions. It
  answers "is the factor in the layer at all?", whatever the number of units
  that carry it. Inputs are not standardised: that would blow up units that
  fire on a few training clips (pitch bins, sparse latents) into huge values on
  the held-out singers. Frequencies (``*_hz``, all positive) are read out on a
  log scale, as pitch is heard.
"""

from __future__ import annotations

import numpy as np

from audiosae.atlas.stats import AtlasError

RIDGE_ALPHAS = np.logspace(-6, 6, 25)


def matched_correlation(rho: np.ndarray) -> dict:
    """Hungarian match of factors to units on |ρ| (`rho` [units, factors]; NaN counts as 0).

    Returns {"unit": [factors] matched unit (-1 when unmatched), "rho": [factors]
    signed ρ of the match (NaN when unmatched), "mcc": mean matched |ρ| over the
    matched factors (NaN when none is), "note": why factors are unmatched, or ""}.
    A factor is unmatched when fewer units than factors have a finite ρ (dead
    or constant units have none): a degenerate node, e.g. a random-weights
    twin's sparse layer with 7 live latents for 8 factors.
    """
    from scipy.optimize import linear_sum_assignment

    rho = np.asarray(rho, dtype=np.float64)
    score = np.nan_to_num(np.abs(rho), nan=0.0).T  # [factors, units]
    rows, cols = linear_sum_assignment(score, maximize=True)
    unit = np.full(rho.shape[1], -1, dtype=np.int64)
    matched = np.full(rho.shape[1], np.nan)
    if rho.size:
        real = np.isfinite(rho[cols, rows])  # a pairing with a unit of no finite ρ is no match
        unit[rows[real]] = cols[real]
        matched[rows[real]] = rho[cols[real], rows[real]]
    mcc = float(np.nanmean(np.abs(matched))) if np.isfinite(matched).any() else float("nan")
    n_units = int(np.isfinite(rho).any(axis=1).sum()) if rho.size else 0
    missing = int((unit < 0).sum())
    note = (f"{missing} of {rho.shape[1]} factors unmatched: only {n_units} unit{'s' if n_units != 1 else ''} "
            f"with a finite ρ" if missing else "")
    return {"unit": unit, "rho": matched, "mcc": mcc, "note": note}


def readout_targets(factors) -> np.ndarray:
    """The factors as the read-out sees them: `*_hz` columns that are all positive on a log scale."""
    y = factors.to_numpy(dtype=np.float64, copy=True)
    for j, name in enumerate(factors.columns):
        col = y[:, j]
        finite = col[np.isfinite(col)]
        if str(name).endswith("_hz") and finite.size and (finite > 0).all():
            y[:, j] = np.log(col)
    return y


def ridge_readout(x: np.ndarray, y: np.ndarray, groups, folds: int = 5,
                  alphas: np.ndarray = RIDGE_ALPHAS) -> np.ndarray:
    """Cross-validated R² [targets] of each column of `y` from `x` (ridge on the raw inputs, with intercept).

    Folds are grouped by `groups` (GroupKFold with min(folds, groups) folds); the
    ridge penalty is chosen per target inside each training fold (efficient
    leave-one-out). Rows where a target is not finite are left out of that
    target; a constant target gives NaN.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    groups = np.asarray(groups).astype(str)
    n_groups = len(set(groups))
    if n_groups < 2:
        raise AtlasError(f"the ridge read-out needs clips of at least two groups (singers) for grouped folds; "
                         f"got {n_groups}")
    out = np.full(y.shape[1], np.nan)
    finite = np.isfinite(y)
    by_rows: dict[bytes, list[int]] = {}
    for j in range(y.shape[1]):
        by_rows.setdefault(finite[:, j].tobytes(), []).append(j)
    for cols in by_rows.values():
        rows = finite[:, cols[0]]
        xs, ys, gs = x[rows], y[rows][:, cols], groups[rows]
        k = min(folds, len(set(gs)))
        if k < 2:
            continue
        pred = np.zeros_like(ys)
        for train, test in GroupKFold(n_splits=k).split(xs, ys, gs):
            model = RidgeCV(alphas=alphas, alpha_per_target=True).fit(xs[train], ys[train])
            pred[test] = model.predict(xs[test]).reshape(len(test), -1)
        total = ((ys - ys.mean(axis=0)) ** 2).sum(axis=0)
        resid = ((ys - pred) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[cols] = np.where(total > 0, 1.0 - resid / total, np.nan)
    return out
