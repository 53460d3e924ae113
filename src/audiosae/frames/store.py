"""The frame store: every frame of every clip's whole audio, for the analysed layers of one model.

Layout of ``results/frames/{model}.zarr`` (Zarr v3):

- ``layer{L}``: float16 (``frames.dtype``) ``[frames, width]``, chunked along frames
  (``frames.chunk_frames`` rows per chunk), clips one after another in manifest order;
- ``time_s``: float64 ``[frames]``, each frame's centre in seconds from its clip's start;
- per clip (manifest order): ``clip_id``, ``split``, ``first_frame``, ``n_frames``, ``duration_s``;
- per item, the SAME rows as the embedding store (a crop of a clip: train clips
  ``train_crops`` seeded crops, valid/test one from the start): ``item_clip_id``,
  ``item_split``, ``item_crop``, ``item_start_s``, and ``item_first_frame`` /
  ``item_n_frames``: the frames whose centre lies inside that crop
  ``[start_s, start_s + crop_seconds)``; frames of zero padding never exist here;
- attributes: model, frame rate, hop, first frame's time, layers and widths,
  window length, dtype, the crop settings, timings, ``complete``.

A store is written into a temporary sibling and renamed into place when complete.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audiosae.errors import FrameError
from audiosae.store import StoreError, open_store

CLIP_ARRAYS = ("clip_id", "split", "first_frame", "n_frames", "duration_s")
ITEM_ARRAYS = ("item_clip_id", "item_split", "item_crop", "item_start_s", "item_first_frame", "item_n_frames")
DTYPES = {"float16": 2, "float32": 4}


class FrameStoreError(FrameError):
    """A frame store cannot be written (disk too small) or lacks what a reader asks for."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass
class SizeEstimate:
    """What a frame store will hold, from the manifest's durations and the model's frame rate."""

    n_clips: int
    n_frames: int
    bytes_per_frame: int
    audio_hours: float

    @property
    def bytes(self) -> int:
        return self.n_frames * self.bytes_per_frame

    def describe(self) -> str:
        return (f"{self.n_frames:,} frames of {self.n_clips} clips ({self.audio_hours:.2f} h of audio), "
                f"{self.bytes_per_frame} bytes per frame, about {human_bytes(self.bytes)} uncompressed")


def estimate_size(durations_s, frames_per_clip, widths: list[int], dtype: str = "float16") -> SizeEstimate:
    """Frames = the model's frame count for each clip's duration; bytes per frame = widths x item size + its time."""
    durations = np.asarray(durations_s, dtype=np.float64)
    n_frames = int(np.sum(frames_per_clip))
    per_frame = int(sum(widths)) * DTYPES[dtype] + 8
    return SizeEstimate(len(durations), n_frames, per_frame, float(durations.sum() / 3600))


def check_disk(out: Path | str, estimate: SizeEstimate, free_bytes: int | None = None, margin: float = 1.1) -> int:
    """Raise FrameStoreError naming the store when its folder's disk cannot hold `estimate` (with a margin)."""
    out = Path(out)
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free if free_bytes is None else int(free_bytes)
    need = int(estimate.bytes * margin)
    if need > free:
        raise FrameStoreError(
            f"frame store {out}: {estimate.describe()}, but only {human_bytes(free)} is free on the disk of "
            f"{folder}; free space there, analyse fewer layers (models.<name>.layers), or run with results/ "
            f"on a larger disk. Nothing was written."
        )
    return free


class Appender:
    """Appends rows to growing Zarr arrays in whole chunks (the last chunk at close)."""

    def __init__(self, root, arrays: dict[str, tuple[int | None, str]], chunk: int):
        self.chunk = chunk
        self.arrays = {}
        self.buffers: dict[str, list[np.ndarray]] = {}
        self.n_buffered = 0
        for name, (width, dtype) in arrays.items():
            shape, chunks = ((0, width), (chunk, width)) if width else ((0,), (chunk,))
            self.arrays[name] = root.create_array(name, shape=shape, chunks=chunks, dtype=dtype)
            self.buffers[name] = []
        self.written = 0

    def add(self, rows: dict[str, np.ndarray]) -> None:
        n = {len(v) for v in rows.values()}
        assert len(n) == 1
        for name, values in rows.items():
            self.buffers[name].append(values)
        self.n_buffered += n.pop()
        if self.n_buffered >= self.chunk:
            self._flush(whole_chunks=True)

    def _flush(self, whole_chunks: bool) -> None:
        take = (self.n_buffered // self.chunk) * self.chunk if whole_chunks else self.n_buffered
        if take == 0:
            return
        for name, parts in self.buffers.items():
            block = np.concatenate(parts, axis=0)
            arr = self.arrays[name]
            arr.resize((self.written + take, *arr.shape[1:]))
            arr[self.written:self.written + take] = block[:take]
            self.buffers[name] = [block[take:]] if take < len(block) else []
        self.written += take
        self.n_buffered -= take

    def close(self) -> int:
        self._flush(whole_chunks=False)
        return self.written



# ---------------------------------------------------------------- reading


def open_frames(path: Path | str):
    return open_store(path)


def frame_layers(path: Path | str) -> list[int]:
    return sorted(int(k[5:]) for k in open_frames(path).array_keys() if k.startswith("layer"))


def layer_array(path: Path | str, layer: int, model: str | None = None):
    """The zarr array of `layer`, or an error naming the store, the layer and what to do."""
    root = open_frames(path)
    name = f"layer{int(layer)}"
    if name not in root:
        held = frame_layers(path)
        who = f"model '{model}' " if model else ""
        raise FrameStoreError(
            f"frame store {path} holds layers {held} of {who}but a frame SAE asks for layer {layer}; "
            f"add {layer} to the model's layers in the config (extract_frames stores the analysed layers only) "
            f"and rerun extract_frames"
        )
    return root[name]


def clip_index(path: Path | str) -> pd.DataFrame:
    """One row per clip: clip_id, split, first_frame, n_frames, duration_s (manifest order)."""
    root = open_frames(path)
    out = pd.DataFrame({c: np.asarray(root[c][:]) for c in CLIP_ARRAYS})
    return out.astype({"clip_id": str, "split": str, "first_frame": np.int64, "n_frames": np.int64})


def item_index(path: Path | str) -> pd.DataFrame:
    """One row per item (the embedding store's rows): clip_id, split, crop, start_s, first_frame, n_frames."""
    root = open_frames(path)
    out = pd.DataFrame({c[len("item_"):]: np.asarray(root[c][:]) for c in ITEM_ARRAYS})
    return out.astype({"clip_id": str, "split": str, "crop": int, "first_frame": np.int64, "n_frames": np.int64})


def frame_split(clips: pd.DataFrame, start: int, stop: int) -> np.ndarray:
    """Split name of each frame in [start, stop) (object array), from the clip ranges."""
    out = np.empty(stop - start, dtype=object)
    first = clips["first_frame"].to_numpy()
    ends = first + clips["n_frames"].to_numpy()
    lo = int(np.searchsorted(ends, start, side="right"))
    hi = int(np.searchsorted(first, stop, side="left"))
    for i in range(lo, hi):
        a, b = max(first[i], start), min(ends[i], stop)
        out[a - start:b - start] = clips["split"].iat[i]
    return out


def selected_mask(first: np.ndarray, ends: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Boolean mask over frames [start, stop) of the clip ranges [first_i, ends_i) (sorted, disjoint)."""
    mask = np.zeros(stop - start, dtype=bool)
    lo = int(np.searchsorted(ends, start, side="right"))
    hi = int(np.searchsorted(first, stop, side="left"))
    for i in range(lo, hi):
        mask[max(first[i], start) - start:min(ends[i], stop) - start] = True
    return mask


def crop_frames(times: np.ndarray, start_s: float, crop_seconds: float) -> tuple[int, int]:
    """[a, b): the frames of one clip (centre times `times`) inside the crop [start_s, start_s + crop_seconds)."""
    a = int(np.searchsorted(times, start_s, side="left"))
    b = int(np.searchsorted(times, start_s + crop_seconds, side="left"))
    return a, b


def require_complete(path: Path | str) -> None:
    try:
        open_frames(path)
    except StoreError as err:
        raise FrameStoreError(str(err)) from None
