"""The splice section of the report: the `splice` table, its two figures and claim 9.

No torch here: the section reads the splice jobs' JSON files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["model", "twin", "layer", "rep", "level", "sparsity", "seed", "metric", "primary", "clean", "sae",
           "mean_patched", "fraction_recovered", "lo", "hi", "n_clips", "note", "claim_threshold"]
CLAIM_NUMBER = 9


def _json_files(paths) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p)
        out += sorted(p.glob("*.json")) if p.is_dir() else [p]
    return out


def splice_table(paths, threshold: float = 0.9) -> pd.DataFrame:
    """One row per (model, layer, rep, metric) from the splice jobs' folders (or JSON files); `claim_threshold`
    carries splice.recovered_threshold to the claim, which reads only tables."""
    rows = []
    for f in _json_files(paths):
        doc = json.loads(f.read_text())
        for m in doc.get("metrics", []):
            rows.append({"model": doc["model"], "twin": bool(doc["twin"]), "layer": int(doc["layer"]),
                         "rep": doc["rep"], "level": doc["level"], "sparsity": doc.get("sparsity"),
                         "seed": doc.get("seed"), "metric": m["metric"],
                         "primary": m["metric"] == doc.get("primary_metric"),
                         "clean": m["clean"], "sae": m["sae"], "mean_patched": m["mean"],
                         "fraction_recovered": m["fraction_recovered"], "lo": m["lo"], "hi": m["hi"],
                         "n_clips": m["n_clips"], "note": m.get("note") or "", "claim_threshold": threshold})
    df = pd.DataFrame(rows, columns=COLUMNS)
    # metrics keep the job's order (the output metrics, then the probe targets in config order: the first is the
    # study's primary target)
    return df.sort_values(["twin", "model", "layer", "level", "sparsity", "rep"], kind="stable",
                          na_position="last").reset_index(drop=True)


def build(inputs: dict, params: dict) -> dict[str, pd.DataFrame]:
    return {"splice": splice_table(inputs.get("splice", []), float(params.get("threshold", 0.9)))}


def pitch_tracks(paths) -> list[dict]:
    """The pitch track of each CREPE-like node's reps (from the JSON files that have one)."""
    out = []
    for f in _json_files(paths):
        doc = json.loads(f.read_text())
        if doc.get("pitch_track"):
            out.append({k: doc[k] for k in ("model", "twin", "layer", "rep", "level", "sparsity", "seed")}
                       | {"track": doc["pitch_track"]})
    return out


# ---------------------------------------------------------------- the claim


def sparsest(df: pd.DataFrame) -> pd.DataFrame:
    """The primary-metric rows of each node's sparsest SAE of each level (default seed; imported SAEs left out)."""
    d = df[df["primary"].astype(bool) & df["seed"].isna() & df["sparsity"].notna()]
    if d.empty:
        return d
    top = d.groupby(["model", "layer", "level"])["sparsity"].transform("max")
    return d[d["sparsity"] == top].reset_index(drop=True)


def _effect_seeds(df: pd.DataFrame, at: pd.DataFrame) -> dict | None:
    """{seed: mean fraction recovered over `at`'s nodes with that seed's SAEs in place of the default seed's}."""
    seeds = sorted({int(s) for s in df["seed"].dropna()})
    if not seeds:
        return None
    out = {}
    prim = df[df["primary"].astype(bool)]
    for seed in seeds:
        values = []
        for r in at.itertuples(index=False):
            alt = prim[(prim["model"] == r.model) & (prim["layer"] == r.layer) & (prim["level"] == r.level)
                       & (prim["sparsity"] == r.sparsity) & (prim["seed"] == seed)]
            values.append(float(alt["fraction_recovered"].iloc[0]) if len(alt) else float(r.fraction_recovered))
        out[seed] = float(np.nanmean(values))
    return out


def claim_splice(df: pd.DataFrame, threshold: float = 0.9) -> list:
    from audiosae.report.claims import MIXED, NOT_SUPPORTED, SUPPORTED, UNTESTABLE, Claim

    paper = ("(Not the paper's; SAEBench's and SAELens's \"loss recovered\".) Put back into the network in place "
             "of its layer, an SAE's reconstruction keeps what the network computes downstream — CREPE's pitch, "
             "Resemblyzer's speaker embedding, a classifier's top class — so what the atlas says of its latents "
             "describes the model at work, not an approximation it would not survive.")
    rule = (f"per node and level, the sparsest SAE (default seed; imported SAEs are reported, not counted): the "
            f"fraction of the mean-ablation damage its reconstruction recovers on the node's output metric "
            f"(CREPE: pitch within 50 cents; Resemblyzer: embedding cosine; a classifier head: top-1 agreement; "
            f"otherwise the last hidden state's cosine), with its bootstrap interval over test clips. A node keeps "
            f"what the network computes when the interval's lower end is at or above {threshold:g}. Supported when "
            f"every node does, not supported when none does, mixed otherwise. The effect is the mean fraction "
            f"recovered over those nodes (interval: the mean of the ends).")
    base = dict(number=CLAIM_NUMBER, title="SAE reconstructions keep what the network computes", paper=paper,
                rule=rule, table="splice", figure="splice_recovered", key="splice")
    at = sparsest(df)
    at = at[np.isfinite(at["lo"].astype(float))] if not at.empty else at
    if at.empty:
        return [Claim(sentence="No SAE was spliced with a measurable fraction recovered (no node, or the mean patch "
                               "did not change any output metric).", verdict=UNTESTABLE, **base)]
    keep = at["lo"].astype(float) >= threshold
    parts = [f"{r.model} layer {int(r.layer)} {r.level} ({r.rep}, {r.metric}): {r.fraction_recovered:.3f} "
             f"[{r.lo:.3f}, {r.hi:.3f}]" for r in at.itertuples(index=False)]
    effect = [float(at["fraction_recovered"].mean()), float(at["lo"].mean()), float(at["hi"].mean())]
    sentence = (f"{int(keep.sum())} of {len(at)} node levels recover at least {threshold:g} of the mean-ablation "
                f"damage at their sparsest SAE (interval's lower end): " + "; ".join(parts) + ". Mean fraction "
                f"recovered {effect[0]:.3f} [{effect[1]:.3f}, {effect[2]:.3f}].")
    frac = float(keep.mean())
    verdict = SUPPORTED if frac == 1 else NOT_SUPPORTED if frac == 0 else MIXED
    numbers = {"effect": effect, "nodes": len(at), "kept": int(keep.sum()), "threshold": threshold}
    seeds = _effect_seeds(df, at)
    if seeds:
        numbers["effect_seeds"] = seeds
    return [Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)]


def splice_claims(tables: dict[str, pd.DataFrame], threshold: float | None = None) -> list:
    df = tables["splice"]
    if threshold is None:
        given = df["claim_threshold"].dropna() if "claim_threshold" in df else []
        threshold = float(given.iloc[0]) if len(given) else 0.9
    return claim_splice(df, threshold)


# ---------------------------------------------------------------- figures

def _panel_metrics(d: pd.DataFrame) -> list[str]:
    """The node's output metric and the last hidden state's cosine (the probes' fractions, over a few accuracy
    points of damage, swing too widely to share their axes; they are in the table)."""
    prim = list(dict.fromkeys(d.loc[d["primary"].astype(bool), "metric"].tolist()))
    return list(dict.fromkeys(prim + ["last_hidden_cosine"]))


def draw(tables, inputs, params, out_dir, names) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from audiosae.report.figures import save_figure

    def save(fig, stem):
        save_figure(fig, Path(stem).parent, Path(stem).name)

    df = tables["splice"]
    captions = {}
    if "splice_recovered" in names:
        captions["splice_recovered"] = _draw_recovered(df, plt, save, Path(out_dir) / "splice_recovered",
                                                       params.get("threshold", 0.9))
    if "splice_pitch" in names:
        captions["splice_pitch"] = _draw_pitch(pitch_tracks(inputs.get("splice", [])), plt, save,
                                               Path(out_dir) / "splice_pitch")
    return captions


def _nothing(plt, save, stem, text: str, caption: str) -> str:
    """A figure that says why it has no data (the report keeps its slot), and its caption."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    save(fig, stem)
    return caption


def _draw_recovered(df, plt, save, stem, threshold) -> str:
    d = df[df["seed"].isna() & df["sparsity"].notna()].copy()
    from audiosae.encoders.twin import trained_name

    d["node_model"] = d["model"].map(trained_name)
    nodes = sorted({(m, int(l)) for m, l in zip(d["node_model"], d["layer"])})
    if not nodes:
        return _nothing(plt, save, stem, "no SAE was spliced", "No SAE was spliced in this study.")
    fig, axes = plt.subplots(1, len(nodes), figsize=(4.2 * len(nodes), 3.6), squeeze=False)
    colours = plt.get_cmap("tab10")
    markers = {"clip": "o", "frame": "s"}
    drawn = []
    legend: dict[str, object] = {}
    for ax, (model, layer) in zip(axes[0], nodes):
        nd = d[(d["node_model"] == model) & (d["layer"] == layer)]
        metrics = _panel_metrics(nd)
        for i, metric in enumerate(metrics):
            for twin, style in ((False, "-"), (True, "--")):
                for level, marker in markers.items():
                    s = nd[(nd["metric"] == metric) & (nd["twin"] == twin) & (nd["level"] == level)].sort_values(
                        "sparsity")
                    s = s[np.isfinite(s["fraction_recovered"].astype(float))]
                    if s.empty:
                        continue
                    # dodge metrics and the twin apart, so points at one sparsity do not hide each other
                    x = s["sparsity"].astype(float).to_numpy() + 0.004 * (i - 1) + (0.0015 if twin else 0.0)
                    y = s["fraction_recovered"].astype(float).to_numpy()
                    lo, hi = s["lo"].astype(float).to_numpy(), s["hi"].astype(float).to_numpy()
                    err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
                    err = np.where(np.isfinite(err), err, 0)
                    ax.errorbar(x, y, yerr=err, color=colours(i), linestyle=style, marker=marker, capsize=3,
                                alpha=0.6 if twin else 1)
                    legend.setdefault(metric, colours(i))
                    drawn += list(y) + list(lo[np.isfinite(lo)]) + list(hi[np.isfinite(hi)])
        ax.axhline(threshold, color="grey", linewidth=0.8, linestyle=":")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_title(f"{model} layer {layer}", fontsize=10)
        ax.set_xlabel("sparsity")
    axes[0][0].set_ylabel("fraction recovered")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, linewidth=2, label=m) for m, c in legend.items()]
    handles += [Line2D([], [], color="grey", linestyle="-", label="trained"),
                Line2D([], [], color="grey", linestyle="--", label="random-weights twin"),
                Line2D([], [], color="grey", marker="o", linestyle="", label="clip SAE"),
                Line2D([], [], color="grey", marker="s", linestyle="", label="frame SAE")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)
    if drawn:
        lo_y, hi_y = min(min(drawn), 0.0), max(max(drawn), 1.0)
        pad = 0.05 * (hi_y - lo_y)
        for ax in axes[0]:
            ax.set_ylim(lo_y - pad, hi_y + pad)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    save(fig, stem)
    return (f"Fraction of the mean-ablation damage each SAE's reconstruction recovers, spliced into its network, "
            f"against sparsity, for the node's output metric and the last hidden state's cosine (the output probes' are in the "
            f"table); one panel per node, solid: trained model, dashed: its random-weights twin; circles: "
            f"clip SAEs (the clip mean replaced), squares: frame SAEs (every frame replaced); bars: 95 % bootstrap "
            f"intervals over test clips; dotted line: the claim's threshold {threshold:g}.")


def _draw_pitch(tracks: list[dict], plt, save, stem) -> str:
    trained = [t for t in tracks if not t["twin"] and t["seed"] is None]
    nodes = sorted({(t["model"], int(t["layer"])) for t in trained})
    if not nodes:
        return _nothing(plt, save, stem, "no pitch model (CREPE) in this study",
                        "No pitch model (CREPE) was spliced in this study.")
    fig, axes = plt.subplots(len(nodes), 1, figsize=(8, 3.2 * len(nodes)), squeeze=False)
    clip_id = None
    for ax, (model, layer) in zip(axes[:, 0], nodes):
        reps = sorted([t for t in trained if (t["model"], int(t["layer"])) == (model, layer)],
                      key=lambda t: (t["level"], t["sparsity"] if t["sparsity"] is not None else 2))
        first = reps[0]["track"]
        clip_id = first["clip_id"]
        times = np.asarray(first["times_s"])
        voiced = np.asarray(first["voiced"], bool)

        def v(values):
            a = np.asarray([np.nan if x is None else x for x in values], float)
            return np.where(voiced, a, np.nan)

        ax.plot(times, v(first["clean"]), color="black", linewidth=2, label="clean")
        if first.get("truth"):
            ax.plot(times, np.asarray([np.nan if x is None else x for x in first["truth"]], float), color="grey",
                    linewidth=1, linestyle=":", label="true f0")
        for t in reps:
            ax.plot(times, v(t["track"]["sae"]), linewidth=1, label=f"{t['rep']} ({t['level']})")
        for level in sorted({t["level"] for t in reps}):
            t = next(t for t in reps if t["level"] == level)
            ax.plot(times, v(t["track"]["mean"]), linewidth=0.8, linestyle="--", label=f"mean floor ({level})")
        ax.set_title(f"{model} layer {layer}", fontsize=10)
        ax.set_ylabel("pitch (cents re 10 Hz)")
        ax.legend(fontsize=6, ncol=2)
    axes[-1, 0].set_xlabel("time in the crop (s)")
    fig.tight_layout()
    save(fig, stem)
    return (f"CREPE's pitch on test clip {clip_id}, frames the clean network calls voiced: clean (black), with each "
            f"SAE spliced in at every sparsity and level, and with the mean-ablation floors (dashed); dotted: the "
            f"synthetic corpus's true f0 where known.")
