"""Representation names and result paths (audiosae.layout), and the SAE settings' one definition."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from audiosae import layout
from audiosae.config import load_schema, validate
from audiosae.layout import Rep, RepError
from audiosae.sae.settings import FRAME_STUDY_KEYS, STUDY_KEYS, FrameSAESettings, SAESettings

REPS = [Rep(), Rep("sae", "0.9"), Rep("fsae", "0.95"), Rep("sae", "0.75", 3), Rep("fsae", "0.9", 12),
        Rep("ext", name="sparsify_k32"), Rep("ext", name="saelens.v2")]


@pytest.mark.parametrize("rep", REPS, ids=str)
def test_rep_round_trip(rep):
    assert Rep.parse(str(rep)) == rep
    assert str(Rep.parse(str(rep))) == str(rep)


@pytest.mark.parametrize("name, kind, level, sparsity, seed", [
    ("original", "original", "original", math.nan, None),
    ("sae0.9", "sae", "clip", 0.9, None),
    ("fsae0.99", "fsae", "frame", 0.99, None),
    ("sae0.9-seed2", "sae", "clip", 0.9, 2),
])
def test_rep_fields(name, kind, level, sparsity, seed):
    rep = Rep.parse(name)
    assert (rep.kind, rep.level, rep.seed) == (kind, level, seed)
    assert rep.sparsity_value == sparsity or (math.isnan(sparsity) and math.isnan(rep.sparsity_value))


def test_rep_from_a_config_sparsity_keeps_the_name_the_workflow_used():
    # The workflow names a clip SAE f"sae{s}" with s a config float as Python writes it.
    for s in (0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 0.5):
        assert str(Rep.sae(s)) == f"sae{s}" and str(Rep.sae(s, "frame")) == f"fsae{s}"
    assert Rep.sae(0.9) == Rep.parse("sae0.9")


@pytest.mark.parametrize("bad", ["", "orig", "sae", "saex", "sae0.9-seed", "fsae-0.9", "ext-", "ext-a b",
                                 "sae0.9seed2", "SAE0.9", "original-seed1"])
def test_bad_rep_name_is_a_clear_error(bad):
    with pytest.raises(RepError, match=f"representation {bad!r} is none of"):
        Rep.parse(bad)


def test_rep_refuses_impossible_fields():
    for kwargs in ({"kind": "sae"}, {"kind": "original", "sparsity": "0.9"}, {"kind": "ext"},
                   {"kind": "original", "seed": 1}, {"kind": "nope"}):
        with pytest.raises(RepError):
            Rep(**kwargs)


def test_rep_pattern_matches_exactly_the_names_parse_accepts():
    import re

    for rep in REPS:
        assert re.fullmatch(layout.REP_PATTERN, str(rep))
    for bad in ("sae", "ext-", "originals", "fsae0.9-seed"):
        assert not re.fullmatch(layout.REP_PATTERN, bad)


def test_paths_of_one_identity():
    assert layout.rep_store("crepe", 4, "original") == "results/embeddings/crepe.zarr"
    assert layout.rep_store("crepe", 4, "sae0.9") == "results/sae/crepe/layer4/sparsity0.9/latents.zarr"
    assert layout.rep_store("crepe", 4, "fsae0.9") == "results/fsae/crepe/layer4/sparsity0.9/latents.zarr"
    assert layout.sae_dir("crepe", 4, "sae0.9-seed2") == "results/sae/crepe/layer4/sparsity0.9-seed2"
    assert layout.rep_array(4, "original") == "layer4" and layout.rep_array(4, "sae0.9") == "codes"
    assert layout.frame_rep_store("crepe", 4, "fsae0.5") == "results/fsae/crepe/layer4/sparsity0.5/frame_codes.zarr"
    assert layout.probe_path("technique", "crepe", 4, Rep.sae(0.9), "npz") == \
        "results/probe/technique/crepe/layer4/sae0.9.npz"
    assert layout.disentangle_path("crepe", 4, "original") == "results/disentangle/crepe/layer4/original.json"
    # A random-weights twin is a model name like any other.
    assert layout.atlas_dir("crepe_random", 4, "sae0.9") == "results/atlas/crepe_random/layer4/sae0.9"
    with pytest.raises(RepError, match="no SAE folder"):
        layout.sae_dir("crepe", 4, "original")
    with pytest.raises(RepError, match="no frame-level vectors"):
        layout.frame_rep_store("crepe", 4, "sae0.9")
    # an imported SAE has frame-level vectors only at the frame level, beside its latents
    assert layout.frame_rep_store("crepe", 4, "ext-a", ext_level="frame") == "results/ext/crepe/layer4/a/frame_codes.zarr"
    with pytest.raises(RepError, match="only a frame-level one"):
        layout.frame_rep_store("crepe", 4, "ext-a", ext_level="clip")
    # export folders: one template per kind wildcard, filled to the SAE's own folder
    assert layout.export_dir("crepe", 4, "fsae0.9-seed43") == "results/fsae/crepe/layer4/sparsity0.9-seed43/export"
    assert layout.SEED_SAE_EXPORT.format(kind="fsae", model="crepe", layer=4, sparsity="0.9", seed=43) == \
        layout.export_dir("crepe", 4, "fsae0.9-seed43")
    assert layout.SAE_EXPORT.format(kind="sae", model="crepe", layer=4, sparsity="0.9") == \
        layout.export_dir("crepe", 4, "sae0.9")
    assert layout.SAE_DIR["frame"] == "results/fsae/{model}/layer{layer}/sparsity{sparsity}"


# ---------------------------------------------------------------- SAE settings


def _props(block):
    return block["properties"]


def test_schema_sae_keys_are_the_settings_fields():
    sae = _props(load_schema()["properties"]["sae"])
    assert set(sae) - set(STUDY_KEYS) == set(SAESettings.keys())
    frame = _props(sae["frame"])
    assert set(frame) - set(FRAME_STUDY_KEYS) == set(FrameSAESettings.frame_keys())
    assert set(FrameSAESettings.keys()) == set(SAESettings.keys()) | set(FrameSAESettings.frame_keys())


def test_settings_defaults_are_the_schema_defaults():
    sae = _props(load_schema()["properties"]["sae"])
    for f in fields(SAESettings):
        assert f.default == sae[f.name]["default"], f.name
    frame = _props(sae["frame"])
    for name in FrameSAESettings.frame_keys():
        assert FrameSAESettings.__dataclass_fields__[name].default == frame[name]["default"], name


def test_settings_from_a_config():
    cfg = validate({"models": {"crepe": {"source": "crepe", "layers": [4]}},
                    "data": {"corpus": "synthetic"},
                    "sae": {"lr": 0.01, "epochs": 7, "frame": {"lr": 0.002, "pooling": "max"}}})
    clip, frame = SAESettings.from_config(cfg["sae"]), FrameSAESettings.from_config(cfg["sae"])
    assert (clip.lr, clip.epochs, clip.batch_size) == (0.01, 7, 16)
    assert (frame.lr, frame.epochs, frame.batch_size, frame.pooling) == (0.002, 10, 256, "max")
    assert frame.seed == clip.seed and frame.arch == clip.arch  # from sae.*
    # the frame SAE's recipe is its own (docs/stability.md), whatever sae.* says
    assert (clip.dim, clip.init, clip.lr_warmup) == (2048, "linear", 0.0)
    assert (frame.dim, frame.init, frame.unit_norm_decoder) == ("x0.25", "tied", True)
    with pytest.raises(TypeError, match="unknown"):
        SAESettings(unknown=1)


def test_settings_that_shape_the_sae_are_saeconfigs_fields_with_its_defaults():
    """An SAE option is a settings field, a schema entry and (when it shapes the model) an SAEConfig field: the
    three agree, so none drifts from the others."""
    from audiosae.sae.model import SAEConfig

    model = {f.name: f.default for f in fields(SAEConfig)}
    for name in SAESettings.MODEL_FIELDS:
        if name in ("dim", "min_dim"):  # a width rule ("x4" or a count, with a floor); SAEConfig holds the count
            assert "n_latents" in model
            continue
        assert name in model, f"SAESettings.{name} is not an SAEConfig field"
        assert SAESettings.__dataclass_fields__[name].default == model[name], name
    assert SAESettings().model_kwargs().keys() == set(SAESettings.MODEL_FIELDS)
