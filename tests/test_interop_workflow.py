"""The tiny study with SAEs trained elsewhere (one per format at the clip level, one at the frame level; the session
study `crepe_run` of conftest.py, which tests/test_splice_workflow.py reads too): each
reaches every per-representation table of the report as rep ext-<name> (the clip-level ones the ablation table,
the frame-level one the frame tables), and every SAE trained here, every level and seed, gets an export/ folder
that SAELens loads, its card naming the model's weights and the seed stability. A bad external file stops the
run with one line before any job."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from audiosae import layout
from audiosae import store as zstore
from audiosae.config import validate
from audiosae.interop.external import node_width
from audiosae.sae.model import SAEConfig, SparseAutoencoder
from conftest import run_snakemake, tiny_config

import test_interop as layouts

pytestmark = pytest.mark.workflow

# Tables with one row per representation the external reps must reach.
REP_TABLES = ("probe", "confusion", "reconstruction", "disentanglement", "attributes", "categories", "factors",
              "interpretable", "mcc", "ground_truth")
CLIP_TABLES = ("ablation",)  # clip-level SAEs only: the ablation decodes codes of one vector per clip
FRAME_TABLES = ("frame_mcc", "frame_acoustics")  # frame-level ones: their test frames' codes over time


def study(tmp_path, externals: list[dict]) -> dict:
    """crepe layer 4 at both levels, SAEs of a second seed (so a stability file), the imported SAEs, splice on."""
    cfg = tiny_config()
    cfg["splice"] = {"enabled": True}  # every SAE of the node spliced, imported ones too (tests/test_splice_workflow.py)
    cfg["probe"] = {**cfg.get("probe", {}), "bootstrap": 200}
    cfg["models"] = {"crepe": {**cfg["models"]["crepe"], "layers": [4]}}
    cfg["sae"] = {**cfg["sae"], "sparsities": [0.9], "external": externals, "levels": ["clip", "frame"],
                  "frame": {"batch_size": 256, "epochs": 3}}
    cfg["controls"] = {"seeds": [42, 43], "seed_sparsities": [0.9]}
    return cfg


def write_externals(tmp_path) -> list[dict]:
    """A random pre-biased top-k SAE of crepe layer 4's width, written in each library's layout."""
    width = node_width(validate(tiny_config()), "crepe", 4)
    out = []
    for i, fmt in enumerate(sorted(layouts.WRITERS)):
        layouts.D = width  # the writers fold with identity statistics of this width
        sae = SparseAutoencoder(SAEConfig(input_dim=width, n_latents=64, k=6, pre_bias=True),
                                generator=torch.Generator().manual_seed(i))
        torch.nn.init.normal_(sae.b_pre, std=0.1)
        layouts.WRITERS[fmt](sae, tmp_path / fmt)
        out.append({"name": f"{fmt}_k6", "model": "crepe", "layer": 4, "format": fmt, "path": str(tmp_path / fmt)})
    layouts.D = 12
    return out


def test_external_saes_reach_every_table_and_exports_load_in_saelens(crepe_run):
    workdir, externals = crepe_run
    clip = {f"ext-{e['name']}" for e in externals if e.get("level", "clip") == "clip"}
    frame = {"ext-frame_sp"}
    reps = clip | frame
    for table, wanted in [(t, reps) for t in REP_TABLES] + [(t, clip) for t in CLIP_TABLES] + \
            [(t, frame) for t in FRAME_TABLES]:
        df = pd.read_csv(workdir / f"results/tables/{table}.csv")
        assert wanted <= set(df["rep"]), (table, sorted(set(df["rep"])))
        assert not (reps - wanted) & set(df["rep"]), (table, sorted(set(df["rep"])))
        assert set(df.loc[df["rep"].isin(wanted), "level"]) == {"external"}
    rec = pd.read_csv(workdir / "results/tables/reconstruction.csv").set_index("rep")
    assert (rec.loc[sorted(reps), "test_l0"] == 6).all()  # every format's top-k kept its k
    ablation = pd.read_csv(workdir / "results/tables/ablation.csv")
    assert ablation.loc[ablation["rep"].isin(clip), "recall"].notna().all()
    acoustics = pd.read_csv(workdir / "results/tables/frame_mcc.csv").set_index("rep")
    assert 0 < acoustics.loc["ext-frame_sp", "mcc"] <= 1 and acoustics.loc["ext-frame_sp", "n_units"] == 64
    page = (workdir / "results/report.html").read_text()
    assert all(r in page for r in reps)
    claims = json.loads((workdir / "results/claims.json").read_text())
    for c in claims:  # the paper's claims are about the SAEs trained here, and say that they leave the others out
        counted, _, left_out = c["sentence"].partition("not counted:")
        assert "ext-" not in counted and "ext-" not in json.dumps(c["numbers"]), c["sentence"]
        assert c["number"] not in (1, 2, 5) or all(r in left_out for r in clip), c["sentence"]

    # the SAE trained here: SAELens loads its export and encodes the codes the workflow stored
    sae_lens = pytest.importorskip("sae_lens")
    folder = workdir / "results/sae/crepe/layer4/sparsity0.9"
    loaded = sae_lens.SAE.load_from_disk(str(folder / "export"))
    x = torch.from_numpy(zstore.read_array(workdir / "results/embeddings/crepe.zarr", "layer4"))
    codes = torch.from_numpy(zstore.read_array(folder / "latents.zarr", "codes"))
    with torch.no_grad():
        layouts.assert_same_codes(loaded.encode(x), codes)
    card = (folder / "export/README.md").read_text()
    assert "| technique |" in card and "Interpretable share" in card
    # the card names the weights the embedding store records, and this SAE's stability against seed 43
    attrs = zstore.read_attrs(workdir / "results/embeddings/crepe.zarr")
    assert "sha256:" in attrs["revision"] and f"| revision | `{attrs['revision']}` |" in card
    stability = json.loads((workdir / "results/controls/stability/crepe/layer4.json").read_text())
    [pair] = [g for g in stability["groups"] if g["level"] == "clip"][0]["pairs"]
    assert f"| 43 | {pair['n_a']} / {pair['n_b']} | {pair['mean_cos']:.4g} |" in card

    # every seed and level is exported (twins are not, tests/test_controls_workflow.py); SAELens loads the
    # seed's export and encodes its stored codes
    for level, kind in (("clip", "sae"), ("frame", "fsae")):
        for rep in (f"{kind}0.9", f"{kind}0.9-seed43"):
            card = (workdir / layout.export_dir("crepe", 4, rep) / "README.md").read_text()
            assert "| 4" in card and "not measured" not in card and attrs["revision"] in card, (rep, card)
    seed = workdir / layout.sae_dir("crepe", 4, "sae0.9-seed43")
    assert "seed | 43" in (seed / "export/README.md").read_text()
    loaded = sae_lens.SAE.load_from_disk(str(seed / "export"))
    with torch.no_grad():
        layouts.assert_same_codes(loaded.encode(x), torch.from_numpy(zstore.read_array(seed / "latents.zarr",
                                                                                        "codes")))


@pytest.mark.parametrize("fmt", sorted(layouts.WRITERS))
def test_bad_external_file_stops_before_any_job(tmp_path, fmt):
    [entry] = [e for e in write_externals(tmp_path / "ext") if e["format"] == fmt]
    weights = {"saelens": "sae_weights.safetensors", "sparsify": "sae.safetensors", "dictionary_learning": "ae.pt"}
    (tmp_path / "ext" / fmt / weights[fmt]).write_bytes(b"not a tensor file")
    proc = run_snakemake(tmp_path / "run", config=study(tmp_path, [entry]), check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("audiosae:")]
    assert len(lines) == 1 and weights[fmt] in lines[0] and "sae.external[0]" in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "run" / "results").exists()  # nothing ran
