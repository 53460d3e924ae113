"""The SAE training step at the machine's limit: the project's path against minimal in-memory steps.

All in one process, repeats interleaved (project, dense reference, sparse
reference, again ...) and the best of each kept, so the ratios hold on a
machine shared with other work:

- frame SAE (the paper's size: 768-wide frames, 2048 latents, k = 102, batch
  4096, float32): ``train_frame_sae`` on a synthetic float16 frame store (the
  project's path: Zarr chunks, shuffle buffer, the package's model and step),
  frames/s of its epoch loop (data + steps, the valid pass excluded), against a
  minimal top-k step on the same frames held in memory, with a dense decoder
  (zeros + scatter, then matmul) and with a sparse one (``embedding_bag`` over
  the k active latents); the ratios project / reference are the point;
- clip SAE (batch 16, the paper's): the project's ``fit`` epoch loop against the
  same two minimal steps, and the time of the Adam update alone; the summary says
  which of the two bounds the step on this machine (``clip_bound``);
- ``--sweep``: the decoder alone (forward + backward), dense against sparse, at
  several k / n_latents: the measurement behind ``SPARSE_MAX_FRACTION``;
- ``--profile``: where one epoch of the project's frame path and of its clip
  path spend their time (torch.profiler: operators' own time in groups, the rest
  is data and Python; the valid pass left out), and the frame path's top Python
  functions (cProfile), written beside the results.

    python benchmarks/sae_step.py                 # writes results/benchmarks/sae_step.{json,md}
    python benchmarks/sae_step.py --device cuda   # the same on a GPU (not run in this project yet)
    python benchmarks/sae_step.py --device cuda --compile   # ... with the project's step compiled (sae.compile)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import synthetic_frame_store  # noqa: E402

from audiosae.frames.train import FrameSAEPaths, train_frame_sae  # noqa: E402
from audiosae.sae.model import SparseAutoencoder  # noqa: E402
from audiosae.sae.train import fit, make_config  # noqa: E402


FUSED = True  # set in main: whether torch has a fused Adam for the device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Reference:
    """A minimal top-k SAE step (nn.Linear's init, Adam, plain MSE), dense or sparse decoder."""

    def __init__(self, d: int, n: int, k: int, sparse: bool, device: torch.device, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.k, self.sparse = k, sparse
        bound = 1 / d ** 0.5
        self.w_enc = (torch.rand(n, d, generator=g) * 2 - 1).mul_(bound).to(device).requires_grad_()
        self.b_enc = (torch.rand(n, generator=g) * 2 - 1).mul_(bound).to(device).requires_grad_()
        w_dec = (torch.rand(n, d, generator=g) * 2 - 1).mul_(1 / n ** 0.5).to(device)
        # sparse: the [n, d] table embedding_bag gathers from; dense: nn.Linear's [d, n] weight
        self.w_dec = (w_dec if sparse else w_dec.t().contiguous()).requires_grad_()
        # the optimiser the project uses (fused Adam where torch has it), so the ratios measure the step
        self.opt = torch.optim.Adam([self.w_enc, self.b_enc, self.w_dec], lr=1e-3, fused=FUSED)

    def step(self, x: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        acts = torch.relu(F.linear(x, self.w_enc, self.b_enc))
        top = acts.topk(self.k, dim=-1, sorted=False)
        if self.sparse:
            recon = F.embedding_bag(top.indices, self.w_dec, per_sample_weights=top.values, mode="sum")
        else:
            recon = F.linear(torch.zeros_like(acts).scatter(-1, top.indices, top.values), self.w_dec)
        (recon - x).pow(2).mean().backward()
        self.opt.step()


def time_reference(x: torch.Tensor, batch: int, k: int, n: int, sparse: bool, device: torch.device) -> float:
    """Samples/s of the reference over all of `x` (consecutive batches, already in memory), fresh state."""
    ref = Reference(x.shape[1], n, k, sparse, device)
    sync(device)
    t0 = time.perf_counter()
    for start in range(0, x.shape[0] - batch + 1, batch):
        ref.step(x[start:start + batch])
    sync(device)
    steps = x.shape[0] // batch
    return steps * batch / (time.perf_counter() - t0)


def compile_kw(args) -> dict:
    """The project's `compile` setting, passed only when asked for (so the script also runs older code)."""
    return {"compile": True} if args.compile else {}


def project_frames(store: Path, work: Path, args, rep: int) -> dict:
    out = FrameSAEPaths.in_dir(work / f"fsae_{rep}")
    m = train_frame_sae(store, model="bench", layer=0, sparsity=args.sparsity, outputs=out, dim=args.latents,
                        batch_size=args.batch_size, epochs=1, max_frames=args.budget, shuffle_buffer=args.buffer,
                        seed=42, device=args.device, progress=False, **compile_kw(args))
    return {"step_frames_per_s": m["step_frames_per_s"], "frames_per_s": m["frames_per_s"],
            "frames_trained": m["frames_trained"], "test_fvu": m["splits"]["test"]["fvu"], "k": m["k"],
            "n_latents": m["n_latents"]}


def clip_project(x: torch.Tensor, valid: torch.Tensor, args, device: torch.device) -> float:
    cfg = make_config(x.shape[1], args.sparsity, dim=args.latents)
    sae = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(0)).to(device)
    r = fit(sae, x, valid, batch_size=args.clip_batch, epochs=1, generator=torch.Generator().manual_seed(0),
            progress=False, **compile_kw(args))
    return r.samples_seen / r.step_time_s


def adam_alone(d: int, n: int, device: torch.device, fused: bool, steps: int = 10) -> float:
    """Seconds per Adam update of an SAE's parameters (2 n d + n), the gradients already there."""
    params = [torch.zeros(n, d, device=device, requires_grad=True), torch.zeros(n, device=device, requires_grad=True),
              torch.zeros(d, n, device=device, requires_grad=True)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=1e-3, fused=fused)
    opt.step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def sweep(d: int, n: int, batch: int, fractions, device: torch.device, repeats: int = 3) -> list[dict]:
    rows = []
    g = torch.randn(batch, d, device=device)
    for frac in fractions:
        k = max(1, int(frac * n))
        idx = torch.rand(batch, n, device=device).topk(k, dim=-1, sorted=False).indices
        val = torch.rand(batch, k, device=device)
        table = torch.randn(n, d, device=device).div_(n ** 0.5).requires_grad_()
        weight = table.detach().t().contiguous().requires_grad_()

        def dense():
            codes = torch.zeros(batch, n, device=device).scatter_(-1, idx, val).requires_grad_()
            F.linear(codes, weight).backward(g)

        def sparse():
            v = val.clone().requires_grad_()
            F.embedding_bag(idx, table, per_sample_weights=v, mode="sum").backward(g)

        best = {}
        for name, fn in (("dense", dense), ("sparse", sparse)):
            fn()
        for _ in range(repeats):
            for name, fn in (("dense", dense), ("sparse", sparse)):
                sync(device)
                t0 = time.perf_counter()
                fn()
                sync(device)
                best[name] = min(best.get(name, 1e9), time.perf_counter() - t0)
        rows.append({"k": k, "fraction": round(k / n, 4), "dense_ms": round(best["dense"] * 1e3, 2),
                     "sparse_ms": round(best["sparse"] * 1e3, 2),
                     "sparse_over_dense": round(best["sparse"] / best["dense"], 3)})
        print(f"sweep k/n {k / n:.3f}: dense {best['dense'] * 1e3:.1f} ms, sparse {best['sparse'] * 1e3:.1f} ms",
              file=sys.stderr)
    return rows


# Where an epoch's time goes: torch operators by their own time, in these groups (the first match counts).
PROFILE_GROUPS = [
    ("matmuls (encoder forward, weight and input gradients)", ("aten::addmm", "aten::mm", "aten::bmm")),
    ("sparse decoder: embedding_bag forward and backward (with its index sort)",
     ("aten::_embedding_bag", "aten::_embedding_bag_dense_backward", "aten::_embedding_bag_backward",
      "aten::_embedding_bag_per_sample_weights_backward", "aten::sort", "aten::index_add_")),
    ("top-k selection", ("aten::topk",)),
    ("Adam update", ("aten::_fused_adam_", "aten::_foreach_")),
    ("dead-latent bookkeeping", ("aten::bincount", "aten::masked_fill", "aten::masked_fill_", "aten::nonzero",
                                 "aten::index_put_", "aten::_index_put_impl_")),
    ("memory: zero fills, copies, gathers, scatters", ("aten::fill_", "aten::zero_", "aten::copy_", "aten::index",
                                                      "aten::index_select", "aten::scatter", "aten::scatter_",
                                                      "aten::contiguous", "aten::clone", "aten::empty")),
    ("other torch operators (ReLU, loss, elementwise, autograd)", ("aten::", "autograd::", "Optimizer.")),
]


def _profiled(run) -> tuple[float, list]:
    """Run `run()` (returns the epoch loop's seconds) under torch.profiler; its result and the operator events
    inside the "epoch loop" range and outside any "valid pass" range (not part of the epoch loop)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loop_s = run()
    events = list(prof.events())
    marks = {"epoch loop", "valid pass"}
    loop = [(e.time_range.start, e.time_range.end) for e in events if e.name == "epoch loop"]
    valid = [(e.time_range.start, e.time_range.end) for e in events if e.name == "valid pass"]

    def within(e, ranges):
        return any(a <= e.time_range.start and e.time_range.end <= b for a, b in ranges)
    keep = [e for e in events if e.name not in marks and within(e, loop) and not within(e, valid)]
    return loop_s, keep


def profile_summary(loop_s: float, events: list, steps: int) -> list[dict]:
    """The epoch loop's wall time split into PROFILE_GROUPS (operators' own time) and the rest."""
    own = {}
    for e in events:
        own[e.name] = own.get(e.name, 0.0) + e.self_cpu_time_total / 1e6
    rows, used = [], set()
    for label, prefixes in PROFILE_GROUPS:
        names = [n for n in own if n not in used and any(n == p or (p.endswith(("::", ".", "_")) and
                                                                     n.startswith(p)) for p in prefixes)]
        used.update(names)
        t = sum(own[n] for n in names)
        rows.append({"part": label, "s": round(t, 3), "ms_per_step": round(1e3 * t / steps, 3),
                     "share": round(t / loop_s, 3)})
    rest = loop_s - sum(r["s"] for r in rows)
    rows.append({"part": "outside torch operators: the data (Zarr chunks, shuffle buffer, batch gather), Python",
                 "s": round(rest, 3), "ms_per_step": round(1e3 * rest / steps, 3), "share": round(rest / loop_s, 3)})
    rows.append({"part": "epoch loop (wall)", "s": round(loop_s, 3), "ms_per_step": round(1e3 * loop_s / steps, 3),
                 "share": 1.0})
    return rows


def profile_epoch(store: Path, work: Path, args) -> dict:
    """One epoch of the project's frame path and of its clip path under torch.profiler (groups of operators,
    the valid pass left out), and the frame path's top Python functions (cProfile)."""
    import cProfile
    import pstats

    import audiosae.frames.train as frames_train

    fit_epochs = frames_train.fit_epochs
    seen = {}

    def fit_epochs_marked(sae, batches, valid_mse, **kw):  # the valid pass marked, so it can be left out
        def marked():
            with torch.profiler.record_function("valid pass"):
                return valid_mse()
        with torch.profiler.record_function("epoch loop"):
            r = fit_epochs(sae, batches, marked, **kw)
        seen.update(steps=-(-r.samples_seen // args.batch_size), loop_s=r.step_time_s)
        return r

    frames_train.fit_epochs = fit_epochs_marked
    try:
        def frame_run():
            project_frames(store, work, args, rep=98)
            return seen["loop_s"]
        loop_s, events = _profiled(frame_run)
        frame = profile_summary(loop_s, events, seen["steps"])
        prof = cProfile.Profile()
        prof.enable()
        project_frames(store, work, args, rep=99)
        prof.disable()
    finally:
        frames_train.fit_epochs = fit_epochs
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc, "own_s": round(tt, 3),
                     "cumulative_s": round(ct, 3)})
    rows.sort(key=lambda r: -r["own_s"])

    import audiosae.sae.train as sae_train

    x = CLIP_DATA["x"]
    cfg = make_config(x.shape[1], args.sparsity, dim=args.latents)
    sae = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(0)).to(x.device)

    def clip_run():
        valid = CLIP_DATA["valid"]

        def batches(epoch):
            order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0)).to(x.device)
            for start in range(0, x.shape[0], args.clip_batch):
                yield x.index_select(0, order[start:start + args.clip_batch])

        def marked():
            with torch.profiler.record_function("valid pass"):
                return sae_train.mean_mse(sae, valid)
        with torch.profiler.record_function("epoch loop"):
            return sae_train.fit_epochs(sae, batches, marked, epochs=1, progress=False, **compile_kw(args)).step_time_s
    clip_loop_s, clip_events = _profiled(clip_run)
    clip = profile_summary(clip_loop_s, clip_events, -(-x.shape[0] // args.clip_batch))
    return {"frame": frame, "clip": clip, "frame_top_own_time": rows[:25]}


CLIP_DATA: dict = {}


def clip_bound(r: dict, batch: int) -> str:
    """What bounds the clip step, read off this run: the minimal step's time, or the project loop's overhead."""
    ref_ms = 1000 * batch / max(r["clip_reference_dense_samples_per_s"], r["clip_reference_sparse_samples_per_s"])
    extra = r["clip_step_ms"] / ref_ms
    if extra > 1.25:
        return (f"The minimal step takes {ref_ms:.2f} ms, so the project's step costs {extra:.1f}x it: the rest is "
                f"per-step overhead of the project's loop (batch gather, bookkeeping, Python dispatch), not "
                f"arithmetic or Adam.")
    return (f"The minimal step takes {ref_ms:.2f} ms ({extra:.2f}x): the project's step is as fast as the minimal "
            f"one; at this batch size passes over the weights (Adam's moments, weight gradients) bound it.")

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--latents", type=int, default=2048)
    ap.add_argument("--sparsity", type=float, default=0.95, help="k = int((1 - s) * latents): 102 at 2048")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--frames", type=int, default=50_000, help="frames in the synthetic store (70 %% train)")
    ap.add_argument("--budget", type=int, default=8 * 4096, help="frames trained per measurement")
    ap.add_argument("--buffer", type=int, default=16384)
    ap.add_argument("--clip-batch", type=int, default=16)
    ap.add_argument("--clip-items", type=int, default=1280, help="train vectors of the clip-SAE epoch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true",
                    help="the project's runs with sae.compile: true (torch.compile of the step's forward; CUDA only, "
                         "ignored on CPU); its first steps compile, so give it --repeats 2 or more")
    ap.add_argument("--sweep", action="store_true", help="also time the decoder alone, dense vs sparse, over k / n")
    ap.add_argument("--profile", action="store_true", help="also profile one epoch of the project's frame and clip paths")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run at toy sizes (what the tests run)")
    if "--tiny" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(width=32, latents=256, batch_size=256, frames=3000, budget=1024, buffer=512,
                        clip_items=64, repeats=1, sweep=True, profile=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.compile and device.type != "cuda":
        print("--compile: ignored on CPU (the project compiles the step on CUDA only)", file=sys.stderr)
    global FUSED
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):
        FUSED = False
    k = make_config(args.width, args.sparsity, dim=args.latents).k
    if args.budget > 0.7 * args.frames * 0.95:
        raise SystemExit(f"--budget {args.budget} exceeds the store's train frames (70 % of --frames {args.frames})")

    work = Path(tempfile.mkdtemp(prefix="audiosae-bench-step-"))
    store = work / "frames.zarr"
    clip_frames = min(500, args.frames // 20)  # at least 20 clips: every split gets some
    synthetic_frame_store(store, args.frames // clip_frames, clip_frames, args.width, seed=1, chunk=4096)
    import zarr

    frames = np.asarray(zarr.open_group(str(store), mode="r")["layer0"][: args.budget], dtype=np.float32)
    x = torch.from_numpy(frames).to(device)
    clip_x = x[: args.clip_items].contiguous()
    clip_valid = x[args.clip_items: args.clip_items + args.clip_batch].contiguous()
    CLIP_DATA.update(x=clip_x, valid=clip_valid)

    # warm-up: the first steps of each path pay one-off costs (allocator, lazy imports)
    time_reference(x[: 2 * args.batch_size], args.batch_size, k, args.latents, True, device)
    time_reference(x[: 2 * args.batch_size], args.batch_size, k, args.latents, False, device)
    best = {}

    def keep(name, value):
        best.setdefault(name, []).append(value)

    project_runs = []
    for rep in range(args.repeats):
        print(f"repeat {rep + 1}/{args.repeats} ...", file=sys.stderr)
        run = project_frames(store, work, args, rep)
        project_runs.append(run)
        keep("project", run["step_frames_per_s"])
        keep("dense", time_reference(x, args.batch_size, k, args.latents, False, device))
        keep("sparse", time_reference(x, args.batch_size, k, args.latents, True, device))
        keep("clip_project", clip_project(clip_x, clip_valid, args, device))
        keep("clip_dense", time_reference(clip_x, args.clip_batch, k, args.latents, False, device))
        keep("clip_sparse", time_reference(clip_x, args.clip_batch, k, args.latents, True, device))
    top = {name: max(v) for name, v in best.items()}
    adam_s = adam_alone(args.width, args.latents, device, FUSED)
    adam_plain_s = adam_alone(args.width, args.latents, device, False)
    clip_step_s = args.clip_batch / top["clip_project"]

    result = {
        "benchmark": "sae_step",
        "settings": {"width": args.width, "latents": args.latents, "k": k, "sparsity": args.sparsity,
                     "batch_size": args.batch_size, "store_frames": args.frames, "frames_per_measurement": args.budget,
                     "shuffle_buffer": args.buffer, "clip_batch": args.clip_batch, "repeats": args.repeats,
                     "threads": args.threads, "device": args.device, "dtype": "float32",
                     "compile": bool(args.compile and device.type == "cuda")},
        "project_frames_per_s": round(top["project"], 1),
        "reference_dense_frames_per_s": round(top["dense"], 1),
        "reference_sparse_frames_per_s": round(top["sparse"], 1),
        "ratio_project_over_sparse": round(top["project"] / top["sparse"], 3),
        "ratio_project_over_dense": round(top["project"] / top["dense"], 3),
        "ratio_sparse_over_dense": round(top["sparse"] / top["dense"], 3),
        "all_repeats": {name: [round(v, 1) for v in vals] for name, vals in best.items()},
        "project_runs": project_runs,
        "clip_project_samples_per_s": round(top["clip_project"], 1),
        "clip_reference_dense_samples_per_s": round(top["clip_dense"], 1),
        "clip_reference_sparse_samples_per_s": round(top["clip_sparse"], 1),
        "clip_step_ms": round(clip_step_s * 1e3, 3),
        "adam_update_ms": round(adam_s * 1e3, 3),
        "adam_fused": FUSED,
        "adam_unfused_update_ms": round(adam_plain_s * 1e3, 3),
        "adam_share_of_clip_step": round(adam_s / clip_step_s, 3),
        "machine": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "gpu": (torch.cuda.get_device_name(device) if device.type == "cuda"
                else "not measured: no GPU in this session (run with --device cuda)"),
        "load_average": list(os.getloadavg()),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if args.sweep:
        result["sweep_batch"] = args.batch_size
        result["sweep"] = sweep(args.width, args.latents, args.batch_size,
                                [0.005, 0.01, 0.025, 0.05, 0.1, 0.2], device)
    if args.profile:
        result["profile"] = profile_epoch(store, work, args)
    import shutil

    shutil.rmtree(work, ignore_errors=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sae_step.json").write_text(json.dumps(result, indent=2) + "\n")
    r = result
    md = [
        "# SAE training step: the project against minimal in-memory steps",
        "",
        f"{args.width}-wide vectors, {args.latents} latents, k = {k}, float32, device {args.device}, "
        f"{args.threads} torch threads{', project step compiled (torch.compile)' if r['settings']['compile'] else ''}; "
        f"best of {args.repeats} interleaved repeats in one process "
        f"(load average at the end {r['load_average'][0]:.1f} on {r['cpu_count']} CPUs: the ratios, "
        f"not the absolute numbers, are what carries over).",
        "",
        f"## Frame SAE (batch {args.batch_size}, {args.budget:,} frames per measurement)",
        "",
        f"Every path uses {'fused' if FUSED else 'unfused'} Adam (the project's optimiser).",
        "",
        "| path | frames/s | project / this |",
        "| --- | ---: | ---: |",
        f"| project: train_frame_sae epoch loop (Zarr float16 chunks, shuffle buffer, step) | "
        f"{r['project_frames_per_s']:,.0f} | 1 |",
        f"| reference, dense decoder (zeros + scatter, matmul) | {r['reference_dense_frames_per_s']:,.0f} | "
        f"{r['ratio_project_over_dense']} |",
        f"| reference, sparse decoder (embedding_bag over the k active) | "
        f"{r['reference_sparse_frames_per_s']:,.0f} | **{r['ratio_project_over_sparse']}** |",
        "",
        f"## Clip SAE (batch {args.clip_batch})",
        "",
        "| path | samples/s |",
        "| --- | ---: |",
        f"| project: fit epoch loop | {r['clip_project_samples_per_s']:,.0f} |",
        f"| reference, dense decoder | {r['clip_reference_dense_samples_per_s']:,.0f} |",
        f"| reference, sparse decoder | {r['clip_reference_sparse_samples_per_s']:,.0f} |",
        "",
        f"A project step takes {r['clip_step_ms']} ms, of which the Adam update of the "
        f"{2 * args.width * args.latents + args.latents:,} parameters alone takes {r['adam_update_ms']} ms "
        f"({100 * r['adam_share_of_clip_step']:.0f} %; {'fused' if FUSED else 'unfused'} Adam, the unfused one "
        f"takes {r['adam_unfused_update_ms']} ms). {clip_bound(r, args.clip_batch)}",
        "",
        f"GPU: {r['gpu']}.",
        "",
    ]
    if args.sweep:
        md += [f"## Decoder alone, forward + backward, batch {args.batch_size}", "",
               "| k / n | dense ms | sparse ms | sparse / dense |", "| ---: | ---: | ---: | ---: |"]
        md += [f"| {s['fraction']} | {s['dense_ms']} | {s['sparse_ms']} | {s['sparse_over_dense']} |"
               for s in result["sweep"]]
        md.append("")
    if args.profile:
        for kind, what in (("frame", f"frame SAE, batch {args.batch_size}, {args.budget:,} frames"),
                           ("clip", f"clip SAE, batch {args.clip_batch}, {args.clip_items:,} vectors")):
            md += [f"## Where one epoch's time goes: {what} (torch.profiler, operators' own time; valid pass "
                   "left out)", "", "| part | ms per step | share |", "| --- | ---: | ---: |"]
            md += [f"| {p['part']} | {p['ms_per_step']} | {100 * p['share']:.0f} % |" for p in result["profile"][kind]]
            md.append("")
        md += ["## One epoch of the project's frame path (cProfile, top own time)", "",
               "| function | calls | own s | cumulative s |", "| --- | ---: | ---: | ---: |"]
        md += [f"| `{p['function']}` | {p['calls']} | {p['own_s']} | {p['cumulative_s']} |"
               for p in result["profile"]["frame_top_own_time"][:12]]
        md.append("")
    (args.out / "sae_step.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
