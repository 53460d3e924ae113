"""Acoustics over time: which units follow pitch, loudness and formants frame by frame.

For each test clip, openSMILE's 25 eGeMAPS v02 low-level descriptors (LLDs,
one row every 10 ms over the whole file) are computed once
(`compute_llds`, results/data/frame_lld.zarr). The voiced-only descriptors
(``*_sma3nz``: F0, jitter, shimmer, HNR, formants) are 0 where openSMILE finds no
voice; they become NaN here, so they are correlated over voiced frames only.
On the synthetic corpus the true f0 track (the synthesiser's, 100 frames/s) is
a further target, in the F0 LLD's unit (semitones above 27.5 Hz).

Each target is brought to the model's frame times by taking the target frame
nearest to each model frame's centre. Then, per representation (the layer's own
dimensions, or a frame SAE's latents) and over the test clips' frames (at most
`max_frames`, a seeded sample):

- |Spearman rho| of every unit with every target (a unit constant over those
  frames, e.g. a latent that never fires, has rho 0);
- per target, the best unit and its rho;
- the matched mean correlation coefficient (MCC): targets and units paired one
  to one by the Hungarian algorithm on |rho|, the matched |rho| summed and
  divided by the number of targets (a layer with fewer units than targets
  leaves some unmatched, at 0).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from audiosae.atomic import atomic_output
from audiosae.attributes import map_clips, smile
from audiosae.data.audio import read_wav
from audiosae.store import open_store

TRUE_F0 = "true_f0"
F0_LLD = "F0semitoneFrom27.5Hz_sma3nz"


def _smile():
    return smile("LowLevelDescriptors")


def lld_names() -> list[str]:
    """The 25 eGeMAPS v02 LLD names, in openSMILE's order."""
    return list(_smile().feature_names)


def semitones(f0_hz: np.ndarray) -> np.ndarray:
    """Hz -> semitones above 27.5 Hz (the F0 LLD's unit); NaN stays NaN, <= 0 becomes NaN."""
    f0 = np.asarray(f0_hz, dtype=np.float64)
    out = np.full(f0.shape, np.nan)
    ok = np.isfinite(f0) & (f0 > 0)
    out[ok] = 12 * np.log2(f0[ok] / 27.5)
    return out


def signal_llds(wave: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre time of each 10 ms LLD frame in seconds, values [frames, 25]) of one signal; unvoiced -> NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        df = _smile().process_signal(wave, sr)
    start = df.index.get_level_values("start").total_seconds().to_numpy()
    end = df.index.get_level_values("end").total_seconds().to_numpy()
    values = np.array(df.to_numpy(dtype=np.float64))  # a writable copy
    voiced_only = np.array([n.endswith("_sma3nz") for n in df.columns])
    nz = values[:, voiced_only]
    nz[nz == 0] = np.nan
    values[:, voiced_only] = nz
    return (start + end) / 2, values.astype(np.float32)


def _clip_job(path: str) -> tuple[np.ndarray, np.ndarray]:
    wave, sr = read_wav(path)
    return signal_llds(wave, sr)


def compute_llds(manifest: pd.DataFrame, out: Path | str, splits=("test",), workers: int = 1) -> int:
    """Write the LLDs of the manifest's clips in `splits` to a Zarr store `out`; returns the rows written."""
    clips = manifest[manifest["split"].isin(list(splits))].reset_index(drop=True)
    results = map_clips(_clip_job, clips["path"].tolist(), workers, "eGeMAPS LLDs")
    counts = np.array([len(t) for t, _ in results], dtype=np.int64)
    names = lld_names()
    with atomic_output(out) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        values = np.concatenate([v for _, v in results]) if results else np.zeros((0, len(names)), np.float32)
        root.create_array("values", data=values, chunks=(min(65536, max(len(values), 1)), len(names)))
        root.create_array("time_s", data=np.concatenate([t for t, _ in results]) if results else np.zeros(0))
        root.create_array("clip_id", shape=(len(clips),), dtype=str)
        if len(clips):
            root["clip_id"][:] = clips["clip_id"].astype(str).to_numpy(dtype=object)
        root.create_array("first_row", data=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
                          if len(counts) else np.zeros(0, np.int64))
        root.create_array("n_rows", data=counts)
        root.attrs.update({"names": names, "splits": list(splits), "hop_s": 0.01,
                           "feature_set": "eGeMAPSv02 LowLevelDescriptors (openSMILE)",
                           "unvoiced": "voiced-only (_sma3nz) LLDs are NaN where openSMILE reports 0", "complete": True})
    return int(counts.sum())


def read_llds(path: Path | str) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(names, {clip_id: (times, values)}) of an LLD store."""
    root = open_store(path)
    values = np.asarray(root["values"][:])
    times = np.asarray(root["time_s"][:])
    out = {}
    for cid, a, n in zip(root["clip_id"][:], root["first_row"][:], root["n_rows"][:]):
        out[str(cid)] = (times[a:a + n], values[a:a + n])
    return list(root.attrs["names"]), out


def nearest(values: np.ndarray, times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Rows of `values` (sampled at increasing `times`) nearest to each time in `at`."""
    if len(times) == 0:
        return np.full((len(at),) + values.shape[1:], np.nan, dtype=np.float64)
    j = np.clip(np.searchsorted(times, at), 1, max(len(times) - 1, 1))
    if len(times) > 1:
        j = np.where(np.abs(times[j - 1] - at) <= np.abs(times[j] - at), j - 1, j)
    else:
        j = np.zeros(len(at), dtype=np.int64)
    return values[j]


def f0_track_times(track: np.ndarray, rate: float) -> np.ndarray:
    """Centre of each synthetic f0-track frame: frame i covers [i / rate, (i + 1) / rate)."""
    return (np.arange(len(track)) + 0.5) / rate


def _ranks(x: np.ndarray) -> np.ndarray:
    """Column ranks (ties averaged), centred and scaled to unit norm (zero for a constant column)."""
    from scipy.stats import rankdata

    r = rankdata(x, axis=0, method="average").astype(np.float64)
    r -= r.mean(axis=0, keepdims=True)
    norm = np.sqrt((r ** 2).sum(axis=0, keepdims=True))
    return np.divide(r, norm, out=np.zeros_like(r), where=norm > 0)


def spearman_matrix(units: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rho [targets, units] over the frames where each target is defined, and those frame counts.

    Targets sharing the same defined frames (e.g. all voiced-only LLDs) share one ranking of the units.
    """
    n_t = targets.shape[1]
    rho = np.zeros((n_t, units.shape[1]))
    counts = np.zeros(n_t, dtype=np.int64)
    masks: dict[bytes, list[int]] = {}
    defined = np.isfinite(targets)
    for t in range(n_t):
        masks.setdefault(np.packbits(defined[:, t]).tobytes(), []).append(t)
    for group in masks.values():
        m = defined[:, group[0]]
        counts[group] = int(m.sum())
        if m.sum() < 3:
            continue
        zu = _ranks(units[m])
        zt = _ranks(targets[m][:, group])
        rho[group] = zt.T @ zu
    return np.clip(rho, -1, 1), counts


def matched_mcc(abs_rho: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean |rho| of a one-to-one target-unit matching maximising the total (Hungarian); unmatched targets count 0."""
    from scipy.optimize import linear_sum_assignment

    if abs_rho.size == 0:
        return float("nan"), np.full(abs_rho.shape[0], -1)
    rows, cols = linear_sum_assignment(abs_rho, maximize=True)
    match = np.full(abs_rho.shape[0], -1, dtype=np.int64)
    match[rows] = cols
    return float(abs_rho[rows, cols].sum() / abs_rho.shape[0]), match


def analyse(units: np.ndarray, targets: np.ndarray, names: list[str]) -> dict:
    """|Spearman| of every unit with every target, best unit per target, matched MCC (see the module docstring)."""
    rho, counts = spearman_matrix(units, targets)
    abs_rho = np.abs(rho)
    mcc, match = matched_mcc(abs_rho)
    lld = [i for i, n in enumerate(names) if n != TRUE_F0]
    mcc_lld, _ = matched_mcc(abs_rho[lld]) if lld else (float("nan"), None)
    rows = []
    for t, name in enumerate(names):
        best = int(abs_rho[t].argmax()) if abs_rho.shape[1] else -1
        rows.append({"target": name, "n_frames": int(counts[t]), "best_unit": best,
                     "best_abs_rho": float(abs_rho[t, best]) if best >= 0 else float("nan"),
                     "best_rho": float(rho[t, best]) if best >= 0 else float("nan"),
                     "matched_unit": int(match[t]),
                     "matched_abs_rho": float(abs_rho[t, match[t]]) if match[t] >= 0 else 0.0})
    silent = int((np.ptp(units, axis=0) == 0).sum()) if len(units) else units.shape[1]
    return {"targets": rows, "mcc": mcc, "mcc_llds": mcc_lld, "n_units": int(units.shape[1]),
            "constant_units": silent, "rho": rho}


class FrameSource:
    """The test clips' frames of one representation, read only where they are sampled.

    `kind` "original": a frame store's ``layer{layer}``; "fsae": the ``frame_codes.zarr``
    (sparse rows) of a frame SAE, ours or a frame-level imported one (``FrameCodesWriter``). `clips` lists (clip id, frame times, first row).
    """

    def __init__(self, kind: str, path: Path | str, layer: int | None = None):
        self.kind, self.path = kind, Path(path)
        self.clips: list[tuple[str, np.ndarray, int]] = []
        if kind == "original":
            from audiosae.frames.store import clip_index, layer_array

            self.array = layer_array(path, layer)
            times = open_store(path)["time_s"]
            index = clip_index(path)
            for c in index[index["split"] == "test"].itertuples(index=False):
                a = int(c.first_frame)
                self.clips.append((c.clip_id, np.asarray(times[a:a + int(c.n_frames)]), a))
            self.n_units = int(self.array.shape[1])
        elif kind == "fsae":
            root = open_store(path)
            times = np.asarray(root["time_s"][:])
            for cid, a, n in zip(root["clip_id"][:], root["first_row"][:], root["n_frames"][:]):
                self.clips.append((str(cid), times[int(a):int(a + n)], int(a)))
            self.indptr = np.asarray(root["indptr"][:])
            self.indices, self.values = root["indices"], root["values"]
            self.n_units = int(root.attrs["n_latents"])
        else:
            raise ValueError(f"representation kind {kind!r} is neither 'original' nor 'fsae'")

    def rows(self, rows: np.ndarray, block: int = 4096) -> np.ndarray:
        """Dense float32 values [len(rows), units] of the store rows `rows` (sorted)."""
        out = np.zeros((len(rows), self.n_units), dtype=np.float32)
        for i in range(0, len(rows), block):
            part = rows[i:i + block]
            a, b = int(part[0]), int(part[-1]) + 1
            if self.kind == "original":
                out[i:i + len(part)] = np.asarray(self.array[a:b], dtype=np.float32)[part - a]
            else:
                lo, hi = int(self.indptr[a]), int(self.indptr[b])
                idx = np.asarray(self.indices[lo:hi])
                val = np.asarray(self.values[lo:hi])
                counts = np.diff(self.indptr[a:b + 1])
                dense = np.zeros((b - a, self.n_units), dtype=np.float32)
                dense[np.repeat(np.arange(b - a), counts), idx] = val
                out[i:i + len(part)] = dense[part - a]
        return out


class ArraySource:
    """In-memory frames, {clip id: (times, values [frames, units])}, read like a FrameSource."""

    def __init__(self, frames: dict[str, tuple[np.ndarray, np.ndarray]]):
        self.clips, parts, first = [], [], 0
        for cid, (times, values) in frames.items():
            self.clips.append((cid, np.asarray(times), first))
            parts.append(np.asarray(values, dtype=np.float32))
            first += len(times)
        self.values = np.concatenate(parts)
        self.n_units = self.values.shape[1]

    def rows(self, rows: np.ndarray) -> np.ndarray:
        return self.values[rows]


def true_f0_tracks(manifest: pd.DataFrame, tracks_file: Path | str, corpus_root: Path | str) -> dict:
    """{clip_id: f0 track in Hz} for the manifest's clips, from the synthetic corpus's f0_tracks.npz."""
    from audiosae.data.synthetic import load_f0_tracks

    root = Path(corpus_root)
    tracks = {os.path.normpath(root / p): t for p, t in load_f0_tracks(tracks_file).items()}
    out = {}
    for cid, path in zip(manifest["clip_id"], manifest["path"]):
        key = os.path.normpath(path)
        if key in tracks:
            out[str(cid)] = tracks[key]
    return out


def frame_acoustics(source: FrameSource, llds: tuple[list[str], dict], f0_tracks: dict | None = None, *,
                    track_rate: float = 100.0, max_frames: int = 20000, seed: int = 42) -> dict:
    """Align the targets with each test clip's frames, sample at most `max_frames` frames, and `analyse` them.

    Only the sampled frames' unit values are read, so memory follows `max_frames`, not the corpus.
    """
    names, per_clip = llds
    target_names = list(names) + ([TRUE_F0] if f0_tracks else [])
    rows, targets, missing = [], [], []
    for cid, times, first in source.clips:
        if cid not in per_clip:
            missing.append(cid)
            continue
        lt, lv = per_clip[cid]
        t = nearest(lv.astype(np.float64), lt, times)
        if f0_tracks:
            track = f0_tracks.get(cid)
            f0 = (nearest(semitones(track), f0_track_times(track, track_rate), times) if track is not None
                  else np.full(len(times), np.nan))
            t = np.column_stack([t, f0])
        rows.append(first + np.arange(len(times)))
        targets.append(t)
    if missing:
        raise ValueError(f"{len(missing)} test clip(s) have no LLDs, e.g. {missing[0]!r}; rerun frame_llds")
    if not rows:
        raise ValueError("no test frames to correlate; the corpus needs test clips")
    rows = np.concatenate(rows)
    t = np.concatenate(targets)
    n_total = len(rows)
    keep = np.arange(n_total)
    if n_total > max_frames:
        keep = np.sort(np.random.default_rng(seed).choice(n_total, size=max_frames, replace=False))
    order = np.argsort(rows[keep], kind="stable")
    keep = keep[order]
    out = analyse(source.rows(rows[keep]), t[keep], target_names)
    out["n_frames_total"] = int(n_total)
    out["n_frames_used"] = int(len(keep))
    return out
