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

from audiosae.report.figures import save_figure, sweep, apply_theme, heatmap  # noqa: E402



def fig_share(tables: dict) -> tuple[plt.Figure, str]:
    df = tables["interpretable"]
    fig = sweep(df, "share", "Live units with a\nclear label (%)", scale=100.0, ymin=0.0)
    orig = df[df["rep"] == "original"]["share"]
    sae = df[df["rep"] != "original"]["share"]
    thr = f"AUROC ≥ {df['auroc_threshold'].iloc[0]:g} or |ρ| ≥ {df['rho_threshold'].iloc[0]:g}"
    return fig, (f"Share of live units with a clear label ({thr}) against SAE sparsity; dashed: the layer's original "
                 f"dimensions. Mean {100 * sae.mean():.1f} % for SAE latents, {100 * orig.mean():.1f} % for original "
                 f"dimensions.")


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


def fig_ablation(tables: dict) -> tuple[plt.Figure, str]:
    df = tables["ablation"]
    nodes = list(dict.fromkeys(zip(df["model"], df["layer"])))
    reps = list(dict.fromkeys(df.sort_values("sparsity")["rep"]))
    classes = list(dict.fromkeys(df["class"]))
    fig, axes = plt.subplots(len(nodes), len(reps), squeeze=False, sharey=True,
                             figsize=(max(4.0, 0.42 * len(classes) + 1.2) * len(reps), 2.3 * len(nodes) + 0.9),
                             layout="constrained")
    palette = sns.color_palette("colorblind")
    bars = (("drop_class", "class c, its top-m latents zeroed", palette[3]),
            ("drop_others", "other classes (mean), same latents", palette[0]),
            ("control_drop_class", "class c, m random live latents", "0.6"))
    width = 0.27
    for r, (model, layer) in enumerate(nodes):
        for c, rep in enumerate(reps):
            ax = axes[r, c]
            part = df[(df["model"] == model) & (df["layer"] == layer) & (df["rep"] == rep)].set_index("class")
            part = part.reindex(classes)
            x = np.arange(len(classes))
            for i, (col, label, color) in enumerate(bars):
                ax.bar(x + (i - 1) * width, 100 * part[col].to_numpy(float), width, color=color,
                       label=label if (r, c) == (0, 0) else None)
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_xticks(x, classes, rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{model} layer {layer}, {rep}", fontsize=9)
            if c == 0:
                ax.set_ylabel("recall drop (points)")
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
