"""Run one model over every crop of the manifest and store every hidden state.

One row per item (a crop of a clip), in manifest order: a train clip gives
`train_crops` rows (seeded random crops), a valid or test clip one row (the
crop from its start). Each crop is `crop_seconds` long at the model's rate,
zero-padded at the end, so a batch needs no padding. One forward pass yields
all hidden states; the store holds `layer{L}` for every L, so choosing other
layers in the config never reruns extraction.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from audiosae import store
from audiosae.data.audio import crop, crop_starts, load_audio
from audiosae.encoders.registry import Encoder, build_encoder, check_layers
from audiosae.encoders.twin import calibrate_if_needed

_PACKAGES = ("audiosae", "torch", "torchaudio", "transformers", "huggingface_hub", "torchcrepe", "resemblyzer",
             "numpy", "zarr", "soundfile")


class ExtractionError(RuntimeError):
    """A clip cannot be read, or the manifest is unusable."""


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest (audiosae.data.manifest.read_manifest), its problems as ExtractionError."""
    from audiosae.data.manifest import ManifestError, read_manifest as read

    try:
        return read(path)
    except ManifestError as err:
        raise ExtractionError(str(err)) from None


def plan_items(manifest: pd.DataFrame, crop_seconds: float, train_crops: int, crop_seed: int) -> pd.DataFrame:
    """One row per item, in manifest order: clip_id, split, crop, start_s, path."""
    rows = []
    for clip in manifest.itertuples(index=False):
        starts = crop_starts(clip.clip_id, float(clip.duration_s), crop_seconds, train_crops, crop_seed, clip.split)
        for k, start in enumerate(starts):
            rows.append((clip.clip_id, clip.split, k, float(start), clip.path))
    return pd.DataFrame(rows, columns=["clip_id", "split", "crop", "start_s", "path"])


def _batches(items: pd.DataFrame, sr: int, crop_seconds: float, batch_size: int, root: Path):
    """(first row, [B, T] float32 tensor) batches in item order; each clip's file is read once."""
    buf: list[np.ndarray] = []
    first = 0
    for _, group in itertools.groupby(items.itertuples(index=False), key=lambda r: r.clip_id):
        group = list(group)
        file = root / group[0].path
        try:
            wave = load_audio(file, sr)
        except Exception as err:
            raise ExtractionError(f"cannot read clip {group[0].clip_id!r} from {file}: {err}") from err
        for item in group:
            buf.append(crop(wave, sr, item.start_s, crop_seconds))
            if len(buf) == batch_size:
                yield first, torch.from_numpy(np.stack(buf))
                first += len(buf)
                buf = []
    if buf:
        yield first, torch.from_numpy(np.stack(buf))


def extract_embeddings(manifest: str | Path, out: str | Path, model_cfg: dict, *, name: str,
                       weights_dir: str | Path | None = None, crop_seconds: float, train_crops: int,
                       crop_seed: int, batch_size: int = 8, device: str | torch.device = "auto",
                       dtype: str = "float32", threads: int | None = None, root: str | Path = ".",
                       progress: bool = True, encoder: Encoder | None = None) -> dict:
    """Write results/embeddings/<name>.zarr for one model; returns the store's attrs."""
    from audiosae.devices import resolve_device

    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    root = Path(root)
    table = read_manifest(manifest)
    items = plan_items(table, crop_seconds, train_crops, crop_seed)

    t0 = time.perf_counter()
    enc = encoder or build_encoder(model_cfg, None if weights_dir is None else str(weights_dir), device,
                                   dtype=dtype, name=name)
    calibrate_if_needed(enc, table, root, crop_seconds, crop_seed)  # a CREPE twin's batch-norm statistics
    load_s = time.perf_counter() - t0
    check_layers(name, model_cfg.get("layers", "all"), enc)
    used_dtype = str(getattr(enc, "dtype", torch.float32)).replace("torch.", "")

    attrs = {
        "model": name,
        "source": model_cfg["source"],
        **enc.describe(),
        "sample_rate": int(enc.sample_rate),
        "crop_seconds": float(crop_seconds),
        "train_crops": int(train_crops),
        "crop_seed": int(crop_seed),
        "num_hidden_states": int(enc.num_hidden_states),
        "layer_widths": [int(w) for w in enc.layer_widths],
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "dtype": used_dtype,
        "batch_size": int(batch_size),
        "threads": int(torch.get_num_threads()),
        "packages": package_versions(),
        "model_config": {k: v for k, v in model_cfg.items() if k not in ("layers", "batch_size")},
    }
    index = items[["clip_id", "split", "crop"]]
    t1 = time.perf_counter()
    with store.writing(out, index, attrs) as writer:
        bar = tqdm(total=len(items), desc=f"extract {name}", unit="crop", file=sys.stderr, disable=not progress)
        for first, batch in _batches(items, enc.sample_rate, crop_seconds, batch_size, root):
            states = enc.hidden_states(batch)
            if len(states) != enc.num_hidden_states:
                raise RuntimeError(f"model '{name}' returned {len(states)} hidden states, expected "
                                   f"{enc.num_hidden_states}")
            for layer, values in enumerate(states):
                writer.write_rows(f"layer{layer}", first, values.numpy())
            bar.update(len(batch))
        bar.close()
        wall = time.perf_counter() - t1
        timing = {
            "n_items": int(len(items)),
            "n_clips": int(len(table)),
            "model_load_s": round(load_s, 3),
            "extraction_time_s": round(wall, 3),
            "items_per_s": round(len(items) / wall, 3) if wall > 0 else None,
            "audio_s_per_s": round(len(items) * crop_seconds / wall, 3) if wall > 0 else None,
            "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if device.type == "cuda":
            timing["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        writer.update_attrs(timing)
        attrs.update(timing)
    return attrs
