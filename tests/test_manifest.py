"""Reading VocalSet's layouts and quirks, the kept-file rule, and the splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiosae.data.corpus import build_vocalset_manifest
from audiosae.data.manifest import ManifestError, label_columns, manifest_columns, read_manifest, write_csv
from audiosae.data.vocalset import TECHNIQUES, clip_id_of, last_token, scan_corpus, technique_of

SINGERS = ["female1", "female2", "female3", "male1", "male2", "male3"]
TEST_SINGERS = ["female2", "male3"]
SR = 8000


def write_wav(path: Path, seconds: float = 0.05) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.sin(np.arange(int(seconds * SR)) * 0.2)).astype(np.float32), SR)


def make_corpus(root: Path, layout: str = "FULL", singers=SINGERS, techniques=TECHNIQUES, vowels="aei") -> Path:
    """A VocalSet-shaped tree: every singer sings every technique on `vowels`."""
    for singer in singers:
        prefix = singer[0] + singer.lstrip("femal")
        for technique in techniques:
            context = "excerpts" if technique == "spoken" else "scales"
            for v in vowels:
                name = f"{prefix}_excerpts_{v}_spoken" if technique == "spoken" else f"{prefix}_{context}_{technique}_{v}"
                write_wav(root / layout / singer / context / technique / f"{name}.wav")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def manifest_of(root, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    args = dict(test_singers=TEST_SINGERS, techniques=list(TECHNIQUES), valid_fraction=0.2, split_seed=42)
    args.update(kw)
    return build_vocalset_manifest(root, **args)


# ---------------------------------------------------------------- names and quirks


@pytest.mark.parametrize("folder,technique", [
    ("vibrado", "vibrato"), ("trillà", "trillo"), ("trilla\u0300", "trillo"), ("trill├á", "trillo"),
    ("Lip Trill", "lip_trill"), ("vocal-fry", "vocal_fry"), ("trill", "trill"), ("straight", "straight"),
])
def test_technique_folders_are_normalised(folder, technique):
    assert technique_of(folder) == technique


@pytest.mark.parametrize("stem,token", [
    ("f1_scales_belt_a", "a"), ("f1_scales_belt_a(1)", "a"), ("scales_belt_E", "e"),
    ("f1_excerpts_caro_spoken", "spoken"), ("f1_excerpts_caro_straight", "straight"), ("m3_long_tones_f", "f"),
])
def test_last_token(stem, token):
    assert last_token(stem) == token


def test_clip_ids_are_filesystem_safe():
    cid = clip_id_of("female1", "scales", "vibrato", "f1_scales_vibrato_a(1)")
    assert cid == "female1__scales__vibrato__f1_scales_vibrato_a-1"


def test_quirks_and_the_kept_file_rule(tmp_path):
    root = tmp_path / "VocalSet"
    full = root / "FULL"
    write_wav(full / "female1/scales/vibrado/f1_scales_vibrado_a.wav")          # misspelt folder
    write_wav(full / "female1/long_tones/trillà/f1_long_tones_trill_o.wav")    # accented folder
    write_wav(full / "female1/scales/belt/scales_belt_e.wav")                  # no singer prefix
    write_wav(full / "female1/scales/belt/f1_scales_belt_a.wav")
    write_wav(full / "female1/scales/belt/f1_scales_belt_a(1).wav")            # second take
    write_wav(full / "female1/excerpts/spoken/f1_excerpts_caro_spoken.wav")
    write_wav(full / "female1/excerpts/straight/f1_excerpts_caro_straight.wav")  # an excerpt: dropped
    write_wav(full / "female1/scales/fast_forte/f1_scales_fast_forte_a.wav")   # not one of the classes
    write_wav(full / "female1/scales/._f1_scales_belt_a.wav")                  # macOS resource fork
    write_wav(full / "female1/stray.wav")                                       # wrong depth
    scan = scan_corpus(root)
    clips = scan.clips.set_index("clip_id")
    assert sorted(clips["technique"]) == ["belt", "belt", "belt", "spoken", "trillo", "vibrato"]
    assert set(clips["singer"]) == {"female1"}
    assert clips.loc["female1__scales__belt__f1_scales_belt_a-1", "vowel"] == "a"
    assert clips.loc["female1__scales__belt__scales_belt_e", "path"].endswith("female1/scales/belt/scales_belt_e.wav")
    assert clips.loc["female1__long_tones__trillo__f1_long_tones_trill_o", "context"] == "long_tones"
    assert clips.loc["female1__excerpts__spoken__f1_excerpts_caro_spoken", "vowel"] == "spoken"
    assert clips.index.is_unique
    reasons = dict(zip(scan.dropped["path"].map(lambda p: Path(p).name), scan.dropped["reason"]))
    assert set(reasons) == {"f1_excerpts_caro_straight.wav", "f1_scales_fast_forte_a.wav", "stray.wav"}
    assert "not a vowel" in reasons["f1_excerpts_caro_straight.wav"]


def test_both_layouts_give_the_same_manifest(tmp_path, corpus):
    v12 = make_corpus(tmp_path / "VocalSet12", layout="data_by_singer")
    write_wav(v12 / "data_by_technique/belt/f1_scales_belt_a.wav")  # v1.2's other views are ignored
    a, _ = manifest_of(corpus)
    b, _ = manifest_of(v12)
    assert len(a) == len(SINGERS) * len(TECHNIQUES) * 3
    pd.testing.assert_frame_equal(a.drop(columns="path"), b.drop(columns="path"))
    assert b["path"].str.contains("/data_by_singer/").all()


def test_a_layout_one_folder_down_is_found(tmp_path):
    make_corpus(tmp_path / "VocalSet" / "VocalSet11", singers=SINGERS[:2], techniques=["belt", "breathy"])
    scan = scan_corpus(tmp_path / "VocalSet", ["belt", "breathy"])
    assert len(scan.clips) == 12 and scan.layout.name == "FULL"


def test_no_layout_is_a_clear_error(tmp_path):
    write_wav(tmp_path / "other/female1/x.wav")
    with pytest.raises(RuntimeError, match="no VocalSet layout"):
        scan_corpus(tmp_path)


# ---------------------------------------------------------------- splits


def test_splits_are_singer_disjoint_stratified_and_complete(corpus):
    m, skipped = manifest_of(corpus)
    assert list(m.columns) == manifest_columns(["singer", "context", "technique", "vowel"]) and skipped.empty
    assert label_columns(m) == ["singer", "context", "technique", "vowel"] and (m["group"] == m["singer"]).all()
    assert set(m.loc[m["split"] == "test", "singer"]) == set(TEST_SINGERS)
    assert not set(m.loc[m["split"] != "test", "singer"]) & set(TEST_SINGERS)
    counts = pd.crosstab(m["technique"], m["split"])
    assert (counts.reindex(index=list(TECHNIQUES), columns=["train", "valid", "test"]) > 0).all().all()
    # 4 non-test singers x 3 vowels = 12 clips per class: round(0.2 * 12) = 2 valid, 10 train.
    assert (counts["valid"] == 2).all() and (counts["train"] == 10).all() and (counts["test"] == 6).all()
    assert m["clip_id"].is_unique
    assert (m["sample_rate"] == SR).all() and np.allclose(m["duration_s"], 0.05)


def test_splits_are_deterministic_and_follow_the_seed(corpus):
    a, _ = manifest_of(corpus)
    b, _ = manifest_of(corpus)
    c, _ = manifest_of(corpus, split_seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a["split"].equals(c["split"])
    assert (a["split"] == "test").equals(c["split"] == "test")


def test_manifest_round_trip(tmp_path, corpus):
    m, _ = manifest_of(corpus)
    write_csv(m, tmp_path / "results/data/manifest.csv")
    pd.testing.assert_frame_equal(read_manifest(tmp_path / "results/data/manifest.csv"), m)


# ---------------------------------------------------------------- errors


def test_a_missing_test_singer_is_an_error(corpus):
    with pytest.raises(ManifestError, match=r"\['female9'\].*fix data.vocalset.test_singers"):
        manifest_of(corpus, test_singers=["female2", "female9"])


def test_a_class_absent_from_the_test_singers_is_an_error(tmp_path):
    root = make_corpus(tmp_path / "c", techniques=["belt", "breathy"])
    for p in (root / "FULL/female2/scales/breathy").glob("*.wav"):
        p.unlink()
    for p in (root / "FULL/male3/scales/breathy").glob("*.wav"):
        p.unlink()
    with pytest.raises(ManifestError, match="technique 'breathy' has no clip in the test groups .*data.vocalset.techniques"):
        manifest_of(root, techniques=["belt", "breathy"])


def test_a_class_too_small_for_train_and_valid_is_an_error(tmp_path):
    root = make_corpus(tmp_path / "c", techniques=["belt", "breathy"], vowels="a")
    for singer in ("female1", "female3", "male1"):
        (root / f"FULL/{singer}/scales/breathy/{singer[0]}{singer.lstrip('femal')}_scales_breathy_a.wav").unlink()
    with pytest.raises(ManifestError, match="'breathy' has 1 clip.*both train and valid"):
        manifest_of(root, techniques=["belt", "breathy"])


def corrupt(corpus_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = make_corpus(tmp_path / "c", techniques=["belt", "breathy"])
    bad = root / "FULL/female1/scales/belt/f1_scales_belt_e.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return root, bad


def test_a_corrupt_wav_is_an_error_naming_the_file(tmp_path, corpus):
    root, bad = corrupt(corpus, tmp_path)
    with pytest.raises(ManifestError, match=f"cannot read audio file .*{bad.name}.*on_bad_audio: skip"):
        manifest_of(root, techniques=["belt", "breathy"])


def test_an_empty_wav_is_an_error_naming_the_file(tmp_path):
    root = make_corpus(tmp_path / "c", techniques=["belt", "breathy"])
    empty = root / "FULL/male1/scales/breathy/m1_scales_breathy_a.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(ManifestError, match=f"{empty.name} holds no samples"):
        manifest_of(root, techniques=["belt", "breathy"])


def test_skip_mode_records_the_bad_file_and_goes_on(tmp_path, corpus):
    root, bad = corrupt(corpus, tmp_path)
    m, skipped = manifest_of(root, techniques=["belt", "breathy"], on_bad_audio="skip")
    assert list(skipped["path"]) == [bad.as_posix()] and "cannot read" in skipped["reason"].iloc[0]
    assert len(m) == 6 * 2 * 3 - 1 and not m["path"].str.endswith(bad.name).any()
