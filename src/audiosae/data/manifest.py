"""The manifest: every clip of the corpus with its group, labels, split, duration and sample rate.

``results/data/manifest.csv`` has the columns

    clip_id, path, group, <label columns...>, split, duration_s, sample_rate

whatever the corpus (VocalSet, the synthetic corpus, a user's table or folder
tree; ``audiosae.data.corpus`` makes the clip table). ``group`` is what must not
cross into the test split (a singer, a speaker); every other column that is not
one of the fixed ones is a label (``label_columns``). ONE function reads it,
``read_manifest``, and every stage uses it.

Splits (``assign_splits``): test is group-disjoint from train and valid — either
the given test groups (VocalSet's test singers) or groups drawn seeded and
stratified by the stratification label — and the other clips are split into
train and valid per class of that label by a seeded draw, so every class is in
every split. Train and valid may share groups, as in VocalSet's paper split: valid
only picks the epoch. Anything that would leave a split without a class is an
error, not a quietly smaller table.
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

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
ID_COLUMNS = ("clip_id", "path", "group")
TAIL_COLUMNS = ("split", "duration_s", "sample_rate")
FIXED_COLUMNS = ID_COLUMNS + TAIL_COLUMNS
SKIPPED_COLUMNS = ["path", "reason"]
SOURCE = "_source"  # where a clip came from ("corpus.csv line 7"), for error messages; never written


class ManifestError(RuntimeError):
    """The corpus cannot give the requested splits (missing group, empty class, bad audio, bad table)."""


def manifest_columns(labels: list[str]) -> list[str]:
    return [*ID_COLUMNS, *labels, *TAIL_COLUMNS]


def label_columns(frame: pd.DataFrame) -> list[str]:
    """The label columns of a manifest (every column that is not a fixed one, in file order)."""
    return [c for c in frame.columns if c not in FIXED_COLUMNS and c != SOURCE]


def read_manifest(path: Path | str | pd.DataFrame) -> pd.DataFrame:
    """The manifest at `path`, checked: fixed columns present, ids unique, splits known; ids and labels as str.

    The one entry point for a manifest: a frame already read (by this function) is returned as it is."""
    if isinstance(path, pd.DataFrame):
        return path
    path = Path(path)
    try:
        head = pd.read_csv(path, nrows=0)
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist; run the manifest rule") from None
    except pd.errors.EmptyDataError:
        raise ManifestError(f"manifest {path} is empty; delete it and rerun the manifest rule") from None
    missing = [c for c in FIXED_COLUMNS if c not in head.columns]
    if missing:
        raise ManifestError(f"manifest {path} lacks column(s) {missing} (it has {list(head.columns)}); it is from "
                            f"an older version: delete it and rerun the manifest rule")
    text = [c for c in head.columns if c not in ("duration_s", "sample_rate")]
    frame = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False)
    if frame.empty:
        raise ManifestError(f"manifest {path} has no clips; check the corpus")
    if frame["clip_id"].duplicated().any():
        dup = frame.loc[frame["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise ManifestError(f"manifest {path}: clip_id {dup!r} appears twice; delete it and rerun the manifest rule")
    bad = sorted(set(frame["split"]) - set(SPLITS))
    if bad:
        raise ManifestError(f"manifest {path}: unknown split value(s) {bad}; expected {list(SPLITS)}")
    if not label_columns(frame):
        raise ManifestError(f"manifest {path} has no label column (only {list(frame.columns)})")
    return frame.astype({"duration_s": float, "sample_rate": int})


def audio_info(path: str) -> tuple[float, int]:
    """(duration in seconds, sample rate) of an audio file, from its header; raises ManifestError naming the file."""
    try:
        info = sf.info(path)
    except Exception as err:
        raise ManifestError(f"cannot read audio file {path}: {err}") from err
    if info.frames <= 0:
        raise ManifestError(f"audio file {path} holds no samples")
    return info.frames / info.samplerate, int(info.samplerate)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def _source(clips: pd.DataFrame, row) -> str:
    """Where a clip came from: 'corpus.csv line 7' when known, else its path."""
    if SOURCE in clips.columns:
        return str(clips.loc[row, SOURCE])
    return str(clips.loc[row, "path"])


def _where(clips: pd.DataFrame, row) -> str:
    """'corpus.csv line 7: ' for a clip with a known source, else ''."""
    return f"{clips.loc[row, SOURCE]}: " if SOURCE in clips.columns else ""


# ---------------------------------------------------------------- splits


def draw_test_groups(clips: pd.DataFrame, stratify: str, test_fraction: float, seed: int) -> list[str]:
    """Groups held out for test: about `test_fraction` of the clips, stratified by `stratify`, seeded.

    scikit-learn's StratifiedGroupKFold with round(1 / test_fraction) folds over
    the groups shuffled by `seed`; the first fold is the test split.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_folds = max(2, int(round(1.0 / test_fraction)))
    groups = clips["group"].to_numpy()
    if len(set(groups)) < n_folds:
        raise ManifestError(
            f"{len(set(groups))} group(s) are too few to hold out a test fraction of {test_fraction:g} "
            f"({n_folds} folds of whole groups); give more groups, a split column, or a larger data.test_fraction"
        )
    order = clips.sort_values("clip_id").index
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=int(seed))
    _, test_rows = next(folds.split(np.zeros(len(order)), clips.loc[order, stratify].to_numpy(),
                                    clips.loc[order, "group"].to_numpy()))
    return sorted(set(clips.loc[order[test_rows], "group"]))


def split_train_valid(clips: pd.DataFrame, stratify: str, valid_fraction: float, seed: int,
                      what: str = "") -> pd.Series:
    """'train' / 'valid' for each row: per class of `stratify`, a seeded draw of round(valid_fraction * n) valid clips.

    The valid clips of a class are drawn by a generator seeded with (`seed`,
    class) from that class's clips sorted by clip_id, so adding one class or file
    does not reshuffle the others. Each class keeps at least one train and one valid clip.
    """
    split = pd.Series("train", index=clips.index, dtype=object)
    for value in sorted(clips[stratify].unique()):
        rows = clips[clips[stratify] == value].sort_values("clip_id").index.to_numpy()
        n = len(rows)
        if n < 2:
            raise ManifestError(
                f"{stratify} '{value}' has {n} clip(s){what}, so it cannot appear in both train and valid; "
                f"add clips of it or leave it out"
            )
        n_valid = min(n - 1, max(1, int(np.floor(valid_fraction * n + 0.5))))
        rng = np.random.default_rng([int(seed), _stable_int(value)])
        split[rows[rng.permutation(n)[:n_valid]]] = "valid"
    return split


def assign_splits(clips: pd.DataFrame, stratify: str, valid_fraction: float, seed: int, *,
                  test_groups: list[str] | None = None, test_fraction: float = 0.2,
                  fix_groups: str = "", fix_classes: str = "") -> pd.Series:
    """'train' / 'valid' / 'test' for each row of `clips` (columns clip_id, group, `stratify`).

    Test = the rows of `test_groups` when given, else groups drawn by
    draw_test_groups. `fix_groups` / `fix_classes` end the errors with what to
    change in the config (e.g. "fix data.vocalset.test_singers").
    """
    groups = sorted(clips["group"].unique())
    if test_groups is not None:
        missing = [g for g in test_groups if g not in set(groups)]
        if missing:
            raise ManifestError(f"test group(s) {missing} have no clips (groups found: {groups}); {fix_groups}")
        if not set(groups) - set(test_groups):
            raise ManifestError(f"every group is a test group; leave some for train and valid ({fix_groups})")
    else:
        test_groups = draw_test_groups(clips, stratify, test_fraction, seed)
    is_test = clips["group"].isin(test_groups)
    for value in sorted(clips[stratify].unique()):
        if not (is_test & (clips[stratify] == value)).any():
            raise ManifestError(
                f"{stratify} '{value}' has no clip in the test groups {sorted(test_groups)}: every class must "
                f"appear in every split; {fix_classes or 'add clips of it or leave it out'}"
            )
    split = pd.Series("test", index=clips.index, dtype=object)
    rest = clips[~is_test]
    split[rest.index] = split_train_valid(rest, stratify, valid_fraction, seed, " among the non-test groups")
    return split


def check_given_splits(clips: pd.DataFrame, stratify: str, table: str = "the table") -> None:
    """A table's own splits: test groups must not appear in train or valid; every class in every split."""
    for group, rows in clips.groupby("group", sort=True):
        splits = set(rows["split"])
        if "test" in splits and splits - {"test"}:
            other = sorted(splits - {"test"})[0]
            a = rows.index[rows["split"] == "test"][0]
            b = rows.index[rows["split"] == other][0]
            raise ManifestError(
                f"{table}: group '{group}' appears in splits test ({_source(clips, a)}) and {other} "
                f"({_source(clips, b)}); a group must not cross into the test split"
            )
    check_classes_in_splits(clips, stratify, table)


def check_classes_in_splits(frame: pd.DataFrame, label: str, what: str = "the manifest") -> None:
    """Every class of `label` has clips in train, valid and test."""
    counts = pd.crosstab(frame[label], frame["split"]).reindex(columns=list(SPLITS), fill_value=0)
    for value, row in counts.iterrows():
        empty = [s for s in SPLITS if row[s] == 0]
        if empty:
            raise ManifestError(
                f"{what}: {label} '{value}' has no {empty[0]} clip ({', '.join(f'{s} {row[s]}' for s in SPLITS)}); "
                f"every class must appear in every split"
            )


def check_labels(clips: pd.DataFrame, labels: list[str], what: str = "the corpus") -> None:
    """Every label has at least two classes."""
    for label in labels:
        values = sorted(clips[label].unique())
        if len(values) < 2:
            raise ManifestError(f"{what}: label '{label}' has a single class ({values[0]!r} on every clip); a "
                                f"probe needs two or more: leave it out of the labels")


# ---------------------------------------------------------------- building


def read_headers(clips: pd.DataFrame, on_bad_audio: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """`clips` with duration_s and sample_rate from each file's header, and the skipped files."""
    if on_bad_audio not in ("error", "skip"):
        raise ValueError(f"on_bad_audio must be 'error' or 'skip', not {on_bad_audio!r}")
    durations, rates, skipped = [], [], []
    for row, path in tqdm(list(clips["path"].items()), desc="reading audio headers", unit="file", mininterval=5):
        try:
            d, r = audio_info(path)
        except ManifestError as err:
            if on_bad_audio == "error":
                raise ManifestError(f"{_where(clips, row)}{err}. Replace the file, or set data.on_bad_audio: skip "
                                    f"to leave it out (it is then listed in results/data/skipped.csv)") from err
            log.warning("skipping %s%s", _where(clips, row), err)
            skipped.append({"path": path, "reason": str(err)})
            d, r = np.nan, -1
        durations.append(d)
        rates.append(r)
    clips = clips.assign(duration_s=durations, sample_rate=rates)
    return clips[clips["sample_rate"] > 0].copy(), pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)


def count_table(manifest: pd.DataFrame, label: str) -> pd.DataFrame:
    """Clips per class of `label` (rows) and split (columns), with totals."""
    table = pd.crosstab(manifest[label], manifest["split"], margins=True, margins_name="total")
    return table.reindex(columns=[s for s in SPLITS if s in table.columns] + ["total"])


def finish_manifest(clips: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The manifest's columns in order, index reset, durations rounded."""
    text = {c: str for c in (*ID_COLUMNS, *labels, "split")}
    manifest = clips[manifest_columns(labels)].astype({"sample_rate": int, **text}).reset_index(drop=True)
    manifest["duration_s"] = manifest["duration_s"].astype(float).round(6)
    return manifest


def write_csv(frame: pd.DataFrame, path: Path | str) -> None:
    """Write `frame` to `path` as CSV, atomically."""
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False)
