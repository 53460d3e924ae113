"""The splice stage in a study (issue 27): CREPE's layer 4 with its clip and frame SAEs (two seeds each) and
SAEs imported in every foreign layout spliced back in, the mean floors of both levels, the pitch metrics against the
synthetic corpus's true f0, the table and figures. The study is the session's `crepe_run` (conftest.py), shared
with tests/test_interop_workflow.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.workflow

TRAINED = {"sae0.9", "sae0.9-seed43", "fsae0.9", "fsae0.9-seed43"}


@pytest.fixture(scope="module")
def splice_run(crepe_run):
    return crepe_run[0]


def imported(crepe_run) -> set[str]:
    return {f"ext-{e['name']}" for e in crepe_run[1]}


def test_every_sae_of_the_node_is_spliced_with_its_level_and_floor(splice_run, crepe_run):
    folder = splice_run / "results/splice/crepe/layer4"
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(TRAINED | imported(crepe_run))
    doc = json.loads((folder / "fsae0.9.json").read_text())
    assert doc["level"] == "frame" and doc["primary_metric"] == "pitch_within_50c"
    assert doc["pitch_track"]["clip_id"] and len(doc["pitch_track"]["clean"]) == len(doc["pitch_track"]["times_s"])
    assert json.loads((folder / "ext-frame_sp.json").read_text())["level"] == "frame"  # an imported frame SAE


def test_the_splice_table_holds_pitch_metrics_with_the_clean_network_as_reference(splice_run):
    sp = pd.read_csv(splice_run / "results/tables/splice.csv")
    assert TRAINED <= set(sp["rep"])
    assert {"pitch_error_cents", "pitch_within_50c", "raw_pitch_accuracy", "last_hidden_cosine",
            "probe_accuracy:technique", "probe_accuracy:singer"} <= set(sp["metric"])
    by = sp.set_index(["rep", "metric"])
    for rep in sorted(TRAINED):
        assert by.loc[(rep, "pitch_error_cents"), "clean"] == 0
        assert by.loc[(rep, "pitch_within_50c"), "clean"] == 1
        assert by.loc[(rep, "last_hidden_cosine"), "clean"] == pytest.approx(1)
        assert 0 < by.loc[(rep, "raw_pitch_accuracy"), "clean"] <= 1  # CREPE tracks the synthetic voices' f0
    # the two floors differ: the frame floor wipes every frame, the clip floor only moves the clip's mean
    frame_floor = by.loc[("fsae0.9", "pitch_within_50c"), "mean_patched"]
    clip_floor = by.loc[("sae0.9", "pitch_within_50c"), "mean_patched"]
    assert frame_floor < clip_floor
    ok = sp[sp["fraction_recovered"].notna()]
    assert (ok["lo"] <= ok["fraction_recovered"] + 1e-9).all() and (ok["fraction_recovered"] <= ok["hi"] + 1e-9).all()
    assert (splice_run / "results/figures/splice_pitch.png").stat().st_size > 0
    assert (splice_run / "results/figures/splice_recovered.png").stat().st_size > 0
