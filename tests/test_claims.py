"""The four claims are answered from the numbers: change a number, the sentence changes."""

from __future__ import annotations

import pytest
from fake_results import write_fake_results

from audiosae.report.aggregate import read_tables, write_tables
from audiosae.report.claims import (
    MIXED,
    NOT_SUPPORTED,
    SUPPORTED,
    UNTESTABLE,
    answer_claims,
    claim_layers,
    claim_reconstruction,
    claim_task_information,
)

VERDICTS = {SUPPORTED, MIXED, NOT_SUPPORTED, UNTESTABLE}


@pytest.fixture(scope="module")
def tables_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    paths = write_fake_results(root)
    write_tables(paths["metrics"], paths["probes"], paths["disentangle"], root / "results/tables")
    return root / "results/tables"


def test_four_claims_with_verdicts(tables_dir):
    claims = answer_claims(read_tables(tables_dir))
    assert [c.number for c in claims] == [1, 2, 3, 4]
    for c in claims:
        assert c.verdict in VERDICTS
        assert c.sentence and c.rule and c.table and c.figure
        assert any(ch.isdigit() for ch in c.sentence)


def test_changing_one_probe_accuracy_changes_claim_one(tables_dir):
    before = answer_claims(read_tables(tables_dir))
    probe_csv = tables_dir / "probe.csv"
    original_text = probe_csv.read_text()
    tables = read_tables(tables_dir)
    probe = tables["probe"]
    row = probe.index[(probe["model"] == "crepe") & (probe["layer"] == 5) & (probe["rep"] == "sae0.9")][0]
    probe.loc[row, "accuracy"] = probe.loc[row, "accuracy"] - 0.30  # one input number, 30 points lower
    try:
        probe.to_csv(probe_csv, index=False)
        after = answer_claims(read_tables(tables_dir))
    finally:
        probe_csv.write_text(original_text)
    assert after[0].sentence != before[0].sentence
    orig = probe[(probe["model"] == "crepe") & (probe["layer"] == 5) & (probe["rep"] == "original")]["accuracy"].iloc[0]
    loss = 100 * (orig - probe.loc[row, "accuracy"])
    assert f"lose at most {loss:.1f} points" in after[0].sentence
    assert "worst: crepe layer 5" in after[0].sentence
    assert after[0].verdict == NOT_SUPPORTED
    assert [c.sentence for c in after[1:]] == [c.sentence for c in before[1:]]  # only the matching claim moves


def test_claim_one_verdicts_follow_the_tolerance(tables_dir):
    probe = read_tables(tables_dir)["probe"].copy()
    orig = probe[probe["rep"] == "original"].set_index(["model", "layer"])["accuracy"]
    key = list(zip(probe["model"], probe["layer"]))
    probe["accuracy"] = [orig[k] - (0.01 if r != "original" else 0) for k, r in zip(key, probe["rep"])]
    c = claim_task_information(probe)
    assert c.verdict == SUPPORTED and "lose at most 1.0 points" in c.sentence
    assert "4 of 4 nodes stay within 5 points" in c.sentence


def test_claim_two_depends_on_fvu(tables_dir):
    rec = read_tables(tables_dir)["reconstruction"].copy()
    rec.loc[rec["sparsity"] == 0.9, "test_fvu"] = rec.loc[rec["sparsity"] == 0.5, "test_fvu"].to_numpy() * 0.9
    c = claim_reconstruction(rec)
    assert c.verdict == NOT_SUPPORTED
    assert "raises FVU in 0 of 4 nodes" in c.sentence
    single = claim_reconstruction(rec[rec["sparsity"] == 0.5])
    assert single.verdict == UNTESTABLE


def test_claim_four_needs_two_layers(tables_dir):
    cats = read_tables(tables_dir)["categories"]
    c = claim_layers(cats)
    assert c.verdict in VERDICTS - {UNTESTABLE}
    assert "crepe: pitch" in c.sentence and "resemblyzer: pitch" in c.sentence
    one_layer = cats[cats["layer"] == 1]
    assert claim_layers(one_layer).verdict == UNTESTABLE
