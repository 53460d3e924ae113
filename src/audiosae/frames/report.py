"""The frames section of the report: tables, figures and a claim (registered in audiosae.report.registry).

Tables (long format, CSV + Markdown):

- ``levels``: clip against frame SAEs on identical audio, one row per (model, layer,
  sparsity): test FVU (clip SAEs: over the test clips' pooled vectors; frame SAEs:
  over every test frame), dead-latent fraction, probe accuracy of the first probe
  target (``probe_target``; with the original's),
  disentanglement (eGeMAPS completeness and R² over the top-n attributes), the
  frame acoustics' matched MCC and best |rho| with the F0 LLD, and the atlas's
  share of interpretable units (its ``interpretable`` table, when the study has an atlas);
- ``frame_acoustics``: per (model, layer, rep, target) the best unit and its |rho|,
  and the matched unit of the one-to-one assignment;
- ``frame_mcc``: per (model, layer, rep) the matched MCC over all targets and over
  the LLDs, the best |rho| with the F0 LLD (and the true f0 on the synthetic corpus).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from audiosae.frames.acoustics import F0_LLD, TRUE_F0
from audiosae.layout import frame_acoustics_path, rep_of
from audiosae.report.aggregate import (ORIGINAL, ReportInputError, check_place, sort_rows, read_json,
                                       rep_sparsity, with_level)
from audiosae.report.claims import MAJORITY, MIXED, NOT_SUPPORTED, SUPPORTED, UNTESTABLE, Claim

FIGURES = ("levels_comparison", "frame_acoustics_best_rho")


# ---------------------------------------------------------------- tables


def acoustics_tables(paths: Iterable[Path | str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(frame_acoustics, frame_mcc) from the frame_acoustics JSON files."""
    rows, summary = [], []
    for path in paths:
        d = read_json(path)
        for key in ("model", "layer", "rep", "targets", "mcc", "mcc_llds", "n_units"):
            if key not in d:
                raise ReportInputError(f"{path}: missing key {key!r}; rerun frame_acoustics")
        check_place(path, frame_acoustics_path(d["model"], d["layer"], d["rep"]),
                    f"model {d['model']!r} layer {d['layer']} rep {d['rep']}")
        base = {"model": d["model"], "layer": int(d["layer"]), "rep": d["rep"], "sparsity": rep_sparsity(d["rep"])}
        best = {}
        for t in d["targets"]:
            rows.append({**base, "target": t["target"], "n_frames": t["n_frames"], "best_unit": t["best_unit"],
                         "best_abs_rho": t["best_abs_rho"], "best_rho": t["best_rho"],
                         "matched_unit": t["matched_unit"], "matched_abs_rho": t["matched_abs_rho"]})
            best[t["target"]] = t["best_abs_rho"]
        summary.append({**base, "n_units": d["n_units"], "constant_units": d.get("constant_units"),
                        "n_frames": d.get("n_frames_used"), "mcc": d["mcc"], "mcc_llds": d["mcc_llds"],
                        "mean_best_abs_rho": float(np.nanmean([v for v in best.values() if v is not None]))
                        if best else np.nan,
                        "f0_lld_best_abs_rho": best.get(F0_LLD), "true_f0_best_abs_rho": best.get(TRUE_F0)})
    acoustics = pd.DataFrame(rows)
    mcc = pd.DataFrame(summary)
    if not mcc.empty:
        order = list(dict.fromkeys(mcc["model"]))
        acoustics = sort_rows(acoustics, order, ("target",))
        mcc = sort_rows(mcc, order)
    return with_level(acoustics), with_level(mcc)


def _by_level(df: pd.DataFrame, cols: list[str], keys=("model", "layer", "sparsity")) -> pd.DataFrame:
    """clip and frame rows of `df` side by side: <col>_clip, <col>_frame, one row per (model, layer, sparsity)."""
    keys = list(keys)
    parts = []
    for level in ("clip", "frame"):
        part = df[df["level"] == level][keys + cols].rename(columns={c: f"{c}_{level}" for c in cols})
        parts.append(part)
    return parts[0].merge(parts[1], on=keys, how="outer")


def levels_table(tables: dict[str, pd.DataFrame], mcc: pd.DataFrame, atlas: pd.DataFrame | None = None,
                 target: str | None = None) -> pd.DataFrame:
    """Clip against frame SAEs, one row per (model, layer, sparsity) (see the module docstring).

    `atlas`: the atlas section's ``interpretable`` table, when the study has one. `target`: the probe target
    whose accuracy the table shows (the study's primary target, audiosae.config.primary_target); None: the
    probe table's first.
    """
    rec, probe, dis = (tables.get(n, pd.DataFrame()) for n in ("reconstruction", "probe", "disentanglement"))
    if rec.empty or "level" not in rec:
        return pd.DataFrame()
    out = _by_level(rec, ["test_fvu", "test_dead_fraction", "n_latents"])
    if not probe.empty:
        # The primary probe target (the study's main question: technique on VocalSet); the probe table has them all.
        if target is None:
            target = str(probe["target"].iloc[0]) if "target" in probe else ""
        if target:
            probe = probe[probe["target"] == target]
        out = out.merge(_by_level(probe, ["accuracy"]), on=["model", "layer", "sparsity"], how="left")
        out["probe_target"] = target
        orig = probe[probe["rep"] == ORIGINAL][["model", "layer", "accuracy"]].rename(
            columns={"accuracy": "accuracy_original"})
        out = out.merge(orig, on=["model", "layer"], how="left")
    if not dis.empty:
        eg = dis[dis["target"] == "egemaps"]
        out = out.merge(_by_level(eg, ["completeness_mean", "r2_mean"]), on=["model", "layer", "sparsity"], how="left")
    if not mcc.empty:
        fr = mcc[mcc["level"] == "frame"][["model", "layer", "sparsity", "mcc", "f0_lld_best_abs_rho"]]
        out = out.merge(fr.rename(columns={"mcc": "mcc_frame", "f0_lld_best_abs_rho": "f0_lld_best_abs_rho_frame"}),
                        on=["model", "layer", "sparsity"], how="left")
        orig = mcc[mcc["level"] == ORIGINAL][["model", "layer", "mcc", "f0_lld_best_abs_rho"]]
        out = out.merge(orig.rename(columns={"mcc": "mcc_original", "f0_lld_best_abs_rho": "f0_lld_best_abs_rho_original"}),
                        on=["model", "layer"], how="left")
    if atlas is not None and not atlas.empty and "share" in atlas:
        shares = _by_level(atlas.rename(columns={"share": "interpretable_share"}), ["interpretable_share"])
        out = out.merge(shares, on=["model", "layer", "sparsity"], how="left")
        orig = atlas[atlas["rep"] == ORIGINAL][["model", "layer", "share"]]
        out = out.merge(orig.rename(columns={"share": "interpretable_share_original"}), on=["model", "layer"],
                        how="left")
    order = list(dict.fromkeys(rec["model"]))
    out = out.assign(rep="level", _m=out["model"].map({m: i for i, m in enumerate(order)}))
    out = out.sort_values(["_m", "layer", "sparsity"], kind="stable").drop(columns=["_m", "rep"])
    return out.reset_index(drop=True)


def build(inputs: dict[str, list[str]], params: dict) -> dict[str, pd.DataFrame]:
    """The frames section's tables (the report sections' contract, audiosae.report.registry): the frame acoustics
    files, and the core tables (and the atlas's interpretable table, when the study has one) they are set beside."""
    from audiosae.report.aggregate import read_tables

    core = inputs["core"]
    core_tables = read_tables(Path(core[0]).parent, [Path(p).stem for p in core])
    interpretable = [p for p in inputs.get("atlas", []) if Path(p).stem == "interpretable"]
    atlas = read_tables(Path(interpretable[0]).parent, ["interpretable"])["interpretable"] if interpretable else None
    return build_tables(inputs["acoustics"], core_tables, atlas, params.get("target"))


def build_tables(acoustics_paths, core_tables: dict[str, pd.DataFrame],
                 atlas: pd.DataFrame | None = None, target: str | None = None) -> dict[str, pd.DataFrame]:
    acoustics, mcc = acoustics_tables(acoustics_paths)
    return {"levels": levels_table(core_tables, mcc, atlas, target), "frame_mcc": mcc, "frame_acoustics": acoustics}


# ---------------------------------------------------------------- figures


def draw(tables: dict[str, pd.DataFrame], inputs: dict, params: dict, out_dir: Path | str, names=FIGURES
         ) -> dict[str, str]:
    """The frames section's figures (the report sections' contract): both figures (PNG + PDF); returns
    {name: caption}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from audiosae.report.figures import LEVEL_STYLE, save_figure, apply_theme, heatmap, rep_label

    apply_theme()
    out_dir = Path(out_dir)
    captions = {}

    # Clip against frame SAEs, per metric against sparsity.
    lv = tables["levels"]
    panels = [("test_fvu", "test FVU", 1.0), ("test_dead_fraction", "dead latents (%)", 100.0),
              ("accuracy", "probe accuracy (%)", 100.0), ("completeness_mean", "completeness (eGeMAPS)", 1.0)]
    target = str(lv["probe_target"].iloc[0]) if "probe_target" in lv and len(lv) else ""
    if target:
        panels[2] = ("accuracy", f"probe accuracy, {target} (%)", 100.0)
    panels = [p for p in panels if f"{p[0]}_frame" in lv or f"{p[0]}_clip" in lv]
    nodes = list(dict.fromkeys(zip(lv["model"], lv["layer"])))
    fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(3.3 * len(panels) + 0.6, 3.3),
                             layout="constrained")
    palette = sns.color_palette("colorblind")
    for ax, (col, label, scale) in zip(axes[0], panels):
        for i, (model, layer) in enumerate(nodes):
            node = lv[(lv["model"] == model) & (lv["layer"] == layer)].sort_values("sparsity")
            for level in ("clip", "frame"):
                c = f"{col}_{level}"
                if c in node and node[c].notna().any():
                    ax.plot(node["sparsity"], node[c] * scale, color=palette[i % len(palette)], ms=4, lw=1.5,
                            label=f"{model} L{layer} ({level})", **LEVEL_STYLE[level])
            if col == "accuracy" and "accuracy_original" in node and node["accuracy_original"].notna().any():
                ax.axhline(float(node["accuracy_original"].iloc[0]) * scale, color=palette[i % len(palette)],
                           ls="--", lw=1.0)
        ax.set_xlabel("SAE sparsity")
        ax.set_ylabel(label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False, fontsize=7)
    save_figure(fig, out_dir, "levels_comparison")
    captions["levels_comparison"] = (
        "Clip-level SAEs (solid, circles; trained on each crop's time-averaged vector) against frame-level SAEs "
        "(dotted, squares; trained on every frame, their clip code the mean over the crop's frames) on the same "
        "audio: test FVU (clip: pooled vectors; frame: frames), dead latents, probe accuracy"
        + (f" for {target}" if target else "") + " (dashed: original layer) and eGeMAPS completeness against sparsity.")

    # Best |rho| per target, per representation of each frame node.
    ac = tables["frame_acoustics"]
    fnodes = list(dict.fromkeys(zip(ac["model"], ac["layer"])))
    targets = list(dict.fromkeys(ac["target"]))
    fig, axes = plt.subplots(1, len(fnodes), squeeze=False, sharey=True,
                             figsize=(1.6 + 0.75 * len(fnodes) * max(ac.groupby(["model", "layer"])["rep"].nunique()),
                                      0.26 * len(targets) + 1.6), layout="constrained")
    for ax, (model, layer) in zip(axes[0], fnodes):
        node = ac[(ac["model"] == model) & (ac["layer"] == layer)].copy()
        node["representation"] = node["rep"].map(rep_label)
        cols = list(dict.fromkeys(node.sort_values("sparsity", na_position="first")["representation"]))
        grid = node.pivot(index="target", columns="representation", values="best_abs_rho").reindex(
            index=targets, columns=cols)
        heatmap(grid, ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", cbar=ax is axes[0, -1],
                annot_kws={"size": 6}, linewidths=0.3, linecolor="white")
        ax.set_title(f"{model} · layer {layer}")
        ax.set_xlabel("")
        ax.set_ylabel("target (eGeMAPS LLD)" if ax is axes[0, 0] else "")
        ax.tick_params(axis="x", rotation=35, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
    save_figure(fig, out_dir, "frame_acoustics_best_rho")
    captions["frame_acoustics_best_rho"] = (
        "Best |Spearman ρ| over the test frames between any one unit and each eGeMAPS low-level descriptor (10 ms, "
        "voiced-only ones over voiced frames)" + (" and the true f0" if TRUE_F0 in targets else "")
        + ": the layer's own dimensions (original) against each frame SAE's latents.")
    return captions


# ---------------------------------------------------------------- claim


def frames_claims(tables: dict[str, pd.DataFrame], majority: float = MAJORITY) -> list[Claim]:
    """Whether frame-SAE latents follow the acoustics over time more closely than the layer's own dimensions."""
    mcc = tables["frame_mcc"]
    paper = ("Not in the paper (it averages over time before the SAE). Audio SAE work on frames reports latents "
             "that track acoustic events over time; here: do single frame-SAE latents follow the frame-level "
             "acoustics more closely than the layer's own dimensions?")
    rule = (f"supported when the frame SAE's matched MCC (one latent per target) exceeds the layer's own "
            f"dimensions' in at least {int(100 * majority)} % of (node, sparsity) pairs; mixed when in some; "
            f"not supported when in none.")
    base = dict(number=6, title="Frame-SAE latents follow the acoustics over time", paper=paper, rule=rule,
                table="frame_mcc", figure="frame_acoustics_best_rho")
    if mcc.empty or not (mcc["level"] == "frame").any() or not (mcc["level"] == ORIGINAL).any():
        return [Claim(sentence="No frame acoustics for both frame SAEs and the original layer.",
                      verdict=UNTESTABLE, **base)]
    orig = mcc[mcc["level"] == ORIGINAL].set_index(["model", "layer"])
    fr = mcc[mcc["level"] == "frame"].copy()
    fr["mcc_orig"] = [orig.loc[(m, l), "mcc"] for m, l in zip(fr["model"], fr["layer"])]
    fr["f0_orig"] = [orig.loc[(m, l), "f0_lld_best_abs_rho"] for m, l in zip(fr["model"], fr["layer"])]
    better = int((fr["mcc"] > fr["mcc_orig"]).sum())
    n = len(fr)
    best = fr.loc[fr["f0_lld_best_abs_rho"].idxmax()]
    sentence = (f"The frame SAE's matched MCC beats the layer's own dimensions in {better} of {n} (node, sparsity) "
                f"pairs (mean {fr['mcc'].mean():.3f} against {fr['mcc_orig'].mean():.3f}). The single latent "
                f"closest to the F0 LLD reaches |ρ| = {best['f0_lld_best_abs_rho']:.3f} ({best['model']} layer "
                f"{int(best['layer'])}, {rep_label_plain(best['rep'])}; the layer's best dimension: "
                f"{best['f0_orig']:.3f}).")
    if "true_f0_best_abs_rho" in fr and fr["true_f0_best_abs_rho"].notna().any():
        t = fr.loc[fr["true_f0_best_abs_rho"].idxmax()]
        sentence += (f" Against the synthesiser's true f0, the best latent reaches |ρ| = "
                     f"{t['true_f0_best_abs_rho']:.3f} ({t['model']} layer {int(t['layer'])}, "
                     f"{rep_label_plain(t['rep'])}).")
    share = better / n
    verdict = SUPPORTED if share >= majority else MIXED if better > 0 else NOT_SUPPORTED
    numbers = {"pairs_better": better, "pairs": n, "mean_mcc_frame": float(fr["mcc"].mean()),
               "mean_mcc_original": float(fr["mcc_orig"].mean()),
               "best_f0_lld_abs_rho": float(best["f0_lld_best_abs_rho"])}
    return [Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)]


def rep_label_plain(rep: str) -> str:
    return rep_of(rep).label()
