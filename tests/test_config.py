"""The config is checked before any job runs, and every problem names its key."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from audiosae.config import ConfigError, validate
from conftest import REPO, SNAKEMAKE

DEMO = yaml.safe_load((REPO / "profiles/demo/demo.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config.yaml").read_text())


def _demo(**changes):
    cfg = copy.deepcopy(DEMO)
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


def test_shipped_configs_are_valid():
    validate(copy.deepcopy(DEMO))
    validate(copy.deepcopy(PAPER))
    validate(yaml.safe_load((REPO / "tests/tiny.yaml").read_text()))


def test_defaults_are_filled_in():
    cfg = validate({"models": {"crepe": {"source": "crepe", "layers": [1]}}})
    assert cfg["sae"]["lr"] == 0.001 and cfg["sae"]["batch_size"] == 16 and cfg["sae"]["epochs"] == 100
    assert cfg["probe"]["epochs"] == 120 and cfg["probe"]["batch_size"] == 32
    assert cfg["disentangle"]["alpha"] == 0.1 and cfg["audio"]["crop_seconds"] == 5.0
    assert cfg["data"]["vocalset"]["test_singers"] == ["female2", "female8", "male3", "male5", "male10"]
    assert cfg["data"]["vocalset"]["md5"] == "0c09396242f946e7111ad7d8fc649b81"
    # The paper's level only, unless asked; frame training and the frame store have their own defaults.
    assert cfg["sae"]["levels"] == ["clip"] and cfg["sae"]["frame"]["batch_size"] == 256
    # clip SAEs keep the paper's recipe; frame SAEs have their own (docs/stability.md)
    assert (cfg["sae"]["init"], cfg["sae"]["lr_warmup"], cfg["sae"]["lr_decay"], cfg["sae"]["min_dim"]) == \
        ("linear", 0.0, 0.0, 1)
    assert {k: cfg["sae"]["frame"][k] for k in ("dim", "min_dim", "init", "unit_norm_decoder", "lr")} == \
        {"dim": "x0.25", "min_dim": 32, "init": "tied", "unit_norm_decoder": True, "lr": 0.01}
    assert cfg["sae"]["frame"]["pooling"] == "mean" and cfg["sae"]["frame"]["max_frames"] is None
    assert cfg["frames"]["dtype"] == "float16" and cfg["frames"]["window_seconds"] == 10.0
    assert cfg["probe"]["targets"] == [{"label": "technique", "split": "corpus"}, {"label": "vowel", "split": "corpus"},
                                       {"label": "singer", "split": "random"}]
    assert cfg["probe"]["bootstrap"] == 1000 and cfg["probe"]["ci"] == 0.95


def test_the_paper_study_probes_technique_vowel_and_singer():
    cfg = validate(copy.deepcopy(PAPER))
    assert [(t["label"], t["split"]) for t in cfg["probe"]["targets"]] == [
        ("technique", "corpus"), ("vowel", "corpus"), ("singer", "random")]


def _table_config(**table):
    return {"data": {"corpus": "table", "table": {"file": "c.csv", "labels": ["emotion", "speaker"],
                                                   "group_column": "speaker", **table}},
            "models": {"crepe": {"source": "crepe", "layers": [1]}}}


def test_table_targets_default_to_every_label_the_group_at_random():
    cfg = validate(_table_config())
    assert cfg["probe"]["targets"] == [{"label": "emotion", "split": "corpus"}, {"label": "speaker", "split": "random"}]
    assert cfg["data"]["table"]["path_column"] == "path" and cfg["data"]["table"]["split_column"] is None


@pytest.mark.parametrize("changes, message", [
    ({"data__techniques": ["belt", "breathy"]}, r"'data\.techniques' has moved to data\.vocalset\.techniques"),
    ({"data__test_singers": ["female2"]}, r"'data\.test_singers' has moved to data\.vocalset\.test_singers"),
    ({"data__synthetic__test_singers": ["female9"]}, r"'data\.synthetic\.test_singers': \['female9'\] are not among"),
    ({"probe__targets": [{"label": "emotion"}]},
     r"'probe\.targets\[0\]\.label': 'emotion' is not a label of the synthetic corpus \(labels: singer, context, "
     r"technique, vowel\)"),
    ({"probe__targets": [{"label": "vowel"}, {"label": "vowel", "split": "random"}]}, r"'vowel' is listed twice"),
    ({"probe__targets": [{"label": "singer"}]}, r"'probe\.targets\[0\]\.split': 'singer' is the corpus's group.*random"),
    ({"probe__targets": [{"label": "technique", "split": "stratified"}]}, r"'probe\.targets\[0\]\.split'"),
    ({"probe__ci": 1.5}, r"'probe\.ci'"),
])
def test_corpus_and_target_mistakes_name_their_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        validate(_demo(**changes))


def test_table_and_folders_need_their_keys():
    cfg = _table_config()
    del cfg["data"]["table"]["labels"]
    with pytest.raises(ConfigError, match=r"'data\.table\.labels' is required with corpus: table"):
        validate(cfg)
    with pytest.raises(ConfigError, match=r"'data\.folders\.root' is required with corpus: folders"):
        validate({"data": {"corpus": "folders"}, "models": {"crepe": {"source": "crepe", "layers": [1]}}})
    with pytest.raises(ConfigError, match=r"'probe\.targets\[0\]\.label': 'mood' is not a label of the table"):
        validate({**_table_config(), "probe": {"targets": [{"label": "mood"}]}})


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"sae__sparsities": [0.5, 1.0]}, "sae.sparsities[1]"),
        ({"sae__sparsities": [-0.1]}, "sae.sparsities[0]"),
        ({"audio__crop_seconds": -2.0}, "audio.crop_seconds"),
        ({"sae__epochs": "ten"}, "sae.epochs"),
        ({"sae__learning_rate": 0.1}, "sae.learning_rate"),
        ({"probe__seeds": []}, "probe.seeds"),
        ({"data__corpus": "librispeech"}, "data.corpus"),
        ({"sae__dim": "times4"}, "sae.dim"),
        ({"sae__levels": []}, "sae.levels"),
        ({"sae__levels": ["frames"]}, "sae.levels[0]"),
        ({"sae__frame__pooling": "median"}, "sae.frame.pooling"),
        ({"sae__frame__shuffle_buffer": 0}, "sae.frame.shuffle_buffer"),
        ({"frames__dtype": "int8"}, "frames.dtype"),
        ({"frames__window_seconds": 0}, "frames.window_seconds"),
    ],
)
def test_bad_values_name_their_key(changes, key):
    with pytest.raises(ConfigError) as err:
        validate(_demo(**changes))
    assert f"'{key}'" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_model_source_is_named():
    cfg = _demo()
    cfg["models"]["crepe"]["source"] = "torchhub"
    with pytest.raises(ConfigError, match=r"'models\.crepe\.source'"):
        validate(cfg)


def test_out_of_range_layer_names_model_and_range():
    cfg = _demo()
    cfg["models"]["resemblyzer"]["layers"] = [1, 4]
    with pytest.raises(ConfigError, match=r"layer 4 is out of range for model 'resemblyzer'.*0\.\.3"):
        validate(cfg)


def test_negative_and_all_layers_resolve():
    from audiosae.encoders.registry import resolve_layers

    assert resolve_layers("m", [-1, 0], 4) == [0, 3]
    assert resolve_layers("m", "all", 3) == [0, 1, 2]


def test_zero_k_is_a_config_error_naming_model_layer_sparsity():
    cfg = _demo(sae__dim="x1", sae__sparsities=[0.5, 0.95])
    cfg["models"] = {"crepe": {"source": "crepe", "capacity": "tiny", "layers": [1]}}  # block 2: 16 wide
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    msg = str(err.value)
    assert "'crepe'" in msg and "layer 1" in msg and "sparsity 0.95" in msg and "k = " in msg


def test_frame_sparsities_must_be_clip_sparsities():
    validate(_demo(sae__frame__sparsities=[0.9]))
    with pytest.raises(ConfigError, match=r"'sae\.frame\.sparsities': 0\.8 is not one of sae\.sparsities"):
        validate(_demo(sae__frame__sparsities=[0.8]))


def test_a_frame_sae_without_active_codes_names_its_width_key():
    # CREPE's layer 1 is 16 wide: an eighth of it with no floor is 2 latents, k = int(0.1 * 2) = 0 at sparsity 0.9
    with pytest.raises(ConfigError, match=r"'sae\.frame\.dim': model 'crepe', layer 1, frame sparsity 0\.9 .* = 0"):
        validate(_demo(sae__frame__sparsities=[0.9], sae__frame__dim="x0.125", sae__frame__min_dim=1))
    validate(_demo(sae__frame__sparsities=[0.9], sae__frame__dim="x0.125", sae__frame__min_dim=32))


def test_remote_code_needs_a_pinned_revision():
    cfg = _demo()
    cfg["models"]["mert"] = {"source": "hf", "id": "m-a-p/MERT-v1-95M", "trust_remote_code": True,
                             "revision": "main", "layers": [4]}
    with pytest.raises(ConfigError, match=r"'models\.mert\.revision'.*40-hex"):
        validate(cfg)


def test_source_specific_key_on_the_wrong_source():
    cfg = _demo()
    cfg["models"]["resemblyzer"]["capacity"] = "full"
    with pytest.raises(ConfigError, match=r"'models\.resemblyzer\.capacity'"):
        validate(cfg)


def test_snakemake_stops_with_one_line_before_any_job(tmp_path):
    bad = _demo(sae__sparsities=[0.5, 1.2])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n",
                           "--configfile", str(path)], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if l.strip()]
    assert lines == ["audiosae: bad configuration: config key 'sae.sparsities[1]': 1.2 is greater than or equal to the maximum of 1"]
    assert not (tmp_path / "results").exists()


def test_validating_the_study_imports_no_torch():
    """The Snakefile validates the config on every invocation (a dry run too): that must stay light."""
    import sys

    code = ("import sys, yaml; from audiosae.config import validate; "
            f"validate(yaml.safe_load(open({str(REPO / 'config.yaml')!r}))); "
            "heavy = sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules); "
            "print(heavy); assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
