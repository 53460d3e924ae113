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
    assert cfg["data"]["test_singers"] == ["female2", "female8", "male3", "male5", "male10"]
    assert cfg["data"]["vocalset"]["md5"] == "0c09396242f946e7111ad7d8fc649b81"
    # The paper's level only, unless asked; frame training and the frame store have their own defaults.
    assert cfg["sae"]["levels"] == ["clip"] and cfg["sae"]["frame"]["batch_size"] == 4096
    assert cfg["sae"]["frame"]["pooling"] == "mean" and cfg["sae"]["frame"]["max_frames"] is None
    assert cfg["frames"]["dtype"] == "float16" and cfg["frames"]["window_seconds"] == 10.0


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
