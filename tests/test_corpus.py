"""A user's corpus as a table (CSV, TSV, JSONL) or a folder tree: the manifest, its splits, and every bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from audiosae.data.corpus import build_corpus_manifest, check_corpus, corpus_params, target_splits
from audiosae.data.manifest import ManifestError, label_columns, manifest_columns, read_manifest, write_csv
from conftest import REPO, SNAKEMAKE

SR = 8000
SPEAKERS = [f"spk{i}" for i in range(10)]
WORDS = ["yes", "no", "up", "down"]


def write_wav(path: Path, seconds: float = 0.05) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.sin(np.arange(int(seconds * SR)) * 0.2)).astype(np.float32), SR)


def speech_rows(root: Path, speakers=SPEAKERS, words=WORDS, takes: int = 2) -> list[dict]:
    """A flat folder of WAVs, one per (speaker, word, take), and their rows (paths relative to `root`)."""
    rows = []
    for s in speakers:
        for w in words:
            for t in range(takes):
                name = f"clips/{s}_{w}_{t}.wav"
                write_wav(root / name)
                rows.append({"file": name, "speaker": s, "word": w, "mood": "calm" if t else "tense"})
    return rows


def write_table(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pd.DataFrame(rows).to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return path


def params(file: Path, **table) -> dict:
    data = {"corpus": "table", "valid_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42,
            "table": {"file": str(file), "path_column": "file", "labels": ["word", "speaker"],
                      "group_column": "speaker", "split_column": None, "id_column": None, **table}}
    return corpus_params(data)


TARGETS = [{"label": "word", "split": "corpus"}, {"label": "speaker", "split": "random"}]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("speech")
    write_table(root / "corpus.csv", speech_rows(root))
    return root


# ---------------------------------------------------------------- tables that work


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_a_table_gives_the_manifest_with_its_own_label_names(tmp_path, suffix):
    rows = speech_rows(tmp_path)
    table = write_table(tmp_path / "meta" / f"corpus{suffix}", [{**r, "file": "../" + r["file"]} for r in rows])
    m, skipped = build_corpus_manifest(params(table))
    assert skipped.empty and len(m) == len(rows)
    assert list(m.columns) == manifest_columns(["word", "speaker"]) and label_columns(m) == ["word", "speaker"]
    assert (m["group"] == m["speaker"]).all()
    assert m["path"].map(lambda p: Path(p).is_file()).all()          # relative to the table, resolved
    assert m["clip_id"].is_unique and m["clip_id"].str.match(r"^[A-Za-z0-9_.-]+$").all()
    # Test speakers never appear in train or valid; every word is in every split.
    test_speakers = set(m.loc[m["split"] == "test", "speaker"])
    assert test_speakers and not test_speakers & set(m.loc[m["split"] != "test", "speaker"])
    assert (pd.crosstab(m["word"], m["split"]).reindex(columns=["train", "valid", "test"]) > 0).all().all()
    assert abs((m["split"] == "test").mean() - 0.2) <= 0.1
    assert (m["sample_rate"] == SR).all() and np.allclose(m["duration_s"], 0.05)


def test_splits_are_seeded(speech):
    a, _ = build_corpus_manifest(params(speech / "corpus.csv"))
    b, _ = build_corpus_manifest(params(speech / "corpus.csv"))
    pd.testing.assert_frame_equal(a, b)
    c, _ = build_corpus_manifest({**params(speech / "corpus.csv"), "split_seed": 3})
    assert not a["split"].equals(c["split"])


def test_the_manifest_round_trips_through_the_one_reader(speech, tmp_path):
    m, _ = build_corpus_manifest(params(speech / "corpus.csv", id_column=None))
    write_csv(m, tmp_path / "manifest.csv")
    pd.testing.assert_frame_equal(read_manifest(tmp_path / "manifest.csv"), m)


def test_a_table_without_group_splits_clips_and_numeric_labels_stay_text(tmp_path):
    rows = [{"path": f"a{i}.wav", "digit": f"0{i % 3}"} for i in range(30)]
    for r in rows:
        write_wav(tmp_path / r["path"])
    table = write_table(tmp_path / "t.csv", rows)
    m, _ = build_corpus_manifest(corpus_params({"corpus": "table", "valid_fraction": 0.2, "test_fraction": 0.2,
                                                "split_seed": 1, "table": {"file": str(table), "path_column": "path",
                                                                           "labels": ["digit"]}}))
    assert (m["group"] == m["clip_id"]).all() and sorted(m["digit"].unique()) == ["00", "01", "02"]
    assert (pd.crosstab(m["digit"], m["split"]) > 0).all().all()


def test_given_splits_are_kept_and_valid_is_drawn_from_train_when_absent(tmp_path):
    rows = speech_rows(tmp_path)
    for r in rows:
        r["part"] = "test" if r["speaker"] in ("spk0", "spk1") else ("dev" if r["speaker"] == "spk2" else "train")
    m, _ = build_corpus_manifest(params(write_table(tmp_path / "t.csv", rows), split_column="part", id_column=None))
    assert set(m.loc[m["split"] == "test", "speaker"]) == {"spk0", "spk1"}
    assert set(m.loc[m["split"] == "valid", "speaker"]) == {"spk2"}
    for r in rows:
        r["part"] = "test" if r["speaker"] in ("spk0", "spk1") else "train"
    m, _ = build_corpus_manifest(params(write_table(tmp_path / "u.csv", rows), split_column="part"))
    assert set(m.loc[m["split"] == "test", "speaker"]) == {"spk0", "spk1"}
    assert (pd.crosstab(m["word"], m["split"]).reindex(columns=["train", "valid"]) > 0).all().all()


def test_a_folder_tree_labels_clips_by_their_first_folder(tmp_path):
    for label in ("dog", "cat", "bird"):
        for i in range(6):
            write_wav(tmp_path / "sounds" / label / ("sub" if i % 2 else "") / f"{label}{i}.flac")
    (tmp_path / "sounds" / "dog" / "notes.txt").write_text("not audio, ignored")
    data = {"corpus": "folders", "valid_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42,
            "folders": {"root": str(tmp_path / "sounds"), "label": "animal"}}
    m, _ = build_corpus_manifest(corpus_params(data))
    assert len(m) == 18 and label_columns(m) == ["animal"]
    assert m.groupby("animal").size().to_dict() == {"bird": 6, "cat": 6, "dog": 6}
    assert (pd.crosstab(m["animal"], m["split"]) > 0).all().all()
    assert m["clip_id"].str.contains("__sub__").sum() == 9


def test_a_random_target_split_is_stratified_by_its_label_and_seeded(speech):
    p = params(speech / "corpus.csv")
    frame = check_corpus(p, TARGETS)
    split = target_splits(frame, {"label": "speaker", "split": "random"}, p)
    counts = pd.crosstab(frame["speaker"], split)
    assert (counts[["train", "valid", "test"]] > 0).all().all()
    assert split.equals(target_splits(frame, {"label": "speaker", "split": "random"}, p))
    assert target_splits(frame, {"label": "word", "split": "corpus"}, p).equals(frame["split"])


# ---------------------------------------------------------------- bad input: one line naming the row, path or column


def bad(rows_or_edit, tmp_path, match, **table):
    rows = speech_rows(tmp_path)
    if callable(rows_or_edit):
        rows = rows_or_edit(rows) or rows
    file = write_table(tmp_path / "t.csv", rows)
    with pytest.raises(ManifestError, match=match) as err:
        check_corpus(params(file, **table), TARGETS)
    assert "\n" not in str(err.value)
    return err


def test_a_missing_file_names_the_row_and_path(tmp_path):
    def edit(rows):
        rows[4]["file"] = "clips/gone.wav"
    bad(edit, tmp_path, r"t\.csv line 6: audio file clips/gone\.wav does not exist")


def test_a_file_that_is_not_audio_by_name_names_the_row(tmp_path):
    def edit(rows):
        (tmp_path / "clips/readme.txt").write_text("hello")
        rows[2]["file"] = "clips/readme.txt"
    bad(edit, tmp_path, r"t\.csv line 4: clips/readme\.txt is not an audio file")


def test_a_wav_that_is_not_audio_names_the_row_and_path_or_is_skipped(tmp_path):
    rows = speech_rows(tmp_path)
    broken = tmp_path / rows[3]["file"]
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    file = write_table(tmp_path / "t.csv", rows)
    with pytest.raises(ManifestError, match=rf"t\.csv line 5: cannot read audio file .*{broken.name}.*on_bad_audio: skip"):
        build_corpus_manifest(params(file))
    m, skipped = build_corpus_manifest(params(file), on_bad_audio="skip")
    assert list(skipped["path"]) == [str(broken)] and len(m) == len(rows) - 1


@pytest.mark.parametrize("key, column", [("labels", "emotion"), ("path_column", "wav"), ("group_column", "spk")])
def test_a_missing_column_is_named_with_the_columns_there_are(tmp_path, key, column):
    value = ["word", column] if key == "labels" else column
    bad(None, tmp_path, rf"t\.csv has no column '{column}' \(data\.table\.{key}\); its columns are: file, speaker, "
                        rf"word, mood", **{key: value})


def test_a_label_with_a_single_class_is_an_error(tmp_path):
    def edit(rows):
        for r in rows:
            r["word"] = "yes"
    bad(edit, tmp_path, r"label 'word' has a single class \('yes' on every clip\)")


def test_a_group_in_two_given_splits_is_an_error(tmp_path):
    def edit(rows):
        for i, r in enumerate(rows):
            r["part"] = "test" if r["speaker"] in ("spk0", "spk1") else "train"
        rows[0]["part"] = "train"  # spk0's first take, in train; its others in test
    bad(edit, tmp_path, r"group 'spk0' appears in splits test \(.*t\.csv line 3\) and train \(.*t\.csv line 2\)",
        split_column="part")


def test_duplicate_paths_are_an_error(tmp_path):
    def edit(rows):
        rows[7]["file"] = "clips/../clips/" + rows[1]["file"].split("/")[1]
    bad(edit, tmp_path, r"t\.csv lines 3 and 9 list the same file")


def test_a_split_left_empty_for_a_class_is_an_error(tmp_path):
    def edit(rows):
        for r in rows:
            r["part"] = "test" if r["speaker"] in ("spk0", "spk1") else "train"
        return [r for r in rows if not (r["word"] == "down" and r["part"] == "test")]
    bad(edit, tmp_path, r"t\.csv: word 'down' has no test clip",
        split_column="part")


def test_a_probe_target_that_never_crosses_the_corpus_split_is_an_error(speech):
    with pytest.raises(ManifestError, match=r"probe target 'speaker' \(split: corpus\): speaker '.*' has no .* clip.*"
                                            r"use split: random"):
        check_corpus(params(speech / "corpus.csv"), [{"label": "speaker", "split": "corpus"}])


@pytest.mark.parametrize("content, match", [
    ('{"file": "a.wav", "word": "yes"}\nnot json\n', r"t\.jsonl line 2: not valid JSON"),
    ('{"file": "a.wav", "word": ["yes"]}\n', r"t\.jsonl line 1: field 'word' is a list"),
])
def test_a_broken_jsonl_line_is_named(tmp_path, content, match):
    (tmp_path / "t.jsonl").write_text(content)
    with pytest.raises(ManifestError, match=match):
        check_corpus(params(tmp_path / "t.jsonl"), TARGETS)


def test_empty_cells_and_unknown_splits_name_their_line(tmp_path):
    def edit(rows):
        rows[5]["word"] = ""
    bad(edit, tmp_path, r"t\.csv line 7: empty 'word'")

    def edit2(rows):
        for r in rows:
            r["part"] = "train"
        rows[1]["part"] = "holdout"
    bad(edit2, tmp_path, r"t\.csv line 3: split 'holdout' is not one of train, valid, test", split_column="part")


def test_a_missing_table_and_a_file_at_the_folder_root(tmp_path):
    with pytest.raises(ManifestError, match=r"data\.table\.file .*nope\.csv does not exist"):
        check_corpus(params(tmp_path / "nope.csv"), TARGETS)
    write_wav(tmp_path / "tree" / "loose.wav")
    data = {"corpus": "folders", "valid_fraction": 0.2, "test_fraction": 0.2, "split_seed": 42,
            "folders": {"root": str(tmp_path / "tree"), "label": "label"}}
    with pytest.raises(ManifestError, match=r"loose\.wav lies directly in the root"):
        check_corpus(corpus_params(data), [{"label": "label", "split": "corpus"}])


def test_snakemake_stops_on_a_bad_table_with_one_line_before_any_job(tmp_path):
    rows = speech_rows(tmp_path)
    write_table(tmp_path / "corpus.csv", rows)
    cfg = {"data": {"corpus": "table", "table": {"file": "corpus.csv", "path_column": "file",
                                                 "labels": ["word", "emotion"], "group_column": "speaker"}},
           "models": {"crepe": {"source": "crepe", "capacity": "tiny", "layers": [4]}}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n", "--configfile",
                           str(tmp_path / "study.yaml")], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert lines == ["audiosae: bad corpus: corpus.csv has no column 'emotion' (data.table.labels); its columns are: "
                     "file, speaker, word, mood"]
    assert not (tmp_path / "results").exists()
