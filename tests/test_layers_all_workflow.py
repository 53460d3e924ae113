"""`layers: all` on a Hugging Face model before its download: the DAG waits for download_model (a checkpoint)."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import run_snakemake, tiny_config
from fake_hub import hub_for_folder, serving
from test_workflow import planned
from tiny_models import save_tiny_hf_model

pytestmark = pytest.mark.workflow
COMMIT = "c" * 40


def test_layers_all_on_an_hf_model_resolves_after_its_download(tmp_path):
    folder = save_tiny_hf_model("hubert", tmp_path / "saved", commit=COMMIT)
    (folder / "audiosae_revision.json").unlink()  # download_model writes its own record
    cfg = tiny_config()
    cfg["models"] = {"tinyhub": {"source": "hf", "id": "tiny-org/tiny-hubert", "revision": COMMIT, "layers": "all"}}
    cfg["sae"]["sparsities"] = [0.5]
    work = tmp_path / "work"
    with serving(hub_for_folder(folder, "tiny-org/tiny-hubert", COMMIT)) as url:
        env = {"HF_ENDPOINT": url, "HF_HUB_OFFLINE": "0"}
        # Before the download the depth is unknown: the dry run plans the download and stops there.
        before = run_snakemake(work, "-n", config=cfg, env=env)
        assert "download_model" in before.stdout and "checkpoint" in (before.stdout + before.stderr).lower()
        run_snakemake(work, "resources/models/tinyhub", config=cfg, env=env)
    assert (work / "resources/models/tinyhub/config.json").exists()
    # After it, `all` is the snapshot's 3 blocks + the embedding output: 4 nodes.
    jobs = planned(work, cfg)
    assert jobs["train_sae"] == 4 and jobs["probe"] == 8 and jobs["disentangle"] == 8, jobs
    assert "download_model" not in jobs and jobs["extract_embeddings"] == 1
