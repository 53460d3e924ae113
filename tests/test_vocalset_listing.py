"""Regression: the manifest of the real VocalSet v1.1 layout, every quirk included.

``../shared/data/vocalset-v1.1-files.tsv`` (beside the repository, never copied
into it) lists the 3,613 WAV paths of the real archive with their durations. The
test writes a tiny WAV of that duration (at 100 Hz) at every path and builds the
manifest with the paper's settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiosae.data.corpus import build_vocalset_manifest
from audiosae.data.vocalset import TECHNIQUES
from conftest import REPO, missing_prerequisite

LISTING = REPO.parent / "shared" / "data" / "vocalset-v1.1-files.tsv"
TEST_SINGERS = ["female2", "female8", "male3", "male5", "male10"]
RATE = 100  # Hz: enough for a header with the real duration, 5 MB for the whole tree
# sha256 of the sorted "clip_id,split" lines, as the manifest gave them before the corpus
# interface (issue 11) was introduced: the paper's study keeps exactly its clips and splits.
SPLIT_DIGEST = "e33cb732476048a5497268ea9735403882a939cd5e118b7dbb3958bfe2127eae"


@pytest.fixture(scope="module")
def listing_manifest(tmp_path_factory) -> pd.DataFrame:
    if not LISTING.is_file():
        missing_prerequisite(f"{LISTING} is absent: the VocalSet listing lives beside the repository, in ../shared/data/")
    files = pd.read_csv(LISTING, sep="\t", comment="#")
    assert len(files) == 3613
    root = tmp_path_factory.mktemp("vocalset") / "VocalSet"
    for path, seconds in zip(files["path"], files["duration_s"]):
        f = root / path
        f.parent.mkdir(parents=True, exist_ok=True)
        sf.write(f, np.zeros(max(1, int(round(seconds * RATE))), dtype=np.int16), RATE, subtype="PCM_16")
    manifest, skipped = build_vocalset_manifest(root, TEST_SINGERS, list(TECHNIQUES))
    assert skipped.empty
    return manifest


def test_the_real_layout_gives_the_papers_clips(listing_manifest):
    m = listing_manifest
    assert len(m) == 1619
    assert sorted(m["technique"].unique()) == sorted(TECHNIQUES)
    assert m["singer"].nunique() == 20 and (m["group"] == m["singer"]).all()
    assert (m["split"] == "test").sum() == 407  # the paper reports about 400
    assert set(m.loc[m["split"] == "test", "singer"]) == set(TEST_SINGERS)
    assert m.groupby("split").size().to_dict() == {"test": 407, "train": 970, "valid": 242}
    assert (pd.crosstab(m["technique"], m["split"]) > 0).all().all()
    assert set(m["vowel"]) == {"a", "e", "i", "o", "u", "spoken"}


def test_the_real_layout_keeps_the_splits_it_had(listing_manifest):
    m = listing_manifest
    text = "".join(f"{c},{s}\n" for c, s in sorted(zip(m["clip_id"], m["split"])))
    assert hashlib.sha256(text.encode()).hexdigest() == SPLIT_DIGEST


def test_the_quirks_are_normalised_and_durations_come_from_the_files(listing_manifest):
    m = listing_manifest
    files = pd.read_csv(LISTING, sep="\t", comment="#")
    assert files["path"].str.contains("/vibrado/").any() and not (m["technique"] == "vibrado").any()
    assert m["path"].map(lambda p: Path(p).is_file()).all()
    listed = dict(zip(files["path"], files["duration_s"]))
    rel = m["path"].map(lambda p: p.split("/VocalSet/", 1)[1])
    assert np.allclose(m["duration_s"], rel.map(listed), atol=1.0 / RATE)
