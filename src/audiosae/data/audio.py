"""Reading, resampling and cropping clips: the audio every stage sees.

The extraction stage and the attributes stage both call these, so the audio a
model embeds and the audio eGeMAPS describes are cut the same way:

- ``read_wav(path) -> (wave, sr)``: mono float32 at the file's own rate;
- ``load_audio(path, target_sr) -> wave``: the same, resampled to ``target_sr``;
- ``crop_starts(clip_id, duration_s, crop_seconds, n_crops, seed, split)``: where
  each crop of a clip begins (train: ``n_crops`` seeded random starts; valid and
  test: one crop at 0);
- ``crop(wave, sr, start_s, seconds)``: that crop, zero-padded at the end when
  the clip is shorter.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(RuntimeError):
    """An audio file cannot be read, or holds no samples."""


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Mono float32 samples of `path` (channels averaged) and its sample rate."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types for a damaged header
        raise AudioError(
            f"cannot read audio file {path}: {err}. Replace the file, or set data.on_bad_audio: skip "
            f"to leave it out of the manifest"
        ) from err
    if data.shape[0] == 0:
        raise AudioError(f"audio file {path} holds no samples; replace it or set data.on_bad_audio: skip")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """`wave` resampled from `orig_sr` to `target_sr` (band-limited sinc, torchaudio)."""
    if orig_sr == target_sr:
        return np.asarray(wave, dtype=np.float32)
    import torch  # only here: reading and cropping do not need it
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.asarray(wave, dtype=np.float32)), int(orig_sr), int(target_sr))
    return out.numpy().astype(np.float32, copy=False)


def load_audio(path: Path | str, target_sr: int | None = None) -> np.ndarray:
    """Mono float32 samples of `path` at `target_sr` (the file's own rate when None)."""
    wave, sr = read_wav(path)
    return wave if target_sr is None else resample(wave, sr, target_sr)


def crop(wave: np.ndarray, sr: int, start_s: float, seconds: float) -> np.ndarray:
    """`seconds` of `wave` from `start_s`, zero-padded at the end to exactly round(seconds * sr) samples."""
    n = int(round(seconds * sr))
    start = max(0, int(round(start_s * sr)))
    out = np.zeros(n, dtype=np.float32)
    piece = np.asarray(wave[start : start + n], dtype=np.float32)
    out[: len(piece)] = piece
    return out


def _clip_seed(seed: int, clip_id: str) -> list[int]:
    # A hash of the clip id, not Python's hash(): the same in every process and on every machine.
    digest = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


def crop_starts(clip_id: str, duration_s: float, crop_seconds: float, n_crops: int, seed: int,
                split: str) -> list[float]:
    """Start times (seconds) of the crops taken from one clip.

    Train clips get `n_crops` starts drawn uniformly from [0, duration_s - crop_seconds]
    (all 0 when the clip is shorter than a crop), from a generator seeded by
    (`seed`, `clip_id`) only: the same clip gets the same crops whatever else is
    in the corpus. Valid and test clips get one crop at 0, as in the paper.
    """
    if split != "train":
        return [0.0]
    if n_crops < 1:
        raise ValueError(f"n_crops must be at least 1, got {n_crops}")
    room = max(0.0, float(duration_s) - float(crop_seconds))
    rng = np.random.default_rng(_clip_seed(seed, clip_id))
    starts = rng.uniform(0.0, room, size=n_crops) if room > 0 else np.zeros(n_crops)
    # Millisecond resolution keeps the starts readable in logs and stable when written to text.
    return [round(float(s), 3) for s in starts]
