"""Frame level at scale: store size and write speed, frame-SAE throughput, and memory flat in corpus size.

Three measurements, each in its own subprocess so that peak memory (ru_maxrss of
that process) belongs to one job:

- store: ``extract_frames`` on a corpus of synthetic sung tones (WAVs written
  here) with Resemblyzer (100 frames/s, hidden states 1-3, 256 wide; its weights
  ship on PyPI): frames/s, audio seconds per second, the store's bytes per hour
  of audio per layer (compressed, as written) against float16 uncompressed, and
  the write speed of the store alone (the same frames written again, no model);
- train: a frame SAE (768-wide frames, 2048 latents, k = 102, the paper's
  sparsity 0.95; batch 4096; the package's `train_frame_sae` with its streaming
  loader) on a synthetic frame store, frames/s of training (steps only);
- memory: the same training on N and on 4N frames (same frame budget, same
  shuffle buffer): peak RSS of each process, and their ratio (must stay within
  15 %: memory does not grow with the corpus).

    python benchmarks/frames.py            # writes results/benchmarks/frames.{json,md}

GPU numbers: this script takes ``--device cuda``; it was not run on a GPU here.
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

REPO = Path(__file__).resolve().parents[1]


def synthetic_frame_store(path: Path, n_clips: int, frames_per_clip: int, width: int, seed: int,
                          chunk: int = 4096) -> None:
    """A frame store of structured random frames (a sparse dictionary plus noise), float16, with its index."""
    import zarr

    from audiosae.frames.store import Appender

    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((4 * width, width)).astype(np.float32) / np.sqrt(width)
    root = zarr.open_group(str(path), mode="w")
    app = Appender(root, {"layer0": (width, "float16"), "time_s": (None, "float64")}, chunk)
    for _ in range(n_clips):
        idx = rng.integers(0, len(atoms), size=(frames_per_clip, 16))
        coef = rng.exponential(1.0, size=(frames_per_clip, 16, 1)).astype(np.float32)
        x = (atoms[idx] * coef).sum(1) + 0.05 * rng.standard_normal((frames_per_clip, width)).astype(np.float32)
        app.add({"layer0": x.astype(np.float16), "time_s": np.arange(frames_per_clip) * 0.02})
    app.close()
    splits = np.array(["train", "train", "train", "train", "train", "train", "train", "valid", "test", "test"])
    split = splits[np.arange(n_clips) % len(splits)]
    first = np.arange(n_clips, dtype=np.int64) * frames_per_clip
    ids = np.array([f"clip{i:05d}" for i in range(n_clips)], dtype=object)
    for name, values in (("clip_id", ids), ("split", split.astype(object)), ("item_clip_id", ids),
                         ("item_split", split.astype(object))):
        root.create_array(name, shape=(n_clips,), dtype=str)
        root[name][:] = values
    crop = min(frames_per_clip, 250)
    for name, values in (("first_frame", first), ("n_frames", np.full(n_clips, frames_per_clip, np.int64)),
                         ("duration_s", np.full(n_clips, frames_per_clip * 0.02)),
                         ("item_crop", np.zeros(n_clips, np.int32)), ("item_start_s", np.zeros(n_clips)),
                         ("item_first_frame", first), ("item_n_frames", np.full(n_clips, crop, np.int64))):
        root.create_array(name, data=values)
    root.attrs.update({"frame_rate": 50.0, "crop_seconds": crop * 0.02, "layers": [0], "complete": True})


# ---------------------------------------------------------------- child jobs


def child_train(args) -> dict:
    import torch

    from audiosae.frames.train import FrameSAEPaths, train_frame_sae

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    store = work / f"frames_{args.n}.zarr"  # written by a `makestore` child: its memory is not this job's
    out = FrameSAEPaths.in_dir(work / f"fsae_{args.n}")
    metrics = train_frame_sae(store, model="bench", layer=0, sparsity=0.95, outputs=out, dim=args.dim,
                              batch_size=args.batch_size, epochs=1, max_frames=args.budget,
                              shuffle_buffer=args.buffer, seed=42, device=args.device, progress=False)
    import resource

    return {"n_frames": args.n, "frames_trained": metrics["frames_trained"], "train_time_s": metrics["train_time_s"],
            "frames_per_s": metrics["frames_per_s"], "wall_time_s": metrics["wall_time_s"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "test_fvu": metrics["splits"]["test"]["fvu"], "n_latents": metrics["n_latents"], "k": metrics["k"],
            "store_bytes": sum(p.stat().st_size for p in store.rglob("*") if p.is_file())}


def write_wavs(root: Path, n_clips: int, seconds: float) -> Path:
    """Sung-tone WAVs (harmonics with vibrato, noise) at 16 kHz and a manifest in the data stage's format."""
    import pandas as pd
    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = []
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n_clips):
        f0 = rng.uniform(110, 440) * 2 ** (0.5 / 12 * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        wave = sum(0.2 / k * np.sin(k * phase) for k in range(1, 8)) + 0.01 * rng.standard_normal(t.size)
        rel = Path(f"wav/clip{i:03d}.wav")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, wave.astype(np.float32), sr)
        rows.append({"clip_id": f"clip{i:03d}", "path": str(rel), "group": f"s{i % 4}", "singer": f"s{i % 4}", "technique": "straight",
                     "split": ["train", "train", "valid", "test"][i % 4], "duration_s": seconds, "sample_rate": sr})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def child_store(args) -> dict:
    import torch
    import zarr

    from audiosae.frames.extract import extract_frames
    from audiosae.frames.store import Appender

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    manifest = write_wavs(work, args.clips, args.seconds)
    layers = [1, 2, 3]
    out = work / "resemblyzer.zarr"
    attrs = extract_frames(manifest, out, {"source": "resemblyzer", "layers": layers}, name="resemblyzer",
                           layers=layers, crop_seconds=5.0, train_crops=1, crop_seed=0, window_seconds=10.0,
                           device=args.device, root=work, progress=False)
    hours = args.clips * args.seconds / 3600
    per_layer = {}
    for layer in layers:
        d = out / f"layer{layer}"
        per_layer[layer] = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    # The store alone: the same frames written again into a new store, no model, no audio.
    root = zarr.open_group(str(out), mode="r")
    frames = {f"layer{l}": np.asarray(root[f"layer{l}"][:]) for l in layers}
    n = len(frames["layer1"])
    again = work / "rewrite.zarr"
    t0 = time.perf_counter()
    group = zarr.open_group(str(again), mode="w")
    app = Appender(group, {k: (v.shape[1], "float16") for k, v in frames.items()}, 4096)
    for start in range(0, n, 1000):  # a clip's worth at a time, as extraction adds them
        app.add({k: v[start:start + 1000] for k, v in frames.items()})
    app.close()
    write_s = time.perf_counter() - t0
    written = sum(p.stat().st_size for p in again.rglob("*") if p.is_file())
    uncompressed_layer = 100 * 3600 * 256 * 2
    return {
        "model": "resemblyzer (hidden states 1-3, 256 wide, 100 frames/s)", "clips": args.clips,
        "audio_hours": hours, "n_frames": attrs["n_frames"], "extraction_time_s": attrs["extraction_time_s"],
        "model_time_s": attrs["model_time_s"], "frames_per_s": attrs["frames_per_s"],
        "audio_s_per_s": attrs["audio_s_per_s"], "store_bytes": attrs["store_bytes"],
        "bytes_per_hour_per_layer": {str(l): int(b / hours) for l, b in per_layer.items()},
        "uncompressed_float16_bytes_per_hour_per_layer": uncompressed_layer,
        "store_write_s": round(write_s, 3), "store_write_frames_per_s": round(n / write_s, 1),
        "store_write_mb_per_s": round(written / 1e6 / write_s, 1),
        "store_write_uncompressed_mb_per_s": round(sum(v.nbytes for v in frames.values()) / 1e6 / write_s, 1),
    }


# ---------------------------------------------------------------- parent


def run_child(kind: str, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", choices=["train", "store", "makestore"])
    ap.add_argument("--work")
    ap.add_argument("--n", type=int, default=50_000, help="N: frames of the smaller store (the larger has 4N)")
    ap.add_argument("--clip-frames", type=int, default=500)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--dim", default="2048")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--budget", type=int, default=None, help="frames trained (default: N / 2)")
    ap.add_argument("--buffer", type=int, default=16384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=REPO / "results/benchmarks")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run at toy sizes (what the tests run)")
    if "--tiny" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(n=2000, clip_frames=100, width=32, dim="64", batch_size=256, buffer=512, clips=2,
                        seconds=2.0)
    args = ap.parse_args(argv)
    if args.dim.isdigit():
        args.dim = int(args.dim)
    if args.child == "makestore":
        synthetic_frame_store(Path(args.work) / f"frames_{args.n}.zarr", args.n // args.clip_frames,
                              args.clip_frames, args.width, seed=1)
        print(json.dumps({}))
        return 0
    if args.child:
        result = child_train(args) if args.child == "train" else child_store(args)
        print(json.dumps(result))
        return 0

    budget = args.budget or args.n // 2  # both stores reach it (70 % of frames are train frames)
    work = Path(tempfile.mkdtemp(prefix="audiosae-bench-frames-"))
    try:
        common = ["--work", str(work), "--clip-frames", str(args.clip_frames), "--width", str(args.width),
                  "--dim", str(args.dim), "--batch-size", str(args.batch_size), "--budget", str(budget),
                  "--buffer", str(args.buffer), "--threads", str(args.threads), "--device", args.device]
        print(f"store: {args.clips} clips x {args.seconds:g} s through Resemblyzer ...", file=sys.stderr)
        store = run_child("store", ["--work", str(work / "store"), "--clips", str(args.clips), "--seconds",
                                    str(args.seconds), "--threads", str(args.threads), "--device", args.device])
        print(f"train: N = {args.n} frames ...", file=sys.stderr)
        run_child("makestore", [*common, "--n", str(args.n)])
        small = run_child("train", [*common, "--n", str(args.n)])
        print(f"train: 4N = {4 * args.n} frames ...", file=sys.stderr)
        run_child("makestore", [*common, "--n", str(4 * args.n)])
        large = run_child("train", [*common, "--n", str(4 * args.n)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    result = {
        "store": store, "train_N": small, "train_4N": large,
        "peak_rss_ratio_4N_over_N": round(ratio, 3), "flat_within_15_percent": bool(ratio <= 1.15),
        "settings": {"width": args.width, "dim": args.dim, "sparsity": 0.95, "batch_size": args.batch_size,
                     "shuffle_buffer": args.buffer, "frame_budget": budget, "threads": args.threads,
                     "device": args.device},
        "machine": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "gpu": "not measured: no GPU in this session (run with --device cuda on a GPU machine)",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "frames.json").write_text(json.dumps(result, indent=2) + "\n")
    mb = 1e6
    s = store
    md = [
        "# Frame level: store, throughput, memory",
        "",
        f"Machine: {result['machine']}, {result['cpu_count']} CPUs, {args.threads} torch threads, device "
        f"{args.device}. GPU: not measured (no GPU in this session).",
        "",
        "## Frame store (extract_frames)",
        "",
        f"{s['model']}; {s['clips']} clips x {args.seconds:g} s = {s['audio_hours'] * 60:.1f} min of audio, "
        f"{s['n_frames']:,} frames.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| extraction (model + audio + store) | {s['frames_per_s']:,.0f} frames/s, {s['audio_s_per_s']:.1f} audio-s/s |",
        f"| store size per hour of audio per layer (zstd, as written) | "
        f"{np.mean(list(s['bytes_per_hour_per_layer'].values())) / mb:.0f} MB |",
        f"| same, float16 uncompressed (100 frames/s x 256) | {s['uncompressed_float16_bytes_per_hour_per_layer'] / mb:.0f} MB |",
        f"| store write alone | {s['store_write_frames_per_s']:,.0f} frames/s, {s['store_write_mb_per_s']} MB/s on disk "
        f"({s['store_write_uncompressed_mb_per_s']} MB/s of float16) |",
        "",
        "A 768-wide model at 50 frames/s (WavLM, HuBERT) stores 50 x 3600 x 768 x 2 B = 276 MB per hour per layer "
        "before compression; VocalSet's 8.8 hours are 1.6 million frames, 2.4 GB per layer.",
        "",
        "## Frame SAE training (train_frame_sae, streaming loader)",
        "",
        f"{args.width}-wide frames, {small['n_latents']} latents, k = {small['k']}, batch {args.batch_size}, "
        f"shuffle buffer {args.buffer:,} frames, one pass of {budget:,} frames.",
        "",
        "| store | frames trained | training frames/s | wall (incl. the full evaluation pass) | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| N = {small['n_frames']:,} frames | {small['frames_trained']:,} | {small['frames_per_s']:,.0f} | "
        f"{small['wall_time_s']:.1f} s | {small['peak_rss_mb']:.0f} MB |",
        f"| 4N = {large['n_frames']:,} frames | {large['frames_trained']:,} | {large['frames_per_s']:,.0f} | "
        f"{large['wall_time_s']:.1f} s | {large['peak_rss_mb']:.0f} MB |",
        "",
        f"Peak memory 4N / N: **{ratio:.3f}** ({'flat, within 15 %' if ratio <= 1.15 else 'NOT flat'}).",
        "",
    ]
    (args.out / "frames.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
