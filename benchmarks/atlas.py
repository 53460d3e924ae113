"""Wall time of one atlas job at VocalSet scale, and of its statistics against a per-unit loop.

A job the size of the paper's largest: a 2048-latent SAE at sparsity 0.95
(k = 102 active codes per clip, some dead latents) on VocalSet's 1,619 clips,
four label columns (20 singers, 4 contexts, 10 techniques, 8 vowels) and 88
attributes, all random: codes are top-k of a few latent factors plus noise, so
the statistics have real ranks and ties to work through.

Measured, each the best of --repeats runs:
- the whole job as the rule runs it (``build_atlas``: read the store, statistics,
  units.csv, summary.json, the page), in this process and in a fresh one
  (imports included; no ground truth: VocalSet has no true factors);
- the statistics alone (``unit_statistics``);
- the same AUROCs and Spearman ρ computed the obvious way, one unit at a time
  (``sklearn.metrics.roc_auc_score`` per unit and class, ``scipy.stats.spearmanr``
  per unit), timed on --loop-units units and scaled to all units.

    python benchmarks/atlas.py            # writes results/benchmarks/atlas.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

LABELS = {"singer": 20, "context": 4, "technique": 10, "vowel": 8}


def make_inputs(root: Path, clips: int, latents: int, k: int, attributes: int, seed: int = 0):
    """A store, manifest, attributes table and clip index in `root`; returns their paths."""
    from audiosae.store import write_store

    rng = np.random.default_rng(seed)
    ids = [f"clip{i:05d}" for i in range(clips)]
    labels = {c: rng.integers(0, n, clips) for c, n in LABELS.items()}
    factors = rng.normal(size=(clips, 12))
    for j, (c, n) in enumerate(LABELS.items()):
        factors[:, j] += labels[c] / n  # labels shape the codes a little
    pre = factors @ rng.normal(size=(12, latents)) + rng.normal(size=(clips, latents))
    pre[:, : latents // 20] -= 100.0  # ~5 % dead latents
    codes = np.zeros_like(pre)
    top = np.argpartition(-pre, k, axis=1)[:, :k]
    rows = np.arange(clips)[:, None]
    codes[rows, top] = np.maximum(np.round(pre[rows, top], 2), 0.0)  # rounding makes ties
    index = pd.DataFrame({"clip_id": ids, "split": rng.choice(["train", "valid", "test"], clips), "crop": 0})
    store = root / "latents.zarr"
    write_store(store, {"codes": codes.astype(np.float32)}, index)
    manifest = pd.DataFrame({"clip_id": ids, "path": [f"{i}.wav" for i in ids],
                             "group": [f"singer{v}" for v in labels["singer"]],
                             **{c: [f"{c}{v}" for v in labels[c]] for c in LABELS}, "split": index["split"],
                             "duration_s": 5.0, "sample_rate": 44100})
    manifest.to_csv(root / "manifest.csv", index=False)
    attrs = factors @ rng.normal(size=(12, attributes)) + rng.normal(size=(clips, attributes))
    pd.DataFrame(attrs, columns=[f"attr{j}" for j in range(attributes)]).assign(clip_id=ids).to_parquet(
        root / "attributes.parquet")
    clip_dir = root / "clips"
    clip_dir.mkdir()
    pd.DataFrame({"clip_id": ids, "audio": [f"{i}.ogg" for i in ids], "image": [f"{i}.png" for i in ids],
                  "start_s": 0.0, "seconds": 5.0, "sample_rate": 44100}).to_csv(clip_dir / "index.csv", index=False)
    return store, root / "manifest.csv", root / "attributes.parquet", clip_dir, codes, labels, attrs


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def loop_statistics(codes, labels, attrs):
    """AUROC of every unit for every class, and ρ with every attribute, one unit at a time."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    for u in range(codes.shape[1]):
        x = codes[:, u]
        if np.all(x == x[0]):
            continue
        for y in labels.values():
            for c in np.unique(y):
                roc_auc_score(y == c, x)
        for j in range(attrs.shape[1]):
            spearmanr(x, attrs[:, j])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=1619)
    ap.add_argument("--latents", type=int, default=2048)
    ap.add_argument("--sparsity", type=float, default=0.95)
    ap.add_argument("--attributes", type=int, default=88)
    ap.add_argument("--loop-units", type=int, default=32, help="units timed for the per-unit loop (then scaled)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run at toy sizes (what the tests run)")
    if "--tiny" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(clips=120, latents=64, attributes=4, loop_units=2, repeats=1)
    args = ap.parse_args(argv)

    from audiosae.atlas.build import build_atlas, load_inputs
    from audiosae.atlas.stats import unit_statistics

    k = int((1 - args.sparsity) * args.latents)
    root = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    try:
        store, manifest, attributes, clips, codes, labels, attrs = make_inputs(
            root, args.clips, args.latents, k, args.attributes)
        res = {"clips": args.clips, "latents": args.latents, "k": k, "attributes": args.attributes,
               "label_columns": {c: n for c, n in LABELS.items()}, "threads": args.threads}
        with threadpool_limits(limits=args.threads):
            def job():
                return build_atlas(store, "codes", manifest, attributes, clips, root / "page", model="bench",
                                   layer=0, rep=f"sae{args.sparsity}")

            t_job, summary = best_of(job, args.repeats)
            # the same job in a fresh interpreter, imports included, as a Snakemake script job runs it
            cold = [sys.executable, "-c",
                    "import sys; from audiosae.atlas.build import build_atlas; "
                    f"build_atlas({str(store)!r}, 'codes', {str(manifest)!r}, {str(attributes)!r}, {str(clips)!r}, "
                    f"{str(root / 'page_cold')!r}, model='bench', layer=0, rep='sae{args.sparsity}')"]
            t_cold, _ = best_of(lambda: subprocess.run(cold, check=True, env={**os.environ, "OMP_NUM_THREADS":
                                                                             str(args.threads)}), args.repeats)
            x, ids, lab, sets, _ = load_inputs(store, "codes", manifest, attributes)
            t_stats, _ = best_of(lambda: unit_statistics(x, ids, lab, sets), args.repeats)
            n = min(args.loop_units, args.latents)
            live = np.flatnonzero(codes.max(axis=0) > 0)[:n]
            t_loop, _ = best_of(lambda: loop_statistics(codes[:, live], labels, attrs), 1)
            t_loop_all = t_loop / len(live) * int((codes.max(axis=0) > 0).sum())
        res.update({"job_s": t_job, "job_fresh_process_s": t_cold, "statistics_s": t_stats, "loop_units_timed": int(len(live)),
                    "loop_s_timed": t_loop, "loop_s_all_units_estimate": t_loop_all,
                    "statistics_speedup_vs_loop": t_loop_all / t_stats, "live_units": summary["live"],
                    "page_bytes": (root / "page" / "index.html").stat().st_size})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    import scipy
    import sklearn

    res["machine"] = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                      "sklearn": sklearn.__version__, "cpus": os.cpu_count(), "platform": platform.platform()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "atlas.json").write_text(json.dumps(res, indent=1) + "\n")
    md = [
        "# Atlas job at VocalSet scale",
        "",
        f"{args.clips} clips x {args.latents} latents (k = {k}), {len(LABELS)} label columns "
        f"({', '.join(f'{c} {n}' for c, n in LABELS.items())} classes), {args.attributes} attributes, "
        f"{args.threads} thread(s); best of {args.repeats}.",
        "",
        "| what | seconds |",
        "| --- | --- |",
        f"| whole atlas job (read store, statistics, units.csv, page) | {t_job:.2f} |",
        f"| the same job in a fresh Python process (imports included, as a rule runs it) | {t_cold:.2f} |",
        f"| statistics alone (vectorised ranks) | {t_stats:.2f} |",
        f"| same statistics one unit at a time (sklearn/scipy; {len(live)} units timed, scaled to "
        f"{summary['live']} live units) | {t_loop_all:.1f} |",
        "",
        f"Vectorised statistics are {t_loop_all / t_stats:.0f}x faster than the per-unit loop; "
        f"the page is {res['page_bytes'] / 1e6:.1f} MB.",
        "",
    ]
    (out / "atlas.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
