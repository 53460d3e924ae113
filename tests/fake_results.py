"""A small, made-up results tree for the report stage's tests.

2 models x 2 layers x (original + 2 sparsities), with numbers drawn from a
seeded generator around plausible values: probes near 60-70 % on 10 classes,
FVU that grows with sparsity, top-10 R² near 0.8, completeness higher for SAE
codes, pitch attributes stronger in the first layer and formant/MFCC ones in
the last. Nothing here comes from a real run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from audiosae.store import write_store

TECHNIQUES = ["belt", "breathy", "inhaled", "lip_trill", "spoken", "straight", "trill", "trillo", "vibrato", "vocal_fry"]
SINGERS = ["female1", "female2", "female3", "male1", "male2", "male3"]
PROBE_TARGETS = {"technique": ("corpus", TECHNIQUES), "singer": ("random", SINGERS)}
MODELS = {"crepe": [1, 5], "resemblyzer": [1, 3]}
WIDTH = {("crepe", 1): 16, ("crepe", 5): 64, ("resemblyzer", 1): 256, ("resemblyzer", 3): 256}  # the real widths
SPARSITIES = ["0.5", "0.9"]
EGEMAPS = [
    "F0semitoneFrom27.5Hz_sma3nz_amean", "F0semitoneFrom27.5Hz_sma3nz_stddevNorm",
    "F0semitoneFrom27.5Hz_sma3nz_percentile50.0", "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2",
    "F1frequency_sma3nz_amean", "F2frequency_sma3nz_amean", "F3frequency_sma3nz_amean",
    "F1bandwidth_sma3nz_amean", "jitterLocal_sma3nz_amean", "shimmerLocaldB_sma3nz_amean",
    "HNRdBACF_sma3nz_amean", "loudness_sma3_amean", "equivalentSoundLevel_dBp",
    "VoicedSegmentsPerSec", "MeanVoicedSegmentLengthSec", "slopeV0-500_sma3nz_amean",
    "alphaRatioV_sma3nz_amean", "hammarbergIndexV_sma3nz_amean", "spectralFlux_sma3_amean",
    "mfcc1_sma3_amean", "mfcc2_sma3_amean", "mfcc3_sma3_amean", "mfcc4_sma3_amean", "mfcc1V_sma3nz_amean",
]
FACTORS = ["factor_f0_hz", "factor_vibrato_rate_hz", "factor_vibrato_depth_cents", "factor_noise_ratio",
           "factor_loudness_db", "factor_f1_hz", "factor_f2_hz", "factor_f3_hz", "factor_vowel"]


def category(name: str) -> str:
    """The paper's first-match rules (enough of them for the names above)."""
    rules = [(("F1", "F2", "F3"), "formants"), (("F0", "f0"), "pitch"), (("shimmer", "jitter", "HNR"), "voice quality"),
             (("loudness", "equivalentSoundLevel"), "loudness"), (("Voiced", "voiced"), "rhythm"),
             (("slope", "spectral", "alphaRatio", "hammarberg"), "spectral"), (("mfcc",), "MFCC")]
    for keys, cat in rules:
        if any(k in name for k in keys):
            return cat
    return "other"


def _dump(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def _target(rng, attrs, n_codes, sae: bool, early: bool, top_n=10):
    n = len(attrs)
    cats = [category(a) for a in attrs]
    r2 = rng.uniform(0.35, 0.75, n)
    for i, c in enumerate(cats):
        if c == "pitch":
            r2[i] += 0.2 if early else -0.15
        if c in ("formants", "MFCC"):
            r2[i] += -0.1 if early else 0.2
    r2 = np.clip(r2 - (0.04 if sae else 0.0), 0.0, 0.98)
    comp = np.clip(rng.normal(0.66 if sae else 0.56, 0.05, n), 0.2, 0.95)
    comp[-1] = np.nan  # one undefined attribute
    eff = np.exp((1 - np.nan_to_num(comp, nan=0.0)) * np.log(n_codes))
    eff[-1] = np.nan
    order_r2 = np.argsort(-r2)[:top_n]
    order_c = np.argsort(-np.nan_to_num(comp, nan=-1))[:top_n]

    def top(order):
        tc = [cats[i] for i in order]
        return {"attributes": [attrs[i] for i in order], "categories": tc,
                "r2_mean": float(r2[order].mean()), "r2_std": float(r2[order].std()),
                "completeness_mean": float(np.nanmean(comp[order])), "completeness_std": float(np.nanstd(comp[order])),
                "category_counts": pd.Series(tc).value_counts().to_dict()}

    nn = lambda a: [None if np.isnan(v) else float(v) for v in a]  # noqa: E731
    return {
        "attributes": list(attrs), "r2_insample": nn(r2), "r2_cv": nn(r2 - rng.uniform(0.05, 0.2, n)),
        "completeness_paper": nn(comp), "effective_codes": nn(eff),
        "paper_disentanglement": float(rng.uniform(0.0005, 0.002)), "dci_disentanglement": float(rng.uniform(0.2, 0.5)),
        "dci_completeness": float(np.nanmean(comp)), "n_undefined": 1, "undefined_attributes": [attrs[-1]],
        "r2_cv_mean": float(np.nanmean(r2) - 0.1), "effective_codes_mean": float(np.nanmean(eff)),
        "top_r2": top(order_r2), "top_completeness": top(order_c),
    }


def _probe_doc(target, strategy, classes, model, layer, rep, acc, n_test, input_dim) -> dict:
    """A probe JSON: test clip i has class i % n; the first round(acc * n_test) clips are right, so probes of
    the same node with similar accuracy agree on most clips (as real ones do)."""
    n = len(classes)
    truth = [i % n for i in range(n_test)]
    n_right = int(round(acc * n_test))
    pred = [t if i < n_right else (t + 1 + i % 3) % n for i, t in enumerate(truth)]
    cm = np.zeros((n, n), dtype=int)
    for t, p in zip(truth, pred):
        cm[t, p] += 1
    acc = float(np.trace(cm) / n_test)
    half = 1.96 * np.sqrt(acc * (1 - acc) / n_test)  # a stand-in for the probe job's bootstrap interval
    return {
        "target": target, "label": target, "split_strategy": strategy, "model": model, "layer": layer, "rep": rep,
        "classes": classes, "accuracy": acc, "accuracy_ci": [max(0.0, acc - half), min(1.0, acc + half)],
        "ci": 0.95, "balanced_accuracy": acc - 0.01, "macro_f1": acc - 0.03, "accuracy_std": None,
        "balanced_accuracy_std": None, "macro_f1_std": None,
        "per_class_recall": {c: float(cm[i, i] / cm[i].sum()) for i, c in enumerate(classes)},
        "confusion_matrix": cm.tolist(), "best_epoch": 20, "seeds": [42], "n_train": 160, "n_valid": 40,
        "n_test": n_test, "input_dim": input_dim, "majority_class_accuracy": 1 / n, "history": [],
        "test_clip_ids": [f"clip{i:03d}" for i in range(n_test)], "test_y_true": truth, "test_y_pred": [pred],
    }


def write_fake_results(root: Path | str, seed: int = 0, synthetic: bool = True, models: dict | None = None,
                       sparsities: list[str] | None = None, widths: dict | None = None) -> dict[str, list[Path]]:
    """Write the fake tree under `root` (a workdir); returns the input lists of the aggregate rule.

    Defaults: MODELS, SPARSITIES and WIDTH above; `widths` maps (model, layer) to the layer's width.
    """
    root = Path(root)
    MODELS = models or globals()["MODELS"]  # noqa: N806
    SPARSITIES = sparsities or globals()["SPARSITIES"]  # noqa: N806
    WIDTH = widths or globals()["WIDTH"]  # noqa: N806
    rng = np.random.default_rng(seed)
    out: dict[str, list[Path]] = {"metrics": [], "probes": [], "disentangle": [], "npz": [], "stores": []}
    n_per_class = 4
    for model, layers in MODELS.items():
        for li, layer in enumerate(layers):
            width = WIDTH[model, layer]
            base_acc = rng.uniform(0.6, 0.75)
            early = li == 0
            for rep in ["original"] + [f"sae{s}" for s in SPARSITIES]:
                s = None if rep == "original" else float(rep[3:])
                n_codes = width if s is None else 4 * width
                if s is not None:
                    k = int((1 - s) * n_codes)
                    fvu = 0.04 + 0.35 * s ** 6 + rng.uniform(0, 0.02)
                    splits = {sp: {"mse": fvu * 0.8 * (1.1 if sp == "test" else 1.0), "fvu": fvu * (1.1 if sp == "test" else 1.0),
                                   "cosine": 1 - fvu / 2, "l0": float(k), "dead_fraction": float(rng.uniform(0, 0.1))}
                              for sp in ("train", "valid", "test")}
                    out["metrics"].append(_dump(
                        root / f"results/sae/{model}/layer{layer}/sparsity{s}/metrics.json",
                        {"model": model, "layer": layer, "sparsity": s, "k": k, "n_latents": n_codes, "input_dim": width,
                         "arch": "topk", "seed": 42, "device": "cpu", "epochs_run": 12, "best_epoch": 11,
                         "wall_time_s": 3.2, "history": [{"epoch": 1, "train_mse": 1.0, "valid_mse": 1.1}],
                         "splits": splits}))
                drop = 0 if s is None else 0.05 * s + rng.uniform(-0.02, 0.02)
                for ti, (target, (strategy, classes)) in enumerate(PROBE_TARGETS.items()):
                    acc = float(np.clip(base_acc - 0.1 * ti - drop, 0.1, 1))
                    out["probes"].append(_dump(root / f"results/probe/{target}/{model}/layer{layer}/{rep}.json",
                                               _probe_doc(target, strategy, classes, model, layer, rep, acc,
                                                          n_per_class * len(classes), n_codes)))
                targets = {"egemaps": _target(rng, EGEMAPS, n_codes, s is not None, early)}
                if synthetic:
                    targets["factors"] = _target(rng, FACTORS, n_codes, s is not None, early, top_n=5)
                out["disentangle"].append(_dump(root / f"results/disentangle/{model}/layer{layer}/{rep}.json", {
                    "model": model, "layer": layer, "rep": rep, "n_codes": n_codes, "n_items": 40,
                    "targets": targets}))
                npz = root / f"results/disentangle/{model}/layer{layer}/{rep}.npz"
                arrays = {}
                for tname, attrs in (("egemaps", EGEMAPS), ("factors", FACTORS)):
                    if tname == "factors" and not synthetic:
                        continue
                    imp = np.abs(rng.normal(size=(n_codes, len(attrs)))) * (rng.random((n_codes, len(attrs))) < 0.1)
                    arrays[f"importance_{tname}"] = imp
                    arrays[f"attributes_{tname}"] = np.array(attrs)
                np.savez(npz, **arrays)
                out["npz"].append(npz)
        index = pd.DataFrame({"clip_id": ["a", "b", "c"], "split": ["train", "valid", "test"], "crop": [0, 0, 0]})
        store = root / f"results/embeddings/{model}.zarr"
        write_store(store, {f"layer{l}": np.zeros((3, WIDTH[model, l]), np.float32) for l in layers}, index,
                    attrs={"model": model, "source": model, "revision": "packaged", "sample_rate": 16000,
                           "crop_seconds": 1.5, "pooling": "mean", "device": "cpu", "dtype": "float32",
                           "package_versions": {"torch": "2.11.0"}, "extraction_time_s": 4.2, "items_per_s": 55.0})
        out["stores"].append(store)
    manifest = root / "results/data/manifest.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"clip_id": ["a", "b", "c"], "path": ["x.wav", "y.wav", "z.wav"], "group": ["female1"] * 3,
                  "singer": ["female1"] * 3,
                  "context": ["scales"] * 3, "technique": ["belt"] * 3, "vowel": ["a"] * 3,
                  "split": ["train", "valid", "test"], "duration_s": [2.0] * 3, "sample_rate": [16000] * 3}
                 ).to_csv(manifest, index=False)
    out["manifest"] = [manifest]
    out["atlas"] = write_fake_atlas(root, rng, MODELS, SPARSITIES, WIDTH, synthetic)
    out["ablation"] = write_fake_ablation(root, rng, MODELS, SPARSITIES)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rule, n, secs in (("extract_embeddings", 2, 20.0), ("train_sae", 8, 3.1), ("probe", 12, 1.4)):
        for i in range(n):
            p = root / f"results/benchmarks/rules/{rule}/job{i}.tsv"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(header + f"{secs + i * 0.1:.4f}\t0:00:0{int(secs) % 10}\t512.1\t900.0\t400.0\t410.0\t1.0\t2.0\t80.0\t{secs:.2f}\n")
    return out


def write_fake_atlas(root: Path, rng, models: dict, sparsities: list[str], widths: dict, synthetic: bool) -> list[Path]:
    """Atlas folders (summary.json, units.csv, index.html) per (model, layer, rep): SAE latents a little more
    often clearly labelled than original dimensions at low sparsity, less at high sparsity."""
    dirs = []
    factors = [f for f in FACTORS if f != "factor_vowel"]
    for model, layers in models.items():
        for layer in layers:
            width = widths[model, layer]
            for rep in ["original"] + [f"sae{s}" for s in sparsities]:
                s = None if rep == "original" else float(rep[3:])
                units = width if s is None else 4 * width
                dead = 0 if s is None else int(units * s * rng.uniform(0.1, 0.4))
                live = units - dead
                share = rng.uniform(0.15, 0.25) if s is None else rng.uniform(0.3, 0.4) - 0.2 * s
                clear = int(round(share * live))
                by_auc = int(round(clear * 0.6))
                summary = {"model": model, "layer": layer, "rep": rep, "clips": 3,
                           "label_columns": ["singer", "context", "technique", "vowel"], "units": units, "live": live,
                           "dead": dead, "constant": 0, "clear": clear, "clear_by_auroc": by_auc,
                           "clear_by_rho": clear - by_auc + int(clear * 0.1), "share": clear / live,
                           "auroc_threshold": 0.9, "rho_threshold": 0.7}
                if synthetic:
                    rows = [{"factor": f, "unit": int(i), "rho": float(rng.uniform(-1, 1)),
                             "readout_r2": float(rng.uniform(-0.2, 0.95))} for i, f in enumerate(factors)]
                    summary["truth"] = {"mcc": float(np.mean([abs(r["rho"]) for r in rows])), "factors": rows,
                                        "readout_r2_mean": float(np.mean([r["readout_r2"] for r in rows])),
                                        "folds_grouped_by": "group"}
                d = root / f"results/atlas/{model}/layer{layer}/{rep}"
                _dump(d / "summary.json", summary)
                pd.DataFrame({"unit": range(units), "label": "unclear"}).to_csv(d / "units.csv", index=False)
                (d / "index.html").write_text(f"<!DOCTYPE html><html><body>fake atlas {model} {layer} {rep}</body></html>")
                dirs.append(d)
    return dirs


def write_fake_ablation(root: Path, rng, models: dict, sparsities: list[str]) -> list[Path]:
    """One ablation JSON per node (the layout of audiosae.atlas.ablation.run_ablation): a class's own latents
    take more of its recall than of the others' and than random latents."""
    classes = PROBE_TARGETS["technique"][1]
    paths = []
    for model, layers in models.items():
        for layer in layers:
            reps = {}
            for s in sparsities:
                rows = []
                for c in classes:
                    drop, others = float(rng.uniform(0.1, 0.5)), float(rng.uniform(-0.05, 0.05))
                    ctrl, ctrl_others = float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))
                    rows.append({"class": c, "n_test": 4, "latents": "1;2;3", "selection_auroc_mean": 0.9,
                                 "recall": 0.75, "drop_class": drop, "drop_others": others,
                                 "control_drop_class": ctrl, "control_drop_others": ctrl_others,
                                 "specificity": drop - others, "control_specificity": ctrl - ctrl_others})
                reps[f"sae{s}"] = {"accuracy_reconstruction": 0.7, "m": 8, "draws": 10, "classes": rows}
            paths.append(_dump(root / f"results/ablation/{model}/layer{layer}.json",
                               {"model": model, "layer": layer, "target": "technique", "classes": classes, "m": 8,
                                "draws": 10, "seed": 42, "reps": reps}))
    return paths
