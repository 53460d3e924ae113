"""Write a model's frame store: the analysed layers for every frame of every clip's whole audio.

Each clip is read whole at the model's rate and cut into windows of at most
``window_seconds`` (and at most the model's own longest input, e.g. AST's
10.24 s): n windows of equal length, a whole number of hops each, so the frame
grid runs on across windows. A window's frames are the model's own output for
exactly that audio: windows are batched only with windows of the same length
(no padding, which would change a waveform model's normalisation and attention),
and the count is checked against the encoder's `num_frames`.

Before anything is written, the store's size is estimated from the manifest's
durations and the model's frame rate, logged, and checked against the free
space of the disk; a store that would not fit stops the job with an error that
names it. The store is written into a temporary sibling and renamed into
place when complete (`audiosae.atomic.atomic_output`).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm import tqdm

from audiosae.atomic import atomic_output
from audiosae.data.audio import load_audio
from audiosae.encoders.base import FRAME
from audiosae.encoders.registry import Encoder, build_encoder, model_facts, resolve_layers
from audiosae.encoders.twin import calibrate_if_needed
from audiosae.errors import FrameError
from audiosae.extract import ExtractionError, package_versions, plan_items, read_manifest
from audiosae.frames.store import DTYPES, Appender, check_disk, crop_frames, estimate_size, human_bytes


def windows(n_samples: int, max_window: int, hop: int) -> list[tuple[int, int]]:
    """(start, length) of the windows covering [0, n_samples): equal lengths, whole hops, each <= max_window."""
    if n_samples <= max_window:
        return [(0, n_samples)]
    n = math.ceil(n_samples / max_window)
    length = min(max_window, math.ceil(math.ceil(n_samples / n) / hop) * hop)
    n = math.ceil(n_samples / length)
    return [(k * length, min(length, n_samples - k * length)) for k in range(n)]


def kept_frames(facts, length: int, last: bool) -> int:
    """Frames kept from a window of `length` samples: all for the clip's last window, else those centred inside it.

    A centred model (CREPE, Resemblyzer) also gives a frame at the window's end;
    the next window's first frame is that same instant, so it is kept there.
    """
    n = facts.num_frames(length)
    if last or n == 0:
        return n
    return int(np.searchsorted(facts.frame_times(n), length / facts.sample_rate(), side="left"))


def clip_frames(facts, n_samples: int, max_window: int) -> int:
    """Frames a clip of `n_samples` gets in the store (the sum over its windows)."""
    wins = windows(n_samples, max_window, facts.hop_samples())
    return sum(kept_frames(facts, n, k == len(wins) - 1) for k, (_, n) in enumerate(wins))


def window_samples(facts, window_seconds: float) -> int:
    """Longest window in samples: window_seconds at the model's rate, whole hops, within the model's limit."""
    hop = facts.hop_samples()
    w = int(window_seconds * facts.sample_rate()) // hop * hop
    limit = facts.max_window_samples()
    if limit is not None:
        w = min(w, limit // hop * hop)
    if w < hop:
        raise FrameError(f"model '{facts.name}': frames.window_seconds {window_seconds} is shorter than one hop "
                         f"({hop} samples at {facts.sample_rate()} Hz)")
    return w


def extract_frames(manifest: str | Path, out: str | Path, model_cfg: dict, *, name: str, layers,
                   weights_dir: str | Path | None = None, crop_seconds: float, train_crops: int, crop_seed: int,
                   window_seconds: float = 10.0, store_dtype: str = "float16", chunk_frames: int = 4096,
                   batch_size: int = 8, device: str | torch.device = "auto", dtype: str = "float32",
                   threads: int | None = None, root: str | Path = ".", progress: bool = True,
                   encoder: Encoder | None = None, free_bytes: int | None = None) -> dict:
    """Write results/frames/<name>.zarr for the hidden states `layers` of one model; returns its attrs."""
    from audiosae.devices import resolve_device

    out = Path(out)
    root = Path(root)
    if store_dtype not in DTYPES:
        raise ValueError(f"frames.dtype must be one of {', '.join(DTYPES)}, not {store_dtype!r}")
    if threads:
        torch.set_num_threads(int(threads))
    table = read_manifest(manifest)

    # Everything the frame grid needs is known before the model loads: fail early, write nothing.
    facts = model_facts(name, model_cfg, weights_dir)
    depth = facts.depth()
    if depth is None:
        raise FrameError(f"model '{name}': its depth is unknown (no snapshot at {weights_dir}); run download_model")
    layers = resolve_layers(name, layers, depth)
    resolution = facts.layer_resolution()
    clip_level = [l for l in layers if resolution[l] != FRAME]
    if clip_level:
        raise FrameError(f"model '{name}': hidden state(s) {clip_level} give one vector per input, not per frame; "
                         f"frame-level SAEs cannot use them (remove them from models.{name}.layers or 'frame' "
                         f"from sae.levels)")
    rate, hop, sr = facts.frame_rate(), facts.hop_samples(), facts.sample_rate()
    max_window = window_samples(facts, window_seconds)
    widths = facts.layer_widths()
    planned = [clip_frames(facts, int(round(d * sr)), max_window) for d in table["duration_s"]]
    est = estimate_size(table["duration_s"], planned, [widths[l] for l in layers], store_dtype)
    print(f"extract_frames: model {name}, layers {layers}, {rate:g} frames/s; store {out}: {est.describe()}",
          file=sys.stderr)
    free = check_disk(out, est, free_bytes)
    print(f"extract_frames: {human_bytes(free)} free on the disk of {out.parent}", file=sys.stderr)

    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    t0 = time.perf_counter()
    enc = encoder or build_encoder(model_cfg, None if weights_dir is None else str(weights_dir), device,
                                   dtype=dtype, name=name)
    calibrate_if_needed(enc, table, root, crop_seconds, crop_seed)  # a CREPE twin's batch-norm statistics
    load_s = time.perf_counter() - t0
    if enc.num_hidden_states != depth or [enc.layer_widths[l] for l in layers] != [widths[l] for l in layers]:
        raise FrameError(f"model '{name}': the loaded model has widths {enc.layer_widths}, its facts say {widths}")
    used_dtype = str(getattr(enc, "dtype", torch.float32)).replace("torch.", "")
    items = plan_items(table, crop_seconds, train_crops, crop_seed)

    attrs = {
        "model": name, "source": model_cfg["source"], **enc.describe(),
        "sample_rate": int(sr), "frame_rate": float(rate), "hop_samples": int(hop),
        "first_frame_s": float(facts.first_frame_s()), "layers": [int(l) for l in layers],
        "layer_widths": {str(l): int(widths[l]) for l in layers}, "window_seconds": float(window_seconds),
        "window_samples": int(max_window), "dtype": store_dtype, "chunk_frames": int(chunk_frames),
        "crop_seconds": float(crop_seconds), "train_crops": int(train_crops), "crop_seed": int(crop_seed),
        "estimated_frames": est.n_frames, "estimated_bytes": est.bytes,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "compute_dtype": used_dtype, "batch_size": int(batch_size), "threads": int(torch.get_num_threads()),
        "packages": package_versions(),
        "model_config": {k: v for k, v in model_cfg.items() if k not in ("layers", "batch_size")},
        "frame_definition": "frame i of a window starting at sample s is centred at (s + first_frame_s * sr + "
                            "i * hop) / sr seconds; a crop's frames are those centred inside [start, start + crop)",
    }
    clip_first, clip_count = [], []
    item_first, item_count = [], []
    t1 = time.perf_counter()
    model_s = 0.0
    with atomic_output(out) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        arrays = {f"layer{l}": (widths[l], store_dtype) for l in layers}
        arrays["time_s"] = (None, "float64")
        writer = Appender(group, arrays, int(chunk_frames))
        bar = tqdm(total=len(table), desc=f"frames {name}", unit="clip", file=sys.stderr, disable=not progress,
                   mininterval=5)
        items_by_clip = items.groupby("clip_id", sort=False)
        for clip in table.itertuples(index=False):
            file = root / clip.path
            try:
                wave = load_audio(file, sr)
            except Exception as err:
                raise ExtractionError(f"cannot read clip {clip.clip_id!r} from {file}: {err}") from err
            per_layer: dict[int, list[np.ndarray]] = {l: [] for l in layers}
            times = []
            wins = windows(len(wave), max_window, hop)
            # Windows of one clip share their length except the last: batch the equal ones.
            groups: dict[int, list[int]] = {}
            for start, length in wins:
                groups.setdefault(length, []).append(start)
            pieces: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}
            for length, starts in groups.items():
                want = facts.num_frames(length)
                for b in range(0, len(starts), batch_size):
                    chunk = starts[b:b + batch_size]
                    if want == 0:
                        for s in chunk:
                            pieces[s] = ([np.zeros((0, widths[l]), np.float32) for l in layers], np.zeros(0))
                        continue
                    batch = torch.from_numpy(np.stack([wave[s:s + length] for s in chunk]))
                    tm = time.perf_counter()
                    states = enc.frame_states(batch)
                    model_s += time.perf_counter() - tm
                    for j, s in enumerate(chunk):
                        got = int(states[layers[0]].shape[1])
                        if got != want:
                            raise FrameError(f"model '{name}' gave {got} frames for a window of {length} samples; "
                                             f"its encoder module says {want}")
                        pieces[s] = ([states[l][j].numpy() for l in layers],
                                     (s + facts.frame_times(want) * sr) / sr)
            for k, (start, length) in enumerate(wins):
                values, t = pieces[start]
                keep = kept_frames(facts, length, k == len(wins) - 1)
                for l, v in zip(layers, values):
                    per_layer[l].append(v[:keep])
                times.append(t[:keep])
            clip_times = np.concatenate(times)
            n = len(clip_times)
            if n == 0:
                raise FrameError(f"clip {clip.clip_id!r} ({len(wave) / sr:.3f} s) is shorter than one frame of "
                                 f"model '{name}'; remove it from the corpus")
            clip_first.append(writer.written + writer.n_buffered)
            clip_count.append(n)
            rows = {f"layer{l}": np.concatenate(per_layer[l]).astype(store_dtype) for l in layers}
            rows["time_s"] = clip_times
            for it in items_by_clip.get_group(clip.clip_id).itertuples(index=False):
                a, b = crop_frames(clip_times, it.start_s, crop_seconds)
                if b <= a:
                    raise FrameError(f"clip {clip.clip_id!r}: no frame of model '{name}' is centred inside its "
                                     f"crop {it.crop} [{it.start_s}, {it.start_s + crop_seconds}) s")
                item_first.append(clip_first[-1] + a)
                item_count.append(b - a)
            writer.add(rows)
            bar.update(1)
        bar.close()
        n_frames = writer.close()

        def put(name_: str, values, dtype_) -> None:
            arr = group.create_array(name_, shape=(len(values),), dtype=dtype_)
            if len(values):
                arr[:] = np.asarray(values, dtype=object if dtype_ is str else dtype_)

        put("clip_id", table["clip_id"].astype(str).to_numpy(), str)
        put("split", table["split"].astype(str).to_numpy(), str)
        put("first_frame", clip_first, "int64")
        put("n_frames", clip_count, "int64")
        put("duration_s", table["duration_s"].to_numpy(dtype=np.float64), "float64")
        put("item_clip_id", items["clip_id"].astype(str).to_numpy(), str)
        put("item_split", items["split"].astype(str).to_numpy(), str)
        put("item_crop", items["crop"].to_numpy(), "int32")
        put("item_start_s", items["start_s"].to_numpy(dtype=np.float64), "float64")
        put("item_first_frame", item_first, "int64")
        put("item_n_frames", item_count, "int64")
        wall = time.perf_counter() - t1
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        audio_s = float(table["duration_s"].sum())
        timing = {
            "n_frames": int(n_frames), "n_clips": int(len(table)), "n_items": int(len(items)),
            "model_load_s": round(load_s, 3), "extraction_time_s": round(wall, 3), "model_time_s": round(model_s, 3),
            "frames_per_s": round(n_frames / wall, 1) if wall > 0 else None,
            "audio_s_per_s": round(audio_s / wall, 2) if wall > 0 else None,
            "store_bytes": int(size), "bytes_per_audio_hour": int(size / (audio_s / 3600)) if audio_s else None,
            "write_mb_per_s": round(size / 1e6 / max(wall - model_s, 1e-9), 1),
            "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if device.type == "cuda":
            timing["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        attrs.update(timing)
        group.attrs.update({**attrs, "complete": True})
    print(f"extract_frames: {n_frames:,} frames ({est.n_frames:,} estimated) of {len(table)} clips in "
          f"{wall:.1f} s; store {human_bytes(size)} ({human_bytes(timing['bytes_per_audio_hour'] or 0)} per hour "
          f"of audio for {len(layers)} layer(s))", file=sys.stderr)
    return attrs
