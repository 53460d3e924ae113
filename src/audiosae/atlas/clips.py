"""Each clip's audio and spectrogram, written once for every atlas page.

A clip's activation in the atlas is its crop 0: the first random crop of a train
clip, the crop from the start of a valid or test clip (``audiosae.data.audio``,
the same seeded starts the extraction used). This module cuts exactly that
window from the clip's file, zero-padded at the end as the models hear it, and
writes it as Ogg Vorbis (every current browser plays it; small) at the file's
own sample rate, with a small log-frequency spectrogram PNG beside it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from audiosae.atlas.stats import AtlasError

AUDIO_EXT, IMAGE_EXT = "ogg", "png"
INDEX_FILE = "index.csv"
SPEC_WIDTH, SPEC_HEIGHT = 200, 72  # pixels
SPEC_FMIN, SPEC_FMAX = 50.0, 11025.0  # Hz, log-spaced rows
SPEC_RANGE_DB = 80.0
# Rates libsndfile's Vorbis encoder was checked to handle; far outside them it can crash the process.
VORBIS_RATES = (4000, 192000)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def media_name(clip_id: str) -> str:
    """A file-name stem for a clip: the id itself when it is file-safe, else a cleaned id plus a hash."""
    clip_id = str(clip_id)
    safe = _SAFE.sub("_", clip_id)
    if safe == clip_id and not safe.startswith("."):
        return safe
    return f"{safe.lstrip('.')[:80]}-{hashlib.sha1(clip_id.encode('utf-8')).hexdigest()[:10]}"


def crop0_start(clip, crop_seconds: float, train_crops: int, crop_seed: int) -> float:
    """Start (s) of a manifest row's crop 0, as the extraction computed it."""
    from audiosae.data.audio import crop_starts

    return crop_starts(str(clip.clip_id), float(clip.duration_s), crop_seconds, train_crops, crop_seed,
                       str(clip.split))[0]


def spectrogram_image(wave: np.ndarray, sr: int, width: int = SPEC_WIDTH, height: int = SPEC_HEIGHT) -> np.ndarray:
    """An RGB uint8 image [height, width, 3]: magnitude in dB (top 80 dB) on log-spaced frequencies, low at the bottom."""
    from matplotlib import colormaps  # the colour map only; no figure is drawn

    wave = np.asarray(wave, dtype=np.float64)
    n_fft = 1 << int(np.ceil(np.log2(max(0.04 * sr, 64))))
    hop = max(1, (len(wave) - n_fft) // max(width - 1, 1)) if len(wave) > n_fft else 1
    padded = np.pad(wave, (0, max(0, n_fft + hop * (width - 1) - len(wave))))
    idx = np.arange(width)[:, None] * hop + np.arange(n_fft)[None, :]
    frames = padded[idx] * np.hanning(n_fft)[None, :]
    mag = np.abs(np.fft.rfft(frames, axis=1)).T  # [bins, width]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    rows = np.geomspace(SPEC_FMIN, min(SPEC_FMAX, sr / 2), height)
    # Each row takes the strongest bin between its neighbours' centres, so narrow harmonics stay visible.
    edges = np.concatenate([[rows[0]], np.sqrt(rows[1:] * rows[:-1]), [rows[-1]]])
    out = np.empty((height, width))
    for i in range(height):
        band = (freqs >= edges[i]) & (freqs <= edges[i + 1])
        out[i] = mag[band].max(axis=0) if band.any() else mag[np.argmin(np.abs(freqs - rows[i]))]
    db = 20 * np.log10(np.maximum(out, 1e-10))
    top = db.max()
    level = np.clip((db - (top - SPEC_RANGE_DB)) / SPEC_RANGE_DB, 0, 1) if np.isfinite(top) else np.zeros_like(db)
    if not np.any(wave):
        level = np.zeros_like(db)
    rgb = colormaps["magma"](level[::-1])[..., :3]
    return (rgb * 255).round().astype(np.uint8)


def write_clip_media(wave: np.ndarray, sr: int, audio_path: Path, image_path: Path, clip_id: str) -> None:
    """Write one clip's Ogg Vorbis and PNG; an error names the clip."""
    import soundfile as sf
    from PIL import Image

    wave = np.asarray(wave, dtype=np.float32)
    lo, hi = VORBIS_RATES
    if not lo <= int(sr) <= hi:
        raise AtlasError(f"cannot encode clip {clip_id!r} as Ogg Vorbis: its sample rate {sr} Hz is outside "
                         f"{lo}-{hi} Hz; resample the file")
    if not np.isfinite(wave).all():
        raise AtlasError(f"cannot encode clip {clip_id!r} as Ogg Vorbis: its samples hold NaN or infinity")
    try:
        sf.write(str(audio_path), np.asarray(wave, dtype=np.float32), int(sr), format="OGG", subtype="VORBIS")
    except Exception as err:  # libsndfile raises several types
        raise AtlasError(f"cannot encode clip {clip_id!r} as Ogg Vorbis ({len(wave)} samples at {sr} Hz): {err}") \
            from err
    Image.fromarray(spectrogram_image(wave, sr)).save(str(image_path), format="PNG")


def _clip_job(args) -> dict:
    from audiosae.data.audio import AudioError, crop, read_wav

    clip, stem, tmp, root, crop_seconds, train_crops, crop_seed = args
    cid = str(clip.clip_id)
    file = root / str(clip.path)
    try:
        wave, sr = read_wav(file)
    except AudioError as err:
        raise AtlasError(f"clip {cid!r}: {err}") from err
    start = crop0_start(clip, crop_seconds, train_crops, crop_seed)
    piece = crop(wave, sr, start, crop_seconds)
    audio, image = f"{stem}.{AUDIO_EXT}", f"{stem}.{IMAGE_EXT}"
    write_clip_media(piece, sr, tmp / audio, tmp / image, cid)
    return {"clip_id": cid, "audio": audio, "image": image, "start_s": start, "seconds": float(crop_seconds),
            "sample_rate": int(sr)}


def write_clips(manifest: pd.DataFrame, out_dir: Path | str, *, crop_seconds: float, train_crops: int,
                crop_seed: int, root: Path | str = ".", threads: int = 1, progress: bool = True) -> pd.DataFrame:
    """Audio and spectrogram of every manifest clip's crop 0 into `out_dir` (atomically); returns its index.

    The index (``index.csv``) lists clip_id, audio, image (file names in `out_dir`),
    start_s, seconds and sample_rate. A clip that cannot be read or encoded stops
    the job with an error naming it and its file; nothing is published then.
    """
    from concurrent.futures import ThreadPoolExecutor

    from audiosae.atomic import atomic_output

    root = Path(root)
    names: dict[str, str] = {}
    for cid in manifest["clip_id"].astype(str):
        stem = media_name(cid)
        if stem in names:
            raise AtlasError(f"clips {names[stem]!r} and {cid!r} map to the same media name {stem!r}")
        names[stem] = cid
    with atomic_output(out_dir) as tmp:
        tmp.mkdir(parents=True)
        jobs = [(clip, media_name(clip.clip_id), tmp, root, crop_seconds, train_crops, crop_seed)
                for clip in manifest.itertuples(index=False)]
        bar = dict(total=len(jobs), desc="clips", unit="clip", mininterval=5, disable=not progress)
        # libsndfile's encoder and numpy's FFT release the GIL, so threads share the work.
        with ThreadPoolExecutor(max(1, int(threads))) as pool:
            rows = list(tqdm(pool.map(_clip_job, jobs), **bar))
        index = pd.DataFrame(rows, columns=["clip_id", "audio", "image", "start_s", "seconds", "sample_rate"])
        index.to_csv(tmp / INDEX_FILE, index=False)
    return index


def read_clip_index(clips_dir: Path | str) -> pd.DataFrame:
    path = Path(clips_dir) / INDEX_FILE
    if not path.exists():
        raise AtlasError(f"no clip index at {path}; run the atlas_clips rule")
    return pd.read_csv(path, dtype={"clip_id": str, "audio": str, "image": str})
