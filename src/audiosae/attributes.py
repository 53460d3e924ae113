"""Acoustic attributes of every clip: openSMILE's eGeMAPS v02 functionals (88 values).

The attributes describe the audio the embeddings see: by default the first
``crop_seconds`` of the clip, zero-padded at the end exactly as the extraction
pads it (``audiosae.data.audio.crop``); ``attributes_on="file"`` uses the whole
file instead, as the paper's code did.

Silence and zero padding: openSMILE gives no NaN for them. Its voiced-only
descriptors (``*_sma3nz_*``: F0, jitter, shimmer, HNR, formants) ignore the
padded frames; the others (loudness, spectral and MFCC means, unvoiced segment
lengths, equivalentSoundLevel) count the padding as the silence it is, which is
also what the model hears. openSMILE fills a row with NaN only for a signal too
short to analyse (well under a second); such rows are kept and reported in the
log, and the disentanglement stage drops rows with NaN.

On the synthetic corpus the true generative factors (``factors.csv``) are
joined as ``factor_<name>`` columns.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from audiosae.atomic import atomic_output
from audiosae.data.audio import crop, read_wav
from audiosae.data.synthetic import TRACKS_FILE, crop_f0, load_f0_tracks

log = logging.getLogger(__name__)

FACTOR_PREFIX = "factor_"


@functools.cache
def smile(level: str = "Functionals"):
    """openSMILE's eGeMAPS v02 extractor at one level (Functionals, LowLevelDescriptors), built once per process."""
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=getattr(opensmile.FeatureLevel, level))


def map_clips(fn, items: list, workers: int, desc: str) -> list:
    """[fn(item) for item in items] with a progress bar, over `workers` processes.

    openSMILE holds the GIL, so threads do not help. Fork, where there is one: a spawned worker
    would re-run the calling script (Snakemake's script: has no __main__ guard).
    """
    workers = max(1, min(int(workers), len(items)))
    bar = dict(total=len(items), desc=desc, unit="clip", mininterval=5)
    if workers == 1:
        return [fn(item) for item in tqdm(items, **bar)]
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return list(tqdm(pool.map(fn, items, chunksize=max(1, len(items) // (8 * workers))), **bar))


def egemaps_names() -> list[str]:
    """The 88 eGeMAPS v02 functional names, in openSMILE's order."""
    return list(smile().feature_names)


def clip_signal(path: str, crop_seconds: float, attributes_on: str = "crop") -> tuple[np.ndarray, int]:
    """The samples the attributes are computed on: the first crop (zero-padded) or the whole file."""
    wave, sr = read_wav(path)
    if attributes_on == "crop":
        wave = crop(wave, sr, 0.0, crop_seconds)
    elif attributes_on != "file":
        raise ValueError(f"attributes_on must be 'crop' or 'file', not {attributes_on!r}")
    return wave, sr


def egemaps(path: str, crop_seconds: float, attributes_on: str = "crop") -> np.ndarray:
    """The 88 eGeMAPS functionals of one clip (float64)."""
    wave, sr = clip_signal(path, crop_seconds, attributes_on)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "segment too short": we report NaN rows ourselves
        row = smile().process_signal(wave, sr)
    return row.to_numpy(dtype=np.float64)[0]


def _egemaps_job(args: tuple[str, float, str]) -> np.ndarray:
    return egemaps(*args)


def compute_attributes(manifest: pd.DataFrame, crop_seconds: float, attributes_on: str = "crop",
                       factors: pd.DataFrame | None = None, corpus_root: Path | str | None = None,
                       workers: int = 1) -> pd.DataFrame:
    """One row per manifest clip: clip_id, the 88 eGeMAPS functionals, and factor_* columns when given.

    `factors` is the synthetic corpus's factors table, whose `path` is relative to
    `corpus_root`; every clip of the manifest must have a row there.
    """
    jobs = [(p, float(crop_seconds), attributes_on) for p in manifest["path"]]
    names = egemaps_names()
    rows = map_clips(_egemaps_job, jobs, workers, "eGeMAPS")
    table = pd.DataFrame(np.vstack(rows) if rows else np.zeros((0, len(names))), columns=names)
    table.insert(0, "clip_id", manifest["clip_id"].to_numpy())
    bad = table[names].isna().any(axis=1)
    if bad.any():
        log.warning("%d clip(s) got NaN eGeMAPS values (too short for openSMILE): %s", int(bad.sum()),
                    ", ".join(table.loc[bad, "clip_id"].head(10)))
    if factors is not None:
        table = join_factors(table, manifest, factors, corpus_root)
        tracks_file = Path(corpus_root if corpus_root is not None else ".") / TRACKS_FILE
        if tracks_file.exists():
            table[FACTOR_PREFIX + "f0_hz"] = crop_f0_factor(manifest, tracks_file, corpus_root, crop_seconds,
                                                            attributes_on)
    return table


def crop_f0_factor(manifest: pd.DataFrame, tracks_file: Path, corpus_root: Path | str | None,
                   crop_seconds: float, attributes_on: str) -> np.ndarray:
    """True mean f0 of each clip over the audio its attributes describe (the crop, or the whole file).

    factors.csv's f0_hz is the whole clip's; a scale's first seconds sit lower
    than its mean, so on the crop the true pitch has to come from the f0 track.
    """
    root = Path(corpus_root if corpus_root is not None else ".")
    tracks = {os.path.normpath(root / p): t for p, t in load_f0_tracks(tracks_file).items()}
    seconds = crop_seconds if attributes_on == "crop" else None
    out = []
    for path in manifest["path"]:
        key = os.path.normpath(path)
        if key not in tracks:
            raise ValueError(f"{path} has no f0 track in {tracks_file}; delete {root} and rerun synthesize_corpus")
        out.append(crop_f0(tracks[key], 0.0, seconds))
    return np.array(out)


def join_factors(table: pd.DataFrame, manifest: pd.DataFrame, factors: pd.DataFrame,
                 corpus_root: Path | str | None) -> pd.DataFrame:
    """`table` with factors.csv's columns (path excluded) added as factor_<name>, matched by file path."""
    root = Path(corpus_root) if corpus_root is not None else Path(".")
    keyed = factors.assign(_key=[os.path.normpath(root / p) for p in factors["path"]]).drop(columns="path")
    keyed = keyed.rename(columns={c: FACTOR_PREFIX + c for c in keyed.columns if c != "_key"})
    clip_keys = pd.DataFrame({"clip_id": manifest["clip_id"].to_numpy(),
                              "_key": [os.path.normpath(p) for p in manifest["path"]]})
    joined = clip_keys.merge(keyed, on="_key", how="left", validate="one_to_one", indicator=True)
    missing = joined["_merge"] != "both"
    if missing.any():
        raise ValueError(f"{int(missing.sum())} clip(s) have no row in the corpus's factors.csv, e.g. "
                         f"{joined.loc[missing, '_key'].iloc[0]}; delete {root} and rerun synthesize_corpus")
    return table.merge(joined.drop(columns=["_key", "_merge"]), on="clip_id", how="left", validate="one_to_one")


def read_attributes(source: Path | str | pd.DataFrame) -> pd.DataFrame:
    """The attributes table (a parquet path, or the frame itself) indexed by clip id (as str)."""
    table = source if isinstance(source, pd.DataFrame) else pd.read_parquet(source)
    return table.assign(clip_id=table["clip_id"].astype(str)).set_index("clip_id")


def write_parquet(frame: pd.DataFrame, path: Path | str) -> None:
    """Write `frame` to `path` as Parquet, atomically."""
    with atomic_output(path) as tmp:
        frame.to_parquet(tmp, index=False)
