"""The atlas stage's part of the report: tables, figures and the fifth claim.

Tables (long format):

- ``interpretable``: per (model, layer, rep), live units, units with a clear label
  (by AUROC, by ρ, either) and their share of live units, with ``delta_share`` to
  the layer's original output;
- ``mcc`` (synthetic corpus): per (model, layer, rep), the MCC (mean |ρ| of the
  Hungarian match of true factors to units) and the mean ridge read-out R²;
- ``ground_truth`` (synthetic corpus): per (model, layer, rep, factor), the matched
  unit, its ρ and the factor's read-out R²;
- ``ablation``: per (model, layer, SAE rep, class), the recall drops of the
  ablation test (``audiosae.atlas.ablation``).

Claim 5, "SAE latents are more often interpretable one by one than the layer's
dimensions", is answered from ``interpretable``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from audiosae.jsonio import read_json
from audiosae.layout import LEVELS, ORIGINAL, Rep, RepError
KEYS = ["model", "layer", "rep", "level", "sparsity"]
MCC_COLUMNS = KEYS + ["factors", "mcc", "readout_r2_mean", "delta_mcc"]
GROUND_TRUTH_COLUMNS = KEYS + ["factor", "matched_unit", "matched_rho", "matched_abs_rho", "readout_r2"]
ABLATION_COLUMNS = KEYS + ["target", "m", "class", "n_test", "latents", "selection_auroc_mean", "recall", "drop_class",
                           "drop_others", "control_drop_class", "control_drop_others", "specificity",
                           "control_specificity", "note"]
MAJORITY = 0.75  # share of (node, sparsity) pairs that must agree for "supported", as for claim 3


class AtlasReportError(ValueError):
    """An atlas result the report reads is missing or malformed."""


def rep_parts(rep: str) -> tuple[str, float]:
    """(level, sparsity) of a rep name: original -> ("original", NaN), sae0.9 -> ("clip", 0.9), fsae0.9 -> ("frame", 0.9)."""
    try:
        r = Rep.parse(rep)
    except RepError as err:
        raise AtlasReportError(str(err)) from None
    return r.level, r.sparsity_value


def _num(v) -> float:
    return math.nan if v is None else float(v)


def _order(df: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    if df.empty:
        return df
    models = list(dict.fromkeys(df["model"]))
    key = df.assign(_m=df["model"].map({m: i for i, m in enumerate(models)}),
                    _l=df["level"].map(LEVELS.index), _s=df["sparsity"].fillna(-1.0))
    return key.sort_values(["_m", "layer", "_l", "_s", *extra], kind="stable").drop(
        columns=["_m", "_l", "_s"]).reset_index(drop=True)


# ---------------------------------------------------------------- tables


def interpretable_table(atlas_dirs: Iterable[Path | str]) -> pd.DataFrame:
    rows = []
    for d in atlas_dirs:
        s = read_json(Path(d) / "summary.json")
        level, sparsity = rep_parts(s["rep"])
        rows.append({"model": s["model"], "layer": int(s["layer"]), "rep": s["rep"], "level": level,
                     "sparsity": sparsity, "units": s["units"], "live": s["live"], "dead": s["dead"],
                     "constant": s["constant"], "clear": s["clear"], "clear_by_auroc": s["clear_by_auroc"],
                     "clear_by_rho": s["clear_by_rho"], "share": _num(s["share"]),
                     "auroc_threshold": s["auroc_threshold"], "rho_threshold": s["rho_threshold"]})
    df = _order(pd.DataFrame(rows))
    if df.empty:
        return df
    orig = df[df["rep"] == ORIGINAL].set_index(["model", "layer"])
    ref = df.join(orig[["share", "clear"]].rename(columns={"share": "share_orig", "clear": "clear_orig"}),
                  on=["model", "layer"])
    df["delta_share"] = ref["share"] - ref["share_orig"]
    return df


def truth_tables(atlas_dirs: Iterable[Path | str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mcc per rep, ground_truth per factor); empty frames when no atlas has true factors."""
    summary, per_factor = [], []
    for d in atlas_dirs:
        s = read_json(Path(d) / "summary.json")
        if "truth" not in s:
            continue
        level, sparsity = rep_parts(s["rep"])
        key = {"model": s["model"], "layer": int(s["layer"]), "rep": s["rep"], "level": level, "sparsity": sparsity}
        t = s["truth"]
        summary.append({**key, "factors": len(t["factors"]), "mcc": _num(t["mcc"]),
                        "readout_r2_mean": _num(t["readout_r2_mean"])})
        for f in t["factors"]:
            rho = _num(f["rho"])
            per_factor.append({**key, "factor": f["factor"].removeprefix("factor_"), "matched_unit": f["unit"],
                               "matched_rho": rho, "matched_abs_rho": abs(rho), "readout_r2": _num(f["readout_r2"])})
    if not summary:
        return pd.DataFrame(columns=MCC_COLUMNS), pd.DataFrame(columns=GROUND_TRUTH_COLUMNS)
    mcc = _order(pd.DataFrame(summary))
    orig = mcc[mcc["rep"] == ORIGINAL].set_index(["model", "layer"])["mcc"].rename("mcc_orig")
    mcc["delta_mcc"] = mcc["mcc"] - mcc.join(orig, on=["model", "layer"])["mcc_orig"]
    return mcc[MCC_COLUMNS], _order(pd.DataFrame(per_factor), ("factor",))[GROUND_TRUTH_COLUMNS]


def ablation_table(paths: Iterable[Path | str]) -> pd.DataFrame:
    rows = []
    for p in paths:
        doc = read_json(p)
        for rep, r in doc["reps"].items():
            level, sparsity = rep_parts(rep)
            for c in r["classes"]:
                rows.append({"model": doc["model"], "layer": int(doc["layer"]), "rep": rep, "level": level,
                             "sparsity": sparsity, "target": doc["target"], "m": doc["m"],
                             **{k: (_num(v) if isinstance(v, (int, float)) or v is None else v)
                                for k, v in c.items()}})
    return _order(pd.DataFrame(rows, columns=ABLATION_COLUMNS), ())


def build(inputs: dict[str, list[str]], params: dict) -> dict[str, pd.DataFrame]:
    """The atlas section's tables (the report sections' contract, audiosae.report.registry)."""
    return build_tables(inputs["atlas"], inputs.get("ablation", []))


def draw(tables: dict, inputs: dict, params: dict, out_dir, names) -> dict[str, str]:
    """The atlas section's figures (the report sections' contract); returns {name: caption}."""
    from audiosae.atlas.figures import make_figures

    return make_figures(tables, out_dir, names)


def build_tables(atlas_dirs, ablation_paths) -> dict[str, pd.DataFrame]:
    atlas_dirs = list(atlas_dirs)
    mcc, gt = truth_tables(atlas_dirs)
    return {"interpretable": interpretable_table(atlas_dirs), "mcc": mcc, "ground_truth": gt,
            "ablation": ablation_table(ablation_paths)}


# ---------------------------------------------------------------- claim 5


def claim_interpretable(tables: dict[str, pd.DataFrame], majority: float = MAJORITY):
    from audiosae.report.claims import (MIXED, NOT_SUPPORTED, SUPPORTED, UNTESTABLE, Claim, scope_note,
                                         seed_spread_note)

    df = tables.get("interpretable", pd.DataFrame())
    paper = ("(Beyond the paper) SAE latents are more often interpretable one by one than the layer's dimensions: "
             "a larger share of live SAE latents than of original dimensions has a clear label.")
    thr = ""
    if not df.empty:
        thr = (f" (one-vs-rest AUROC ≥ {df['auroc_threshold'].iloc[0]:g} for one class of a label column, or "
               f"|Spearman ρ| ≥ {df['rho_threshold'].iloc[0]:g} with one attribute)")
    rule = (f"a unit has a clear label{thr}; supported when, in at least {100 * majority:.0f} % of (node, sparsity) "
            f"pairs, the share of live clip-level SAE latents with a clear label exceeds the original output's share; "
            f"not supported when at most {100 * (1 - majority):.0f} % do; mixed otherwise.")
    base = dict(number=5, title="SAE latents are easier to name one by one", paper=paper, rule=rule,
                table="interpretable", figure="interpretable_share_vs_sparsity")
    if df.empty:
        return Claim(sentence="No atlas results in this run.", verdict=UNTESTABLE, **base)
    every = df[df["rep"] != ORIGINAL].dropna(subset=["delta_share"])
    # The verdict is on clip-level SAEs (the paper's); frame-level SAEs, where trained, are reported beside it.
    sae = every[every["level"] == "clip"] if (every["level"] == "clip").any() else every
    frame = every[every["level"] == "frame"] if sae is not every else every.iloc[:0]
    if sae.empty:
        return Claim(sentence="No atlas of both SAE latents and original dimensions of the same node.",
                     verdict=UNTESTABLE, **base)
    n = len(sae)
    higher = int((sae["delta_share"] > 0).sum())
    orig = df[df["rep"] == ORIGINAL]
    sentence = (f"The share of live units with a clear label is higher for SAE latents than for the layer's "
                f"dimensions in {higher} of {n} (node, sparsity) pairs (mean {100 * sae['share'].mean():.1f} % of "
                f"live latents vs {100 * orig['share'].mean():.1f} % of original dimensions).")
    by_s = sae.groupby("sparsity")
    sentence += " By sparsity: " + "; ".join(
        f"{s:g}: {100 * g['share'].mean():.1f} % ({int((g['delta_share'] > 0).sum())} of {len(g)} higher)"
        for s, g in by_s) + "."
    best = sae.loc[sae["delta_share"].idxmax()]
    worst = sae.loc[sae["delta_share"].idxmin()]
    sentence += (f" Largest gain: {best['model']} layer {int(best['layer'])} {best['rep']} "
                 f"({100 * best['delta_share']:+.1f} points); largest loss or smallest gain: {worst['model']} layer "
                 f"{int(worst['layer'])} {worst['rep']} ({100 * worst['delta_share']:+.1f} points).")
    sentence += (f" In counts: {int(sae['clear'].sum())} clearly labelled latents over the SAEs against "
                 f"{int(orig['clear'].sum())} clearly labelled dimensions over the original outputs.")
    if not frame.empty:
        sentence += (f" Frame-level SAEs: higher in {int((frame['delta_share'] > 0).sum())} of {len(frame)} pairs "
                     f"(mean {100 * frame['share'].mean():.1f} % of live latents).")
    scope = scope_note(df)
    if "not counted" in scope:
        sentence += f" Counted: {scope}."
    frac = higher / n
    verdict = SUPPORTED if frac >= majority else NOT_SUPPORTED if frac <= 1 - majority else MIXED
    numbers = {"pairs": n, "sae_share_higher": higher, "sae_share_mean": float(sae["share"].mean()),
               "original_share_mean": float(orig["share"].mean())}
    note, seeds = seed_spread_note(tables.get("seed_spread"), "interpretable_share", "share of clearly labelled live "
                                   "latents", level=str(sae["level"].iloc[0]), scale=100, unit=" points")
    sentence += note
    numbers.update(seeds)
    return Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)


def atlas_claims(tables: dict[str, pd.DataFrame]) -> list:
    return [claim_interpretable(tables)]
