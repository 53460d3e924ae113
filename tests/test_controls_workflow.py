"""The controls run as part of the study (issue 19): a random-weights twin beside the model through every stage,
SAEs of two seeds matched in a stability table, k-sparse probing of layer, SAEs and twin, and every claim of the
report judged against the twin. One small study (Resemblyzer, one layer) run to the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from audiosae.config import ConfigError, validate
from audiosae.store import read_attrs
from conftest import run_snakemake, tiny_config

VERDICTS = {"supported", "also on random weights", "inconclusive", "mixed", "not supported", "untestable"}


def controls_study() -> dict:
    cfg = tiny_config()
    cfg["models"] = {"resemblyzer": {"source": "resemblyzer", "layers": [2]}}
    cfg["sae"] = {**cfg["sae"], "sparsities": [0.9]}
    cfg["probe"] = {**cfg.get("probe", {}), "bootstrap": 200}
    cfg["controls"] = {"random_twin": True, "twin_seed": 3, "seeds": [42, 43], "seed_sparsities": [0.9],
                       "sparse_probing": True, "sparse_probe_ks": [1, 5]}
    cfg["splice"] = {"enabled": True}  # splice's claim against the twin, and its seed spread
    return cfg


@pytest.fixture(scope="module")
def controls_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("controls_run")
    run_snakemake(workdir, config=controls_study())
    return workdir


@pytest.mark.workflow
def test_the_twin_goes_through_every_stage_with_its_provenance(controls_run):
    tables = controls_run / "results/tables"
    for name in ("probe", "reconstruction", "disentanglement", "interpretable", "ablation"):
        models = set(pd.read_csv(tables / f"{name}.csv")["model"])
        assert models == {"resemblyzer", "resemblyzer_random"}, (name, models)
    attrs = read_attrs(controls_run / "results/embeddings/resemblyzer_random.zarr")
    assert "random initialisation, seed 3" in json.dumps(attrs)
    assert "random initialisation" not in json.dumps(read_attrs(controls_run / "results/embeddings/resemblyzer.zarr"))
    scale = pd.read_csv(tables / "activation_scale.csv")
    assert list(scale["model"]) == ["resemblyzer"] and (scale[["scale_trained", "scale_twin"]] > 0).all().all()
    # a twin's SAEs are a control, not something to share
    assert (controls_run / "results/sae/resemblyzer/layer2/sparsity0.9/export").is_dir()
    assert not (controls_run / "results/sae/resemblyzer_random/layer2/sparsity0.9/export").exists()


@pytest.mark.workflow
def test_seed_stability_and_spread_are_tabled_and_the_atlas_cards_say_whether_a_latent_recurs(controls_run):
    tables = controls_run / "results/tables"
    st = pd.read_csv(tables / "stability.csv")
    assert set(st["model"]) == {"resemblyzer", "resemblyzer_random"}
    assert set(zip(st["level"], st["sparsity"], st["seed_a"], st["seed_b"])) == {("clip", 0.9, 42, 43)}
    assert st["mean_cos"].between(-1, 1).all() and st["baseline_mean_cos"].between(0, 1).all()
    spread = pd.read_csv(tables / "seed_spread.csv")
    assert {"test_fvu", "interpretable_share", "accuracy_technique", "accuracy_singer"} <= set(spread["metric"])
    assert set(spread["seeds"]) == {"42,43"} and spread["values"].str.count(",").eq(1).all()
    assert (controls_run / "results/sae/resemblyzer/layer2/sparsity0.9-seed43/latents.zarr").is_dir()
    assert (controls_run / "results/figures/stability.png").stat().st_size > 0
    seeded = (controls_run / "results/atlas/resemblyzer/layer2/sae0.9/index.html").read_text()
    other = (controls_run / "results/atlas/resemblyzer/layer2/original/index.html").read_text()
    assert '"rec":[[43,' in seeded.replace(" ", "") and '"rec"' not in other


@pytest.mark.workflow
def test_sparse_probing_compares_layer_saes_and_twin_at_every_k(controls_run):
    sp = pd.read_csv(controls_run / "results/tables/sparse_probing.csv")
    got = set(zip(sp["twin"], sp["rep"], sp["k"]))
    for twin in (False, True):
        for rep in ("original", "sae0.9"):
            for k in (1, 5):
                assert (twin, rep, k) in got
    assert sp["balanced_accuracy"].between(0, 1).all()
    assert {"sae0.9-seed43"} <= set(sp["rep"])  # the extra seed too: the claim's spread over seeds
    sae = sp[sp["rep"] != "original"]
    assert sae["delta"].notna().all() and (sae["delta_lo"] <= sae["delta_hi"]).all()


@pytest.mark.workflow
def test_every_claim_is_judged_against_the_twin_and_the_report_shows_both(controls_run):
    claims = json.loads((controls_run / "results/claims.json").read_text())
    assert any(c["key"] == "sparse-probing" for c in claims)
    by_key = {c["key"]: c for c in claims}
    for key in ("1-technique", "sparse-probing"):  # claims with an effect carry it per seed, for both sides
        assert set(map(str, by_key[key]["numbers"]["effect_seeds"])) >= {"43"}, key
        assert by_key[key]["numbers"]["twin_effect_seeds"], key
    for c in claims:
        assert c["verdict"] in VERDICTS
        assert c["numbers"]["twin_verdict"] in VERDICTS, c["key"]
        assert "Random-weights twin:" in c["sentence"]
    page = (controls_run / "results/report.html").read_text()
    assert page.count('<div class="pair">') == len(claims)  # trained and twin side by side under every claim
    assert "Random-weights twin" in page
    for title in ("A few SAE latents carry a label better than as many dimensions",
                  "SAE dictionaries are determined by the data"):  # the controls section's own claims
        assert title in page


@pytest.mark.workflow
def test_splice_runs_for_trained_model_twin_and_seed_and_its_claim_is_judged_against_the_twin(controls_run):
    sp = pd.read_csv(controls_run / "results/tables/splice.csv")
    assert set(zip(sp["model"], sp["rep"])) == {(m, r) for m in ("resemblyzer", "resemblyzer_random")
                                                for r in ("sae0.9", "sae0.9-seed43")}
    assert {"embedding_cosine", "last_hidden_cosine", "probe_accuracy:technique", "probe_accuracy:singer",
            "centroid_accuracy:singer"} <= set(sp["metric"])
    emb = sp[sp["metric"] == "embedding_cosine"]
    assert (emb["clean"] == 1).all() and (emb["mean_patched"] < 1).all() and emb["primary"].all()
    claim = {c["key"]: c for c in json.loads((controls_run / "results/claims.json").read_text())}["splice"]
    assert claim["verdict"] in VERDICTS and claim["numbers"]["twin_verdict"] in VERDICTS
    assert set(map(str, claim["numbers"]["effect_seeds"])) == {"43"}
    page = (controls_run / "results/report.html").read_text()
    assert "SAE reconstructions keep what the network computes" in page and "splice_recovered" in page


def test_controls_config_errors_name_the_key():
    cfg = tiny_config(controls={"seeds": [42, 43], "seed_sparsities": [0.7]})
    with pytest.raises(ConfigError, match=r"controls.seed_sparsities.*0.7"):
        validate(cfg)
    cfg = tiny_config(controls={"seeds": [42]})
    with pytest.raises(ConfigError, match=r"controls.seeds"):
        validate(cfg)
    cfg = tiny_config()
    cfg["models"]["crepe_random"] = cfg["models"].pop("crepe")
    with pytest.raises(ConfigError, match=r"models.crepe_random.*reserved"):
        validate(cfg)
