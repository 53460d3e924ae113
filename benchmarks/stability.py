"""Seed stability of frame-SAE training recipes: which recipes give a dictionary determined by the data?

Each candidate recipe (init, width, k, AuxK, epochs, learning rate and its
schedule, batch size) is trained with 3 seeds on each frame node of a finished
run's frame stores (``results/frames/{model}.zarr``: the trained models and
their random-weights twins). Per candidate and node it reports:

- ``share``: the share of live latents that recur at cosine >= 0.7 in another
  seed (the project's Hungarian match, `audiosae.controls.stability.stability`,
  on the decoder directions of the latents live on the train frames), averaged
  over the 3 pairs of seeds; ``baseline``: the same for random directions of the
  same counts;
- ``mean_cos``: the mean matched cosine (same pairs);
- ``fvu``: test-frame FVU (the project's `SplitMetrics`), mean over seeds;
- ``dead``: the share of latents that never fire on the train frames;
- ``train_s``: wall time of training (steps and per-epoch valid passes), mean over seeds.

Training is the package's: `make_config`, `SparseAutoencoder`, `prepare`, `fit`
(in memory; the workflow's frame SAEs stream the same frames through the same
`fit_epochs`). One torch thread (the machine is shared).

    python benchmarks/stability.py --frames results/frames --out results/benchmarks
    python benchmarks/stability.py --tiny --out /tmp/x   # a synthetic frame store, seconds

Writes ``stability.json`` (every row, every seed's numbers) and ``stability.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

# The demo's frame nodes (profiles/demo/demo.yaml) and their twins.
NODES = ["crepe:1", "crepe:6", "resemblyzer:3", "crepe_random:1", "crepe_random:6", "resemblyzer_random:3"]

# What today's demo trains (profiles/demo/demo.yaml before issue 29, with sae.dim "x4" and the paper's SAE).
TODAY = {"init": "linear", "dim": "x4", "sparsity": 0.9, "unit_norm_decoder": False, "auxk": 0.0,
         "epochs": 3, "lr": 3e-3, "batch_size": 1024, "lr_warmup": 0.0, "lr_decay": 0.0}
TIED = {**TODAY, "init": "tied", "unit_norm_decoder": True}
# Candidates: each changes one or two things against its neighbour, so the table reads as ablations.
CANDIDATES = {
    "today": TODAY,
    "tied": TIED,
    "tied-x4-e30": {**TIED, "epochs": 30, "lr": 1e-3, "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x2-e30": {**TIED, "dim": "x2", "epochs": 30, "lr": 1e-3, "batch_size": 256, "lr_warmup": 0.05,
                    "lr_decay": 0.2},
    "tied-x1-e30": {**TIED, "dim": "x1", "epochs": 30, "lr": 1e-3, "batch_size": 256, "lr_warmup": 0.05,
                    "lr_decay": 0.2},
    "tied-x0.5-e30": {**TIED, "dim": "x0.5", "epochs": 30, "lr": 1e-3, "batch_size": 256, "lr_warmup": 0.05,
                      "lr_decay": 0.2},
    "tied-x0.25-e30": {**TIED, "dim": "x0.25", "epochs": 30, "lr": 1e-3, "batch_size": 256, "lr_warmup": 0.05,
                       "lr_decay": 0.2},
    "tied-x0.125-e30": {**TIED, "dim": "x0.125", "epochs": 30, "lr": 1e-3, "batch_size": 256, "lr_warmup": 0.05,
                        "lr_decay": 0.2},
    "tied-x0.25-e30-batchtopk": {**TIED, "dim": "x0.25", "epochs": 30, "lr": 1e-3, "batch_size": 256,
                                 "lr_warmup": 0.05, "lr_decay": 0.2, "arch": "batchtopk"},
    "tied-x0.25-e30-flat": {**TIED, "dim": "x0.25", "epochs": 30, "lr": 1e-3, "batch_size": 256},
    "linear-x0.25-e30": {**TIED, "init": "linear", "unit_norm_decoder": False, "dim": "x0.25", "epochs": 30,
                         "lr": 1e-3, "batch_size": 256, "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.25-e30-auxk": {**TIED, "dim": "x0.25", "epochs": 30, "lr": 1e-3, "batch_size": 256,
                            "lr_warmup": 0.05, "lr_decay": 0.2, "auxk": 1 / 32},
    "tied-x0.25-e60": {**TIED, "dim": "x0.25", "epochs": 60, "lr": 1e-3, "batch_size": 256, "lr_warmup": 0.05,
                       "lr_decay": 0.2},
    "tied-x0.25-e30-lr3e-3": {**TIED, "dim": "x0.25", "epochs": 30, "lr": 3e-3, "batch_size": 256,
                              "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.25-e30-lr1e-2": {**TIED, "dim": "x0.25", "epochs": 30, "lr": 1e-2, "batch_size": 256,
                              "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.125-e30-lr3e-3": {**TIED, "dim": "x0.125", "min_dim": 32, "epochs": 30, "lr": 3e-3,
                               "batch_size": 256, "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.125-e100-lr3e-3": {**TIED, "dim": "x0.125", "min_dim": 32, "epochs": 100, "lr": 3e-3,
                                "batch_size": 256, "lr_warmup": 0.05, "lr_decay": 0.2},
    # A frame budget instead of epochs: every node gets about the same number of steps (the workflow's
    # sae.frame.max_frames), ~3,900 at batch 256, whatever its frame count.
    "tied-x0.25-f1M-lr1e-2": {**TIED, "dim": "x0.25", "min_dim": 32, "epochs": 1000, "frames": 1_000_000,
                              "lr": 1e-2, "batch_size": 256, "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.5-f1M-lr1e-2": {**TIED, "dim": "x0.5", "min_dim": 32, "epochs": 1000, "frames": 1_000_000,
                             "lr": 1e-2, "batch_size": 256, "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.25-f500k-b128-lr1e-2": {**TIED, "dim": "x0.25", "min_dim": 32, "epochs": 1000, "frames": 500_000,
                                     "lr": 1e-2, "batch_size": 128, "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.125-f1M-lr1e-2": {**TIED, "dim": "x0.125", "min_dim": 32, "epochs": 1000, "frames": 1_000_000,
                               "lr": 1e-2, "batch_size": 256, "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.5-s0.95-e30": {**TIED, "dim": "x0.5", "sparsity": 0.95, "epochs": 30, "lr": 1e-3, "batch_size": 256,
                            "lr_warmup": 0.05, "lr_decay": 0.2},
    "tied-x0.5-s0.97-e30": {**TIED, "dim": "x0.5", "sparsity": 0.97, "epochs": 30, "lr": 1e-3,
                            "batch_size": 256, "lr_warmup": 0.05, "lr_decay": 0.2},
}
# The twins get the recipes that matter for the comparison (today's and the chosen one); fewer to keep cost sane.
TWIN_CANDIDATES = ["today", "tied-x0.25-f1M-lr1e-2"]


def load_node(store: Path, model: str, layer: int, max_train: int | None, max_eval: int | None,
              seed: int = 0) -> dict[str, np.ndarray]:
    """The train, valid and test frames of one node as float32 arrays (train and valid/test subsampled, seeded)."""
    from audiosae.frames.store import clip_index, layer_array

    array = layer_array(store, layer, model)
    values = np.asarray(array[:], dtype=np.float32)
    clips = clip_index(store)
    rng = np.random.default_rng(seed)
    out = {}
    for split, cap in (("train", max_train), ("valid", max_eval), ("test", max_eval)):
        part = clips[clips["split"] == split]
        rows = np.concatenate([np.arange(f, f + n) for f, n in zip(part["first_frame"], part["n_frames"])]
                              or [np.zeros(0, np.int64)])
        if cap is not None and len(rows) > cap:
            rows = np.sort(rng.choice(rows, size=cap, replace=False))
        out[split] = values[rows]
    return out


def train_one(data: dict[str, np.ndarray], recipe: dict, seed: int) -> dict:
    """One SAE of `recipe` with `seed`: its live decoder directions and its test FVU, dead share, time."""
    from audiosae.sae.metrics import SplitMetrics
    from audiosae.sae.model import SparseAutoencoder
    from audiosae.sae.train import fit, make_config, prepare

    train_x, valid_x, test_x = (torch.from_numpy(data[s]) for s in ("train", "valid", "test"))
    cfg = make_config(train_x.shape[1], recipe["sparsity"], dim=recipe["dim"], min_dim=recipe.get("min_dim", 1),
                      init=recipe["init"],
                      arch=recipe.get("arch", "topk"),
                      unit_norm_decoder=recipe["unit_norm_decoder"], auxk=recipe["auxk"],
                      dead_after=len(train_x) if recipe["auxk"] > 0 else None)
    generator = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    sae = SparseAutoencoder(cfg, generator=generator)
    prepare(sae, train_x)
    result = fit(sae, train_x, valid_x, lr=recipe["lr"], batch_size=recipe["batch_size"], epochs=recipe["epochs"],
                 generator=generator, progress=False, lr_warmup=recipe["lr_warmup"], lr_decay=recipe["lr_decay"])
    train_s = time.perf_counter() - t0
    stats = {s: SplitMetrics(cfg.n_latents) for s in ("train", "test")}
    with torch.no_grad():
        for split, x in (("train", train_x), ("test", test_x)):
            for start in range(0, len(x), 4096):
                xb = x[start:start + 4096]
                codes = sae.encode(xb)
                stats[split].update(sae.normalize(xb), sae.decode_normalised(codes), codes)
    live = stats["train"].fired.numpy()
    directions = sae.decoder.weight.detach().double().numpy().T  # [n_latents, input_dim]
    return {"seed": seed, "n_latents": cfg.n_latents, "k": cfg.k, "fvu": stats["test"].result()["fvu"],
            "dead": float(1 - live.mean()), "live": int(live.sum()), "train_s": train_s,
            "best_epoch": result.best_epoch, "directions": directions[live]}


def measure(data: dict[str, np.ndarray], recipe: dict, seeds: list[int]) -> dict:
    """A recipe's row: the seeds' SAEs, every pair matched (share recurring, mean cosine, baselines)."""
    from audiosae.controls.stability import stability

    runs = [train_one(data, recipe, s) for s in seeds]
    pairs = [stability(a["directions"], b["directions"]).as_dict() for a, b in itertools.combinations(runs, 2)]

    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    return {"n_latents": runs[0]["n_latents"], "k": runs[0]["k"],
            "share": mean(p["share_matched"] for p in pairs), "mean_cos": mean(p["mean_cos"] for p in pairs),
            "baseline_share": mean(p["baseline_share_matched"] for p in pairs),
            "baseline_mean_cos": mean(p["baseline_mean_cos"] for p in pairs),
            "fvu": mean(r["fvu"] for r in runs), "fvu_sd": float(np.std([r["fvu"] for r in runs])),
            "dead": mean(r["dead"] for r in runs), "train_s": mean(r["train_s"] for r in runs),
            "seeds": [{k: v for k, v in r.items() if k != "directions"} for r in runs], "pairs": pairs}


def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(doc: dict) -> str:
    lines = [f"# Seed stability of frame-SAE recipes ({doc['machine']})", "",
             f"{len(doc['seeds'])} seeds per recipe; live = fires on a train frame; recurring = matched one to one "
             "at cosine >= 0.7, over the larger live count; random = the same for random directions.", "",
             "| node | recipe | latents | k | recurring | random | mean cos | test FVU | dead | train s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["rows"]:
        lines.append(f"| {r['node']} | {r['recipe']} | {r['n_latents']} | {r['k']} | {fmt(r['share'], '.0%')} | "
                     f"{fmt(r['baseline_share'], '.0%')} | {fmt(r['mean_cos'], '.2f')} | {fmt(r['fvu'], '.3f')} | "
                     f"{fmt(r['dead'], '.0%')} | {fmt(r['train_s'], '.1f')} |")
    lines += ["", "Recipes:", ""]
    for name, recipe in doc["candidates"].items():
        lines.append(f"- `{name}`: " + ", ".join(f"{k} {v}" for k, v in recipe.items()))
    return "\n".join(lines) + "\n"


def tiny_store(root: Path) -> Path:
    """A small synthetic frame store (benchmarks/frames.py's), named like a model's."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from frames import synthetic_frame_store

    path = root / "toy.zarr"
    synthetic_frame_store(path, n_clips=20, frames_per_clip=60, width=40, seed=0, chunk=256)
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, default=REPO / "results" / "frames",
                    help="folder of a finished run's frame stores, {model}.zarr (read only)")
    ap.add_argument("--nodes", nargs="+", default=NODES, help="model:layer, as in the stores")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), help="names of CANDIDATES to run")
    ap.add_argument("--twin-candidates", nargs="+", default=TWIN_CANDIDATES,
                    help="the candidates run on nodes whose model ends in _random")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-train-frames", type=int, default=None, help="subsample the train frames (seeded)")
    ap.add_argument("--max-eval-frames", type=int, default=10000, help="subsample valid and test frames (seeded)")
    ap.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every recipe's epochs (--tiny: less)")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run on a synthetic store (the tests')")
    args = ap.parse_args(argv)
    from audiosae.sae.sizes import k_for, latent_count

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    candidates = {name: CANDIDATES[name] for name in args.candidates}
    twin = [n for n in args.twin_candidates if n in candidates]
    nodes = args.nodes
    if args.tiny:
        args.frames = args.out / "tiny_frames"
        args.frames.mkdir(exist_ok=True)
        tiny_store(args.frames)
        nodes = ["toy:0"]
        candidates = {name: CANDIDATES[name] for name in ("today", "tied-x0.5-e30")}
        args.epochs_scale = 0.1
    rows = []
    t_all = time.perf_counter()
    for node in nodes:
        model, layer = node.split(":")
        store = args.frames / f"{model}.zarr"
        data = load_node(store, model, int(layer), args.max_train_frames, args.max_eval_frames)
        names = twin if model.endswith("_random") else list(candidates)
        print(f"{node}: {len(data['train'])} train / {len(data['valid'])} valid / {len(data['test'])} test frames "
              f"of width {data['train'].shape[1]}", file=sys.stderr, flush=True)
        for name in names:
            recipe = dict(candidates[name])
            if "frames" in recipe:  # a frame budget: whole epochs up to it (at most the recipe's epochs)
                recipe["epochs"] = min(recipe["epochs"], -(-recipe["frames"] // len(data["train"])))
            recipe["epochs"] = max(1, round(recipe["epochs"] * args.epochs_scale))
            n = latent_count(recipe["dim"], data["train"].shape[1], recipe.get("min_dim", 1))
            if k_for(recipe["sparsity"], n) == 0:
                print(f"{node} {name}: {n} latents give k = 0 at sparsity {recipe['sparsity']}: skipped",
                      file=sys.stderr, flush=True)
                continue
            row = {"node": node, "model": model, "layer": int(layer), "recipe": name,
                   **measure(data, recipe, args.seeds)}
            rows.append(row)
            print(f"{node} {name}: {row['n_latents']} latents k {row['k']}: recurring {fmt(row['share'], '.1%')} "
                  f"(random {fmt(row['baseline_share'], '.1%')}), mean cos {fmt(row['mean_cos'], '.3f')}, "
                  f"fvu {row['fvu']:.4f}, dead {row['dead']:.1%}, {row['train_s']:.1f} s", file=sys.stderr,
                  flush=True)
    if not rows:
        raise SystemExit("no candidate trained on any node (every k was 0?): nothing measured")
    missing = [f"{r['node']} {r['recipe']}" for r in rows if r["share"] is None or r["fvu"] is None]
    if missing:
        raise SystemExit(f"no live latents or no FVU for: {', '.join(missing)}")
    doc = {"machine": f"{platform.node()}, {platform.processor() or platform.machine()}, 1 torch thread",
           "torch": torch.__version__, "frames": str(args.frames), "seeds": args.seeds,
           "max_train_frames": args.max_train_frames, "max_eval_frames": args.max_eval_frames,
           "candidates": candidates, "rows": rows, "total_s": round(time.perf_counter() - t_all, 1)}
    (args.out / "stability.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out / "stability.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
