"""Long-format tables from the per-job JSON files of the SAE, probe and disentangle stages.

Every table has one row per (model, layer, rep) — per probe target in the probe
tables (``target``: a label of the corpus), per target set where the disentangle
stage has several (``egemaps``, and ``factors`` on the synthetic corpus) — so it
is easy to plot, filter and diff. ``rep`` is ``original``, ``sae<sparsity>`` (a
clip-level SAE, the paper's) or ``fsae<sparsity>`` (a frame-level SAE); ``level``
says which (original / clip / frame), so both levels sit side by side in every
table; ``sparsity`` is NaN for ``original``. Columns named ``delta_<x>`` hold
``x`` minus the value of the original representation of the same model, layer
(and target). ``<x>_lo`` / ``<x>_hi`` bound a bootstrap interval over test clips
(probe accuracy; ``delta_accuracy`` paired: the SAE's and the original's probe
scored on the same resampled clips).

Tables written by :func:`write_tables` (CSV, and Markdown for reading):

- ``reconstruction``: the SAEs' valid and test MSE, FVU, cosine, L0, dead fraction;
- ``probe``: per target, test accuracy with its interval, balanced accuracy, macro-F1 (± std over
  seeds), deltas, the paired interval of delta_accuracy and its verdict (higher / lower / no change / inconclusive);
- ``confusion``: the probes' test confusion matrices (first seed), one row per cell;
- ``disentanglement``: top-n R² and completeness (mean ± std over the attributes),
  paper and DCI disentanglement, cross-validated R², effective codes, undefined attributes;
- ``attributes``: every attribute's R², CV R², completeness and effective codes;
- ``factors``: the top-n attributes of each node, ranked by R² and by completeness;
- ``categories``: how many of those top-n attributes fall in each category.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from audiosae import jsonio, layout
from audiosae.atomic import write_text
from audiosae.layout import ORIGINAL, Rep, RepError, rep_of
from audiosae.report import TABLES

SPLITS = ("valid", "test")
RECON_METRICS = ("mse", "fvu", "cosine", "l0", "dead_fraction")
PROBE_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
# The paper's first-match order; categories not listed here follow alphabetically.
CATEGORY_ORDER = ("formants", "pitch", "voice quality", "loudness", "rhythm", "spectral", "MFCC", "other")
RANKINGS = {"r2": "top_r2", "completeness": "top_completeness"}


class ReportInputError(ValueError):
    """A result file the report reads is missing, malformed or inconsistent."""


# ---------------------------------------------------------------- helpers


def _rep(rep) -> Rep:
    try:
        return rep_of(rep)
    except RepError as err:
        raise ReportInputError(str(err)) from None


def rep_level(rep) -> str:
    """Level of a representation: 'original', 'clip' (sae<s>), 'frame' (fsae<s>) or 'external' (ext-<name>)."""
    return _rep(rep).level


def rep_sparsity(rep) -> float:
    """Sparsity of a representation: NaN for 'original', 0.9 for 'sae0.9' and 'fsae0.9'."""
    return _rep(rep).sparsity_value


def with_level(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a `level` column (original / clip / frame) right after `rep`."""
    if df.empty or "rep" not in df or "level" in df:
        return df
    out = df.copy()
    out.insert(list(out.columns).index("rep") + 1, "level", [rep_level(r) for r in out["rep"]])
    return out


def _num(x) -> float:
    """JSON number or null -> float (null -> NaN)."""
    return math.nan if x is None else float(x)


def read_json(path: Path | str) -> dict:
    return jsonio.read_json(path, error=ReportInputError)


def _require(data: dict, keys: Iterable[str], path) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ReportInputError(f"{path}: missing key(s) {missing}; the file is from an older or foreign stage, rerun it")


def check_place(path, expected: str, identity: str) -> None:
    """A result file under its stage's folder must sit where `audiosae.layout` puts the identity it states
    (`expected`, built from the file's own fields); files elsewhere (copied out for a test) are not checked."""
    tail = Path(expected).relative_to(layout.RESULTS).parts
    parts = Path(path).parts
    if tail[0] not in parts[:-1]:
        return
    at = len(parts) - 1 - parts[:-1][::-1].index(tail[0]) - 1
    if parts[at:] != tail:
        raise ReportInputError(f"{path}: the file says {identity}, so it belongs at {'/'.join(tail)} under "
                               f"{layout.RESULTS}/; the file was moved or mislabelled")


def sort_rows(df: pd.DataFrame, model_order: list[str], extra: tuple[str, ...] = (),
          targets: list[str] | None = None) -> pd.DataFrame:
    """Probe targets in input order (when given), models in input order, layers ascending, original first
    then sparsity ascending."""
    if df.empty:
        return df.reset_index(drop=True)
    key = df.assign(
        _t=df["target"].map({t: i for i, t in enumerate(targets)}) if targets else 0,
        _m=df["model"].map({m: i for i, m in enumerate(model_order)}),
        _l=[layout.LEVELS.index(rep_level(r)) for r in df["rep"]] if "rep" in df else 0,
        _s=df["sparsity"].fillna(-1.0),
    )
    return (
        key.sort_values(["_t", "_m", "layer", "_l", "_s", *extra], kind="stable")
        .drop(columns=["_t", "_m", "_l", "_s"])
        .reset_index(drop=True)
    )


def _models_in_order(records: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        seen.setdefault(r["model"], None)
    return list(seen)


def _check_unique(df: pd.DataFrame, keys: list[str], what: str) -> None:
    dup = df[df.duplicated(keys, keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        raise ReportInputError(
            f"two {what} results for " + ", ".join(f"{k}={first[k]}" for k in keys) + "; pass each result file once"
        )


def add_deltas(df: pd.DataFrame, columns: Iterable[str], keys: list[str], what: str) -> pd.DataFrame:
    """delta_<col> = col - col of the 'original' row with the same `keys` (model, layer, ...)."""
    columns = list(columns)
    orig = df[df["rep"] == ORIGINAL].set_index(keys)[columns]
    have = set(orig.index)
    for _, row in df[df["rep"] != ORIGINAL].iterrows():
        key = tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]
        if key not in have:
            raise ReportInputError(
                f"{what}: no 'original' result for " + ", ".join(f"{k}={row[k]}" for k in keys)
                + f" to compare {row['rep']} with; run that node's original representation too"
            )
    ref = orig.reset_index().rename(columns={c: f"{c}__orig" for c in columns})
    joined = df[keys].merge(ref, on=keys, how="left")  # a left merge keeps df's row order
    out = df.copy()
    for c in columns:
        out[f"delta_{c}"] = df[c].to_numpy(dtype=float) - joined[f"{c}__orig"].to_numpy(dtype=float)
    return out


def category_order(categories: Iterable[str]) -> list[str]:
    cats = set(categories)
    known = [c for c in CATEGORY_ORDER if c in cats]
    return known + sorted(cats - set(CATEGORY_ORDER))


# ---------------------------------------------------------------- tables


def reconstruction_table(metric_paths: Iterable[Path | str]) -> pd.DataFrame:
    rows = []
    for path in metric_paths:
        d = read_json(path)
        _require(d, ("model", "layer", "sparsity", "k", "n_latents", "input_dim", "splits"), path)
        if str(d.get("rep", "")).startswith("ext-"):  # an imported SAE (sae.external): no target sparsity
            rep = _rep(d["rep"])
            place = f"{layout.ext_dir(d['model'], d['layer'], rep)}/metrics.json"
        else:
            rep = Rep.sae(d["sparsity"], d.get("level", "clip"))
            place = f"{layout.sae_dir(d['model'], d['layer'], rep)}/metrics.json"
        check_place(path, place, f"model {d['model']!r} layer {d['layer']} rep {rep}")
        row = {
            "model": d["model"],
            "layer": int(d["layer"]),
            "rep": str(rep),
            "sparsity": _num(d["sparsity"]),  # null for an imported SAE
            "k": None if d["k"] is None else int(d["k"]),  # relu_l1 SAEs have no fixed k
            "n_latents": int(d["n_latents"]),
            "input_dim": int(d["input_dim"]),
            "arch": d.get("arch"),
            "seed": d.get("seed"),
            "epochs_run": d.get("epochs_run"),
            "best_epoch": d.get("best_epoch"),
            # No wall time here: the same config must give the same tables (timings are in the report).
        }
        for split in SPLITS:
            if split not in d["splits"]:
                raise ReportInputError(f"{path}: no '{split}' entry under 'splits'")
            _require(d["splits"][split], RECON_METRICS, f"{path} (splits.{split})")
            for m in RECON_METRICS:
                row[f"{split}_{m}"] = _num(d["splits"][split][m])
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    _check_unique(df, ["model", "layer", "rep"], "SAE")
    return sort_rows(df, _models_in_order(rows))


PROBE_KEYS = ("target", "model", "layer", "rep", "classes", *PROBE_METRICS, "accuracy_ci", "confusion_matrix",
              "test_clip_ids", "test_y_true", "test_y_pred")


def _probe_records(probe_paths: Iterable[Path | str]) -> list[tuple[Path, dict]]:
    out = []
    for path in probe_paths:
        d = read_json(path)
        _require(d, PROBE_KEYS, path)
        check_place(path, layout.probe_path(d["target"], d["model"], d["layer"], _rep(d["rep"])),
                    f"target {d['target']!r} model {d['model']!r} layer {d['layer']} rep {d['rep']}")
        p = Path(path)
        n = len(d["test_clip_ids"])
        if len(d["test_y_true"]) != n or any(len(pred) != n for pred in d["test_y_pred"]) or not d["test_y_pred"]:
            raise ReportInputError(f"{path}: test_y_true / test_y_pred do not hold one value per test clip "
                                   f"({n} clips); rerun the probe")
        out.append((p, d))
    return out


def _correct(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """(test clip ids, [seeds, clips] 1 where the probe was right), clips sorted by id."""
    ids = np.asarray(d["test_clip_ids"], dtype=str)
    order = np.argsort(ids, kind="stable")
    truth = np.asarray(d["test_y_true"])[order]
    pred = np.asarray(d["test_y_pred"])[:, order]
    return ids[order], (pred == truth).astype(np.float64)


def _target_order(records: list[tuple[Path, dict]]) -> list[str]:
    return list(dict.fromkeys(d["target"] for _, d in records))


def probe_table(probe_paths: Iterable[Path | str], bootstrap: int = 1000, ci: float = 0.95,
                seed: int = 42) -> pd.DataFrame:
    """One row per (target, model, layer, rep): test accuracy with its bootstrap interval (over test
    clips) and seed spread, balanced accuracy, macro-F1, and for SAE codes the paired difference to the
    original representation of the same node with its interval and verdict (higher / lower / no change /
    inconclusive, audiosae.bootstrap.difference_verdict)."""
    from audiosae.bootstrap import difference_verdict, paired_interval

    records = _probe_records(probe_paths)
    rows = []
    originals = {(d["target"], d["model"], int(d["layer"])): (path, d) for path, d in records if d["rep"] == ORIGINAL}
    for path, d in records:
        lo, hi = d["accuracy_ci"]
        row = {
            "target": d["target"],
            "split_strategy": d.get("split_strategy"),
            "model": d["model"],
            "layer": int(d["layer"]),
            "rep": d["rep"],
            "sparsity": rep_sparsity(d["rep"]),
            "input_dim": d.get("input_dim"),
            "n_classes": len(d["classes"]),
            "n_train": d.get("n_train"),
            "n_valid": d.get("n_valid"),
            "n_test": d.get("n_test"),
            "n_seeds": len(d.get("seeds") or [None]),
            "best_epoch": d.get("best_epoch"),
            "majority_class_accuracy": _num(d.get("majority_class_accuracy")),
            "accuracy_lo": _num(lo),
            "accuracy_hi": _num(hi),
        }
        for m in PROBE_METRICS:
            row[m] = _num(d[m])
            row[f"{m}_std"] = _num(d.get(f"{m}_std"))
        row["delta_accuracy_lo"] = row["delta_accuracy_hi"] = math.nan
        row["delta_verdict"] = ""
        key = (d["target"], d["model"], int(d["layer"]))
        if d["rep"] != ORIGINAL and key in originals:
            opath, od = originals[key]
            ids, right = _correct(d)
            oids, oright = _correct(od)
            if not np.array_equal(ids, oids):
                raise ReportInputError(f"{path} and {opath} were scored on different test clips; rerun both probes")
            diff = paired_interval(right, oright, resamples=bootstrap, ci=ci, seed=seed)
            row["delta_accuracy_lo"], row["delta_accuracy_hi"] = diff.lo, diff.hi
            row["delta_verdict"] = difference_verdict(diff.lo, diff.hi, diff.estimate)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    _check_unique(df, ["target", "model", "layer", "rep"], "probe")
    df = add_deltas(df, PROBE_METRICS, ["target", "model", "layer"], "probe")
    cols = [c for c in df.columns if c not in ("delta_accuracy_lo", "delta_accuracy_hi", "delta_verdict")]
    at = cols.index("delta_accuracy") + 1
    df = df[cols[:at] + ["delta_accuracy_lo", "delta_accuracy_hi", "delta_verdict"] + cols[at:]]
    return sort_rows(df, _models_in_order(rows), targets=_target_order(records))


def confusion_table(probe_paths: Iterable[Path | str]) -> pd.DataFrame:
    rows = []
    records = _probe_records(probe_paths)
    for path, d in records:
        classes = list(d["classes"])
        cm = np.asarray(d["confusion_matrix"], dtype=np.int64)
        if cm.shape != (len(classes), len(classes)):
            raise ReportInputError(
                f"{path}: confusion_matrix has shape {cm.shape}, expected {len(classes)}x{len(classes)} (one row per class)"
            )
        for i, t in enumerate(classes):
            for j, p in enumerate(classes):
                rows.append({"target": d["target"], "model": d["model"], "layer": int(d["layer"]), "rep": d["rep"],
                             "sparsity": rep_sparsity(d["rep"]), "true": t, "predicted": p,
                             "count": int(cm[i, j])})
    df = pd.DataFrame(rows)
    return sort_rows(df, _models_in_order(rows), targets=_target_order(records)) if not df.empty else df


DIS_SUMMARY = (
    "r2_mean", "r2_std", "completeness_mean", "completeness_std",
    "best_completeness_mean", "best_completeness_std", "best_completeness_r2_mean",
    "paper_disentanglement", "dci_disentanglement", "dci_completeness",
    "r2_cv_mean", "effective_codes_mean",
)
DIS_DELTAS = (
    "r2_mean", "completeness_mean", "best_completeness_mean", "paper_disentanglement",
    "dci_disentanglement", "dci_completeness", "r2_cv_mean", "effective_codes_mean",
)
TARGET_KEYS = (
    "attributes", "r2_insample", "r2_cv", "completeness_paper", "effective_codes", "paper_disentanglement",
    "dci_disentanglement", "dci_completeness", "n_undefined", "top_r2", "top_completeness",
)
TOP_KEYS = ("attributes", "categories", "r2_mean", "r2_std", "completeness_mean", "completeness_std")


def _disentangle_records(paths: Iterable[Path | str]) -> list[tuple[Path, dict]]:
    out = []
    for path in paths:
        d = read_json(path)
        _require(d, ("model", "layer", "rep", "n_codes", "targets"), path)
        check_place(path, layout.disentangle_path(d["model"], d["layer"], _rep(d["rep"])),
                    f"model {d['model']!r} layer {d['layer']} rep {d['rep']}")
        for target, t in d["targets"].items():
            _require(t, TARGET_KEYS, f"{path} (targets.{target})")
            n = len(t["attributes"])
            for key in ("r2_insample", "r2_cv", "completeness_paper", "effective_codes"):
                if len(t[key]) != n:
                    raise ReportInputError(f"{path}: targets.{target}.{key} has {len(t[key])} values for {n} attributes")
            for top in RANKINGS.values():
                _require(t[top], TOP_KEYS, f"{path} (targets.{target}.{top})")
                if len(t[top]["attributes"]) != len(t[top]["categories"]):
                    raise ReportInputError(f"{path}: targets.{target}.{top} has unequal attributes and categories lists")
        out.append((Path(path), d))
    return out


def _nanmean(values) -> float:
    arr = np.array([_num(v) for v in values], dtype=float)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else math.nan


def disentanglement_table(paths: Iterable[Path | str]) -> pd.DataFrame:
    rows = []
    for path, d in _disentangle_records(paths):
        for target, t in d["targets"].items():
            tr, tc = t["top_r2"], t["top_completeness"]
            r2_cv_mean = _num(t["r2_cv_mean"]) if "r2_cv_mean" in t else _nanmean(t["r2_cv"])
            eff_mean = _num(t["effective_codes_mean"]) if "effective_codes_mean" in t else _nanmean(t["effective_codes"])
            rows.append({
                "model": d["model"],
                "layer": int(d["layer"]),
                "rep": d["rep"],
                "sparsity": rep_sparsity(d["rep"]),
                "target": target,
                "n_codes": int(d["n_codes"]),
                "n_items": d.get("n_items"),
                "n_attributes": len(t["attributes"]),
                "top_n": len(tr["attributes"]),
                "r2_mean": _num(tr["r2_mean"]),
                "r2_std": _num(tr["r2_std"]),
                "completeness_mean": _num(tr["completeness_mean"]),
                "completeness_std": _num(tr["completeness_std"]),
                "best_completeness_mean": _num(tc["completeness_mean"]),
                "best_completeness_std": _num(tc["completeness_std"]),
                "best_completeness_r2_mean": _num(tc["r2_mean"]),
                "paper_disentanglement": _num(t["paper_disentanglement"]),
                "dci_disentanglement": _num(t["dci_disentanglement"]),
                "dci_completeness": _num(t["dci_completeness"]),
                "r2_cv_mean": r2_cv_mean,
                "effective_codes_mean": eff_mean,
                "n_undefined": int(t["n_undefined"]),
                "undefined_attributes": ";".join(t.get("undefined_attributes") or []),
            })
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    _check_unique(df, ["model", "layer", "rep", "target"], "disentanglement")
    df = add_deltas(df, DIS_DELTAS, ["model", "layer", "target"], "disentanglement")
    return sort_rows(df, _models_in_order(rows), ("target",))


def _category_map(records: list[tuple[Path, dict]]) -> dict[str, str]:
    """attribute -> category, as the disentangle stage named them in its top-n lists."""
    out: dict[str, str] = {}
    for _, d in records:
        for t in d["targets"].values():
            for top in RANKINGS.values():
                out.update(zip(t[top]["attributes"], t[top]["categories"]))
    return out


def attributes_table(paths: Iterable[Path | str]) -> pd.DataFrame:
    records = _disentangle_records(paths)
    cats = _category_map(records)
    rows = []
    for _, d in records:
        for target, t in d["targets"].items():
            for i, a in enumerate(t["attributes"]):
                rows.append({
                    "model": d["model"], "layer": int(d["layer"]), "rep": d["rep"],
                    "sparsity": rep_sparsity(d["rep"]), "n_codes": int(d["n_codes"]), "target": target,
                    "attribute": a, "category": cats.get(a, ""),
                    "r2": _num(t["r2_insample"][i]), "r2_cv": _num(t["r2_cv"][i]),
                    "completeness": _num(t["completeness_paper"][i]),
                    "effective_codes": _num(t["effective_codes"][i]),
                })
    df = pd.DataFrame(rows)
    return sort_rows(df, _models_in_order(rows), ("target",)) if not df.empty else df


def factors_table(paths: Iterable[Path | str]) -> pd.DataFrame:
    rows = []
    records = _disentangle_records(paths)
    for _, d in records:
        for target, t in d["targets"].items():
            r2 = dict(zip(t["attributes"], t["r2_insample"]))
            comp = dict(zip(t["attributes"], t["completeness_paper"]))
            for ranking, top in RANKINGS.items():
                for rank, (a, c) in enumerate(zip(t[top]["attributes"], t[top]["categories"]), start=1):
                    rows.append({
                        "model": d["model"], "layer": int(d["layer"]), "rep": d["rep"],
                        "sparsity": rep_sparsity(d["rep"]), "target": target, "ranking": ranking,
                        "rank": rank, "attribute": a, "category": c,
                        "r2": _num(r2.get(a)), "completeness": _num(comp.get(a)),
                    })
    df = pd.DataFrame(rows)
    return sort_rows(df, _models_in_order([d for _, d in records]), ("target", "ranking", "rank")) if not df.empty else df


def categories_table(paths: Iterable[Path | str]) -> pd.DataFrame:
    records = _disentangle_records(paths)
    by_target: dict[str, set] = {}
    for _, d in records:
        for target, t in d["targets"].items():
            for top in RANKINGS.values():
                by_target.setdefault(target, set()).update(t[top]["categories"])
    rows = []
    for path, d in records:
        for target, t in d["targets"].items():
            for ranking, top in RANKINGS.items():
                counts = pd.Series(t[top]["categories"], dtype=object).value_counts().to_dict()
                stated = t[top].get("category_counts")
                if stated is not None:
                    stated_nz = {k: int(v) for k, v in stated.items() if int(v)}
                    if stated_nz != {k: int(v) for k, v in counts.items()}:
                        raise ReportInputError(
                            f"{path}: targets.{target}.{top}.category_counts {stated_nz} disagrees with its "
                            f"categories list {counts}; rerun the disentangle rule"
                        )
                for cat in category_order(by_target[target]):
                    rows.append({
                        "model": d["model"], "layer": int(d["layer"]), "rep": d["rep"],
                        "sparsity": rep_sparsity(d["rep"]), "target": target, "ranking": ranking,
                        "category": cat, "count": int(counts.get(cat, 0)),
                    })
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["_c"] = [category_order(by_target[t]).index(c) for t, c in zip(df["target"], df["category"])]
    df = sort_rows(df, _models_in_order([d for _, d in records]), ("target", "ranking", "_c"))
    return df.drop(columns="_c")


# ---------------------------------------------------------------- output


def display_frame(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The table as strings for people: numbers rounded, integers as integers, `x` and `x_std` as 'x ± std',
    and `x_lo` / `x_hi` appended to `x` as ' [lo, hi]' (a bootstrap interval)."""
    out = pd.DataFrame(index=df.index)
    cols = list(df.columns)
    std_of: dict[str, str] = {}
    for c in cols:
        if c.endswith("_std"):
            base = c[:-4]
            if base in cols:
                std_of[base] = c
            elif f"{base}_mean" in cols:
                std_of[f"{base}_mean"] = c
    ci_of = {c: (f"{c}_lo", f"{c}_hi") for c in cols if f"{c}_lo" in cols and f"{c}_hi" in cols}
    merged = set(std_of.values()) | {x for pair in ci_of.values() for x in pair}

    def fmt_col(c: str, col: pd.Series) -> list[str]:
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            vals = col.to_numpy(dtype=float)
            finite = vals[np.isfinite(vals)]
            whole = finite.size > 0 and np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 1e15)
            if whole and not c.endswith(("_std", "_mean")) and c not in ("sparsity",) and c not in ci_of:
                return ["" if not np.isfinite(v) else str(int(v)) for v in vals]
            return ["" if not np.isfinite(v) else f"{v:.{digits}f}" for v in vals]
        return ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in col]

    for c in cols:
        if c in merged:
            continue
        values = fmt_col(c, df[c])
        if c in std_of:
            sd = df[std_of[c]].to_numpy(dtype=float)
            values = [v + (f" ± {s:.{digits}f}" if np.isfinite(s) and v else "") for v, s in zip(values, sd)]
        if c in ci_of:
            lo, hi = (df[x].to_numpy(dtype=float) for x in ci_of[c])
            values = [v + (f" [{a:.{digits}f}, {b:.{digits}f}]" if v and np.isfinite(a) and np.isfinite(b) else "")
                      for v, a, b in zip(values, lo, hi)]
        out[c[:-5] if c in std_of and c.endswith("_mean") else c] = values
    return out


def markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A Markdown table for people (see display_frame)."""
    if df.empty:
        return "_(no rows)_\n"
    return display_frame(df, digits).to_markdown(index=False, disable_numparse=True) + "\n"


def build_tables(metric_paths, probe_paths, disentangle_paths, bootstrap: int = 1000, ci: float = 0.95,
                 seed: int = 42) -> dict[str, pd.DataFrame]:
    """Every core table; `bootstrap`, `ci` and `seed` shape the paired intervals of the probe differences."""
    metric_paths, probe_paths, disentangle_paths = list(metric_paths), list(probe_paths), list(disentangle_paths)
    tables = {
        "reconstruction": reconstruction_table(metric_paths),
        "probe": probe_table(probe_paths, bootstrap=bootstrap, ci=ci, seed=seed),
        "confusion": confusion_table(probe_paths),
        "disentanglement": disentanglement_table(disentangle_paths),
        "attributes": attributes_table(disentangle_paths),
        "factors": factors_table(disentangle_paths),
        "categories": categories_table(disentangle_paths),
    }
    return {name: with_level(df) for name, df in tables.items()}


def build(inputs: dict[str, list[str]], params: dict) -> dict[str, pd.DataFrame]:
    """The core section's tables (the report sections' contract, audiosae.report.registry): from every SAE's
    metrics.json, probe JSON and disentangle JSON."""
    return build_tables(inputs["metrics"], inputs["probes"], inputs["disentangle"], bootstrap=params["bootstrap"],
                        ci=params["ci"], seed=params["bootstrap_seed"])


def write_tables(metric_paths, probe_paths, disentangle_paths, out_dir: Path | str, **bootstrap) -> dict[str, pd.DataFrame]:
    """Build every table and write ``<out_dir>/<name>.csv`` and ``.md``; returns the tables.

    `bootstrap`: build_tables's bootstrap, ci and seed."""
    tables = build_tables(metric_paths, probe_paths, disentangle_paths, **bootstrap)
    for name, df in tables.items():
        write_table(out_dir, name, df)
    return tables


def write_table(out_dir: Path | str, name: str, df: pd.DataFrame) -> None:
    """Write one report table as ``<out_dir>/<name>.csv`` and, for reading, ``.md`` (atomically)."""
    out_dir = Path(out_dir)
    write_text(out_dir / f"{name}.csv", df.to_csv(index=False))
    write_text(out_dir / f"{name}.md", markdown(df))


def read_tables(tables_dir: Path | str, names: Iterable[str] = TABLES) -> dict[str, pd.DataFrame]:
    """The CSV tables written by write_tables (a missing or empty table is an empty frame)."""
    out = {}
    for name in names:
        path = Path(tables_dir) / f"{name}.csv"
        if not path.exists():
            raise ReportInputError(f"{path}: table not found; run the aggregate rule first")
        try:
            out[name] = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            out[name] = pd.DataFrame()
    return out
