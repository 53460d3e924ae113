"""How many codes carry each acoustic attribute: Lasso importance, R², DCI scores.

For one representation (the test clips' original layer vectors, or their SAE
codes) and one set of targets (the 88 eGeMAPS functionals; on the synthetic
corpus also the true generative factors):

1. X and every target are standardised on the test clips (mean 0, population
   std 1, as sklearn's ``StandardScaler``).
2. One Lasso (alpha 0.1, max_iter 10000) per target; R² on the same clips
   (in-sample, the paper's number) and k-fold cross-validated R² (ours: the
   same regression scored on held-out clips, see `_cv_r2`).
3. Importance ``R[i, j] = |coef|`` of code i for target j (N codes × K targets).
4. Scores on R: the paper's ``mean_i(rho_i d_i)`` and completeness with eps
   (``paper_*``), standard DCI (``dci_*``, ``sum_i rho_i d_i``), and the
   effective number of codes ``exp(H)`` per target.

Shared work: the K regressions of a job use one standardisation and one Gram
matrix ``Z^T Z``; sklearn's coordinate descent on the Gram matrix takes the same
steps as on the data, so the coefficients equal K separate ``Lasso`` fits to
rounding (tests check 1e-6). This is *not* ``MultiTaskLasso``, which couples the
targets through a group penalty.

Constant columns are handled, never propagated as NaN/inf: a constant code (a
dead SAE latent) standardises to a zero column and gets coefficient 0 (as with
``StandardScaler``); a constant target has no variance to explain, so its R²
is undefined (NaN) and, having all-zero coefficients, so is its completeness.
Targets whose coefficients are all zero are reported as undefined (NaN), not
given the paper's spurious completeness of 1, and counted.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from audiosae.atomic import write_npz as atomic_write_npz
from audiosae.jsonio import write_json  # noqa: F401  (writers of this module's results)

CATEGORIES = ("formants", "pitch", "voice quality", "loudness", "rhythm", "spectral", "MFCC", "other")

# The paper's rules, first match wins; matched case-insensitively so that
# "VoicedSegmentsPerSec" is rhythm and "factor_f0_hz" is pitch.
_CATEGORY_RULES = (
    (("f1", "f2", "f3"), "formants"),
    (("f0",), "pitch"),
    (("shimmer", "jitter", "hnr"), "voice quality"),
    (("loudness", "equivalentsoundlevel"), "loudness"),
    (("voiced",), "rhythm"),
    (("slope", "spectral", "alpharatio", "hammarberg"), "spectral"),
    (("mfcc",), "MFCC"),
)

FACTOR_PREFIX = "factor_"


class DisentangleError(ValueError):
    """Inputs that cannot give a meaningful analysis (missing clips, too few items)."""


def attribute_category(name: str) -> str:
    """eGeMAPS category of an attribute name by the paper's first-match rules."""
    low = name.lower()
    for keys, category in _CATEGORY_RULES:
        if any(k in low for k in keys):
            return category
    return "other"


# ---------------------------------------------------------------- standardisation and Lasso


def standardize(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Columns to mean 0, population std 1; constant columns become zeros.

    Returns (z, mean, scale, constant) with ``z = (a - mean) / scale``. A column
    counts as constant when its values are all equal or its std is at the level
    of rounding noise relative to its mean (sklearn's rule), so float32 inputs
    that are equal in principle do not turn into amplified noise.
    """
    a = np.asarray(a, dtype=np.float64)
    mean = a.mean(axis=0)
    scale = a.std(axis=0)
    constant = (np.ptp(a, axis=0) == 0) | (scale <= 10 * np.finfo(np.float64).eps * np.abs(mean))
    scale = np.where(constant, 1.0, scale)
    z = (a - mean) / scale
    z[:, constant] = 0.0
    return z, mean, scale, constant


def _fit_chunk(zf: np.ndarray, gram: np.ndarray, y: np.ndarray, alpha: float, max_iter: int, tol: float):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    model = Lasso(alpha=alpha, max_iter=max_iter, tol=tol, fit_intercept=False, precompute=gram, copy_X=False)
    with warnings.catch_warnings():  # non-convergence is counted from n_iter_ and logged by the caller
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(zf, y)
    coef = np.atleast_2d(model.coef_)
    n_iter = np.atleast_1d(model.n_iter_)
    return coef, np.asarray(n_iter >= max_iter)


def lasso_shared(z: np.ndarray, y: np.ndarray, alpha: float = 0.1, max_iter: int = 10000, tol: float = 1e-4,
                 n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Independent Lasso fits of every column of `y` on `z`, sharing one Gram matrix.

    `z` and `y` must be centred (standardised): no intercept is fitted, which on
    centred data is what ``Lasso(fit_intercept=True)`` does. Targets are split
    over `n_jobs` threads (sklearn's coordinate descent releases the GIL).
    Returns (coef [K, N], not_converged [K] bool).
    """
    zf = np.asfortranarray(z, dtype=np.float64)
    y = np.asfortranarray(np.atleast_2d(y.T).T, dtype=np.float64)
    k = y.shape[1]
    n_features = zf.shape[1]
    if k == 0:
        return np.zeros((0, n_features)), np.zeros(0, dtype=bool)
    gram = np.ascontiguousarray(zf.T @ zf)
    chunks = [c for c in np.array_split(np.arange(k), max(1, min(n_jobs, k))) if len(c)]
    if len(chunks) == 1:
        results = [_fit_chunk(zf, gram, y, alpha, max_iter, tol)]
    else:
        with ThreadPoolExecutor(len(chunks)) as pool:
            results = list(pool.map(lambda c: _fit_chunk(zf, gram, np.asfortranarray(y[:, c]), alpha, max_iter, tol),
                                    chunks))
    coef = np.concatenate([r[0] for r in results], axis=0)
    not_converged = np.concatenate([r[1] for r in results])
    return coef, not_converged


def lasso_separate(z: np.ndarray, y: np.ndarray, alpha: float = 0.1, max_iter: int = 10000) -> np.ndarray:
    """The paper's way: one default ``sklearn.linear_model.Lasso`` per target (reference, benchmark)."""
    from sklearn.linear_model import Lasso

    y = np.atleast_2d(np.asarray(y, dtype=np.float64).T).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.stack([Lasso(alpha=alpha, max_iter=max_iter).fit(z, y[:, j]).coef_ for j in range(y.shape[1])])


def r2_score_columns(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """R² per column; NaN where the column of `y` is constant (nothing to explain)."""
    y = np.asarray(y, dtype=np.float64)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    ss_res = ((y - pred) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    return np.where(ss_tot > 0, r2, np.nan)


# ---------------------------------------------------------------- scores on an importance matrix


def _entropy_rows(p: np.ndarray) -> np.ndarray:
    """Natural-log entropy of each row of a row-stochastic matrix, 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def paper_disentanglement(r: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray, float]:
    """The paper's per-code disentanglement d, weights rho and average mean_i(rho_i d_i).

    Exactly their formula: eps added to every denominator and inside the log,
    entropy in log base K (number of targets).
    """
    r = np.abs(np.asarray(r, dtype=np.float64))
    k = r.shape[1]
    rho = r.sum(axis=1) / (r.sum() + eps)
    if k < 2:  # log base 1: a single target has no disentanglement to measure
        return np.full(r.shape[0], np.nan), rho, math.nan
    p = r / (r.sum(axis=1, keepdims=True) + eps)
    h = -np.sum(p * np.log(p + eps) / np.log(k), axis=1)
    d = 1.0 - h
    return d, rho, float(np.mean(rho * d))


def paper_completeness_raw(r: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The paper's completeness per target, log base N, eps as they add it (1 for all-zero columns)."""
    r = np.abs(np.asarray(r, dtype=np.float64))
    n = r.shape[0]
    if n < 2:  # log base 1: with one code every target is trivially complete
        return np.ones(r.shape[1])
    p = r / (r.sum(axis=0, keepdims=True) + eps)
    h = -np.sum(p * np.log(p + eps) / np.log(n), axis=0)
    return 1.0 - h


def paper_completeness(r: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The paper's completeness, but NaN (undefined) for targets no code was used for."""
    c = paper_completeness_raw(r, eps)
    return np.where(np.abs(r).sum(axis=0) > 0, c, np.nan)


def dci_scores(r: np.ndarray) -> dict:
    """Standard DCI (Eastwood & Williams): exact entropies, importance-weighted sums.

    disentanglement = sum_i rho_i d_i (d in log base K), completeness =
    sum_j rho~_j c_j (c in log base N, rho~_j = column share of the total).
    Codes (rows) or targets (columns) with zero importance have weight 0; NaN
    when every coefficient is zero.
    """
    r = np.abs(np.asarray(r, dtype=np.float64))
    n, k = r.shape
    total = r.sum()
    row, col = r.sum(axis=1), r.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_rows = np.where(row[:, None] > 0, r / row[:, None], 0.0)
        p_cols = np.where(col[None, :] > 0, r / col[None, :], 0.0)
    # With one target (one code) the entropy's log base is 1: d (c) is undefined (trivially 1).
    d = np.where(row > 0, 1.0 - _entropy_rows(p_rows) / math.log(k), np.nan) if k > 1 else np.full(n, np.nan)
    c = np.where(col > 0, 1.0 - _entropy_rows(p_cols.T) / math.log(n), np.nan) if n > 1 else np.where(col > 0, 1.0, np.nan)
    if total <= 0:
        return {"disentanglement": math.nan, "completeness": math.nan, "d": d, "c": c,
                "rho": np.zeros(n), "rho_targets": np.zeros(k)}
    rho, rho_t = row / total, col / total
    return {
        "disentanglement": float(np.sum(rho[row > 0] * d[row > 0])) if k > 1 else math.nan,
        "completeness": float(np.sum(rho_t[col > 0] * c[col > 0])),
        "d": d, "c": c, "rho": rho, "rho_targets": rho_t,
    }


def effective_codes(r: np.ndarray) -> np.ndarray:
    """exp(entropy) of each target's importance over codes: how many codes it uses.

    Three codes with equal importance give 3, one code gives 1, whatever the
    number of codes N, so 768-d and 2048-d representations compare directly.
    NaN for a target with all-zero coefficients.
    """
    r = np.abs(np.asarray(r, dtype=np.float64))
    col = r.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(col[None, :] > 0, r / col[None, :], 0.0)
    return np.where(col > 0, np.exp(_entropy_rows(p.T)), np.nan)


# ---------------------------------------------------------------- one target set


def _group_by_mask(finite: np.ndarray) -> dict[bytes, tuple[np.ndarray, list[int]]]:
    """Targets grouped by which rows are finite, so each group shares one Gram matrix."""
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for j in range(finite.shape[1]):
        key = np.packbits(finite[:, j]).tobytes()
        groups.setdefault(key, (finite[:, j], []))[1].append(j)
    return groups


def _fit_in_sample(x, y, alpha, max_iter, n_jobs, min_rows):
    """Coefficients [K, N] (standardised units), in-sample R², constant targets, non-converged count."""
    n_items, n_codes = x.shape
    k = y.shape[1]
    coef = np.zeros((k, n_codes))
    r2 = np.full(k, np.nan)
    constant = np.zeros(k, dtype=bool)
    not_converged = 0
    for mask, cols in _group_by_mask(np.isfinite(y)).values():
        cols = np.asarray(cols)
        if mask.sum() < min_rows:
            constant[cols] = True
            continue
        z, *_ = standardize(x[mask])
        yz, _, _, const_y = standardize(y[mask][:, cols])
        c, nc = lasso_shared(z, yz, alpha=alpha, max_iter=max_iter, n_jobs=n_jobs)
        c[const_y] = 0.0
        coef[cols] = c
        r2[cols] = r2_score_columns(yz, z @ c.T)
        r2[cols[const_y]] = np.nan
        constant[cols[const_y]] = True
        not_converged += int(nc[~const_y].sum())
    return coef, r2, constant, not_converged


def _cv_r2(x, y, alpha, max_iter, folds, seed, n_jobs, min_rows):
    """Cross-validated R² per target from pooled out-of-fold predictions (original units).

    X is scaled by its std over all the clips (the paper's standardisation: no
    target information) and centred on each training fold; y is standardised on
    each training fold. Scaling X per fold instead lets a code that fires in one
    or two training clips blow up on a held-out clip (R² of -100 and worse in
    the tiny study), which measures the fold split more than the representation.
    """
    from sklearn.model_selection import KFold

    n_items, k = y.shape
    pred = np.full(y.shape, np.nan)
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    finite = np.isfinite(y)
    groups = list(_group_by_mask(finite).values())
    _, _, sx, constant_x = standardize(x)
    xs = x / sx
    xs[:, constant_x] = 0.0
    for train, test in splitter.split(np.zeros(n_items)):
        for mask, cols in groups:
            cols = np.asarray(cols)
            tr = train[mask[train]]
            te = test[mask[test]]
            if len(tr) < min_rows or len(te) == 0:
                continue
            mx = xs[tr].mean(axis=0)
            z = xs[tr] - mx
            yz, my, sy, const_y = standardize(y[tr][:, cols])
            c, _ = lasso_shared(z, yz, alpha=alpha, max_iter=max_iter, n_jobs=n_jobs)
            c[const_y] = 0.0
            pred[np.ix_(te, cols)] = ((xs[te] - mx) @ c.T) * sy + my
    r2 = np.full(k, np.nan)
    for j in range(k):
        ok = finite[:, j] & np.isfinite(pred[:, j])
        if ok.sum() >= 2:
            r2[j] = r2_score_columns(y[ok, j : j + 1], pred[ok, j : j + 1])[0]
    return r2


def _mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std())


def top_summary(names, r2, completeness, order_by, top_n: int) -> dict:
    """The `top_n` targets with the highest `order_by` (NaN never ranks), summarised.

    Mean and std (population, as numpy) of R² and completeness over them, and how
    many fall in each eGeMAPS category. Ties keep the targets' order.
    """
    order_by = np.asarray(order_by, dtype=np.float64)
    ranked = [j for j in np.argsort(-np.nan_to_num(order_by, nan=-np.inf), kind="stable") if np.isfinite(order_by[j])]
    idx = ranked[:top_n]
    cats = [attribute_category(names[j]) for j in idx]
    r2_mean, r2_std = _mean_std(np.asarray(r2)[idx])
    c_mean, c_std = _mean_std(np.asarray(completeness)[idx])
    return {
        "attributes": [names[j] for j in idx],
        "categories": cats,
        "r2_mean": r2_mean,
        "r2_std": r2_std,
        "completeness_mean": c_mean,
        "completeness_std": c_std,
        "category_counts": {c: cats.count(c) for c in CATEGORIES},
    }


def analyse_targets(x: np.ndarray, y: np.ndarray, names: list[str], *, alpha: float = 0.1, max_iter: int = 10000,
                    top_n: int = 10, cv_folds: int = 5, eps: float = 1e-6, seed: int = 42,
                    n_jobs: int = 1) -> tuple[dict, np.ndarray]:
    """Every score for one target set; returns (summary dict T, importance [N codes, K targets]).

    `y` may hold NaN (a factor undefined for some clips): each target is fitted
    on the rows where it is finite.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    names = list(names)
    min_rows = 3
    coef, r2_in, constant, not_converged = _fit_in_sample(x, y, alpha, max_iter, n_jobs, min_rows)
    importance = np.abs(coef).T  # [N codes, K targets]
    r2_cv = _cv_r2(x, y, alpha, max_iter, cv_folds, seed, n_jobs, min_rows)
    r2_cv[constant] = np.nan

    completeness = paper_completeness(importance, eps)
    _, _, paper_d = paper_disentanglement(importance, eps)
    dci = dci_scores(importance)
    eff = effective_codes(importance)
    undefined = [names[j] for j in range(len(names)) if not np.isfinite(completeness[j])]
    summary = {
        "attributes": names,
        "r2_insample": r2_in,
        "r2_cv": r2_cv,
        "completeness_paper": completeness,
        "completeness_dci": dci["c"],
        "effective_codes": eff,
        "n_codes_used": (importance > 0).sum(axis=0).astype(int).tolist(),
        "paper_disentanglement": paper_d,
        "dci_disentanglement": dci["disentanglement"],
        "dci_completeness": dci["completeness"],
        "n_undefined": len(undefined),
        "undefined_attributes": undefined,
        "constant_attributes": [names[j] for j in np.flatnonzero(constant)],
        "n_not_converged": not_converged,
        "r2_insample_mean": _mean_std(r2_in)[0],
        "r2_cv_mean": _mean_std(r2_cv)[0],
        "effective_codes_mean": _mean_std(eff)[0],
        "top_r2": top_summary(names, r2_in, completeness, r2_in, top_n),
        "top_completeness": top_summary(names, r2_in, completeness, completeness, top_n),
    }
    return summary, importance


# ---------------------------------------------------------------- one job: store + attributes -> JSON + npz


def target_columns(attributes: pd.DataFrame) -> dict[str, list[str]]:
    """Target sets in an attributes table: eGeMAPS (numeric, not factor_*) and numeric factor_* columns."""
    numeric = [c for c in attributes.columns if c != "clip_id" and pd.api.types.is_numeric_dtype(attributes[c])
               and not pd.api.types.is_bool_dtype(attributes[c])]
    sets = {"egemaps": [c for c in numeric if not c.startswith(FACTOR_PREFIX)]}
    factors = [c for c in numeric if c.startswith(FACTOR_PREFIX)]
    if factors:
        sets["factors"] = factors
    return sets


def load_test_items(store, array: str, manifest, split: str = "test") -> tuple[np.ndarray, list[str]]:
    """Vectors of the split's clips (crop 0, one per clip) and their clip ids, in store order."""
    from audiosae.store import read_split

    values, index = read_split(store, array, split)
    keep = (index["crop"] == 0).to_numpy()
    values, index = values[keep], index[keep].reset_index(drop=True)
    if index["clip_id"].duplicated().any():
        dup = index.loc[index["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise DisentangleError(f"store {store}: clip {dup!r} has more than one crop-0 row in split {split!r}; "
                               "delete the store and rerun its rule")
    if manifest is not None:
        from audiosae.data.manifest import read_manifest

        man = read_manifest(manifest)
        expected = set(man.loc[man["split"] == split, "clip_id"].astype(str))
        got = set(index["clip_id"])
        if expected != got:
            raise DisentangleError(
                f"store {store} holds {len(got)} {split} clips but the manifest lists {len(expected)} "
                f"({len(expected - got)} missing, {len(got - expected)} unknown): the store is stale; rerun its rule")
    if len(values) == 0:
        raise DisentangleError(f"store {store} has no {split!r} items in array {array!r}")
    if not np.isfinite(values).all():
        raise DisentangleError(f"store {store}, array {array!r}: non-finite values in the {split} items; "
                               "the representation is broken, rerun the rule that wrote it")
    return values.astype(np.float64), index["clip_id"].tolist()


def run_disentangle(store, array: str, attributes, manifest=None, *, model: str = "", layer: int = -1,
                    rep: str = "", alpha: float = 0.1, max_iter: int = 10000, top_n: int = 10, cv_folds: int = 5,
                    eps: float = 1e-6, seed: int = 42, n_jobs: int = 1, log=None) -> tuple[dict, dict]:
    """One (model, layer, rep): returns (the JSON document, arrays for the .npz)."""
    x, clip_ids = load_test_items(store, array, manifest)
    from audiosae.attributes import read_attributes

    table = read_attributes(attributes)
    missing = [c for c in clip_ids if c not in table.index]
    if missing:
        raise DisentangleError(f"{attributes}: no attributes for {len(missing)} test clips (e.g. {missing[0]!r}); "
                               "rerun the attributes rule")
    table = table.loc[clip_ids].reset_index()
    if len(x) < 2 * cv_folds:
        raise DisentangleError(f"{len(x)} test items are too few for disentangle.cv_folds = {cv_folds} "
                               "(need at least 2 per fold); lower cv_folds or add test clips")
    doc = {"model": model, "layer": int(layer), "rep": rep, "n_codes": int(x.shape[1]), "n_items": int(x.shape[0]),
           "n_constant_codes": int(standardize(x)[3].sum()), "targets": {}}
    arrays = {}
    for set_name, cols in target_columns(table.drop(columns=["clip_id"])).items():
        if log:
            log(f"{set_name}: {len(cols)} targets on {x.shape[0]} items x {x.shape[1]} codes")
            if set_name == "egemaps" and len(cols) != 88:
                log(f"warning: {attributes} has {len(cols)} numeric non-factor columns, eGeMAPS v02 has 88")
        y = table[cols].to_numpy(dtype=np.float64, copy=True)
        y[~np.isfinite(y)] = np.nan
        summary, importance = analyse_targets(x, y, cols, alpha=alpha, max_iter=max_iter, top_n=top_n,
                                              cv_folds=cv_folds, eps=eps, seed=seed, n_jobs=n_jobs)
        if log and summary["n_not_converged"]:
            log(f"{set_name}: {summary['n_not_converged']} Lasso fits stopped at max_iter = {max_iter}")
        doc["targets"][set_name] = summary
        arrays[f"importance_{set_name}"] = importance.astype(np.float32)
        arrays[f"attributes_{set_name}"] = np.asarray(cols, dtype=np.str_)
    return doc, arrays


# ---------------------------------------------------------------- writing

write_npz = atomic_write_npz  # the importance matrices, atomically
