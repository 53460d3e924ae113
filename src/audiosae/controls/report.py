"""The controls section: its jobs' JSON, its tables, figures and claim.

Jobs (one JSON each):

- `stability_doc`: one (model, layer, level, sparsity) with several SAE seeds:
  every pair of seeds matched (`audiosae.controls.stability`), and, per live
  latent of the default seed, its best match in each other seed (what an atlas
  card can show).
- `sparse_probe_doc`: one (model, layer, rep): k-sparse probes of every probe
  target (`audiosae.controls.sparse_probe`), and the representation's scale
  (mean over units of the standard deviation over train items).

Tables:

- ``stability``: one row per (model, layer, level, sparsity, pair of seeds).
- ``sparse_probing``: one row per (model, layer, rep, target, k): the mean
  balanced accuracy over the target's classes with its interval, and for SAE
  reps the paired difference to the layer's own dimensions at the same k.
- ``activation_scale``: one row per analysed (model, layer): the layer's scale
  for the trained model and for its random-weights twin.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from audiosae.controls.claims import seed_name
from audiosae.encoders.twin import is_twin_name, trained_name
from audiosae.layout import Rep

ORIGINAL = "original"
CLAIM_K = 5
MAJORITY = 0.75
STABILITY_COLUMNS = ["model", "twin", "layer", "level", "sparsity", "seed_a", "seed_b", "n_live_a", "n_live_b",
                     "matched", "mean_cos", "share_matched", "baseline_mean_cos", "baseline_share_matched",
                     "threshold", "near_baseline"]
SPARSE_COLUMNS = ["model", "twin", "layer", "rep", "level", "sparsity", "target", "k", "balanced_accuracy", "lo",
                  "hi", "delta", "delta_lo", "delta_hi", "n_classes", "n_test", "units_k"]
SCALE_COLUMNS = ["model", "layer", "scale_trained", "scale_twin", "twin_over_trained"]
SPREAD_COLUMNS = ["model", "twin", "layer", "level", "sparsity", "metric", "seeds", "mean", "std", "min", "max",
                  "values"]
NEAR_BASELINE = 0.05  # mean matched cosine within this of its random baseline: the dictionary is not determined


# ---------------------------------------------------------------- jobs


def stability_doc(sae_dirs: dict[int, str | Path], *, model: str, layer: int, level: str, sparsity: str,
                  default_seed: int, threshold: float = 0.7, baseline_draws: int = 3, seed: int = 0, log=None) -> dict:
    """Seed stability of one SAE node; `sae_dirs` {seed: the SAE's folder (sae.safetensors, latents.zarr)}."""
    from audiosae.controls.stability import decoder_directions, live_mask, recurrence, stability

    dirs = {int(s): Path(d) for s, d in sae_dirs.items()}
    live = {s: np.flatnonzero(live_mask(d / "latents.zarr")) for s, d in dirs.items()}
    directions = {s: decoder_directions(d / "sae.safetensors")[live[s]] for s, d in dirs.items()}
    pairs = []
    for a, b in itertools.combinations(sorted(dirs), 2):
        st = stability(directions[a], directions[b], threshold=threshold, baseline_draws=baseline_draws, seed=seed)
        pairs.append({"seed_a": a, "seed_b": b, **st.as_dict()})
        if log:
            log(f"seeds {a}/{b}: {st.n_a}/{st.n_b} live, mean matched cosine {st.mean_cos}, share >= {threshold}: "
                f"{st.share_matched} (random directions: {st.baseline_mean_cos}, {st.baseline_share_matched})")
    recur = {}
    if default_seed in dirs:
        for other in sorted(set(dirs) - {default_seed}):
            best, cos = recurrence(directions[default_seed], directions[other])
            recur[str(other)] = {"latent": live[default_seed].tolist(),
                                 "best": [int(live[other][i]) if i >= 0 else -1 for i in best],
                                 "cosine": cos.tolist()}
    return {"model": model, "layer": int(layer), "level": level, "sparsity": str(sparsity),
            "seeds": sorted(dirs), "default_seed": int(default_seed), "threshold": float(threshold),
            "pairs": pairs, "recurrence": recur,
            "method": "Hungarian matching (scipy linear_sum_assignment) of the decoder directions of latents live on "
                      "train clips, by cosine; baseline: uniform random directions of the same counts and width"}


def seed_summary(sae_dir: str | Path, probes: dict[str, str | Path], *, manifest, attributes,
                 auroc_threshold: float, rho_threshold: float) -> dict:
    """One seed's numbers whose spread over seeds the report gives: test FVU, probe accuracy per target, and the
    atlas's interpretable share (live latents with a clear label), computed as the atlas computes it."""
    from audiosae.atlas.build import load_inputs
    from audiosae.atlas.stats import interpretable_share, unit_statistics
    from audiosae.jsonio import read_json

    sae_dir = Path(sae_dir)
    metrics = read_json(sae_dir / "metrics.json")
    codes, clip_ids, labels, sets, _ = load_inputs(sae_dir / "latents.zarr", "codes", manifest, attributes)
    sets = {k: v for k, v in sets.items() if k != "factors"}  # the atlas's share is over labels and eGeMAPS
    stats = unit_statistics(codes, clip_ids, labels, sets, sparse=True, auroc_threshold=auroc_threshold,
                            rho_threshold=rho_threshold, top_k=1, median_k=1)
    share = interpretable_share(stats.table)
    return {"seed": int(metrics["seed"]), "test_fvu": float(metrics["splits"]["test"]["fvu"]),
            "live": share["live"], "clear": share["clear"], "share": share["share"],
            "accuracy": {t: float(read_json(p)["accuracy"]) for t, p in probes.items()}}


def stability_node_doc(groups: list[dict], *, model: str, layer: int, default_seed: int, manifest, attributes,
                       threshold: float = 0.7, auroc_threshold: float = 0.9, rho_threshold: float = 0.7,
                       log=None) -> dict:
    """Seed stability of every seed group of one node; `groups`: [{"level", "sparsity", "dirs": {seed: SAE
    folder}, "probes": {seed: {target: probe JSON}}}]. Each group is a `stability_doc` plus, per seed, the
    numbers `seed_summary` gives."""
    from audiosae.data.manifest import read_manifest

    man = read_manifest(manifest)
    out = []
    for g in groups:
        doc = stability_doc(g["dirs"], model=model, layer=layer, level=g["level"], sparsity=g["sparsity"],
                            default_seed=default_seed, threshold=threshold, log=log)
        doc["per_seed"] = [seed_summary(d, g["probes"][s], manifest=man, attributes=attributes,
                                        auroc_threshold=auroc_threshold, rho_threshold=rho_threshold)
                           for s, d in sorted(g["dirs"].items())]
        out.append(doc)
    return {"model": model, "layer": int(layer), "groups": out}


def sparse_probe_doc(store: str | Path, array: str, manifest, targets: list[dict], *, model: str, layer: int,
                     rep: str, ks=(1, 2, 5, 10, 20), resamples: int = 1000, ci: float = 0.95, seed: int = 42,
                     valid_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 42, log=None) -> dict:
    """k-sparse probes of one representation for every probe target, and its scale on the train items."""
    from audiosae.controls.sparse_probe import from_probe_data
    from audiosae.probe import load_probe_data

    out = {"model": model, "layer": int(layer), "rep": rep, "ks": list(ks), "targets": {}}
    scale = None
    for t in targets:
        data = load_probe_data(store, array, manifest, t["label"], t.get("split", "corpus"),
                               valid_fraction=valid_fraction, test_fraction=test_fraction, split_seed=split_seed)
        if scale is None:
            scale = float(np.asarray(data.x["train"], dtype=np.float64).std(axis=0).mean())
        res = from_probe_data(data, ks=ks, resamples=resamples, ci=ci, seed=seed)
        out["targets"][t["label"]] = res.as_dict()
        if log:
            log(f"{t['label']}: " + ", ".join(f"k={s['k']}: {s['balanced_accuracy']:.3f}" for s in res.summary))
    out["scale"] = scale
    return out


# ---------------------------------------------------------------- tables


def stability_table(docs: Iterable[dict]) -> pd.DataFrame:
    rows = []
    for d in docs:
        for p in d["pairs"]:
            near = (p["mean_cos"] is None or p["baseline_mean_cos"] is None
                    or p["mean_cos"] - p["baseline_mean_cos"] < NEAR_BASELINE)
            rows.append({"model": d["model"], "twin": is_twin_name(d["model"]), "layer": d["layer"],
                         "level": d["level"], "sparsity": float(d["sparsity"]), "seed_a": p["seed_a"],
                         "seed_b": p["seed_b"], "n_live_a": p["n_a"], "n_live_b": p["n_b"], "matched": p["matched"],
                         "mean_cos": p["mean_cos"], "share_matched": p["share_matched"],
                         "baseline_mean_cos": p["baseline_mean_cos"],
                         "baseline_share_matched": p["baseline_share_matched"], "threshold": p["threshold"],
                         "near_baseline": bool(near)})
    df = pd.DataFrame(rows, columns=STABILITY_COLUMNS)
    return df.sort_values(["model", "twin", "layer", "level", "sparsity", "seed_a", "seed_b"]).reset_index(drop=True)


def sparse_table(docs: Iterable[dict], resamples: int = 1000, ci: float = 0.95, seed: int = 42) -> pd.DataFrame:
    from audiosae.controls.sparse_probe import from_dict, paired_difference

    docs = list(docs)
    originals = {(d["model"], d["layer"], t): from_dict(r) for d in docs if d["rep"] == ORIGINAL
                 for t, r in d["targets"].items()}
    rows = []
    for d in docs:
        rep = Rep.parse(d["rep"])
        level, sparsity = rep.level, rep.sparsity_value
        for target, r in d["targets"].items():
            res = from_dict(r)
            base = originals.get((d["model"], d["layer"], target))
            for s in res.summary:
                k = int(s["k"])
                delta = (None, None, None)
                if d["rep"] != ORIGINAL and base is not None and k in base.predictions and k in res.predictions:
                    delta = paired_difference(res, base, k, resamples=resamples, ci=ci, seed=seed)
                units = "|".join(f"{row['class']}:{','.join(map(str, row['units']))}"
                                 for row in res.rows if int(row["k"]) == k) if k <= 2 else ""
                rows.append({"model": d["model"], "twin": is_twin_name(d["model"]),
                             "layer": d["layer"], "rep": d["rep"], "level": level, "sparsity": sparsity,
                             "target": target, "k": k, "balanced_accuracy": s["balanced_accuracy"], "lo": s["lo"],
                             "hi": s["hi"], "delta": delta[0], "delta_lo": delta[1], "delta_hi": delta[2],
                             "n_classes": s["n_classes"], "n_test": s["n_test"], "units_k": units})
    df = pd.DataFrame(rows, columns=SPARSE_COLUMNS)
    return df.sort_values(["target", "model", "twin", "layer", "level", "sparsity", "rep", "k"],
                          na_position="first").reset_index(drop=True)


def seed_spread_table(docs: Iterable[dict]) -> pd.DataFrame:
    """Per (model, layer, level, sparsity, metric): the metric over the SAE seeds (test FVU, probe accuracy per
    target, interpretable share), its mean, standard deviation and range."""
    rows = []
    for d in docs:
        per = d.get("per_seed") or []
        if not per:
            continue
        metrics = {"test_fvu": [p["test_fvu"] for p in per], "interpretable_share": [p["share"] for p in per]}
        for t in per[0]["accuracy"]:
            metrics[f"accuracy_{t}"] = [p["accuracy"].get(t) for p in per]
        for name, values in metrics.items():
            v = np.array([np.nan if x is None else float(x) for x in values])
            ok = v[np.isfinite(v)]
            rows.append({"model": d["model"], "twin": is_twin_name(d["model"]), "layer": d["layer"],
                         "level": d["level"], "sparsity": float(d["sparsity"]), "metric": name,
                         "seeds": ",".join(str(p["seed"]) for p in per),
                         "mean": float(ok.mean()) if ok.size else None,
                         "std": float(ok.std(ddof=1)) if ok.size > 1 else None,
                         "min": float(ok.min()) if ok.size else None, "max": float(ok.max()) if ok.size else None,
                         "values": ",".join(f"{x:.6g}" for x in v)})
    df = pd.DataFrame(rows, columns=SPREAD_COLUMNS)
    return df.sort_values(["model", "twin", "layer", "level", "sparsity", "metric"]).reset_index(drop=True)


def scale_table(docs: Iterable[dict]) -> pd.DataFrame:
    scales = {(d["model"], d["layer"]): d.get("scale") for d in docs if d["rep"] == ORIGINAL}
    rows = []
    for (model, layer), s in scales.items():
        if is_twin_name(model):
            continue
        twin = scales.get((model + "_random", layer))
        rows.append({"model": model, "layer": layer, "scale_trained": s, "scale_twin": twin,
                     "twin_over_trained": (twin / s) if (twin is not None and s) else None})
    return pd.DataFrame(rows, columns=SCALE_COLUMNS).sort_values(["model", "layer"]).reset_index(drop=True)


def _docs(doc: dict, key: str) -> list[dict]:
    """The per-node file's documents (a node's file lists them under `key`; a bare document is its own list)."""
    return list(doc[key]) if key in doc else [doc]


def build(inputs: dict[str, list[str]], params: dict) -> dict[str, pd.DataFrame]:
    """The controls section's tables (the report sections' contract, audiosae.report.registry)."""
    return build_tables(inputs.get("stability", []), inputs.get("sparse", []), resamples=params["bootstrap"],
                        ci=params["ci"], seed=params["bootstrap_seed"])


def draw(tables: dict, inputs: dict, params: dict, out_dir, names) -> dict[str, str]:
    """The controls section's figures (the report sections' contract); returns {name: caption}."""
    return make_figures(tables, out_dir, names)


def build_tables(stability_paths, sparse_paths, **bootstrap) -> dict[str, pd.DataFrame]:
    """The controls section's tables from its jobs' files (one per node: `stability_node_doc`, and
    {"reps": [sparse_probe_doc, ...]})."""
    from audiosae.jsonio import read_json

    stab_docs = [g for p in stability_paths for g in _docs(read_json(p), "groups")]
    sparse_docs = [r for p in sparse_paths for r in _docs(read_json(p), "reps")]
    return {"stability": stability_table(stab_docs),
            "seed_spread": seed_spread_table(stab_docs),
            "sparse_probing": sparse_table(sparse_docs, **bootstrap),
            "activation_scale": scale_table(sparse_docs)}


# ---------------------------------------------------------------- figures


def fig_stability(tables: dict):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = tables["stability"]
    if df.empty:
        return None, "No SAE node was trained with more than one seed."
    g = df.groupby(["model", "twin", "layer", "level", "sparsity"], as_index=False)[
        ["mean_cos", "baseline_mean_cos", "share_matched", "baseline_share_matched"]].mean()
    labels = [f"{m} L{int(l)} {lv} {s:g}" for m, l, lv, s in zip(g["model"], g["layer"], g["level"], g["sparsity"])]
    x = np.arange(len(g))
    pal = sns.color_palette("colorblind")
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 0.55 * len(g) + 3), 3.6), layout="constrained")
    for ax, col, base, title in ((axes[0], "mean_cos", "baseline_mean_cos", "mean matched cosine"),
                                 (axes[1], "share_matched", "baseline_share_matched", "share matched at cos ≥ 0.7")):
        ax.bar(x - 0.2, g[col].astype(float), 0.4, color=[pal[1] if t else pal[0] for t in g["twin"]],
               label="SAE seeds")
        ax.bar(x + 0.2, g[base].astype(float), 0.4, color="0.7", label="random directions")
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        values = g[[col, base]].to_numpy(float)  # cosines and shares lie in [0, 1]; a range never hides a bar
        ax.set_ylim(min(0.0, float(np.nanmin(values))), max(1.0, float(np.nanmax(values))))
    axes[0].legend(fontsize=7, frameon=False)
    return fig, ("Seed stability: decoder directions of live latents matched one to one between SAEs trained with "
                 "different seeds (Hungarian on cosine), mean over seed pairs; grey: two random direction sets of the "
                 "same shape. Orange bars: the random-weights twin's SAEs.")


def fig_sparse_probing(tables: dict):
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = tables["sparse_probing"]
    df = df[~df["rep"].map(_is_seed)] if len(df) else df  # other SAE seeds: in the table and the claim's spread
    if df.empty:
        return None, "No k-sparse probing results."
    target = str(df["target"].iloc[0])
    part = df[df["target"] == target]
    part = part.assign(model=part["model"].astype(str).map(trained_name))  # the twin on its trained model's axes
    nodes = list(dict.fromkeys(zip(part["model"], part["layer"])))
    reps = list(dict.fromkeys(part.sort_values(["level", "sparsity"], na_position="first")["rep"]))
    pal = dict(zip(reps, sns.color_palette("colorblind", len(reps))))
    cols = min(4, len(nodes))
    rows_n = math.ceil(len(nodes) / cols)
    fig, axes = plt.subplots(rows_n, cols, squeeze=False, sharey=True, figsize=(3.2 * cols, 2.6 * rows_n + 0.8),
                             layout="constrained")
    for i, (model, layer) in enumerate(nodes):
        ax = axes[i // cols, i % cols]
        for rep in reps:
            for twin in (False, True):
                s = part[(part["model"] == model) & (part["layer"] == layer) & (part["rep"] == rep)
                         & (part["twin"] == twin)].sort_values("k")
                if s.empty:
                    continue
                ax.plot(s["k"], 100 * s["balanced_accuracy"], ls="--" if twin else "-", marker="o", ms=3,
                        color=pal[rep], label=(f"{rep}{' (random twin)' if twin else ''}" if i == 0 else None))
                ax.fill_between(s["k"], 100 * s["lo"], 100 * s["hi"], color=pal[rep], alpha=0.08)
        ax.axhline(50, color="0.5", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(sorted(part["k"].unique()), [str(k) for k in sorted(part["k"].unique())])
        ax.set_title(f"{model} layer {layer}", fontsize=9)
        ax.set_xlabel("k units")
        if i % cols == 0:
            ax.set_ylabel("balanced accuracy (%)")
    for j in range(len(nodes), rows_n * cols):
        axes[j // cols, j % cols].axis("off")
    fig.legend(loc="outside lower center", ncol=min(4, 2 * len(reps)), frameon=False, fontsize=7)
    return fig, (f"k-sparse probing of '{target}': per class (against the rest), the k units with the largest "
                 f"difference of class means on train clips feed a logistic probe; mean balanced accuracy over "
                 f"classes on the test clips (band: 95 % bootstrap interval). Solid: trained model; dashed: its "
                 f"random-weights twin; 50 % is chance.")


FIGURES = {"stability": fig_stability, "sparse_probing": fig_sparse_probing}


def make_figures(tables: dict, figures_dir: str | Path, names: list[str]) -> dict[str, str]:
    """Write `<name>.png` and `.pdf` for every name (an empty figure with the reason when there is no data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    captions = {}
    for name in names:
        fig, caption = FIGURES[name](tables)
        if fig is None:
            fig = plt.figure(figsize=(5, 1.2))
            fig.text(0.5, 0.5, caption, ha="center", va="center", fontsize=9, wrap=True)
        for ext in ("png", "pdf"):
            fig.savefig(figures_dir / f"{name}.{ext}", dpi=150)
        plt.close(fig)
        captions[name] = caption
    return captions


# ---------------------------------------------------------------- claim


def claim_sparse_probing(df: pd.DataFrame, k: int = CLAIM_K, majority: float = MAJORITY):
    """"A few SAE latents carry a label better than as many of the layer's dimensions", at k units."""
    from audiosae.report.claims import MIXED, NOT_SUPPORTED, SUPPORTED, UNTESTABLE, Claim

    paper = ("(Not the paper's; SAEBench's sparse probing.) A few SAE latents carry a label better than as many of "
             "the layer's own dimensions.")
    rule = (f"at k = {k}, per (model, layer, clip SAE sparsity, target), the paired 95 % bootstrap interval of SAE "
            f"minus layer mean balanced accuracy: better when its lower end is above 0, worse when its upper end is "
            f"below 0; supported when at least {100 * majority:.0f} % of pairs are better, not supported when at "
            f"most {100 * (1 - majority):.0f} % are, mixed otherwise. The effect is the mean difference (interval: "
            f"mean of the pairs' interval ends, wider than the mean's own).")
    base = dict(number=7, title="A few SAE latents carry a label better than as many dimensions", paper=paper,
                rule=rule, table="sparse_probing", figure="sparse_probing", key="sparse-probing")
    part = df[(df["k"] == k) & (df["rep"] != ORIGINAL) & df["delta"].notna()] if len(df) else df
    if "level" in part and (part["level"] == "clip").any():
        part = part[part["level"] == "clip"]
    extra = part["rep"].map(_is_seed).astype(bool) if len(part) else pd.Series([], dtype=bool)
    seeds, part = part[extra.to_numpy()], part[~extra.to_numpy()]
    if part.empty:
        return [Claim(sentence=f"No SAE representation has k-sparse probes at k = {k} beside its layer's.",
                      verdict=UNTESTABLE, **base)]
    n = len(part)
    better = int((part["delta_lo"] > 0).sum())
    worse = int((part["delta_hi"] < 0).sum())
    best = part.loc[part["delta"].idxmax()]
    sentence = (f"At k = {k} units, SAE latents beat as many of the layer's dimensions in {better} of {n} (node, "
                f"sparsity, target) pairs and lose in {worse} (mean difference {100 * part['delta'].mean():+.1f} "
                f"points of balanced accuracy; best {100 * best['delta']:+.1f} [{100 * best['delta_lo']:+.1f}, "
                f"{100 * best['delta_hi']:+.1f}] at {best['model']} layer {int(best['layer'])}, {best['rep']}, "
                f"{best['target']}).")
    share = better / n
    verdict = SUPPORTED if share >= majority else NOT_SUPPORTED if share <= 1 - majority else MIXED
    numbers = {"k": k, "pairs": n, "better": better, "worse": worse,
               "effect": [float(part["delta"].mean()), float(part["delta_lo"].mean()), float(part["delta_hi"].mean())]}
    over_seeds = seed_row_effects(part, seeds)
    if over_seeds:
        numbers["effect_seeds"] = over_seeds
        sentence += (" With each SAE seed's latents where the node has several, the mean difference is "
                     + ", ".join(f"{100 * v:+.1f} ({seed_name(s)})" for s, v in over_seeds.items()) + " points.")
    return [Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)]


def _is_seed(rep) -> bool:
    """True for an extra SAE seed's rep (sae<s>-seed<n>)."""
    return Rep.parse(str(rep)).seed is not None


def seed_row_effects(part: pd.DataFrame, seed_rows: pd.DataFrame) -> dict | None:
    """{seed: mean `delta` over `part`'s rows, each (model, layer, target, sparsity) row replaced by that seed's row
    where it has one}, the default seed (`part` itself) keyed 'default'; None without seed rows."""
    if seed_rows is None or seed_rows.empty or part.empty:
        return None
    key = ["model", "layer", "target", "sparsity"]
    own = part.set_index(key)["delta"]
    out = {"default": float(own.mean())}
    for seed, rows in seed_rows.groupby(seed_rows["rep"].map(lambda r: Rep.parse(str(r)).seed)):
        out[int(seed)] = float(rows.set_index(key)["delta"].reindex(own.index).fillna(own).mean())
    return out


def claim_stability(df: pd.DataFrame, majority: float = MAJORITY):
    """"The SAE dictionaries are determined by the data": seed pairs whose matched cosine clears random directions."""
    from audiosae.report.claims import MIXED, NOT_SUPPORTED, SUPPORTED, UNTESTABLE, Claim

    paper = ("(Not the paper's; Paulo & Belrose 2025.) An SAE trained again with another seed finds the same "
             "latents, so an atlas card describes a feature of the model rather than of one training run.")
    rule = (f"per (model, layer, level, sparsity, pair of seeds), the mean matched cosine of live latents' decoder "
            f"directions against two random direction sets of the same shape: determined when it exceeds the random "
            f"baseline by at least {NEAR_BASELINE}; supported when at least {100 * majority:.0f} % of pairs are, not "
            f"supported when at most {100 * (1 - majority):.0f} % are, mixed otherwise. The effect is the mean "
            f"share of latents matched at cosine ≥ the threshold.")
    base = dict(number=8, title="SAE dictionaries are determined by the data", paper=paper, rule=rule,
                table="stability", figure="stability", key="stability")
    if df is None or df.empty:
        return [Claim(sentence="No SAE node was trained with more than one seed (controls.seeds).",
                      verdict=UNTESTABLE, **base)]
    n = len(df)
    determined = int((~df["near_baseline"].astype(bool)).sum())
    share, base_share = float(df["share_matched"].mean()), float(df["baseline_share_matched"].mean())
    sentence = (f"{determined} of {n} seed pairs have a mean matched cosine above random directions by at least "
                f"{NEAR_BASELINE} (mean {df['mean_cos'].mean():.2f} against {df['baseline_mean_cos'].mean():.2f} for "
                f"random directions); on average {100 * share:.0f} % of live latents recur at cosine ≥ "
                f"{df['threshold'].iloc[0]:g} (random: {100 * base_share:.0f} %)."
                + (" Where the cosine sits near its baseline, the dictionary is not determined by the data: another "
                   "run would give other latents." if determined < n else ""))
    frac = determined / n
    verdict = SUPPORTED if frac >= majority else NOT_SUPPORTED if frac <= 1 - majority else MIXED
    return [Claim(sentence=sentence, verdict=verdict, numbers={"pairs": n, "determined": determined,
                                                               "share_matched": share,
                                                               "baseline_share_matched": base_share}, **base)]


def controls_claims(tables: dict[str, pd.DataFrame]) -> list:
    """The controls section's claims (k-sparse probing, seed stability); `answer_claims` judges them against the
    twin."""
    return claim_sparse_probing(tables["sparse_probing"]) + claim_stability(tables.get("stability"))
