"""Corpora: every kind of corpus produces the same clip table, from which the manifest is built.

Four producers (``data.corpus``):

- ``vocalset``: VocalSet's folder tree (``audiosae.data.vocalset``); group = singer,
  labels singer, context, technique, vowel; test = ``data.vocalset.test_singers``;
  splits stratified by technique;
- ``synthetic``: the synthetic corpus, in VocalSet's layout (``data.synthetic.*``);
- ``table``: a CSV, TSV or JSONL file with a path column and label columns, optional
  group, split and id columns; paths relative to the table's folder or absolute;
- ``folders``: ``<root>/<label>/.../<file>``; the first-level folder is the label.

Splits come from the table's split column when it has one (valid drawn from train
when the table gives only train and test), else they are assigned: test groups
drawn seeded and stratified by the first label (VocalSet: given test singers,
stratified by technique), then train/valid per class (``audiosae.data.manifest``).

``check_corpus`` runs every check that needs no audio decoding — columns, empty
cells, missing files, duplicate paths, single-class labels, groups crossing into
test, classes missing from a split, probe targets that cannot be trained — so a
table or folder corpus fails with one line before any job runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audiosae.data.manifest import (
    FIXED_COLUMNS, SOURCE, SPLITS, ManifestError, _stable_int, assign_splits, check_classes_in_splits, check_given_splits,
    check_labels, count_table, finish_manifest, read_headers, split_train_valid,
)

log = logging.getLogger(__name__)

KINDS = ("vocalset", "synthetic", "table", "folders")
VOCALSET_LABELS = ["singer", "context", "technique", "vowel"]
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None}
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"})
SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "val": "valid", "validation": "valid",
                 "dev": "valid", "test": "test", "testing": "test", "eval": "test"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Clips:
    """A producer's clip table and how to split it."""

    frame: pd.DataFrame          # clip_id, path, group, <labels>, [split], [_source]
    labels: list[str]
    stratify: str                # the label the splits are stratified by
    test_groups: list[str] | None = None   # given test groups (VocalSet's test singers)
    given_split: bool = False    # the frame carries the corpus's own split column
    source: str = "the corpus"   # for messages
    fix_groups: str = ""
    fix_classes: str = ""
    chosen_labels: bool = True   # the user chose the labels, so each must have two classes (VocalSet's are fixed)


# ---------------------------------------------------------------- static facts from the config


def corpus_labels(data: dict) -> list[str]:
    """The label columns a corpus's manifest will have, from the config alone."""
    kind = data["corpus"]
    if kind in ("vocalset", "synthetic"):
        return list(VOCALSET_LABELS)
    if kind == "table":
        return list(data["table"].get("labels") or [])
    return [data["folders"]["label"]]


def corpus_group_label(data: dict) -> str | None:
    """The label that is also the group (VocalSet's singer, a table's group column when listed as a label)."""
    kind = data["corpus"]
    if kind in ("vocalset", "synthetic"):
        return "singer"
    if kind == "table":
        g = data["table"].get("group_column")
        return g if g in (data["table"].get("labels") or []) else None
    return None


def default_targets(data: dict) -> list[dict]:
    """Probe targets when the config gives none: every label, the group's label split at random."""
    if data["corpus"] in ("vocalset", "synthetic"):
        return [{"label": "technique", "split": "corpus"}, {"label": "vowel", "split": "corpus"},
                {"label": "singer", "split": "random"}]
    group = corpus_group_label(data)
    return [{"label": lab, "split": "random" if lab == group else "corpus"} for lab in corpus_labels(data)]


def corpus_params(data: dict) -> dict:
    """Everything of `data` that changes the manifest (the manifest rule's params)."""
    kind = data["corpus"]
    settings = dict(data[kind]) if kind in data else {}
    if kind == "vocalset":
        settings = {k: settings[k] for k in ("test_singers", "techniques")}
    elif kind == "synthetic":
        settings = {k: settings[k] for k in ("test_singers", "techniques")}
    out = {"corpus": kind, "settings": settings, "valid_fraction": data["valid_fraction"],
           "split_seed": data["split_seed"]}
    if kind in ("table", "folders"):  # VocalSet and the synthetic corpus have given test groups
        out["test_fraction"] = data["test_fraction"]
    return out


# ---------------------------------------------------------------- producers


def vocalset_clips(root: Path | str, settings: dict, key: str) -> Clips:
    """VocalSet (or the synthetic corpus) under `root`; `key` names the config section for messages."""
    from audiosae.data.vocalset import scan_corpus

    scan = scan_corpus(root, list(settings["techniques"]))
    log.info("corpus %s (layout %s): %d kept clips, %d other WAVs dropped", root, scan.layout, len(scan.clips),
             len(scan.dropped))
    for reason, n in scan.dropped["reason"].value_counts().items():
        log.info("  dropped %d: %s", n, reason)
    frame = scan.clips.assign(group=scan.clips["singer"])
    return Clips(frame=frame[["clip_id", "path", "group", *VOCALSET_LABELS]], labels=list(VOCALSET_LABELS),
                 stratify="technique", test_groups=[s.lower() for s in settings["test_singers"]],
                 source=str(root), fix_groups=f"fix {key}.test_singers", chosen_labels=False,
                 fix_classes=f"change {key}.test_singers or drop it from {key}.techniques")


def _safe_id(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-") or "clip"


def clip_id_of_path(rel: str) -> str:
    """A filesystem-safe clip id from a file's path: folders joined by '__', suffix dropped."""
    p = Path(rel)
    parts = [x for x in p.with_suffix("").parts if x not in ("/", "..", ".")]
    return "__".join(_safe_id(x) for x in parts)


def _dedupe_ids(ids: pd.Series) -> pd.Series:
    """Number ids that collide after sanitising ('a b' beside 'a-b')."""
    dup = ids.duplicated(keep=False)
    if dup.any():
        ids = ids.copy()
        ids[dup] = ids[dup] + "-dup" + ids[dup].groupby(ids[dup]).cumcount().astype(str)
    return ids


def _read_rows(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The table as str cells ("" for empty) indexed by file line, and its columns."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ManifestError(f"data.table.file {path}: unknown table type '{suffix}'; use .csv, .tsv or .jsonl")
    if not path.is_file():
        raise ManifestError(f"data.table.file {path} does not exist (paths are relative to the working directory)")
    if suffix == ".jsonl":
        records, columns = [], {}
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ManifestError(f"{path} line {n}: not valid JSON ({err.msg})") from None
                if not isinstance(rec, dict):
                    raise ManifestError(f"{path} line {n}: expected a JSON object, got {type(rec).__name__}")
                for k, v in rec.items():
                    if isinstance(v, (dict, list)):
                        raise ManifestError(f"{path} line {n}: field '{k}' is a {type(v).__name__}; labels and "
                                            f"paths must be plain values")
                    columns.setdefault(k, None)
                records.append((n, {k: "" if v is None else str(v) for k, v in rec.items()}))
        frame = pd.DataFrame([r for _, r in records], columns=list(columns)).fillna("")
        frame.index = [n for n, _ in records]
        return frame, list(columns)
    try:
        frame = pd.read_csv(path, sep=TABLE_SUFFIXES[suffix], dtype=str, keep_default_na=False,
                            skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise ManifestError(f"{path} is empty; it needs a header row and one row per clip") from None
    except pd.errors.ParserError as err:
        raise ManifestError(f"{path}: cannot parse it as {suffix[1:].upper()} ({err})") from None
    frame.index = frame.index + 2  # file lines: the header is line 1 (blank lines are rare in such tables)
    return frame, list(frame.columns)


def _need_column(path: Path, columns: list[str], name: str, key: str) -> None:
    if name not in columns:
        raise ManifestError(f"{path} has no column '{name}' ({key}); its columns are: {', '.join(columns)}")


def table_clips(settings: dict) -> Clips:
    """A user's table: one row per clip (see the module docstring)."""
    path = Path(settings["file"])
    frame, columns = _read_rows(path)
    if frame.empty:
        raise ManifestError(f"{path} lists no clips")
    path_col, labels = settings["path_column"], list(settings["labels"])
    group_col, split_col, id_col = settings.get("group_column"), settings.get("split_column"), settings.get("id_column")
    _need_column(path, columns, path_col, "data.table.path_column")
    for label in labels:
        _need_column(path, columns, label, "data.table.labels")
        if label in FIXED_COLUMNS:
            raise ManifestError(f"data.table.labels: a label may not be called '{label}' (a manifest column of "
                                f"its own); rename that column in {path}")
        if label == path_col:
            raise ManifestError(f"data.table.labels: '{label}' is the path column, not a label")
    for col, key in ((group_col, "data.table.group_column"), (split_col, "data.table.split_column"),
                     (id_col, "data.table.id_column")):
        if col:
            _need_column(path, columns, col, key)
    used = [path_col, *labels, *(c for c in (group_col, split_col, id_col) if c)]
    for col in dict.fromkeys(used):
        empty = frame.index[frame[col].str.strip() == ""]
        if len(empty):
            raise ManifestError(f"{path} line {empty[0]}: empty '{col}'")

    base = path.parent
    raw = frame[path_col].str.strip()
    resolved = raw.map(lambda p: os.path.normpath(p if os.path.isabs(p) else os.path.join(base, p)))
    seen: dict[str, int] = {}
    for line, p in resolved.items():
        if p in seen:
            raise ManifestError(f"{path} lines {seen[p]} and {line} list the same file {raw[line]}")
        seen[p] = line
    for line, p in resolved.items():
        if not os.path.isfile(p):
            raise ManifestError(f"{path} line {line}: audio file {raw[line]} does not exist (looked for {p})")
        if Path(p).suffix.lower() not in AUDIO_SUFFIXES:
            raise ManifestError(f"{path} line {line}: {raw[line]} is not an audio file (expected one of "
                                f"{', '.join(sorted(AUDIO_SUFFIXES))})")

    out = pd.DataFrame(index=frame.index)
    if id_col:
        out["clip_id"] = frame[id_col].str.strip().map(_safe_id)
        dup = out["clip_id"].duplicated(keep=False)
        if dup.any():
            lines = list(out.index[dup][:2])
            raise ManifestError(f"{path} lines {lines[0]} and {lines[1]}: the same id '{frame.loc[lines[0], id_col]}' "
                                f"in data.table.id_column '{id_col}'")
    else:
        rel = [os.path.relpath(p, base) if not os.path.isabs(r) else p for p, r in zip(resolved, raw)]
        out["clip_id"] = _dedupe_ids(pd.Series([clip_id_of_path(r) for r in rel], index=frame.index))
    out["path"] = resolved
    out["group"] = frame[group_col].str.strip() if group_col else out["clip_id"]
    for label in labels:
        out[label] = frame[label].str.strip()
    if split_col:
        values = frame[split_col].str.strip().str.lower()
        bad = values[~values.isin(SPLIT_ALIASES)]
        if len(bad):
            raise ManifestError(f"{path} line {bad.index[0]}: split '{frame.loc[bad.index[0], split_col]}' is not "
                                f"one of train, valid, test (or val, dev, validation)")
        out["split"] = values.map(SPLIT_ALIASES)
    out[SOURCE] = [f"{path} line {n}" for n in frame.index]
    out = out.reset_index(drop=True)
    return Clips(frame=out, labels=labels, stratify=labels[0], given_split=bool(split_col), source=str(path))


def folder_clips(settings: dict) -> Clips:
    """`root/<label>/.../<file>`: every audio file under a first-level folder, labelled by that folder."""
    root, label = Path(settings["root"]), settings["label"]
    if not root.is_dir():
        raise ManifestError(f"data.folders.root {root} is not a folder (paths are relative to the working directory)")
    rows = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") or part == "__MACOSX" for part in rel.parts):
            continue
        if not p.is_file() or p.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if len(rel.parts) < 2:
            raise ManifestError(f"data.folders.root {root}: {rel} lies directly in the root; put every file in a "
                                f"folder named for its {label} (<root>/<{label}>/<file>)")
        rows.append({"clip_id": clip_id_of_path(rel.as_posix()), "path": os.path.normpath(p), label: rel.parts[0]})
    if not rows:
        raise ManifestError(f"data.folders.root {root}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) "
                            f"under <root>/<{label}>/")
    frame = pd.DataFrame(rows)
    frame["clip_id"] = _dedupe_ids(frame["clip_id"])
    frame.insert(2, "group", frame["clip_id"])
    frame[SOURCE] = frame["path"]
    return Clips(frame=frame, labels=[label], stratify=label, source=str(root))


def corpus_clips(params: dict, root: Path | str | None = None) -> Clips:
    """The clip table of the corpus `params` describes (corpus_params); `root` is the VocalSet-layout folder."""
    kind, settings = params["corpus"], params["settings"]
    if kind in ("vocalset", "synthetic"):
        return vocalset_clips(root, settings, f"data.{kind}")
    if kind == "table":
        return table_clips(settings)
    if kind == "folders":
        return folder_clips(settings)
    raise ValueError(f"unknown corpus kind {kind!r}; expected one of {KINDS}")


# ---------------------------------------------------------------- splits and checks


def split_clips(clips: Clips, params: dict) -> pd.DataFrame:
    """The clip frame with its 'split' column (given, completed or assigned), checked."""
    frame = clips.frame.copy()
    if clips.chosen_labels:
        check_labels(frame, clips.labels, clips.source)
    if clips.given_split:
        present = set(frame["split"])
        if "valid" not in present and {"train", "test"} <= present:
            train = frame[frame["split"] == "train"]
            frame.loc[train.index, "split"] = split_train_valid(train, clips.stratify, params["valid_fraction"],
                                                                params["split_seed"], " in the table's train split")
            log.info("%s gives no valid split: drew %d valid clips from its train split", clips.source,
                     int((frame["split"] == "valid").sum()))
        check_given_splits(frame, clips.stratify, clips.source)
    else:
        frame["split"] = assign_splits(frame, clips.stratify, params["valid_fraction"], params["split_seed"],
                                       test_groups=clips.test_groups, test_fraction=params.get("test_fraction", 0.2),
                                       fix_groups=clips.fix_groups, fix_classes=clips.fix_classes)
    check_classes_in_splits(frame, clips.stratify, clips.source)
    return frame


def target_splits(frame: pd.DataFrame, target: dict, params: dict) -> pd.Series:
    """Each clip's split for a probe target: the corpus split, or a seeded split stratified by the label."""
    label, how = target["label"], target["split"]
    if how == "corpus":
        return frame["split"]
    if how != "random":
        raise ValueError(f"unknown split strategy {how!r} for target {label!r}; expected corpus or random")
    counts = frame[label].value_counts()
    few = counts[counts < 3]
    if len(few):
        raise ManifestError(f"probe target '{label}' (split: random): class '{few.index[0]}' has {int(few.iloc[0])} "
                            f"clip(s); a random split needs at least 3 (train, valid, test)")
    # Per class, a seeded draw of round(test_fraction * n) test clips (at least 1, leaving 2), as the
    # train/valid draw: the same clip gets the same split whatever else is in the corpus.
    split = pd.Series("train", index=frame.index, dtype=object)
    seed = int(params["split_seed"])
    for value in sorted(counts.index):
        rows = frame[frame[label] == value].sort_values("clip_id").index.to_numpy()
        n = len(rows)
        n_test = min(n - 2, max(1, int(np.floor(params["test_fraction"] * n + 0.5))))
        rng = np.random.default_rng([seed, _stable_int("test/" + value)])
        split[rows[rng.permutation(n)[:n_test]]] = "test"
    rest = frame[split != "test"]
    split[rest.index] = split_train_valid(rest, label, params["valid_fraction"], seed,
                                          " outside its random test split")
    return split


def check_targets(frame: pd.DataFrame, targets: list[dict], params: dict, what: str = "the corpus") -> None:
    """Every probe target is a label with two or more classes, each in train, valid and test of its split."""
    labels = [c for c in frame.columns if c not in FIXED_COLUMNS and c != SOURCE]
    for i, t in enumerate(targets):
        if t["label"] not in labels:
            raise ManifestError(f"config key 'probe.targets[{i}].label': '{t['label']}' is not a label of "
                                f"{what} (labels: {', '.join(labels)})")
        split = target_splits(frame, t, params)
        try:
            check_classes_in_splits(frame.assign(split=split), t["label"],
                                    f"probe target '{t['label']}' (split: {t['split']})")
        except ManifestError as err:
            one_per_group = frame.groupby("group")[t["label"]].nunique().max() == 1
            hint = (f"; each group has a single {t['label']}, so its classes never cross the corpus split: use "
                    f"split: random for it" if t["split"] == "corpus" and one_per_group else "")
            raise ManifestError(f"{err}{hint}") from None


def check_corpus(params: dict, targets: list[dict]) -> pd.DataFrame:
    """Every check of a table or folder corpus that needs no audio decoding; returns its split clip frame."""
    clips = corpus_clips(params)
    frame = split_clips(clips, params)
    check_targets(frame, targets, params, clips.source)
    return frame


def build_corpus_manifest(params: dict, root: Path | str | None = None,
                          on_bad_audio: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, skipped files) of the corpus: clips, audio headers, splits, checks."""
    clips = corpus_clips(params, root)
    frame, skipped = read_headers(clips.frame, on_bad_audio)
    if len(skipped):
        log.warning("skipped %d unreadable file(s); see results/data/skipped.csv", len(skipped))
    clips.frame = frame
    frame = split_clips(clips, params)
    manifest = finish_manifest(frame, clips.labels)
    log.info("%d clips; per %s and split:\n%s", len(manifest), clips.stratify,
             count_table(manifest, clips.stratify).to_string())
    return manifest, skipped


def build_vocalset_manifest(root: Path | str, test_singers: list[str], techniques: list[str],
                            valid_fraction: float = 0.2, split_seed: int = 42, on_bad_audio: str = "error",
                            kind: str = "vocalset") -> tuple[pd.DataFrame, pd.DataFrame]:
    """build_corpus_manifest for a VocalSet-layout folder, from its settings (tests and notebooks)."""
    params = {"corpus": kind, "settings": {"test_singers": list(test_singers), "techniques": list(techniques)},
              "valid_fraction": valid_fraction, "test_fraction": 0.2, "split_seed": split_seed}
    return build_corpus_manifest(params, root, on_bad_audio)
