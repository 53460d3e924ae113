"""The manifest: every kept clip with its labels, split, duration and sample rate.

Splits are singer-disjoint for test (the configured test singers) and a seeded
train/valid split of the other singers' clips, stratified by technique so that
every class is in every split. Anything that would make a split lack a class is
an error, not a quietly smaller table.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from audiosae.atomic import atomic_output
from audiosae.data.vocalset import CLIP_COLUMNS, scan_corpus

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
MANIFEST_COLUMNS = CLIP_COLUMNS + ["split", "duration_s", "sample_rate"]
SKIPPED_COLUMNS = ["path", "reason"]


class ManifestError(RuntimeError):
    """The corpus cannot give the requested splits (missing singer, empty class, bad audio)."""


def audio_info(path: str) -> tuple[float, int]:
    """(duration in seconds, sample rate) of a WAV, from its header; raises ManifestError naming the file."""
    try:
        info = sf.info(path)
    except Exception as err:
        raise ManifestError(f"cannot read audio file {path}: {err}") from err
    if info.frames <= 0:
        raise ManifestError(f"audio file {path} holds no samples")
    return info.frames / info.samplerate, int(info.samplerate)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def assign_splits(clips: pd.DataFrame, test_singers: list[str], techniques: list[str], valid_fraction: float,
                  seed: int) -> pd.Series:
    """'train' / 'valid' / 'test' for each row of `clips` (columns clip_id, singer, technique).

    The valid clips of a technique are drawn by a generator seeded with (`seed`,
    technique) from that technique's non-test clips sorted by clip_id, so adding
    one class or file does not reshuffle the others. Each class keeps at least
    one train and one valid clip.
    """
    test_singers = [s.lower() for s in test_singers]
    split = pd.Series("train", index=clips.index, dtype=clips["singer"].dtype)
    is_test = clips["singer"].isin(test_singers)
    split[is_test] = "test"
    rest = clips[~is_test]
    for technique in techniques:
        rows = rest[rest["technique"] == technique].sort_values("clip_id").index.to_numpy()
        n = len(rows)
        if n < 2:
            raise ManifestError(
                f"technique '{technique}' has {n} clip(s) among the non-test singers, so it cannot appear in both "
                f"train and valid; add clips, or drop it from data.techniques"
            )
        n_valid = min(n - 1, max(1, int(np.floor(valid_fraction * n + 0.5))))
        rng = np.random.default_rng([int(seed), _stable_int(technique)])
        split[rows[rng.permutation(n)[:n_valid]]] = "valid"
    return split


def count_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Clips per technique (rows) and split (columns), with totals."""
    table = pd.crosstab(manifest["technique"], manifest["split"], margins=True, margins_name="total")
    return table.reindex(columns=[s for s in SPLITS if s in table.columns] + ["total"])


def build_manifest(root: Path | str, test_singers: list[str], techniques: list[str], valid_fraction: float,
                   split_seed: int, on_bad_audio: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, skipped) for the corpus under `root`; see the module docstring for the rules."""
    if on_bad_audio not in ("error", "skip"):
        raise ValueError(f"on_bad_audio must be 'error' or 'skip', not {on_bad_audio!r}")
    scan = scan_corpus(root, techniques)
    clips = scan.clips
    log.info("corpus %s (layout %s): %d kept clips, %d other WAVs dropped", root, scan.layout, len(clips),
             len(scan.dropped))
    for reason, n in scan.dropped["reason"].value_counts().items():
        log.info("  dropped %d: %s", n, reason)

    singers = sorted(clips["singer"].unique())
    missing = [s for s in test_singers if s.lower() not in singers]
    if missing:
        raise ManifestError(
            f"test singer(s) {missing} have no kept clips under {root} (singers found: {singers}); "
            f"fix data.test_singers"
        )
    if not set(singers) - {s.lower() for s in test_singers}:
        raise ManifestError(f"every singer under {root} is a test singer; leave some for train and valid "
                            f"in data.test_singers")

    durations, rates, skipped = [], [], []
    for path in tqdm(clips["path"], desc="reading WAV headers", unit="file", mininterval=5):
        try:
            d, r = audio_info(path)
        except ManifestError as err:
            if on_bad_audio == "error":
                raise ManifestError(f"{err}. Replace the file, or set data.on_bad_audio: skip to leave it "
                                    f"out (it is then listed in results/data/skipped.csv)") from err
            log.warning("skipping %s", err)
            skipped.append({"path": path, "reason": str(err)})
            d, r = np.nan, -1
        durations.append(d)
        rates.append(r)
    clips = clips.assign(duration_s=durations, sample_rate=rates)
    clips = clips[clips["sample_rate"] > 0].reset_index(drop=True)

    for technique in techniques:
        if not ((clips["technique"] == technique) & clips["singer"].isin([s.lower() for s in test_singers])).any():
            raise ManifestError(
                f"no '{technique}' clip of the test singers {list(test_singers)} under {root}: every class must "
                f"appear in every split; change data.test_singers or drop '{technique}' from data.techniques"
            )
    clips["split"] = assign_splits(clips, test_singers, techniques, valid_fraction, split_seed)
    manifest = clips[MANIFEST_COLUMNS].astype({"sample_rate": int})
    manifest["duration_s"] = manifest["duration_s"].round(6)

    table = count_table(manifest)
    log.info("clips per technique and split:\n%s", table.to_string())
    return manifest, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)


def write_csv(frame: pd.DataFrame, path: Path | str) -> None:
    """Write `frame` to `path` as CSV, atomically."""
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_manifest(path: Path | str) -> pd.DataFrame:
    """The manifest with its column types (clip ids and labels as str)."""
    return pd.read_csv(path, dtype={c: str for c in CLIP_COLUMNS + ["split"]}, keep_default_na=False)
