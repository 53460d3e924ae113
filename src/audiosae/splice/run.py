"""One node's splice job: every SAE of (model, layer) put back into the network, and what it still computes.

The model is loaded once. Per batch of test clips the layers before the patched
one run once (`splice_prefix`), then, per patch, only the rest of the network
(`splice_resume`): the clean pass (identity), each SAE's reconstruction, and the
two floors (frame mean, clip mean). Per clip the job keeps what the metrics need,
then measures each representation against the floor of its level and writes
``results/splice/<model>/layer<L>/<rep>.json``.

Metrics (all on the test clips, each with fraction recovered and its interval):
every model: ``last_hidden_cosine`` (mean over frames of the cosine between clean and
patched last hidden state) and ``probe_accuracy:<target>`` (the output-level probe,
`audiosae.splice.data`); CREPE: ``pitch_error_cents`` (median |patched - clean| pitch
on frames the clean output calls voiced), ``pitch_within_50c`` (share of those frames
within 50 cents) and, with the synthetic corpus's true f0, ``raw_pitch_accuracy``
(share of truly voiced frames within 50 cents of the truth); Resemblyzer:
``embedding_cosine`` and ``centroid_accuracy:<target>`` (nearest centroid of the clean
train embeddings, per class of the target's split: speaker identification for the
singer target); a Hugging Face model with a classification head (AST): ``logit_kl``
(KL of the patched from the clean softmax) and ``top1_agreement``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from audiosae.splice import patches as P
from audiosae.splice.data import audio_batches, first_crop_starts, fit_output_probes, splice_clips
from audiosae.splice.measure import measure, median_metric, ratio_metric

# the output metric a claim reads per encoder output (the rest are reported beside it)
PRIMARY = {"pitch_cents": "pitch_within_50c", "embedding": "embedding_cosine", "logits": "top1_agreement"}
PITCH_TOLERANCE_CENTS = 50.0


def primary_metric(output_names) -> str:
    for out, metric in PRIMARY.items():
        if out in output_names:
            return metric
    return "last_hidden_cosine"


def load_sae(spec: dict, width: int, device):
    """Our SAE (spec["dir"] holding sae.safetensors) or an imported one (spec["format"], spec["path"])."""
    if spec.get("format"):
        from audiosae.interop.readers import read_external

        return read_external(spec["format"], spec["path"], width).to(device).eval()
    from audiosae.sae.model import SparseAutoencoder

    sae = SparseAutoencoder.load(Path(spec["dir"]) / "sae.safetensors", device=device)
    if sae.cfg.input_dim != width:
        raise ValueError(f"SAE {spec['dir']} takes {sae.cfg.input_dim}-wide input; layer is {width} wide")
    return sae


def train_clip_mean(store: Path | str, layer: int) -> torch.Tensor:
    from audiosae.store import read_array, read_index

    index = read_index(store)
    values = read_array(store, f"layer{layer}")
    return torch.from_numpy(values[(index["split"] == "train").to_numpy()].astype(np.float64).mean(0)).float()


def train_frame_mean(store: Path | str, layer: int) -> torch.Tensor:
    from audiosae.frames.store import clip_index, layer_array

    arr = layer_array(store, layer)
    total = np.zeros(arr.shape[1], np.float64)
    count = 0
    for r in clip_index(store).itertuples(index=False):
        if r.split == "train" and r.n_frames:
            total += np.asarray(arr[r.first_frame : r.first_frame + r.n_frames], np.float64).sum(0)
            count += int(r.n_frames)
    if not count:
        raise ValueError(f"frame store {store} holds no train frames of layer {layer}")
    return torch.from_numpy(total / count).float()


def _cosine_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1, eps=1e-12)


def _truth_cents(track: np.ndarray, times: np.ndarray, rate: float) -> np.ndarray:
    """True pitch (cents re 10 Hz) at `times` (s from the clip's start), NaN where unvoiced."""
    idx = np.floor(times * rate).astype(int)
    f0 = np.full(len(times), np.nan)
    ok = (idx >= 0) & (idx < len(track))
    f0[ok] = track[idx[ok]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(f0 > 0, 1200 * np.log2(f0 / 10.0), np.nan)


def splice_node(*, model: str, model_cfg: dict, layer: int, weights_dir, manifest, root, embeddings: str,
                frames: str | None, reps: list[dict], targets: list[dict], split_params: dict, audio: dict,
                bootstrap: dict, out_dir, device: str = "auto", dtype: str = "float32", batch_size: int = 16,
                f0_tracks: dict | None = None, f0_rate: float = 100.0, progress: bool = True) -> dict:
    """Splice every rep of `reps` ({rep, level, dir | format+path}) into `model` at `layer`; write one JSON each."""
    from tqdm import tqdm

    from audiosae.data.manifest import read_manifest
    from audiosae.devices import resolve_device
    from audiosae.encoders.registry import compute_dtype, model_facts
    from audiosae.encoders.twin import calibrate_if_needed, is_twin_name
    from audiosae.jsonio import write_json
    from audiosae.layout import Rep

    t0 = time.perf_counter()
    dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
    man = read_manifest(manifest)
    facts = model_facts(model, model_cfg, weights_dir)
    if model_cfg["source"] == "hf":
        from audiosae.encoders.hf import HFEncoder

        enc = HFEncoder(model_cfg, weights_dir, dev, compute_dtype(dtype, dev), name=model, with_head=True)
    else:
        enc = facts.build(dev, compute_dtype(dtype, dev))
    calibrate_if_needed(enc, man, root, audio["crop_seconds"], audio["crop_seed"])
    last = enc.num_hidden_states - 1
    width = int(enc.layer_widths[layer])
    clip_token_only = model_cfg["source"] == "hf" and facts._grid()[0] == "ast"

    clips = splice_clips(man, targets, split_params, audio["crop_seconds"], audio["crop_seed"])
    items = clips.items
    n = len(items)
    probes = fit_output_probes(embeddings, last, man, targets, split_params)

    floors = {"clip": P.clip_mean(train_clip_mean(embeddings, layer))}
    if frames and any(r["level"] == "frame" for r in reps) and not clip_token_only:
        floors["frame"] = P.frame_mean(train_frame_mean(frames, layer))
    skipped = {}
    patches = {"clean": P.identity, "mean:clip": floors["clip"]}
    if "frame" in floors:
        patches["mean:frame"] = floors["frame"]
    for spec in reps:
        if spec["level"] == "frame" and clip_token_only:
            skipped[spec["rep"]] = ("AST's tokens are patches of the spectrogram, not frames: only its clip SAEs "
                                    "are spliced")
            continue
        sae = load_sae(spec, width, dev)
        patches[spec["rep"]] = P.frame_sae(sae) if spec["level"] == "frame" else P.clip_sae(sae)

    # per patch: pooled last hidden state [n, D], last-hidden cosine per clip, and the model's outputs
    pooled = {k: [] for k in patches}
    last_cos = {k: [] for k in patches}
    outs: dict[str, dict[str, list]] = {k: {} for k in patches}
    bar = tqdm(total=n, desc=f"splice {model} layer {layer} ({len(patches)} patches)", unit="clip", file=sys.stderr,
               disable=not progress)
    for rows, batch in audio_batches(items, enc.sample_rate, audio["crop_seconds"], batch_size, root):
        prefix = enc.splice_prefix(batch, layer)
        clean = None
        for name, patch in patches.items():
            res = enc.splice_resume(prefix, patch(prefix.h))
            if name == "clean":
                clean = res
            pooled[name].append(res.last().mean(dim=1).double())
            last_cos[name].append(_cosine_rows(res.last(), clean.last()).mean(dim=1))
            for key, value in res.outputs.items():
                if key in ("salience", "last_hidden_state"):
                    continue  # kept through pooled / last_cos
                outs[name].setdefault(key, []).append(value.double())
        bar.update(len(rows))
    bar.close()
    pooled = {k: torch.cat(v).numpy() for k, v in pooled.items()}
    last_cos = {k: torch.cat(v).numpy() for k, v in last_cos.items()}
    outs = {k: {o: torch.cat(v) for o, v in d.items()} for k, d in outs.items()}
    out_names = set(outs["clean"])

    # Resemblyzer: clean embeddings of train clips for the centroids (one more clean pass)
    centroids = {}
    if "embedding" in out_names:
        centroids = _train_centroids(enc, man, targets, split_params, audio, batch_size, root)

    # CREPE: frame times of each crop and, on the synthetic corpus, the true pitch
    truth = None
    if "pitch_cents" in out_names and f0_tracks:
        n_frames = outs["clean"]["pitch_cents"].shape[1]
        times = facts.frame_times(n_frames)
        truth = np.stack([_truth_cents(f0_tracks[cid], start + times, f0_rate) if cid in f0_tracks
                          else np.full(n_frames, np.nan) for cid, start in zip(items["clip_id"], items["start_s"])])

    results = {}
    primary = primary_metric(out_names)
    for spec in reps:
        rep = spec["rep"]
        if rep in skipped:
            results[rep] = {"metrics": [], "skipped": skipped[rep]}
            continue
        floor = f"mean:{spec['level']}"
        conds = {"clean": "clean", "sae": rep, "mean": floor}
        metrics = _metrics(conds, pooled, last_cos, outs, probes, clips, centroids, truth)
        measured = [measure(m, bootstrap["resamples"], bootstrap["ci"], bootstrap["seed"]) for m in metrics]
        results[rep] = {"metrics": [r.__dict__ for r in measured]}
        if "pitch_cents" in out_names:
            results[rep]["pitch_track"] = _pitch_track(outs, conds, items, facts, truth)

    wall = time.perf_counter() - t0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for spec in reps:
        rep = Rep.parse(spec["rep"])
        doc = {"model": model, "twin": bool(is_twin_name(model)), "layer": int(layer), "rep": str(rep),
               "level": spec["level"], "sparsity": None if rep.sparsity is None else float(rep.sparsity),
               "seed": rep.seed, "n_clips": int(n), "primary_metric": primary,
               "patches_per_batch": len(patches), "node_wall_s": round(wall, 2), **results[str(rep)]}
        path = out_dir / f"{rep}.json"
        write_json(path, doc)
        written[str(rep)] = str(path)
    return {"written": written, "wall_s": wall, "n_clips": n, "patches": list(patches)}


def _metrics(conds, pooled, last_cos, outs, probes, clips, centroids, truth) -> list:
    n = len(clips.items)
    ms = [ratio_metric("last_hidden_cosine", {c: last_cos[k] for c, k in conds.items()},
                       description="mean over frames of cos(clean, patched) of the last hidden state")]
    for target, probe in probes.items():
        y = probe.labels(clips.items[target])
        correct = {c: (probe.predict(pooled[k]) == y).astype(float) for c, k in conds.items()}
        ms.append(ratio_metric(f"probe_accuracy:{target}", correct, domain=clips.test_mask(target) & (y >= 0),
                               description=f"output-level probe of {target} on the pooled last hidden state"))
    o = {c: outs[k] for c, k in conds.items()}
    if "pitch_cents" in outs["clean"]:
        cents = {c: o[c]["pitch_cents"].numpy() for c in conds}
        voiced = o["clean"]["periodicity"].numpy() >= _voiced_threshold()
        clip_of, frame = np.nonzero(voiced)
        err = {c: np.abs(cents[c][clip_of, frame] - cents["clean"][clip_of, frame]) for c in conds}
        ms.append(median_metric("pitch_error_cents", clip_of, err, n, unit="cents",
                                description="median |patched − clean| pitch on frames the clean output calls voiced"))
        within = {c: (np.abs(cents[c] - cents["clean"]) <= PITCH_TOLERANCE_CENTS) & voiced for c in conds}
        ms.append(ratio_metric("pitch_within_50c", {c: within[c].sum(1) for c in conds},
                               {c: voiced.sum(1) for c in conds}, domain=voiced.sum(1) > 0,
                               description="share of clean-voiced frames whose patched pitch is within 50 cents"))
        if truth is not None:
            has = np.isfinite(truth)
            hit = {c: ((np.abs(cents[c] - np.where(has, truth, 0)) <= PITCH_TOLERANCE_CENTS) & has).sum(1)
                   for c in conds}
            ms.append(ratio_metric("raw_pitch_accuracy", hit, {c: has.sum(1) for c in conds},
                                   domain=has.sum(1) > 0,
                                   description="share of truly voiced frames within 50 cents of the true f0"))
    if "embedding" in outs["clean"]:
        emb = {c: o[c]["embedding"] for c in conds}
        ms.append(ratio_metric("embedding_cosine", {c: _cosine_rows(emb[c], emb["clean"]).numpy() for c in conds},
                               description="cosine between the clean and the patched speaker embedding"))
        for target, (classes, cents_) in centroids.items():
            lookup = {v: i for i, v in enumerate(classes)}
            y = np.array([lookup.get(str(v), -1) for v in clips.items[target]])
            correct = {}
            for c in conds:
                e = torch.nn.functional.normalize(emb[c], dim=1).numpy()
                correct[c] = ((e @ cents_.T).argmax(1) == y).astype(float)
            ms.append(ratio_metric(f"centroid_accuracy:{target}", correct, domain=clips.test_mask(target) & (y >= 0),
                                   description=f"nearest centroid of clean train embeddings per {target}"))
    if "logits" in outs["clean"]:
        logp = {c: torch.log_softmax(o[c]["logits"], dim=1) for c in conds}
        kl = {c: (logp["clean"].exp() * (logp["clean"] - logp[c])).sum(1).numpy() for c in conds}
        ms.append(ratio_metric("logit_kl", kl, higher_is_better=False, unit="nats",
                               description="KL(clean ‖ patched) of the softmax over the head's classes"))
        top = {c: (o[c]["logits"].argmax(1) == o["clean"]["logits"].argmax(1)).numpy().astype(float) for c in conds}
        ms.append(ratio_metric("top1_agreement", top, description="patched top-1 class equals the clean one"))
    return ms


def _voiced_threshold() -> float:
    from audiosae.encoders.crepe import VOICED_PERIODICITY

    return VOICED_PERIODICITY


def _pitch_track(outs, conds, items, facts, truth) -> dict:
    """The first test clip's pitch per frame under each condition (the report's pitch figure)."""
    i = 0
    n_frames = outs["clean"]["pitch_cents"].shape[1]
    voiced = outs["clean"]["periodicity"][i].numpy() >= _voiced_threshold()
    track = {c: [round(float(v), 2) for v in outs[k]["pitch_cents"][i].numpy()] for c, k in conds.items()}
    return {"clip_id": str(items["clip_id"].iloc[i]), "times_s": [round(float(t), 4) for t in facts.frame_times(n_frames)],
            "voiced": voiced.tolist(), **track,
            "truth": None if truth is None else [None if not np.isfinite(v) else round(float(v), 2) for v in truth[i]]}


def _train_centroids(enc, man, targets, split_params, audio, batch_size, root) -> dict:
    """{target: (classes, [C, 256] unit centroids of the clean embeddings of the target's train clips)}."""
    from audiosae.data.corpus import target_splits
    from audiosae.encoders.splice import clean

    m = man.reset_index(drop=True)
    splits = {t["label"]: target_splits(m.assign(**{t["label"]: m[t["label"]].astype(str)}), t, split_params)
              .astype(str).to_numpy() for t in targets}
    train_any = np.any([s == "train" for s in splits.values()], axis=0)
    rows = m[train_any].copy()
    rows["start_s"] = first_crop_starts(rows, audio["crop_seconds"], audio["crop_seed"])
    embs = []
    for _, batch in audio_batches(rows, enc.sample_rate, audio["crop_seconds"], batch_size, root):
        embs.append(clean(enc, batch, enc.num_hidden_states - 1).outputs["embedding"])
    e = torch.nn.functional.normalize(torch.cat(embs).double(), dim=1).numpy()
    out = {}
    for t in targets:
        label = t["label"]
        is_train = splits[label][train_any] == "train"
        values = rows[label].astype(str).to_numpy()
        classes = sorted(set(values[is_train]))
        cents = np.stack([e[is_train & (values == c)].mean(0) for c in classes])
        out[label] = (classes, cents / np.linalg.norm(cents, axis=1, keepdims=True).clip(1e-12))
    return out
