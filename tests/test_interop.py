"""SAEs that travel: our export loads in SAELens and encodes our codes; SAEs written in each library's
documented layout read back to the same codes; bad files stop with one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audiosae import store as zstore
from audiosae.config import ConfigError, validate
from audiosae.interop.export import ExportError, export_sae
from audiosae.jsonio import write_json
from audiosae.interop.latents import write_external
from audiosae.interop.readers import InteropError, read_external
from audiosae.sae.model import SAEConfig, SparseAutoencoder
from audiosae.sae.train import SAEPaths, train_sae
from conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = 12


def toy_store(path: Path, n: int = 700, seed: int = 0, attrs: dict | None = None) -> Path:
    """Vectors far from zero with unequal scales (so normalisation and pre-bias matter), mixed splits."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, D)) * rng.uniform(0.2, 5.0, D) + rng.uniform(-3, 3, D)).astype(np.float32)
    split = rng.choice(["train", "valid", "test"], size=n, p=[0.7, 0.15, 0.15])
    index = pd.DataFrame({"clip_id": [f"c{i:04d}" for i in range(n)], "split": split, "crop": np.zeros(n, int)})
    zstore.write_store(path, {"layer3": x}, index, attrs or {"model_id": "toy"})
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return toy_store(tmp_path_factory.mktemp("interop") / "toy.zarr")


def trained(store: Path, out: Path, **options) -> Path:
    train_sae(store, model="toy", layer=3, sparsity=0.8, outputs=SAEPaths.in_dir(out), dim=40, epochs=3,
              device="cpu", progress=False, **options)
    return out


def assert_same_codes(theirs: torch.Tensor, ours: torch.Tensor) -> None:
    """Same active latents, same values up to float32 rounding of the folded weights."""
    assert theirs.shape == ours.shape
    assert torch.equal(theirs != 0, ours != 0)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options", [{}, {"normalize_inputs": True, "pre_bias": True}, {"normalize_inputs": True}],
                         ids=["plain", "normalised+pre_bias", "normalised"])
def test_saelens_loads_our_export_and_encodes_our_codes(store, tmp_path, options):
    sae_lens = pytest.importorskip("sae_lens")
    folder = trained(store, tmp_path / "sae", **options)
    export = export_sae(folder, model="toy", layer=3, model_spec={"source": "crepe"}, corpus="toy")
    cfg = json.loads((export / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 8 and cfg["d_in"] == D and cfg["d_sae"] == 40
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")
    loaded = sae_lens.SAE.load_from_disk(str(export))
    x = torch.from_numpy(zstore.read_array(store, "layer3"))
    codes = torch.from_numpy(zstore.read_array(folder / "latents.zarr", "codes"))  # what our workflow stored
    with torch.no_grad():
        theirs = loaded.encode(x)
        assert_same_codes(theirs, codes)
        ours = SparseAutoencoder.load(folder / "sae.safetensors")
        torch.testing.assert_close(loaded.decode(theirs), ours.decode(codes), atol=1e-4, rtol=1e-5)
    card = (export / "README.md").read_text()
    for needle in ("sparsity | 0.8", "k = 8", "seed | 42", "| test |", "SAE.load_from_disk"):
        assert needle in card


@pytest.mark.parametrize("arch", ["batchtopk", "relu_l1"])
def test_saelens_loads_other_archs(store, tmp_path, arch):
    sae_lens = pytest.importorskip("sae_lens")
    folder = trained(store, tmp_path / "sae", arch=arch, normalize_inputs=True, pre_bias=True)
    loaded = sae_lens.SAE.load_from_disk(str(export_sae(folder, model="toy", layer=3)))
    x = torch.from_numpy(zstore.read_array(store, "layer3"))
    with torch.no_grad():
        assert_same_codes(loaded.encode(x), torch.from_numpy(zstore.read_array(folder / "latents.zarr", "codes")))


def stability_doc(level: str = "clip", sparsity: str = "0.8") -> dict:
    """A node's stability document as rule stability writes it: seeds 42, 43, 44 of one SAE, and another group."""
    def pair(a, b, cos):
        return {"seed_a": a, "seed_b": b, "n_a": 30, "n_b": 31, "matched": 30, "mean_cos": cos,
                "share_matched": cos / 2, "baseline_mean_cos": 0.123, "baseline_share_matched": 0.0, "threshold": 0.7}

    group = {"level": level, "sparsity": sparsity, "seeds": [42, 43, 44], "default_seed": 42, "threshold": 0.7,
             "pairs": [pair(42, 43, 0.811), pair(42, 44, 0.822), pair(43, 44, 0.833)],
             "per_seed": [{"seed": s, "test_fvu": 0.3, "live": 30, "clear": 7 + s - 42, "share": 0.25} for s in (42, 43, 44)]}
    other = {**group, "level": "frame", "pairs": [pair(42, 43, 0.555)]}
    return {"model": "toy", "layer": 3, "groups": [other, group]}


def test_model_card_gives_the_stores_revision_and_the_seed_stability_where_measured(tmp_path):
    revision = "resemblyzer 0.1.4, pretrained.pt sha256:" + "ab" * 32
    store = toy_store(tmp_path / "toy.zarr", attrs={"model_id": "resemblyzer/VoiceEncoder", "revision": revision})
    folder = trained(store, tmp_path / "sae")  # seed 42, sparsity 0.8
    write_json(tmp_path / "stability.json", stability_doc())
    export = export_sae(folder, model="toy", layer=3, model_spec={"source": "resemblyzer"}, store=store,
                        stability=tmp_path / "stability.json")
    card = (export / "README.md").read_text()
    assert f"| revision | `{revision}` |" in card and "packaged" not in card
    assert json.loads((export / "cfg.json").read_text())["metadata"]["model_revision"] == revision
    rows = [ln for ln in card.splitlines() if ln.startswith("| 4")]  # one row per other seed of seed 42
    assert [r.split(" | ")[0] for r in rows] == ["| 43", "| 44"]
    assert "0.811 | 0.123 | 0.4055 | 0 |" in rows[0] and "0.822" in rows[1]
    assert "0.833" not in card and "0.555" not in card  # a pair without this seed; another level's group
    assert "not measured" not in card and "cosine >= 0.7" in card
    # an extra seed (no atlas page): its card reads its pairs and its interpretable share from the same file
    seed43 = tmp_path / "sae-seed43"
    train_sae(store, model="toy", layer=3, sparsity=0.8, outputs=SAEPaths.in_dir(seed43), dim=40, epochs=3,
              device="cpu", progress=False, seed=43)
    card = (export_sae(seed43, model="toy", layer=3, rep="sae0.8-seed43", store=store,
                       stability=tmp_path / "stability.json") / "README.md").read_text()
    assert "seed | 43" in card and "| 42 | 31 / 30 | 0.811 |" in card and "| 44 |" in card
    assert "8 of 30 live units have a clear label" in card and "by rule stability" in card
    # nothing measured for this SAE's sparsity: the card says so
    write_json(tmp_path / "other.json", stability_doc(sparsity="0.9"))
    card = (export_sae(folder, model="toy", layer=3, store=store, stability=tmp_path / "other.json")
            / "README.md").read_text()
    assert "Seed stability: not measured" in card
    with pytest.raises(ExportError, match="nowhere.zarr: not found"):
        export_sae(folder, model="toy", layer=3, store=tmp_path / "nowhere.zarr")


# ---------------------------------------------------------------- round trips through each library's layout


def folded(sae: SparseAutoencoder) -> dict[str, torch.Tensor]:
    """Our SAE as 'subtract b_dec, linear, activation' (the shape all three libraries share), computed here."""
    mean, std = (sae.input_mean, sae.input_std) if sae.cfg.normalize_inputs else (torch.zeros(D), torch.ones(D))
    b_pre = sae.b_pre.detach() if sae.b_pre is not None else torch.zeros(D)
    return {"enc": (sae.encoder.weight.detach() / std).contiguous(),  # [d_sae, d_in]
            "b_enc": sae.encoder.bias.detach().clone(),
            "dec": (sae.decoder.weight.detach() * std[:, None]).contiguous(),  # [d_in, d_sae]
            "b_dec": (mean + std * b_pre).contiguous()}


def write_sparsify(sae: SparseAutoencoder, folder: Path) -> None:
    """EleutherAI/sparsify SparseCoder.save_to_disk's layout: cfg.json (+ d_in), sae.safetensors."""
    from safetensors.torch import save_file

    f = folded(sae)
    folder.mkdir(parents=True)
    save_file({"encoder.weight": f["enc"], "encoder.bias": f["b_enc"], "W_dec": f["dec"].T.contiguous(),
               "b_dec": f["b_dec"]}, str(folder / "sae.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({
        "activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": sae.cfg.n_latents,
        "k": sae.cfg.k, "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": D}))


def write_dictionary_learning(sae: SparseAutoencoder, folder: Path) -> None:
    """dictionary_learning's training output: ae.pt (state dict of AutoEncoderTopK / BatchTopKSAE), config.json."""
    f = folded(sae)
    folder.mkdir(parents=True)
    batch = sae.cfg.arch == "batchtopk"
    torch.save({"k": torch.tensor(sae.cfg.k, dtype=torch.int),
                "threshold": sae.threshold.detach().clone() if batch else torch.tensor(-1.0),
                "decoder.weight": f["dec"], "encoder.weight": f["enc"], "encoder.bias": f["b_enc"],
                "b_dec": f["b_dec"]}, folder / "ae.pt")
    (folder / "config.json").write_text(json.dumps({"trainer": {
        "trainer_class": "BatchTopKTrainer" if batch else "TopKTrainer",
        "dict_class": "BatchTopKSAE" if batch else "AutoEncoderTopK", "activation_dim": D,
        "dict_size": sae.cfg.n_latents, "k": sae.cfg.k, "lm_name": "toy", "layer": 3}}))


def write_saelens(sae: SparseAutoencoder, folder: Path) -> None:
    """SAELens's disk format for a topk SAE (cfg.json + sae_weights.safetensors), written by hand."""
    from safetensors.torch import save_file

    f = folded(sae)
    folder.mkdir(parents=True)
    save_file({"W_enc": f["enc"].T.contiguous(), "b_enc": f["b_enc"], "W_dec": f["dec"].T.contiguous(),
               "b_dec": f["b_dec"]}, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"architecture": "topk", "d_in": D, "d_sae": sae.cfg.n_latents,
                                                 "k": sae.cfg.k, "dtype": "float32", "apply_b_dec_to_input": True,
                                                 "normalize_activations": "none", "metadata": {}}))


WRITERS = {"sparsify": write_sparsify, "dictionary_learning": write_dictionary_learning, "saelens": write_saelens}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_round_trip_through_each_format(store, tmp_path, fmt, arch):
    if arch == "batchtopk" and fmt != "dictionary_learning":
        pytest.skip("batchtopk with a threshold is dictionary_learning's BatchTopKSAE (SAELens's is jumprelu, "
                    "tested with the export)")
    folder = trained(store, tmp_path / "sae", arch=arch, normalize_inputs=True, pre_bias=True)
    ours = SparseAutoencoder.load(folder / "sae.safetensors")
    WRITERS[fmt](ours, tmp_path / fmt)
    ext = read_external(fmt, tmp_path / fmt, d_in=D)
    out = write_external(ext, store, tmp_path / "ext", model="toy", layer=3, name="back", fmt=fmt,
                         path=tmp_path / fmt, progress=False)
    # the codes written in our layout equal the ones our own SAE wrote, row for row
    assert_same_codes(torch.from_numpy(zstore.read_array(tmp_path / "ext/latents.zarr", "codes")),
                      torch.from_numpy(zstore.read_array(folder / "latents.zarr", "codes")))
    assert zstore.read_index(tmp_path / "ext/latents.zarr").equals(zstore.read_index(folder / "latents.zarr"))
    # its sparsity metrics are ours (FVU is not: ours is measured in the normalised space, an external SAE's in
    # the layer's own space)
    theirs_m = json.loads((folder / "metrics.json").read_text())["splits"]
    for split in ("train", "test"):
        assert out["splits"][split]["l0"] == pytest.approx(theirs_m[split]["l0"])
        assert out["splits"][split]["dead_fraction"] == pytest.approx(theirs_m[split]["dead_fraction"])
    assert out["rep"] == "ext-back" and out["sparsity"] is None


def test_export_round_trips_through_our_saelens_reader(store, tmp_path):
    folder = trained(store, tmp_path / "sae", normalize_inputs=True, pre_bias=True)
    ext = read_external("saelens", export_sae(folder, model="toy", layer=3), d_in=D)
    x = torch.from_numpy(zstore.read_array(store, "layer3"))
    assert_same_codes(ext.encode(x), torch.from_numpy(zstore.read_array(folder / "latents.zarr", "codes")))


# ---------------------------------------------------------------- bad files: one line naming the file


def random_sae(**kw) -> SparseAutoencoder:
    return SparseAutoencoder(SAEConfig(input_dim=D, n_latents=40, k=8, **kw), generator=torch.Generator().manual_seed(0))


def spoil(fmt: str, folder: Path, how: str) -> str:
    """Break one file of a good folder; returns the file name the error must name."""
    from safetensors.torch import load_file, save_file

    if fmt == "saelens":
        cfg, weights, enc = folder / "cfg.json", folder / "sae_weights.safetensors", "W_enc"
    elif fmt == "sparsify":
        cfg, weights, enc = folder / "cfg.json", folder / "sae.safetensors", "encoder.weight"
    else:
        cfg, weights, enc = folder / "config.json", folder / "ae.pt", "encoder.weight"
    if how == "arch":
        d = json.loads(cfg.read_text())
        if fmt == "saelens":
            d["architecture"] = "gated_plus"
        elif fmt == "sparsify":
            d["activation"] = "softmax"
        else:
            d["trainer"]["dict_class"] = "CrossCoder"
        cfg.write_text(json.dumps(d))
        return cfg.name
    tensors = torch.load(weights, weights_only=True) if fmt == "dictionary_learning" else load_file(str(weights))
    if how == "missing":
        del tensors[enc if fmt != "dictionary_learning" else "b_dec"]
    else:  # width: a 13-d SAE for a 12-d layer
        return "width"
    if fmt == "dictionary_learning":
        torch.save(tensors, weights)
    else:
        save_file(tensors, str(weights))
    return weights.name


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("how", ["missing", "arch", "width"])
def test_bad_file_is_one_line_naming_it(tmp_path, fmt, how):
    WRITERS[fmt](random_sae(pre_bias=True), tmp_path / fmt)
    named = spoil(fmt, tmp_path / fmt, how)
    with pytest.raises(InteropError) as err:
        read_external(fmt, tmp_path / fmt, d_in=D + 1 if how == "width" else D)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / fmt) in msg
    if how == "width":
        assert f"width {D + 1}" in msg
    else:
        assert named in msg
        assert {"missing": "missing tensor", "arch": "not supported"}[how] in msg


def test_config_reads_external_files_before_any_job(tmp_path):
    """validate() (which the Snakefile runs before building any job) reads each file with the node's width."""
    from audiosae.interop.external import node_width

    cfg = tiny_config()
    validate(cfg)
    width = node_width(cfg, "crepe", 4)
    assert width and width != D
    WRITERS["sparsify"](random_sae(), tmp_path / "sp")  # a 12-d SAE: not crepe layer 4's width
    bad = tiny_config(sae={"sparsities": [0.5, 0.9], "dim": "x4", "epochs": 12, "external": [
        {"name": "sp", "model": "crepe", "layer": 4, "format": "sparsify", "path": str(tmp_path / "sp")}]})
    with pytest.raises(ConfigError, match=r"sae\.external\[0\].*cfg\.json: d_in = 12, but the node's layer has width"):
        validate(bad)
    for entry, pattern in ((dict(model="nope"), "not a model of this study"), (dict(layer=5), "not analysed"),
                           (dict(level="frame"), "frame-level external SAEs"), (dict(format="hf"), "format")):
        cfg = tiny_config(sae={"external": [{"name": "sp", "model": "crepe", "layer": 4, "format": "sparsify",
                                             "path": str(tmp_path / "sp"), **entry}]})
        with pytest.raises(ConfigError, match=pattern):
            validate(cfg)


# ---------------------------------------------------------------- frame level


def test_frame_level_external_sae_pools_like_our_frame_saes(tmp_path):
    """A frame SAE of ours, written in sparsify's layout and read back at the frame level, gives the latents.zarr
    (codes = mean over each crop's frames, codes_max) that train_frame_sae wrote."""
    from audiosae.frames.extract import extract_frames
    from audiosae.frames.train import FrameSAEPaths, train_frame_sae
    from tiny_models import write_corpus

    global D
    manifest = write_corpus(tmp_path, n_clips=6)
    frames = tmp_path / "crepe.zarr"
    extract_frames(manifest, frames, {"source": "crepe", "capacity": "tiny", "hop_ms": 20, "layers": [6]},
                   name="crepe", layers=[6], weights_dir=None, chunk_frames=32, device="cpu", root=tmp_path,
                   progress=False, crop_seconds=1.0, train_crops=2, crop_seed=42)
    ours = FrameSAEPaths.in_dir(tmp_path / "fsae")
    train_frame_sae(frames, model="crepe", layer=6, sparsity=0.9, outputs=ours, dim="x2", batch_size=32, epochs=2,
                    shuffle_buffer=64, normalize_inputs=True, pre_bias=True, device="cpu", progress=False)
    sae = SparseAutoencoder.load(ours.weights)
    saved, D = D, sae.cfg.input_dim
    try:
        write_sparsify(sae, tmp_path / "sp")
    finally:
        D = saved
    ext = read_external("sparsify", tmp_path / "sp", d_in=sae.cfg.input_dim)
    metrics = write_external(ext, frames, tmp_path / "ext", model="crepe", layer=6, name="sp", fmt="sparsify",
                             path=tmp_path / "sp", level="frame", pooling="mean", progress=False)
    for array in ("codes", "codes_max"):
        np.testing.assert_allclose(zstore.read_array(tmp_path / "ext/latents.zarr", array),
                                   zstore.read_array(ours.latents, array), rtol=1e-5, atol=1e-5)
    assert zstore.read_index(tmp_path / "ext/latents.zarr").equals(zstore.read_index(ours.latents))
    assert metrics["level"] == "frame" and metrics["splits"]["test"]["l0"] == sae.cfg.k
    # its test frames' codes, in the layout of ours, which the frame acoustics read
    from audiosae.frames.acoustics import FrameSource
    from audiosae.frames.train import read_frame_codes

    theirs, attrs = read_frame_codes(tmp_path / "ext/frame_codes.zarr")
    mine, _ = read_frame_codes(ours.frame_codes)
    assert theirs.shape == mine.shape and attrs["rep"] == "ext-sp" and attrs["complete"]
    assert_same_codes(torch.from_numpy(theirs), torch.from_numpy(mine))
    for array in ("clip_id", "first_row", "n_frames", "time_s"):
        np.testing.assert_array_equal(zstore.open_store(tmp_path / "ext/frame_codes.zarr")[array][:],
                                      zstore.open_store(ours.frame_codes)[array][:])
    source = FrameSource("fsae", tmp_path / "ext/frame_codes.zarr")
    assert source.n_units == sae.cfg.n_latents and len(source.clips) == len(FrameSource("fsae", ours.frame_codes).clips)
    # and its export: SAELens encodes the frames as our frame SAE does
    export = export_sae(ours.weights.parent, model="crepe", layer=6, level="frame", pooling="mean")
    assert "hidden_states.6" == json.loads((export / "cfg.json").read_text())["metadata"]["hook_name"]
    sae_lens = pytest.importorskip("sae_lens")
    from audiosae.frames.store import layer_array

    x = torch.from_numpy(np.asarray(layer_array(frames, 6)[:], dtype=np.float32))
    with torch.no_grad():
        assert_same_codes(sae_lens.SAE.load_from_disk(str(export)).encode(x), sae.encode(x))
