"""The atlas stage's figures: interpretable share, ground truth (MCC, read-out R²), ablation.

Each is saved as PNG and PDF and gets a one-line caption computed from what it shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from audiosae.report.aggregate import ReportInputError  # noqa: E402
from audiosae.report.figures import apply_theme, heatmap, rep_label, save_figure, sweep  # noqa: E402



def fig_share(tables: dict) -> tuple[plt.Figure, str]:
    df = tables["interpretable"]
    from audiosae.atlas.report import claim_interpretable
    from audiosae.report.claims import claim_tables, scope_note

    fig = sweep(df, "share", "Live units with a\nclear label (%)", scale=100.0, ymin=0.0)
    thr = f"AUROC ≥ {df['auroc_threshold'].iloc[0]:g} or |ρ| ≥ {df['rho_threshold'].iloc[0]:g}"
    cap = (f"Share of live units with a clear label ({thr}) against SAE sparsity; dashed: the layer's original "
           f"dimensions.")
    n = claim_interpretable(claim_tables(tables)).numbers  # claim 5's numbers, from its function and rows
    if "sae_share_mean" in n:
        cap += (f" As in claim 5: mean {100 * n['sae_share_mean']:.1f} % of live latents, "
                f"{100 * n['original_share_mean']:.1f} % of original dimensions ({scope_note(df)}).")
    return fig, cap


def fig_truth(tables: dict) -> tuple[plt.Figure, str]:
    mcc = tables["mcc"]
    long = pd.concat([mcc.assign(metric="MCC (matched |ρ|)", value=mcc["mcc"]),
                      mcc.assign(metric="ridge read-out R²", value=mcc["readout_r2_mean"])], ignore_index=True)
    fig = sweep(long, "value", "mean over true factors", rows="metric")
    orig = mcc[mcc["rep"] == "original"]
    sae = mcc[mcc["rep"] != "original"]
    return fig, (f"Ground truth on the synthetic corpus: top, the MCC (true factors matched one-to-one to units, "
                 f"mean |Spearman ρ|); bottom, the mean cross-validated ridge R² of the factors from the whole "
                 f"representation (folds by singer); dashed: the original output. MCC mean {sae['mcc'].mean():.3f} "
                 f"for SAE latents vs {orig['mcc'].mean():.3f} for original dimensions; read-out R² "
                 f"{sae['readout_r2_mean'].mean():.3f} vs {orig['readout_r2_mean'].mean():.3f}.")


def fig_truth_factors(tables: dict) -> tuple[plt.Figure, str]:
    gt = tables["ground_truth"]
    gt = gt.assign(row=[f"{m} {l} {r}" for m, l, r in zip(gt["model"], gt["layer"], gt["rep"])])
    rows = list(dict.fromkeys(gt["row"]))
    factors = list(dict.fromkeys(gt["factor"]))
    fig, axes = plt.subplots(1, 2, figsize=(2.0 + 0.75 * 2 * len(factors), 1.2 + 0.28 * len(rows)),
                             layout="constrained", sharey=True)
    for ax, (col, title, vmin) in zip(axes, (("matched_abs_rho", "one unit: matched |ρ|", 0.0),
                                              ("readout_r2", "whole representation: read-out R²", 0.0))):
        grid = gt.pivot(index="row", columns="factor", values=col).reindex(index=rows, columns=factors)
        heatmap(grid, ax, vmin=vmin, vmax=1.0, cmap="viridis", annot=True, fmt=".2f", cbar=False,
                    annot_kws={"fontsize": 6})
        ax.set_title(title)
        ax.set_xlabel("true factor")
        ax.set_ylabel("")
    best = gt.loc[gt["readout_r2"].idxmax()]
    return fig, (f"Each true factor of the synthetic corpus, per representation: left, |Spearman ρ| of the unit "
                 f"matched to it one-to-one (Hungarian); right, the cross-validated ridge R² of the factor from the "
                 f"whole representation (folds by singer; negative R², worse than the mean, shown at 0). Highest "
                 f"read-out: {best['factor']} from {best['row']} (R² {best['readout_r2']:.2f}).")


ABLATION_COLUMNS = 2  # panels per row: at VocalSet's 10 classes the figure stays narrow enough to read at page width
TICK_PT = 9  # class tick labels


def fig_ablation(tables: dict) -> tuple[plt.Figure, str]:
    """A panel per (node, rep) that has ablation rows, wrapped into rows of ABLATION_COLUMNS: an SAE that does not
    exist at a node gets no panel (an empty panel reads as a measured zero)."""
    df = tables["ablation"]
    drawn = ["drop_class", "drop_others", "control_drop_class"]
    reps = list(dict.fromkeys(df.sort_values("sparsity", kind="stable")["rep"]))
    present = set(zip(df["model"], df["layer"], df["rep"]))
    panels = [(m, l, r) for (m, l) in dict.fromkeys(zip(df["model"], df["layer"])) for r in reps if (m, l, r) in present]
    if not panels:
        raise ReportInputError("ablation table has no rows; nothing to draw")
    classes = list(dict.fromkeys(df["class"]))
    ncols = min(ABLATION_COLUMNS, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharey=True,
                             figsize=(max(4.0, 0.42 * len(classes) + 1.2) * ncols, 2.6 * nrows + 1.0),
                             layout="constrained")
    palette = sns.color_palette("colorblind")
    bars = (("drop_class", "class c, its top-m latents zeroed", palette[3]),
            ("drop_others", "other classes (mean), same latents", palette[0]),
            ("control_drop_class", "class c, m random live latents", "0.6"))
    width = 0.27
    for i, (model, layer, rep) in enumerate(panels):
        ax = axes[i // ncols, i % ncols]
        part = df[(df["model"] == model) & (df["layer"] == layer) & (df["rep"] == rep)].set_index("class")
        if part[drawn].isna().all().all():  # the node was skipped (too few live latents): say so, draw no bars
            notes = [n for n in part.get("note", pd.Series(dtype=object)).dropna().astype(str) if n]
            ax.text(0.5, 0.5, "no data" + (f":\n{notes[0]}" if notes else ""), ha="center", va="center",
                    transform=ax.transAxes, fontsize=TICK_PT, wrap=True)
            ax.set_xticks([])
            ax.set_title(f"{model} layer {layer}, {rep_label(rep)}", fontsize=10)
            continue
        part = part.reindex(classes)
        x = np.arange(len(classes))
        for j, (col, label, color) in enumerate(bars):
            ax.bar(x + (j - 1) * width, 100 * part[col].to_numpy(float), width, color=color,
                   label=label if i == 0 else None)
        ax.axhline(0, color="0.3", lw=0.8)
        values = part[drawn].to_numpy(float)
        if np.isfinite(values).any() and (values[np.isfinite(values)] == 0).all():
            recall = part["recall"].to_numpy(float) if "recall" in part else np.array([])
            why = (f"; recall before: {', '.join(f'{100 * r:.0f} %' for r in recall)}" if len(recall) else "")
            ax.text(0.5, 0.6, f"every drop is 0 (measured){why}", ha="center", va="center", transform=ax.transAxes,
                    fontsize=TICK_PT, wrap=True, color="0.25")
        slanted = max(len(str(c)) for c in classes) > 4  # short names ('a', 'low') read level; long ones slant
        ax.set_xticks(x, classes, rotation=60 if slanted else 0, ha="right" if slanted else "center",
                      fontsize=TICK_PT)
        ax.tick_params(axis="y", labelsize=TICK_PT)
        ax.set_title(f"{model} layer {layer}, {rep_label(rep)}", fontsize=10)
        if i % ncols == 0:
            ax.set_ylabel("recall drop (points)")
    for j in range(len(panels), nrows * ncols):  # the last row's unused cells: no frame, nothing that reads as data
        axes[j // ncols, j % ncols].axis("off")
    fig.legend(loc="outside lower center", ncol=3, frameon=False)
    m = int(df["m"].iloc[0])
    return fig, (f"Ablation: zeroing, in the test clips' SAE codes, the {m} latents with the highest AUROC for class c "
                 f"(chosen on the other clips), decoding and classifying with the probe trained on the original output. "
                 f"Mean recall drop {100 * df['drop_class'].mean():.1f} points for class c, "
                 f"{100 * df['drop_others'].mean():.1f} for the other classes, "
                 f"{100 * df['control_drop_class'].mean():.1f} for class c with {m} random live latents.")


MAKERS = {"interpretable_share_vs_sparsity": fig_share, "ground_truth_vs_sparsity": fig_truth,
          "ground_truth_factors": fig_truth_factors, "ablation": fig_ablation}


def make_figures(tables: dict, out_dir: Path | str, names) -> dict[str, str]:
    """Draw the named figures into out_dir (PNG + PDF); returns {name: caption}."""
    apply_theme()
    out_dir = Path(out_dir)
    captions = {}
    for name in names:
        fig, caption = MAKERS[name](tables)
        save_figure(fig, out_dir, name)
        captions[name] = caption
    return captions
