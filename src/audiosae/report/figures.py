"""The study's figures, drawn from the aggregate tables (and the importance matrices).

Each figure is saved as PNG (for the HTML report) and PDF (for papers), and has
a one-line caption, computed from the data it shows, in ``captions/core.json``.
The sweeps follow the paper's figures: a panel per model, a line per layer
against SAE sparsity, and the layer's original representation as a dashed
reference line of the same colour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from audiosae.report import FIGURES, SYNTHETIC_FIGURES  # noqa: E402
from audiosae.report.registry import CORE  # noqa: E402
from audiosae.atomic import atomic_output  # noqa: E402
from audiosae.layout import rep_of  # noqa: E402
from audiosae.report._io import write_captions  # noqa: E402
from audiosae.report.aggregate import ORIGINAL, ReportInputError, category_order, rep_level  # noqa: E402
from audiosae.bootstrap import NO_CHANGE  # noqa: E402
from audiosae.report.claims import (claim_reconstruction, claim_tables, claim_task_information, paper_level,  # noqa: E402
                                     scope_note)

TARGET_LABEL = {"egemaps": "eGeMAPS attributes", "factors": "true factors"}
DPI = 150


def apply_theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.8)
    plt.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "axes.titleweight": "bold",
                         "pdf.fonttype": 42, "legend.fontsize": 8})


def rep_label(rep: str) -> str:
    """'original', 'SAE 0.9' (clip level, the paper's) or 'frame SAE 0.9' (see audiosae.layout.Rep.label)."""
    return rep_of(rep).label()


# Line style of each SAE level in the sparsity sweeps (the original is a dashed horizontal line).
LEVEL_STYLE = {"clip": {"ls": "-", "marker": "o"}, "frame": {"ls": ":", "marker": "s"}}
EXTERNAL = "external"  # the level of an SAE imported with sae.external (audiosae.layout.LEVELS)


def _levels_of(df: pd.DataFrame) -> list[str]:
    present = {rep_level(r) for r in df["rep"]} - {ORIGINAL}
    return [lv for lv in ("clip", "frame") if lv in present]


def _spars(s: float) -> str:
    return f"{s:g}"


def _models(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["model"]))


def _layers(df: pd.DataFrame, model: str) -> list[int]:
    return sorted(int(l) for l in df.loc[df["model"] == model, "layer"].unique())


def heatmap(data, ax, **kwargs):
    """seaborn's heatmap without its cost on a many-panel figure: seaborn draws the whole figure once per
    heatmap (to check label overlap), and a draw under constrained layout lays out every panel, so the
    layout engine is set aside for the call (18 s -> a few for the confusion matrices of three targets)."""
    fig = ax.figure
    engine = fig.get_layout_engine()
    fig.set_layout_engine("none")
    try:
        return sns.heatmap(data, ax=ax, **kwargs)
    finally:
        fig.set_layout_engine(engine)


def save_figure(fig, out_dir: Path, name: str) -> None:
    for ext in ("png", "pdf"):
        with atomic_output(out_dir / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, bbox_inches="tight", pad_inches=0.08)
    plt.close(fig)


def best_node(probe: pd.DataFrame) -> tuple[str, int]:
    """(model, layer) whose original representation has the highest test accuracy (first on ties)."""
    orig = probe[probe["rep"] == ORIGINAL]
    if orig.empty:
        raise ReportInputError("probe table has no 'original' rows; cannot pick the best node")
    row = orig.loc[orig["accuracy"].idxmax()]
    return str(row["model"]), int(row["layer"])


# ---------------------------------------------------------------- sparsity sweeps


def sweep(df: pd.DataFrame, value: str, ylabel: str, err: str | None = None, reference: bool = True,
           scale: float = 1.0, rows: str | None = None, chance: float | dict | None = None, ymin: float | None = None,
           interval: tuple[str, str] | None = None):
    """A panel per model (and per `rows` value), a line per layer against sparsity.

    Error bars: `interval` = (lo, hi) columns (asymmetric; the original's interval is a shaded band),
    else `err` (symmetric). `chance`: one value, or one per `rows` value.
    """
    models = _models(df)
    row_vals = list(dict.fromkeys(df[rows])) if rows else [None]
    sae = df[df["rep"] != ORIGINAL]
    sparsities = sorted(sae["sparsity"].dropna().unique())
    xpos = {s: i for i, s in enumerate(sparsities)}
    # SAEs imported with sae.external have no sparsity of ours: drawn as diamonds at one more x position, so a row
    # of the table is never missing from its figure
    imported = sorted({str(r) for r in df["rep"] if rep_level(r) == EXTERNAL})
    ext_x = len(sparsities)
    # No shared y-range: models differ in scale (CREPE's FVU is not Resemblyzer's), and a range set from the first
    # panel hid the later panels' data (issue 31). Each panel's range comes from all that it draws.
    fig, axes = plt.subplots(len(row_vals), len(models), squeeze=False,
                             figsize=(3.3 * len(models) + 0.5, 2.7 * len(row_vals) + 0.8), layout="constrained")
    palette = sns.color_palette("colorblind")
    for r, rv in enumerate(row_vals):
        part = df if rv is None else df[df[rows] == rv]
        for c, model in enumerate(models):
            ax = axes[r, c]
            handles = []
            n_layers = len(_layers(df, model))
            levels = _levels_of(df)
            for i, layer in enumerate(_layers(df, model)):
                color = palette[i % len(palette)]
                node = part[(part["model"] == model) & (part["layer"] == layer)]
                for level in levels:
                    curve = node[[rep_level(r) == level for r in node["rep"]]].sort_values("sparsity")
                    if curve.empty:
                        continue
                    style = LEVEL_STYLE[level]
                    shift = (i - (n_layers - 1) / 2) * 0.06  # keep error bars of layers apart
                    x = [xpos[s] + shift for s in curve["sparsity"]]
                    y = curve[value].to_numpy(float) * scale
                    e = curve[err].to_numpy(float) * scale if err and err in curve else None
                    if interval is not None:
                        lo, hi = (curve[c].to_numpy(float) * scale for c in interval)
                        yerr = np.nan_to_num(np.vstack([y - lo, hi - y]).clip(min=0))
                        ax.errorbar(x, y, yerr=yerr, color=color, ms=4, lw=1.6, capsize=3, **style)
                    elif e is not None and np.isfinite(e).any():
                        ax.errorbar(x, y, yerr=np.nan_to_num(e), color=color, ms=4, lw=1.6, capsize=3, **style)
                    else:
                        ax.plot(x, y, color=color, ms=4, lw=1.6, **style)
                handles.append(Line2D([], [], color=color, marker="o", ms=4, lw=1.6, label=f"layer {layer}"))
                for j, ext in enumerate(r for r in imported if (node["rep"] == r).any()):
                    row = node[node["rep"] == ext].iloc[0]
                    x = ext_x + (i - (n_layers - 1) / 2) * 0.06 + j * 0.12
                    y = float(row[value]) * scale
                    if interval is not None and np.isfinite([row[c] for c in interval]).all():
                        lo, hi = (float(row[c]) * scale for c in interval)
                        ax.errorbar([x], [y], yerr=[[max(y - lo, 0)], [max(hi - y, 0)]], color=color, marker="D", ms=5,
                                    ls="", capsize=3)
                    else:
                        ax.plot([x], [y], color=color, marker="D", ms=5, ls="")
                orig = node[node["rep"] == ORIGINAL]
                if reference and not orig.empty and np.isfinite(orig[value].iloc[0]):
                    ax.axhline(float(orig[value].iloc[0]) * scale, color=color, ls="--", lw=1.2, alpha=0.9)
                    if interval is not None:
                        lo, hi = (float(orig[c].iloc[0]) * scale for c in interval)
                        if np.isfinite(lo) and np.isfinite(hi):
                            ax.axhspan(lo, hi, color=color, alpha=0.12, lw=0)
            if len(levels) > 1:
                handles += [Line2D([], [], color="0.35", ms=4, lw=1.4, label=f"{lv} SAE", **LEVEL_STYLE[lv])
                            for lv in levels]
            if imported and (part["model"] == model).any() and part.loc[part["model"] == model, "rep"].isin(imported).any():
                handles.append(Line2D([], [], color="0.35", marker="D", ms=5, ls="",
                                      label=f"imported SAE ({', '.join(r.removeprefix('ext-') for r in imported)})"))
            if reference:
                label = "original (dashed; band: its interval)" if interval is not None else "original (dashed)"
                handles.append(Line2D([], [], color="0.35", ls="--", lw=1.2, label=label))
            level = chance.get(rv) if isinstance(chance, dict) else chance
            if level is not None:
                ax.axhline(level, color="0.55", ls=":", lw=1.2)
                handles.append(Line2D([], [], color="0.55", ls=":", lw=1.2, label="chance"))
            ticks = [_spars(s) for s in sparsities] + (["imported"] if imported else [])
            ax.set_xticks(range(len(ticks)), ticks)
            ax.set_xlim(-0.4, len(ticks) - 0.6)
            if r == 0:
                ax.set_title(model)
            if r == len(row_vals) - 1:
                ax.set_xlabel("SAE sparsity (fraction of zero codes)")
                ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2, frameon=False)
            else:
                ax.set_xlabel("")
            if ymin is not None:  # after everything is drawn, so the top still comes from this panel's data
                low = min([ymin] + [float(np.nanmin(v)) for v in _drawn_y(ax) if np.isfinite(v).any()])
                ax.set_ylim(bottom=low)
            if c == 0:
                label = ylabel.format(n=int(part["top_n"].max())) if "top_n" in part else ylabel
                ax.set_ylabel(label if rv is None else f"{label}\n({TARGET_LABEL.get(rv, rv)})")
    return fig


def _drawn_y(ax) -> list[np.ndarray]:
    """The y data of the lines and error bars drawn in data coordinates on `ax` (reference lines included)."""
    out = [np.asarray(line.get_ydata(), float) for line in ax.lines]
    for coll in ax.collections:
        for path in coll.get_paths():
            out.append(np.asarray(path.vertices, float)[:, 1])
    return [v for v in out if v.size]


def fig_probe(tables: dict) -> tuple[plt.Figure, str]:
    probe = tables["probe"]
    ci = "95 %"
    chance = {t: 100.0 / float(g["n_classes"].max()) for t, g in probe.groupby("target", sort=False)}
    fig = sweep(probe, "accuracy", "Test accuracy (%)", scale=100.0, rows="target", chance=chance,
                 interval=("accuracy_lo", "accuracy_hi"))
    targets = list(dict.fromkeys(probe["target"]))
    cap = (f"Linear-probe test accuracy against SAE sparsity, a row per probe target ({', '.join(targets)}); bars "
           f"and bands: {ci} bootstrap intervals over test clips; dashed: the layer's original output")
    # The numbers claim 1 states, from its own function on its own rows (issue 31: one number, one computation).
    rows = paper_level(claim_tables(tables))["probe"]
    parts = []
    for t in targets:
        n = claim_task_information(rows, target=t).numbers
        if "worst_delta_points" not in n:
            continue
        lo, hi = n["worst_delta_interval_points"]
        counts = n["difference_verdicts"]
        no_change = counts.get(NO_CHANGE, 0)
        parts.append(f"{t}: {n['worst_delta_points']:+.1f} points [{lo:+.1f}, {hi:+.1f}] ({n['worst_node']}), "
                     f"{counts.get('inconclusive', 0)} of {n['nodes']} differences inconclusive"
                     + (f", {no_change} with {NO_CHANGE}" if no_change else ""))
    if parts:
        top = claim_task_information(rows, target=targets[0]).numbers.get("sparsity", rows["sparsity"].max())
        cap += (f"; as in claim 1, at sparsity {_spars(top)} the largest drop (paired interval) is " + "; ".join(parts)
                + f" ({scope_note(probe)}).")
    else:
        cap += "."
    return fig, cap


def fig_fvu(tables: dict) -> tuple[plt.Figure, str]:
    rec = tables["reconstruction"]
    fig = sweep(rec, "test_fvu", "Test FVU (fraction of\nvariance unexplained)", reference=False, ymin=0.0)
    cap = "SAE reconstruction error on the test clips (FVU, lower is better) against sparsity"
    n = claim_reconstruction(paper_level(claim_tables(tables))["reconstruction"]).numbers  # claim 2's numbers
    if n.get("mean_test_fvu"):
        m, sp = n["mean_test_fvu"], n["sparsities"]
        cap += (f"; as in claim 2, mean test FVU over {n['nodes']} nodes {m[0]:.3f} at {_spars(sp[0])} and "
                f"{m[-1]:.3f} at {_spars(sp[-1])} ({scope_note(rec)})")
    return fig, cap + "."


def _top_phrase(dis: pd.DataFrame) -> str:
    """'the top-10 eGeMAPS attributes (and top-9 true factors)' by R², from the table."""
    parts = [f"top-{int(g['top_n'].max())} {TARGET_LABEL.get(t, t)}" for t, g in dis.groupby("target", sort=False)]
    return "the " + " and the ".join(parts)


def fig_r2(tables: dict) -> tuple[plt.Figure, str]:
    dis = tables["disentanglement"]
    fig = sweep(dis, "r2_mean", "Top-{n} R²", err="r2_std", rows="target")
    return fig, (f"Mean in-sample Lasso R² of {_top_phrase(dis)} by R² (bars: std over them) against "
                 f"SAE sparsity; dashed: the layer's original output.")


def fig_completeness(tables: dict) -> tuple[plt.Figure, str]:
    dis = tables["disentanglement"]
    fig = sweep(dis, "completeness_mean", "Completeness of\ntop-{n} R² attributes", err="completeness_std",
                 rows="target")
    return fig, (f"Completeness (the paper's: 1 − entropy over codes / log N) of {_top_phrase(dis)} by R² "
                 f"against SAE sparsity; dashed: the layer's original output.")


# ---------------------------------------------------------------- categories, confusion, attributes


def fig_categories(tables: dict) -> tuple[plt.Figure, str]:
    cats = tables["categories"]
    cats = cats[(cats["target"] == "egemaps") & (cats["ranking"] == "r2")]
    if cats.empty:
        raise ReportInputError("categories table has no eGeMAPS rows; cannot draw the category heatmaps")
    models = _models(cats)
    ncols = max(len(_layers(cats, m)) for m in models)
    order = category_order(cats["category"].unique())
    fig, axes = plt.subplots(len(models), ncols, squeeze=False,
                             figsize=(3.9 * ncols + 0.8, 2.5 * len(models) + 0.6), layout="constrained")
    vmax = int(cats.groupby(["model", "layer", "rep"])["count"].sum().max())
    for r, model in enumerate(models):
        layers = _layers(cats, model)
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(layers):
                ax.axis("off")
                continue
            node = cats[(cats["model"] == model) & (cats["layer"] == layers[c])].copy()
            node["row"] = node["rep"].map(rep_label)
            reps = list(dict.fromkeys(node.sort_values("sparsity", na_position="first")["row"]))
            grid = node.pivot(index="row", columns="category", values="count").reindex(index=reps, columns=order).fillna(0)
            heatmap(grid.astype(int), ax, annot=True, fmt="d", cmap="Blues", vmin=0, vmax=vmax,
                        cbar=False, linewidths=0.5, linecolor="white", annot_kws={"size": 8})
            ax.set_title(f"{model} · layer {layers[c]}")
            ax.set_xlabel("attribute category" if r == len(models) - 1 else "")
            ax.set_ylabel("representation" if c == 0 else "")
            ax.tick_params(axis="x", rotation=35, labelsize=8)
            for lab in ax.get_xticklabels():
                lab.set_horizontalalignment("right")
            ax.tick_params(axis="y", rotation=0, labelsize=8)
    n = vmax
    return fig, (f"How many of the {n} eGeMAPS attributes best explained (highest R²) fall in each category, "
                 f"per model, layer and representation.")


def fig_confusion(tables: dict) -> tuple[plt.Figure, str]:
    """A row per probe target: the best node's confusion matrices, original and the sparsest SAE of each level."""
    probe_all, conf_all = tables["probe"], tables["confusion"]
    targets = list(dict.fromkeys(probe_all["target"]))
    sizes = [int(probe_all.loc[probe_all["target"] == t, "n_classes"].max()) for t in targets]
    side = [max(3.6, 0.32 * n + 1.6) for n in sizes]
    ncols = 1 + len(_levels_of(probe_all))
    fig, axes = plt.subplots(len(targets), ncols, squeeze=False,
                             figsize=(ncols * max(side) + 1.0, sum(side) + 0.6 * len(targets)),
                             layout="constrained", gridspec_kw={"height_ratios": side})
    parts = []
    for r, target in enumerate(targets):
        probe = probe_all[probe_all["target"] == target]
        conf = conf_all[conf_all["target"] == target]
        model, layer = best_node(probe)
        node = probe[(probe["model"] == model) & (probe["layer"] == layer)]
        reps = [ORIGINAL]
        for level in _levels_of(node):  # the sparsest SAE of each level
            sae = node[[rep_level(x) == level for x in node["rep"]]]
            reps.append(str(sae.loc[sae["sparsity"].idxmax(), "rep"]))
        for ax in axes[r, len(reps):]:
            ax.axis("off")
        accs = []
        small = sizes[r] > 12  # many classes: counts would not fit in the cells
        for ax, rep in zip(axes[r], reps):
            cm = conf[(conf["model"] == model) & (conf["layer"] == layer) & (conf["rep"] == rep)]
            classes = list(dict.fromkeys(cm["true"]))
            counts = cm.pivot(index="true", columns="predicted", values="count").reindex(index=classes, columns=classes)
            recall = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
            row = node[node["rep"] == rep].iloc[0]
            accs.append(row)
            mesh = heatmap(recall, ax, annot=None if small else counts.to_numpy(), fmt="d", cmap="Blues",
                               vmin=0, vmax=1, cbar=False, square=True, linewidths=0.4, linecolor="white",
                               annot_kws={"size": 7})
            ax.set_title(f"{target} · {model} · layer {layer} · {rep_label(rep)}\naccuracy {100 * row['accuracy']:.1f} % "
                         f"[{100 * row['accuracy_lo']:.1f}, {100 * row['accuracy_hi']:.1f}]")
            ax.set_xlabel(f"predicted {target}")
            ax.set_ylabel(f"true {target}")
            ax.tick_params(axis="x", rotation=45, labelsize=9)
            for lab in ax.get_xticklabels():
                lab.set_horizontalalignment("right")
            ax.tick_params(axis="y", rotation=0, labelsize=9)
        part = f"{target}: {model} layer {layer}, {100 * accs[0]['accuracy']:.1f} % with the original output"
        part += "".join(f", {100 * a['accuracy']:.1f} % with {rep_label(x)} codes" for x, a in zip(reps[1:], accs[1:]))
        parts.append(part)
    cbar = fig.colorbar(mesh.collections[0], ax=axes[:, -1], shrink=0.5)
    cbar.set_label("recall (row share)")
    cap = ("Test confusion matrices (counts where they fit; colour: share of the true class) of the best node per "
           "probe target (" + "; ".join(parts) + ").")
    return fig, cap


def fig_effective(tables: dict) -> tuple[plt.Figure, str]:
    att = tables["attributes"]
    att = att[(att["target"] == "egemaps")].dropna(subset=["completeness", "effective_codes"]).copy()
    if att.empty:
        raise ReportInputError("attributes table has no defined eGeMAPS completeness; cannot draw the scatter")
    att["representation"] = att["rep"].map(rep_label)
    hue_order = list(dict.fromkeys(att.sort_values("sparsity", na_position="first")["representation"]))
    models = _models(att)
    fig, axes = plt.subplots(1, len(models), squeeze=False, sharey=True,
                             figsize=(3.6 * len(models) + 0.8, 3.5), layout="constrained")
    palette = dict(zip(hue_order, sns.color_palette("colorblind", len(hue_order))))
    for ax, model in zip(axes[0], models):
        part = att[att["model"] == model]
        sns.scatterplot(data=part, x="effective_codes", y="completeness", hue="representation",
                        hue_order=hue_order, palette=palette, s=14, alpha=0.7, linewidth=0, ax=ax, legend=False)
        xmax = max(float(part["effective_codes"].max()), 2.0)
        for n_codes in sorted(part["n_codes"].unique()):
            e = np.geomspace(1.0, min(xmax * 1.5, float(n_codes)), 100)  # completeness reaches 0 at E = N
            ax.plot(e, 1 - np.log(e) / np.log(n_codes), color="0.4", lw=0.8, ls="--")
            ax.annotate(f"N = {int(n_codes)}", (e[-1], 1 - np.log(e[-1]) / np.log(n_codes)), fontsize=7,
                        color="0.25", ha="right", va="bottom", xytext=(0, 4), textcoords="offset points",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(model)
        ax.set_xlabel("effective codes per attribute, exp(H)")
        ax.set_ylabel("completeness (paper)")
    handles = [Line2D([], [], color=palette[h], marker="o", ls="", ms=5, label=h) for h in hue_order]
    handles.append(Line2D([], [], color="0.4", ls="--", lw=0.8, label="1 − ln E / ln N"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    return fig, ("Completeness of every eGeMAPS attribute against its effective number of codes (all layers); "
                 "dashed: 1 − ln E / ln N for each code count N, so at equal E a wider code scores higher.")


def _npz_for(npz_paths: Iterable[Path | str], model: str, layer: int, rep: str) -> Path:
    for p in npz_paths:
        p = Path(p)
        if p.stem == rep and p.parent.name == f"layer{layer}" and p.parent.parent.name == model:
            return p
    raise ReportInputError(f"no importance file results/disentangle/{model}/layer{layer}/{rep}.npz among the inputs")


def fig_factor_importance(tables: dict, npz_paths: list[Path]) -> tuple[plt.Figure, str]:
    dis = tables["disentanglement"]
    fac = dis[(dis["target"] == "factors") & (dis["rep"] != ORIGINAL)]
    if fac.empty:
        raise ReportInputError("disentanglement table has no 'factors' rows: the factor figure needs the synthetic corpus")
    best = fac.loc[fac["completeness_mean"].idxmax()]
    model, layer, rep = str(best["model"]), int(best["layer"]), str(best["rep"])
    panels = [(ORIGINAL, _npz_for(npz_paths, model, layer, ORIGINAL)), (rep, _npz_for(npz_paths, model, layer, rep))]
    fig, axes = plt.subplots(len(panels), 1, squeeze=False, figsize=(10, 2.6 * len(panels) + 0.9), layout="constrained")
    n_show = 40
    for ax, (r, path) in zip(axes[:, 0], panels):
        with np.load(path, allow_pickle=False) as z:
            if "importance_factors" not in z:
                raise ReportInputError(f"{path}: no importance_factors array (synthetic corpus only)")
            imp = np.asarray(z["importance_factors"], dtype=float)
            names = [str(a) for a in z["attributes_factors"]]
        share = imp / np.maximum(imp.sum(axis=0, keepdims=True), 1e-12)  # each factor's distribution over codes
        order = np.argsort(-imp.sum(axis=1))[:n_show]
        order = order[imp[order].sum(axis=1) > 0]
        order = order[np.lexsort((-share[order].max(axis=1), share[order].argmax(axis=1)))]  # block by factor
        grid = pd.DataFrame(share[order].T, index=[n.removeprefix("factor_") for n in names],
                            columns=[str(i) for i in order])
        heatmap(grid, ax, cmap="viridis", vmin=0, cbar_kws={"label": "share of the factor's importance"})
        ax.set_title(f"{model} · layer {layer} · {rep_label(r)}: {len(order)} codes with most importance "
                     f"(of {imp.shape[0]})")
        ax.set_xlabel("code index")
        ax.set_ylabel("true factor")
        ax.tick_params(axis="x", labelsize=6, rotation=90)
        ax.tick_params(axis="y", labelsize=8, rotation=0)
    return fig, (f"Lasso importance of codes for each true factor of the synthetic corpus, as each factor's share, "
                 f"for the node with the most complete SAE codes ({model} layer {layer}, {rep_label(rep)}) and its "
                 f"original output.")


# ---------------------------------------------------------------- all together


def draw(tables: dict[str, pd.DataFrame], inputs: dict[str, list[str]], params: dict, out_dir: Path | str,
         names) -> dict[str, str]:
    """The core section's figures (the report sections' contract, audiosae.report.registry): draw the named
    figures into out_dir (PNG + PDF); returns {name: caption}. `inputs["importance"]`: the disentangle .npz
    files (the true-factor figure)."""
    apply_theme()
    out_dir = Path(out_dir)
    makers = {"probe_accuracy_vs_sparsity": fig_probe, "fvu_vs_sparsity": fig_fvu, "r2_vs_sparsity": fig_r2,
              "completeness_vs_sparsity": fig_completeness, "category_counts": fig_categories,
              "confusion_best_node": fig_confusion, "completeness_vs_effective_codes": fig_effective,
              "factor_importance": lambda t: fig_factor_importance(t, [Path(p) for p in inputs["importance"]])}
    captions = {}
    for name in names:
        fig, captions[name] = makers[name](tables)
        save_figure(fig, out_dir, name)
    return captions


def make_figures(tables: dict[str, pd.DataFrame], npz_paths: Iterable[Path | str], out_dir: Path | str,
                 synthetic: bool | None = None) -> dict[str, str]:
    """Draw every figure into `out_dir` (PNG + PDF) and write captions/core.json; returns {name: caption}.

    `synthetic` adds the true-factor figure; by default it is drawn when the
    tables hold a 'factors' target.
    """
    apply_theme()
    out_dir = Path(out_dir)
    npz_paths = [Path(p) for p in npz_paths]
    if synthetic is None:
        synthetic = "factors" in set(tables["disentanglement"].get("target", []))
    makers = {
        "probe_accuracy_vs_sparsity": fig_probe,
        "fvu_vs_sparsity": fig_fvu,
        "r2_vs_sparsity": fig_r2,
        "completeness_vs_sparsity": fig_completeness,
        "category_counts": fig_categories,
        "confusion_best_node": fig_confusion,
        "completeness_vs_effective_codes": fig_effective,
    }
    assert tuple(makers) == FIGURES
    captions = {}
    for name, maker in makers.items():
        fig, captions[name] = maker(tables)
        save_figure(fig, out_dir, name)
    if synthetic:
        (name,) = SYNTHETIC_FIGURES
        fig, captions[name] = fig_factor_importance(tables, npz_paths)
        save_figure(fig, out_dir, name)
    write_captions(out_dir, CORE.name, captions)
    return captions
