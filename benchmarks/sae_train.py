"""Wall time of training SAEs on cached vectors against re-running the encoder every epoch.

One CREPE (tiny) layer on a small synthetic singing corpus (the data stage's
synthesiser, kept in memory). Both ways train the same S SAEs (one per
sparsity) for the same E epochs on the same number of train vectors per epoch,
each epoch followed by a valid-MSE pass, with the package's own SAE and step:

- ours: extract once (one random crop per train clip, the valid crops from the
  start), then E x S SAE epochs on the cached vectors;
- the paper's: for every SAE and every epoch, a fresh random crop of every train
  clip and the valid crops go through CREPE again before the SAE sees them.

Reported: both wall times, their ratio, the one-off extraction time, and SAE
training samples/s on cached vectors (training steps only, then with the valid
passes). CPU threads are fixed (default 1, what rule train_sae uses).

    python benchmarks/sae_train.py          # writes results/benchmarks/sae_train.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from audiosae.data.audio import resample
from audiosae.encoders.crepe import CrepeEncoder
from audiosae.sae.model import SparseAutoencoder
from audiosae.sae.train import make_config, mean_mse, prepare, train_step


def synth_corpus(n_singers: int, seed: int) -> list[np.ndarray]:
    """One clip per (singer, technique) at 16 kHz, from the data stage's synthesiser."""
    from audiosae.data import synthetic as S
    from audiosae.data.vocalset import TECHNIQUES

    singers = [f"{'female' if i % 2 == 0 else 'male'}{i // 2 + 1}" for i in range(n_singers)]
    waves = []
    for si, name in enumerate(singers):
        singer = S.make_singer(name, seed)
        for technique in TECHNIQUES:
            rng = np.random.default_rng([seed, si, TECHNIQUES.index(technique)])
            context, vowel = S.clip_plan(name, technique, 0)
            wave, _ = S.synthesize_clip(singer, technique, context, vowel, rng.uniform(2.5, 4.0), rng)
            waves.append(resample(wave, S.SR, 16000))
    return waves


def random_crops(waves: list[np.ndarray], n: int, rng: np.random.Generator | None) -> np.ndarray:
    """One crop of `n` samples per clip: random start (rng given) or from the start; zero-padded."""
    out = np.zeros((len(waves), n), dtype=np.float32)
    for i, w in enumerate(waves):
        start = int(rng.integers(0, max(1, len(w) - n + 1))) if rng is not None else 0
        piece = w[start:start + n]
        out[i, :len(piece)] = piece
    return out


def embed(encoder: CrepeEncoder, crops: np.ndarray, layer: int, batch: int) -> torch.Tensor:
    parts = [encoder.hidden_states(torch.from_numpy(crops[i:i + batch]))[layer] for i in range(0, len(crops), batch)]
    return torch.cat(parts)


def new_sae(input_dim: int, sparsity: float, dim: str, seed: int, stats_from: torch.Tensor):
    cfg = make_config(input_dim, sparsity, dim=dim)
    sae = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(seed))
    prepare(sae, stats_from)
    return sae, torch.optim.Adam(sae.parameters(), lr=1e-3)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--singers", type=int, default=6, help="clips = singers x 10 techniques (default 60)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.75, 0.9])
    ap.add_argument("--layer", type=int, default=5, help="CREPE hidden state (5 = conv block 6, 64 wide)")
    ap.add_argument("--dim", default="x4")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop-seconds", type=float, default=2.0)
    ap.add_argument("--hop-ms", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run at toy sizes (what the tests run)")
    if "--tiny" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(singers=1, epochs=1, sparsities=[0.9], crop_seconds=0.5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    waves = synth_corpus(args.singers, args.seed)
    synth_s = time.perf_counter() - t0
    order = np.random.default_rng(args.seed).permutation(len(waves))
    n_valid = max(1, len(waves) // 5)
    valid_w = [waves[i] for i in order[:n_valid]]
    train_w = [waves[i] for i in order[n_valid:]]
    n_samples = int(round(args.crop_seconds * 16000))
    encoder = CrepeEncoder("tiny", hop_ms=args.hop_ms)
    embed(encoder, random_crops(train_w[:2], n_samples, None), args.layer, 2)  # warm-up
    for s in args.sparsities:  # warm-up of the SAE path (first Adam step imports a lot)
        sae, opt = new_sae(encoder.layer_widths[args.layer], s, args.dim, 0, torch.randn(8, encoder.layer_widths[args.layer]))
        train_step(sae, opt, torch.randn(4, encoder.layer_widths[args.layer]))
    E, S, B, L = args.epochs, len(args.sparsities), args.batch_size, args.layer

    # ---- ours: extract once, train on cached vectors
    t0 = time.perf_counter()
    train_x = embed(encoder, random_crops(train_w, n_samples, np.random.default_rng(args.seed)), L, B)
    valid_x = embed(encoder, random_crops(valid_w, n_samples, None), L, B)
    extract_s = time.perf_counter() - t0
    step_s = 0.0
    t1 = time.perf_counter()
    for si, s in enumerate(args.sparsities):
        sae, opt = new_sae(train_x.shape[1], s, args.dim, args.seed + si, train_x)
        gen = torch.Generator().manual_seed(args.seed + si)
        for _ in range(E):
            ts = time.perf_counter()
            perm = torch.randperm(len(train_x), generator=gen)
            for i in range(0, len(train_x), B):
                train_step(sae, opt, train_x[perm[i:i + B]])
            step_s += time.perf_counter() - ts
            mean_mse(sae, valid_x)
    sae_s = time.perf_counter() - t1
    ours_s = extract_s + sae_s

    # ---- the paper's: the encoder runs again for every epoch of every SAE
    t0 = time.perf_counter()
    paper_encoder_s = 0.0
    for si, s in enumerate(args.sparsities):
        crop_rng = np.random.default_rng(args.seed + 100 + si)
        sae = opt = None
        gen = torch.Generator().manual_seed(args.seed + si)
        for _ in range(E):
            perm = torch.randperm(len(train_w), generator=gen).numpy()
            for i in range(0, len(train_w), B):
                te = time.perf_counter()
                xb = embed(encoder, random_crops([train_w[j] for j in perm[i:i + B]], n_samples, crop_rng), L, B)
                paper_encoder_s += time.perf_counter() - te
                if sae is None:  # their statistics come from the first batch; the step cost is the same
                    sae, opt = new_sae(xb.shape[1], s, args.dim, args.seed + si, xb)
                train_step(sae, opt, xb)
            te = time.perf_counter()
            vx = embed(encoder, random_crops(valid_w, n_samples, None), L, B)
            paper_encoder_s += time.perf_counter() - te
            mean_mse(sae, vx)
    paper_s = time.perf_counter() - t0

    samples = E * S * len(train_w)
    result = {
        "benchmark": "sae_train",
        "encoder": f"CREPE tiny, hidden state {L} ({encoder.layer_widths[L]} wide), hop {args.hop_ms:g} ms",
        "corpus": f"synthetic, {len(waves)} clips ({len(train_w)} train, {len(valid_w)} valid), "
                  f"{args.crop_seconds:g} s crops at 16 kHz (synthesised in {synth_s:.1f} s, not timed)",
        "epochs": E, "saes": S, "sparsities": args.sparsities, "dim": args.dim, "batch_size": B,
        "n_latents": make_config(encoder.layer_widths[L], args.sparsities[0], dim=args.dim).n_latents,
        "threads": args.threads, "device": "cpu",
        "ours_wall_s": round(ours_s, 3), "ours_extract_s": round(extract_s, 3), "ours_sae_s": round(sae_s, 3),
        "paper_wall_s": round(paper_s, 3), "paper_encoder_s": round(paper_encoder_s, 3),
        "ratio_paper_over_ours": round(paper_s / ours_s, 2),
        "sae_train_samples": samples,
        "sae_train_samples_per_s": round(samples / step_s, 1),
        "sae_samples_per_s_with_valid": round(samples / sae_s, 1),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "gpu": "not measured (no GPU in this session)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sae_train.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# SAE training: cached vectors vs re-running the encoder",
        "",
        f"{result['encoder']}; {result['corpus']}.",
        f"{S} SAEs (sparsities {', '.join(map(str, args.sparsities))}; {result['n_latents']} latents) x {E} epochs, "
        f"batch {B}, {args.threads} CPU thread(s).",
        "",
        "| way | wall time (s) | of which encoder (s) |",
        "| --- | ---: | ---: |",
        f"| ours: extract once, train on cached vectors | {ours_s:.2f} | {extract_s:.2f} |",
        f"| paper: encoder re-run every epoch of every SAE | {paper_s:.2f} | {paper_encoder_s:.2f} |",
        "",
        f"Ratio paper / ours: **{result['ratio_paper_over_ours']}x**. SAE training on cached vectors: "
        f"{result['sae_train_samples_per_s']} samples/s (steps only), "
        f"{result['sae_samples_per_s_with_valid']} samples/s with the per-epoch valid pass.",
        "",
        "The ratio grows with epochs (the paper: 100) and SAEs (6 sparsities): the paper's encoder cost is paid "
        "E x S times, ours once. GPU: not measured in this run.",
        "",
    ]
    (args.out / "sae_train.md").write_text("\n".join(md))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
