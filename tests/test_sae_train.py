"""Training an SAE from a store: learning, selection, seeding, outputs, atomicity, the rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audiosae import store as zstore
from audiosae.config import ConfigError
from audiosae.sae.model import SparseAutoencoder
from audiosae.sae.train import SAEPaths, make_config, mean_mse, prepare, train_sae
from conftest import REPO, run_snakemake, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SPLIT_KEYS = {"mse", "fvu", "cosine", "l0", "dead_fraction"}
METRIC_KEYS = {"model", "layer", "sparsity", "k", "n_latents", "input_dim", "arch", "seed", "device",
               "epochs_run", "best_epoch", "wall_time_s", "history", "splits"}


def sparse_data(n: int, atoms: np.ndarray, active: int, seed: int) -> np.ndarray:
    """Each row: `active` random atoms with coefficients in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((n, len(atoms))), axis=1)[:, :active]
    coef = np.zeros((n, len(atoms)))
    np.put_along_axis(coef, idx, 0.5 + rng.random((n, active)), axis=1)
    return (coef @ atoms).astype(np.float32)


def dictionary(m: int = 16, d: int = 16, seed: int = 0) -> np.ndarray:
    atoms = np.random.default_rng(seed).standard_normal((m, d))
    return atoms / np.linalg.norm(atoms, axis=1, keepdims=True)


def write_toy_store(path: Path, splits: dict[str, np.ndarray], layer: int = 3, seed: int = 0) -> pd.DataFrame:
    """A store whose rows mix the splits in a random order (as a manifest might)."""
    labels = np.concatenate([[s] * len(v) for s, v in splits.items()])
    values = np.concatenate(list(splits.values()))
    order = np.random.default_rng(seed).permutation(len(values))
    index = pd.DataFrame({"clip_id": [f"clip{i:05d}" for i in range(len(values))],
                          "split": labels[order], "crop": np.zeros(len(values), dtype=int)})
    zstore.write_store(path, {f"layer{layer}": values[order]}, index, {"model_id": "toy"})
    return index


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A known sparse dictionary and a store of its train/valid/test mixtures."""
    root = tmp_path_factory.mktemp("toy")
    atoms = dictionary()
    splits = {"train": sparse_data(3000, atoms, 2, 1), "valid": sparse_data(400, atoms, 2, 2),
              "test": sparse_data(300, atoms, 2, 3)}
    write_toy_store(root / "toy.zarr", splits)
    return {"root": root, "store": root / "toy.zarr", "atoms": atoms, "splits": splits}


FAST = {"dim": 48, "lr": 1e-2, "batch_size": 64, "device": "cpu", "progress": False}


def train(toy, out: Path, **kw) -> dict:
    opts = {**FAST, "epochs": 30, "seed": 0, **kw}
    return train_sae(toy["store"], model="toy", layer=3, sparsity=opts.pop("sparsity", 0.95),
                     outputs=SAEPaths.in_dir(out), **opts)


@pytest.fixture(scope="module")
def trained(toy):
    out = toy["root"] / "sae"
    return out, train(toy, out)


def test_training_lowers_valid_mse_and_recovers_the_dictionary(toy, trained):
    out, metrics = trained
    cfg = make_config(16, 0.95, dim=48)
    untrained = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(0))
    prepare(untrained, torch.from_numpy(toy["splits"]["train"]))
    before = mean_mse(untrained, torch.from_numpy(toy["splits"]["valid"]))
    assert metrics["splits"]["valid"]["mse"] < 0.2 * before
    assert min(h["valid_mse"] for h in metrics["history"]) == metrics["history"][metrics["best_epoch"] - 1]["valid_mse"]

    sae = SparseAutoencoder.load(out / "sae.safetensors")
    dec = sae.decoder.weight.detach().numpy()
    dec = dec / np.linalg.norm(dec, axis=0, keepdims=True)
    best_cos = (toy["atoms"] @ dec).max(axis=1)
    assert (best_cos > 0.9).mean() >= 0.8, best_cos


def test_outputs_follow_the_contract(toy, trained):
    out, metrics = trained
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "latents.zarr", "metrics.json", "sae.safetensors"]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert set(on_disk) == METRIC_KEYS
    assert (on_disk["model"], on_disk["layer"], on_disk["sparsity"], on_disk["k"]) == ("toy", 3, 0.95, 2)
    assert (on_disk["n_latents"], on_disk["input_dim"], on_disk["arch"], on_disk["device"]) == (48, 16, "topk", "cpu")
    assert on_disk["epochs_run"] == 30 and len(on_disk["history"]) == 30
    assert set(on_disk["history"][0]) == {"epoch", "train_mse", "valid_mse"}
    for split in ("train", "valid", "test"):
        assert set(on_disk["splits"][split]) == SPLIT_KEYS
        assert on_disk["splits"][split]["l0"] <= 2
        assert on_disk["splits"][split]["dead_fraction"] == on_disk["splits"]["train"]["dead_fraction"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["k"] == 2 and cfg["training"]["seed"] == 0

    # latents: every item of the store, same rows, codes of the saved SAE
    assert zstore.read_index(out / "latents.zarr").equals(zstore.read_index(toy["store"]))
    codes = zstore.read_array(out / "latents.zarr", "codes")
    x = torch.from_numpy(zstore.read_array(toy["store"], "layer3"))
    sae = SparseAutoencoder.load(out / "sae.safetensors")
    with torch.no_grad():
        expected = sae.encode(x).numpy()
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)

    # the test split's FVU is residual over the split's centred total sum of squares
    test = torch.from_numpy(toy["splits"]["test"]).double()
    with torch.no_grad():
        recon = sae(torch.from_numpy(toy["splits"]["test"])).reconstruction.double()
    direct = float((test - recon).pow(2).sum() / (test.var(0, unbiased=False).sum() * len(test)))
    assert on_disk["splits"]["test"]["fvu"] == pytest.approx(direct, rel=1e-4)


def test_same_seed_gives_bitwise_identical_weights(toy, tmp_path):
    weights = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        train(toy, tmp_path / name, epochs=2, seed=seed)
        weights[name] = SparseAutoencoder.load(tmp_path / name / "sae.safetensors").state_dict()
    for key, value in weights["a"].items():
        torch.testing.assert_close(weights["b"][key], value, rtol=0, atol=0, equal_nan=True)
    assert not torch.equal(weights["a"]["encoder.weight"], weights["c"]["encoder.weight"])


def test_normalised_inputs_are_used_in_training_and_evaluation(toy, tmp_path):
    metrics = train(toy, tmp_path / "n", epochs=4, normalize_inputs=True, pre_bias=True, arch="batchtopk")
    sae = SparseAutoencoder.load(tmp_path / "n" / "sae.safetensors")
    train_x = toy["splits"]["train"].astype(np.float64)
    np.testing.assert_allclose(sae.input_mean.numpy(), train_x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sae.input_std.numpy(), train_x.std(0), rtol=1e-5)
    # the valid MSE that picked the epoch is the one reported: same space, same mode
    best = metrics["history"][metrics["best_epoch"] - 1]["valid_mse"]
    assert metrics["splits"]["valid"]["mse"] == pytest.approx(best, rel=1e-5)


def test_patience_stops_early(toy, tmp_path):
    metrics = train(toy, tmp_path / "p", epochs=10, lr=0.0, patience=2)  # lr 0: no epoch improves on the first
    assert (metrics["best_epoch"], metrics["epochs_run"]) == (1, 3)


def test_zero_k_at_training_start_names_model_layer_and_sparsity(tmp_path):
    narrow = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)
    write_toy_store(tmp_path / "narrow.zarr", {"train": narrow[:20], "valid": narrow[20:25], "test": narrow[25:]}, layer=7)
    with pytest.raises(ConfigError, match=r"model 'hfmodel', layer 7, sparsity 0.9 gives k = int\(\(1 - 0.9\) \* 4\) = 0"):
        train_sae(tmp_path / "narrow.zarr", model="hfmodel", layer=7, sparsity=0.9,
                  outputs=SAEPaths.in_dir(tmp_path / "out"), dim="x1", device="cpu", progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_failed_job_leaves_nothing_that_looks_complete(toy, tmp_path, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(SparseAutoencoder, "save", broken_save)
    out = tmp_path / "broken"
    with pytest.raises(OSError, match="disk full"):
        train(toy, out, epochs=1)
    assert not out.exists() or list(out.iterdir()) == []


STAGE_SNAKEFILE = """
from audiosae.config import validate
validate(config)
include: "{repo}/rules/common.smk"
include: "{repo}/rules/sae.smk"
"""


def test_rule_trains_from_an_embeddings_store(tmp_path):
    """The train_sae rule alone (common.smk + sae.smk) on a stand-in embeddings store."""
    atoms = dictionary(m=24, d=16)
    write_toy_store(tmp_path / "results" / "embeddings" / "crepe.zarr",
                    {"train": sparse_data(200, atoms, 2, 1), "valid": sparse_data(40, atoms, 2, 2),
                     "test": sparse_data(40, atoms, 2, 3)}, layer=1)
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(STAGE_SNAKEFILE.format(repo=REPO))
    cfg = tiny_config(sae={"sparsities": [0.5, 0.9], "dim": "x4", "epochs": 3, "device": "cpu"})
    target = "results/sae/crepe/layer1/sparsity0.9"
    run_snakemake(tmp_path, f"{target}/metrics.json", config=cfg, cores=1, snakefile=snakefile)
    metrics = json.loads((tmp_path / target / "metrics.json").read_text())
    assert (metrics["model"], metrics["layer"], metrics["sparsity"], metrics["k"]) == ("crepe", 1, 0.9, 6)
    assert metrics["epochs_run"] == 3
    assert (tmp_path / target / "latents.zarr").is_dir()
    log = (tmp_path / "results" / "logs" / "train_sae" / "crepe" / "layer1" / "sparsity0.9.log").read_text()
    assert "epoch 3/3" in log
    assert (tmp_path / "results" / "benchmarks" / "rules" / "train_sae" / "crepe" / "layer1" / "sparsity0.9.tsv").exists()
    # nothing but the four outputs in the SAE's folder
    assert sorted(p.name for p in (tmp_path / target).iterdir()) == [
        "config.json", "latents.zarr", "metrics.json", "sae.safetensors"]


@pytest.mark.workflow
def test_fvu_rises_with_sparsity_in_the_tiny_study(demo_run):
    """The paper's claim 2 on the tiny study: fewer active codes, worse reconstruction."""
    cfg = tiny_config()
    checked = 0
    for model, spec in cfg["models"].items():
        for layer in spec["layers"]:
            fvu = {}
            for s in cfg["sae"]["sparsities"]:
                path = demo_run / f"results/sae/{model}/layer{layer}/sparsity{float(s)}/metrics.json"
                fvu[float(s)] = json.loads(path.read_text())["splits"]
            for split in ("train", "valid"):
                assert fvu[0.9][split]["fvu"] > fvu[0.5][split]["fvu"], (model, layer, split, fvu)
            checked += 1
    assert checked >= 2
