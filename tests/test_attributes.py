"""eGeMAPS attributes on the crop the embeddings see, joined with the synthetic corpus's true factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiosae.attributes import compute_attributes, egemaps, egemaps_names
from audiosae.data import synthetic as S
from audiosae.data.audio import crop
from audiosae.data.corpus import build_vocalset_manifest
from audiosae.data.manifest import read_manifest
from audiosae.data.vocalset import TECHNIQUES
from conftest import run_snakemake, tiny_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A synthetic corpus of 4 singers x 10 techniques x 1 clip of about a second, and its manifest."""
    root = tmp_path_factory.mktemp("attr") / "synthetic"
    factors = S.synthesize_corpus(root, singers=["female1", "female2", "male1", "male2"], clips_per_technique=1,
                                  duration_s=(0.9, 1.2), seed=11)
    manifest, _ = build_vocalset_manifest(root, test_singers=["female2", "male2"], techniques=list(TECHNIQUES),
                                          valid_fraction=0.5, split_seed=1)
    return root, factors, manifest


def test_88_functionals_no_empty_column_and_factors_joined(corpus):
    root, factors, manifest = corpus
    table = compute_attributes(manifest, 1.0, "crop", factors=factors, corpus_root=root)
    names = egemaps_names()
    assert len(names) == 88 and "F0semitoneFrom27.5Hz_sma3nz_amean" in names
    factor_cols = ["factor_" + c for c in S.FACTOR_COLUMNS if c != "path"]
    assert list(table.columns) == ["clip_id", *names, *factor_cols]
    assert list(table["clip_id"]) == list(manifest["clip_id"])
    assert not table[names].isna().all().any() and not table[names].isna().any().any()
    assert (table["factor_technique"] == manifest["technique"]).all()
    assert (table["factor_singer"] == manifest["singer"]).all()
    # The attributes see what the synthesiser made: eGeMAPS pitch follows the true f0.
    r = np.corrcoef(table["factor_f0_hz"].apply(np.log2), table["F0semitoneFrom27.5Hz_sma3nz_amean"])[0, 1]
    assert r > 0.8


def test_attributes_describe_the_zero_padded_crop_or_the_whole_file(corpus):
    root, _, manifest = corpus
    path = manifest["path"].iloc[0]
    wave, sr = sf.read(path, dtype="float32")
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    padded = smile.process_signal(crop(wave, sr, 0.0, 2.0), sr).to_numpy()[0]
    assert np.allclose(egemaps(path, 2.0, "crop"), padded, equal_nan=True)        # shorter: zero-padded
    assert np.allclose(egemaps(path, 0.5, "crop"), smile.process_signal(wave[: sr // 2], sr).to_numpy()[0])
    assert np.allclose(egemaps(path, 0.5, "file"), smile.process_signal(wave, sr).to_numpy()[0])
    assert not np.isnan(padded).any()  # openSMILE gives values, not NaN, for padded silence


def test_a_clip_without_factors_is_an_error(corpus):
    root, factors, manifest = corpus
    first = (root / factors["path"]).map(str) == manifest["path"].iloc[0]
    assert first.sum() == 1
    with pytest.raises(ValueError, match="no row in the corpus's factors.csv"):
        compute_attributes(manifest.head(2), 1.0, factors=factors[~first], corpus_root=root)


def test_parallel_workers_give_the_same_table(corpus):
    root, factors, manifest = corpus
    few = manifest.head(4)
    pd.testing.assert_frame_equal(compute_attributes(few, 1.0, workers=1), compute_attributes(few, 1.0, workers=2))


def test_data_stage_end_to_end(tmp_path):
    """The tiny study's data stage through Snakemake: corpus, manifest with every class in every split, attributes.

    One clip per singer and technique (half the tiny study's) keeps it quick: 4 non-test singers still give
    each class 3 train clips and 1 valid clip.
    """
    cfg = tiny_config()
    cfg["data"]["synthetic"] = {**cfg["data"]["synthetic"], "clips_per_technique": 1}
    run_snakemake(tmp_path, "results/data/attributes.parquet", config=cfg)
    manifest = read_manifest(tmp_path / "results/data/manifest.csv")
    counts = pd.crosstab(manifest["technique"], manifest["split"])
    assert sorted(counts.index) == sorted(TECHNIQUES) and sorted(counts.columns) == ["test", "train", "valid"]
    assert (counts > 0).all().all()
    assert set(manifest.loc[manifest["split"] == "test", "singer"]) == {"female2", "male3"}
    assert pd.read_csv(tmp_path / "results/data/skipped.csv").empty
    attrs = pd.read_parquet(tmp_path / "results/data/attributes.parquet")
    assert list(attrs["clip_id"]) == list(manifest["clip_id"])
    assert len(egemaps_names()) == 88 and set(egemaps_names()) <= set(attrs.columns)
    assert not attrs[egemaps_names()].isna().all().any()
    assert {"factor_f0_hz", "factor_noise_ratio", "factor_technique"} <= set(attrs.columns)
    for log in ("synthesize_corpus", "manifest", "attributes"):
        assert (tmp_path / f"results/logs/{log}.log").exists()
    assert "per technique and split" in (tmp_path / "results/logs/manifest.log").read_text()
