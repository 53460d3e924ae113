"""The frame level through Snakemake: frame SAEs beside clip SAEs, read downstream like clip SAEs."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from audiosae import store as zstore
from audiosae.frames.store import require_complete
from conftest import run_snakemake, tiny_config
from test_workflow import assert_same_outputs, incomplete_outputs, kill_when, planned

pytestmark = pytest.mark.workflow


def frames_config(**sae):
    cfg = tiny_config()
    cfg["models"] = {"resemblyzer": {"source": "resemblyzer", "layers": [2]}}
    # one sparsity: the clip SAE and the frame SAE side by side (the SAE grain per sparsity: tests/test_workflow.py)
    cfg["sae"] = {**cfg["sae"], "sparsities": [0.9], "levels": ["clip", "frame"],
                  "frame": {"batch_size": 256, "epochs": 3, **sae}}
    return cfg


@pytest.fixture(scope="module")
def frames_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("frames_run")
    run_snakemake(work, config=frames_config())
    return work


def test_frame_saes_sit_beside_clip_saes_in_every_table(frames_run):
    res = frames_run / "results"
    for s in ("0.9",):
        d = res / f"fsae/resemblyzer/layer2/sparsity{s}"
        assert json.loads((d / "metrics.json").read_text())["level"] == "frame"
        # Same rows as the embedding store: probes and disentanglement read it unchanged.
        assert zstore.read_index(d / "latents.zarr").equals(zstore.read_index(res / "embeddings/resemblyzer.zarr"))
        assert (res / f"probe/technique/resemblyzer/layer2/fsae{s}.json").exists()
        assert (res / f"disentangle/resemblyzer/layer2/fsae{s}.json").exists()
        assert (res / f"frame_acoustics/resemblyzer/layer2/fsae{s}.json").exists()
    for name in ("reconstruction", "probe", "disentanglement"):
        t = pd.read_csv(res / f"tables/{name}.csv")
        assert {"clip", "frame"} <= set(t["level"]), name
    levels = pd.read_csv(res / "tables/levels.csv")
    wanted = ["test_fvu_clip", "test_fvu_frame", "accuracy_frame", "interpretable_share_clip",
              "interpretable_share_frame"]
    assert len(levels) == 1 and levels[wanted].notna().all().all()  # one row per sparsity
    assert (levels["probe_target"] == "technique").all()  # the first probe target
    # The frame SAE's atlas cards draw each top clip's activation trace over its spectrogram.
    page = (res / "atlas/resemblyzer/layer2/fsae0.9/index.html").read_text()
    blob = json.loads(page.split('id="atlas-data">', 1)[1].split("</script>", 1)[0])
    top = [item for unit in blob["units"] for item in unit["top"]]
    assert top and all(len(item["trace"]) == 38 for item in top)  # 1.5 s crops at 25 points per second
    assert all(max(v for v in item["trace"] if v is not None) == pytest.approx(item["a"], rel=1e-3) for item in top)
    mcc = pd.read_csv(res / "tables/frame_mcc.csv")
    assert list(mcc["rep"]) == ["original", "fsae0.9"]
    claims = json.loads((res / "claims.json").read_text())
    assert any(c["number"] == 6 and c["table"] == "frame_mcc" for c in (claims["claims"] if "claims" in claims else claims))
    html = (res / "report.html").read_text()
    assert "levels_comparison" in html and "frame_acoustics_best_rho" in html and "fsae0.9" in html


def test_frame_settings_replan_only_the_frame_level(frames_run):
    assert planned(frames_run, frames_config()) == Counter()
    after = Counter({"probe": 1, "disentangle": 1, "frame_acoustics": 1, "atlas": 1, "aggregate": 1, "figures": 1,
                     "atlas_report": 1, "atlas_site": 1, "frame_report": 1, "report": 1, "all": 1,
                     "export_sae": 1})  # the frame SAE's export/ folder
    assert planned(frames_run, frames_config(epochs=4)) == Counter({"train_frame_sae": 1, **after})
    cfg = frames_config()
    cfg["frames"] = {"window_seconds": 1.0}
    assert planned(frames_run, cfg) == Counter({"extract_frames": 1, "train_frame_sae": 1, **after,
                                                "frame_acoustics": 2})


def _frame_store_being_written(workdir) -> list:
    """Temporary siblings of a frame store (results/frames/<model>.zarr.tmp-<pid>) that hold written data."""
    return [p for p in (workdir / "results/frames").glob("*.zarr.tmp-*") if (p / "zarr.json").exists()]


def test_sigkill_while_a_frame_store_is_written_then_rerun_gives_identical_frame_saes(frames_run, tmp_path):
    """Killed while extract_frames writes the frame store: a partial store is left in its temporary sibling,
    the store itself is absent and marked incomplete, the rerun removes the partial store, and the store and the
    frame SAEs trained on it equal the clean run's byte for byte (JSON up to the run's own timings)."""
    from audiosae import layout

    work = tmp_path / "killed"
    work.mkdir()
    store = "results/frames/resemblyzer.zarr"
    fsaes = [layout.sae_dir("resemblyzer", 2, layout.Rep.sae("0.9", "frame"))]
    targets = [f"{d}/metrics.json" for d in fsaes]
    # Also stops when the store itself is being written (a writer that skipped the temporary folder).
    kill_when(work, frames_config(), lambda: bool(_frame_store_being_written(work)) or (work / store).exists(),
              "the frame store's temporary folder appeared", targets=targets)
    partial = _frame_store_being_written(work)
    assert not (work / store).exists(), "the killed frame store is in place, partly written"
    assert partial, "no partial frame store left by the kill"
    assert store in incomplete_outputs(work)
    # Not taken as complete: the rerun plans the extraction and the frame SAEs after it.
    again = planned(work, frames_config(), "--rerun-incomplete", *targets)
    assert again["extract_frames"] == 1 and again["train_frame_sae"] == 1, again
    run_snakemake(work, "--rerun-incomplete", *targets, config=frames_config())
    assert not incomplete_outputs(work)
    require_complete(work / store)
    assert not any(p.exists() for p in partial), "the killed writer's partial store is still on disk"
    assert_same_outputs(frames_run, work, [store, *fsaes])
