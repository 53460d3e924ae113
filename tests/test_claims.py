"""The four claims are answered from the numbers: change a number, the sentence changes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fake_results import write_fake_results

from audiosae.report.aggregate import probe_table, read_tables, write_tables
from audiosae.report.claims import (
    claim_disentanglement,
    INCONCLUSIVE,
    MIXED,
    NOT_SUPPORTED,
    SUPPORTED,
    UNTESTABLE,
    answer_claims,
    claim_layers,
    claim_reconstruction,
    claim_task_information,
)

VERDICTS = {SUPPORTED, MIXED, NOT_SUPPORTED, UNTESTABLE, INCONCLUSIVE}


@pytest.fixture(scope="module")
def tables_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    paths = write_fake_results(root)
    write_tables(paths["metrics"], paths["probes"], paths["disentangle"], root / "results/tables")
    return root / "results/tables"


def test_claims_with_verdicts_and_claim_one_per_target(tables_dir):
    claims = answer_claims(read_tables(tables_dir))
    assert [c.label for c in claims] == ["1 (technique)", "1 (singer)", "2", "3", "4"]
    assert len({c.key for c in claims}) == len(claims)
    for c in claims:
        assert c.verdict in VERDICTS
        assert c.sentence and c.rule and c.table and c.figure
        assert any(ch.isdigit() for ch in c.sentence)
    assert claims[0].rows == {"target": "technique"} and claims[1].sentence.startswith("singer: ")
    assert "singing technique" in claims[0].paper and "technique" not in claims[1].paper


def test_changing_one_probe_difference_changes_its_targets_claim(tables_dir):
    before = answer_claims(read_tables(tables_dir))
    probe_csv = tables_dir / "probe.csv"
    original_text = probe_csv.read_text()
    probe = read_tables(tables_dir)["probe"]
    row = probe.index[(probe["target"] == "technique") & (probe["model"] == "crepe") & (probe["layer"] == 5)
                      & (probe["rep"] == "sae0.9")][0]
    probe.loc[row, ["accuracy", "delta_accuracy", "delta_accuracy_lo", "delta_accuracy_hi"]] = [0.3, -0.30, -0.38, -0.22]
    try:
        probe.to_csv(probe_csv, index=False)
        after = answer_claims(read_tables(tables_dir))
    finally:
        probe_csv.write_text(original_text)
    assert after[0].sentence != before[0].sentence
    assert "the largest drop from the original output is -30.0 points (paired 95 % interval [-38.0, -22.0]) at " \
           "crepe layer 5" in after[0].sentence
    assert after[0].verdict in (MIXED, NOT_SUPPORTED) and after[0].numbers["nodes_lost"] >= 1
    assert [c.sentence for c in after[1:]] == [c.sentence for c in before[1:]]  # only the matching claim moves


def _with_differences(probe, lo, hi, target="technique"):
    """The probe table with every SAE row of `target` given the paired interval [lo, hi] (fractions)."""
    probe = probe[probe["target"] == target].copy()
    sae = probe["rep"] != "original"
    probe.loc[sae, "delta_accuracy"] = (lo + hi) / 2
    probe.loc[sae, "delta_accuracy_lo"] = lo
    probe.loc[sae, "delta_accuracy_hi"] = hi
    return probe, sae


@pytest.mark.parametrize("lo, hi, verdict", [
    (-0.03, 0.01, SUPPORTED),        # a loss beyond 5 points is ruled out at every node
    (-0.20, -0.08, NOT_SUPPORTED),   # a loss beyond 5 points is certain at every node
    (-0.09, -0.01, INCONCLUSIVE),    # no node certainly lost, but the intervals reach past -5 points
])
def test_claim_one_verdicts_follow_the_paired_intervals(tables_dir, lo, hi, verdict):
    probe, _ = _with_differences(read_tables(tables_dir)["probe"], lo, hi)
    assert claim_task_information(probe).verdict == verdict


def test_claim_one_is_mixed_when_some_nodes_are_kept_and_some_lost(tables_dir):
    probe, sae = _with_differences(read_tables(tables_dir)["probe"], -0.02, 0.01)
    crepe = sae & (probe["model"] == "crepe")
    probe.loc[crepe, ["delta_accuracy", "delta_accuracy_lo", "delta_accuracy_hi"]] = [-0.2, -0.25, -0.15]
    c = claim_task_information(probe)
    assert c.verdict == MIXED and c.numbers["nodes_lost"] == 2 and c.numbers["nodes_kept"] == 2


def _probe_json(path, rep, correct, classes=("a", "b")):
    truth = [i % 2 for i in range(len(correct))]
    pred = [t if ok else 1 - t for t, ok in zip(truth, correct)]
    acc = float(np.mean(correct))
    doc = {"target": "word", "label": "word", "split_strategy": "corpus", "model": "m", "layer": 1, "rep": rep,
           "classes": list(classes), "accuracy": acc, "accuracy_ci": [acc - 0.04, acc + 0.04],
           "balanced_accuracy": acc, "macro_f1": acc, "confusion_matrix": [[0, 0], [0, 0]], "n_classes": 2,
           "n_test": len(correct), "test_clip_ids": [f"c{i}" for i in range(len(correct))], "test_y_true": truth,
           "test_y_pred": [pred]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_two_of_four_hundred_clips_differing_is_an_inconclusive_difference(tmp_path):
    """SAE and original probes that disagree on 2 of 400 test clips: the paired interval of the difference holds 0,
    so whether the SAE is better or worse is inconclusive. Claim 1 itself ("about as well", within 5 points) is
    supported: the same narrow interval rules out any loss of 5 points."""
    rng = np.random.default_rng(3)
    original = rng.random(400) < 0.75
    sae = original.copy()
    sae[[17, 301]] = ~sae[[17, 301]]
    paths = [_probe_json(tmp_path / "results/probe/word/m/layer1/original.json", "original", original),
             _probe_json(tmp_path / "results/probe/word/m/layer1/sae0.9.json", "sae0.9", sae)]
    probe = probe_table(paths)
    row = probe[probe["rep"] == "sae0.9"].iloc[0]
    assert row["delta_accuracy_lo"] <= 0 <= row["delta_accuracy_hi"]
    assert row["delta_accuracy_hi"] - row["delta_accuracy_lo"] <= 0.02  # paired: a few draws of the 2 clips
    assert row["delta_verdict"] == "inconclusive"
    c = claim_task_information(probe)
    assert c.numbers["difference_verdicts"] == {"inconclusive": 1}
    assert "inconclusive (interval holds 0) at 1 of 1 nodes" in c.sentence
    assert c.verdict == SUPPORTED


def test_probes_right_on_the_same_clips_are_no_change_not_inconclusive(tmp_path):
    """SAE and original right on exactly the same test clips: 0.000 [0.000, 0.000] is "no change (identical on every
    test clip)" in the table, the claim's sentence and the report page, never "inconclusive" (issue 31)."""
    from audiosae.report.html import build_html

    right = np.random.default_rng(4).random(60) < 0.6
    paths = [_probe_json(tmp_path / "results/probe/word/m/layer1/original.json", "original", right),
             _probe_json(tmp_path / "results/probe/word/m/layer1/sae0.9.json", "sae0.9", right.copy())]
    probe = probe_table(paths)
    row = probe[probe["rep"] == "sae0.9"].iloc[0]
    assert (row["delta_accuracy"], row["delta_accuracy_lo"], row["delta_accuracy_hi"]) == (0.0, 0.0, 0.0)
    assert row["delta_verdict"] == "no change (identical on every test clip)"
    c = claim_task_information(probe)
    assert c.numbers["difference_verdicts"] == {"no change (identical on every test clip)": 1}
    assert "no change (identical on every test clip) at 1" in c.sentence and "inconclusive (interval holds 0) at 0" \
        in c.sentence
    page = build_html(tables={"probe": probe}, figures={}, captions={}, claims=[c], config_yaml="report: {title: t}\n")
    assert "no change (identical on every test clip)" in page


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


# ---------------------------------------------------------------- planted tables: every verdict of claims 3 and 4


def _disentanglement(pairs: list[tuple[bool, bool]], target: str = "egemaps") -> pd.DataFrame:
    """One node per pair: an original row and an SAE row whose completeness is higher (first flag) and whose
    effective code count is lower (second flag) than the original's, or not."""
    rows = []
    for i, (higher, fewer) in enumerate(pairs):
        rows.append({"model": "m", "layer": i, "rep": "original", "target": target, "top_n": 10,
                     "completeness_mean": 0.30, "effective_codes_mean": 20.0})
        rows.append({"model": "m", "layer": i, "rep": "sae0.5", "target": target, "top_n": 10,
                     "completeness_mean": 0.40 if higher else 0.30, "effective_codes_mean": 12.0 if fewer else 25.0})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("pairs, verdict", [
    ([(True, True)] * 4, SUPPORTED),
    ([(True, True)] * 3 + [(False, False)], SUPPORTED),  # 75 %: the majority threshold, inclusive
    ([(True, True)] * 3 + [(True, False)], SUPPORTED),  # higher in 4 of 4, fewer in 3 of 4: both reach 75 %
    ([(True, True)] * 2 + [(True, False)] * 2, MIXED),  # higher in 4 of 4, fewer in only 2 of 4
    ([(True, True)] * 2 + [(False, False)] * 2, MIXED),
    ([(True, False)] * 4, MIXED),  # completeness everywhere, never fewer codes
    ([(True, True)] + [(False, False)] * 3, NOT_SUPPORTED),  # 25 %
    ([(False, False)] * 4, NOT_SUPPORTED),
])
def test_claim_three_verdict_from_planted_pairs(pairs, verdict):
    c = claim_disentanglement(_disentanglement(pairs))
    assert c.verdict == verdict, c.sentence
    higher = sum(h for h, _ in pairs)
    fewer = sum(f for _, f in pairs)
    assert c.numbers["pairs"] == len(pairs)
    assert (c.numbers["completeness_higher"], c.numbers["effective_codes_fewer"]) == (higher, fewer)
    assert f"in {higher} of {len(pairs)}" in c.sentence and f"lower in {fewer} of {len(pairs)}" in c.sentence


def test_claim_three_is_untestable_without_egemaps_pairs():
    assert claim_disentanglement(_disentanglement([(True, True)] * 4, target="factors")).verdict == UNTESTABLE
    no_original = _disentanglement([(True, True)] * 4)
    assert claim_disentanglement(no_original[no_original["rep"] != "original"]).verdict == UNTESTABLE


def _categories(models: dict[str, dict[int, tuple[int, int]]]) -> pd.DataFrame:
    """Per model and layer, (pitch, formant+MFCC) counts among the top attributes of both representations;
    the remaining attributes of a top-10 are loudness."""
    rows = []
    for model, layers in models.items():
        for layer, (pitch, phonetic) in layers.items():
            for rep in ("original", "sae0.5"):
                for category, n in (("pitch", pitch), ("formants", phonetic - phonetic // 2),
                                    ("MFCC", phonetic // 2), ("loudness", 10 - pitch - phonetic)):
                    rows.append({"model": model, "layer": layer, "rep": rep, "target": "egemaps", "ranking": "r2",
                                 "category": category, "count": n})
                # another ranking and target, which claim 4 must not read: the opposite pattern
                rows.append({"model": model, "layer": layer, "rep": rep, "target": "egemaps", "ranking": "completeness",
                             "category": "pitch", "count": 10 - pitch})
    return pd.DataFrame(rows)


EARLY_PITCH = {1: (6, 1), 5: (2, 5)}  # follows: pitch falls, phonetics rise
LATE_PITCH = {1: (2, 5), 5: (6, 1)}  # the opposite
FLAT = {1: (3, 3), 5: (3, 3)}  # nothing changes: does not follow
PITCH_ONLY = {1: (6, 2), 5: (3, 2)}  # pitch falls, phonetics unchanged: follows
BOTH_FALL = {1: (6, 3), 5: (3, 1)}  # pitch falls but phonetics fall too: does not follow


@pytest.mark.parametrize("models, verdict", [
    ({"a": EARLY_PITCH, "b": EARLY_PITCH}, SUPPORTED),
    ({"a": EARLY_PITCH, "b": PITCH_ONLY}, SUPPORTED),
    ({"a": EARLY_PITCH, "b": LATE_PITCH}, MIXED),
    ({"a": EARLY_PITCH, "b": FLAT}, MIXED),
    ({"a": LATE_PITCH, "b": FLAT}, NOT_SUPPORTED),
    ({"a": BOTH_FALL}, NOT_SUPPORTED),
    ({"a": {1: (6, 1)}, "b": {4: (2, 5)}}, UNTESTABLE),  # no model with two layers
])
def test_claim_four_verdict_from_planted_counts(models, verdict):
    c = claim_layers(_categories(models))
    assert c.verdict == verdict, c.sentence
    for model, layers in models.items():
        if len(layers) < 2:
            continue
        first, last = min(layers), max(layers)
        assert c.numbers[model]["pitch"] == [layers[first][0], layers[last][0]]
        assert c.numbers[model]["formant_mfcc"] == [layers[first][1], layers[last][1]]


def test_claim_four_compares_the_first_and_last_layer_of_three():
    """A middle layer that breaks the trend does not count; the first and last layers decide."""
    c = claim_layers(_categories({"a": {1: (6, 1), 3: (9, 0), 7: (2, 5)}}))
    assert c.verdict == SUPPORTED and c.numbers["a"]["first_layer"] == 1 and c.numbers["a"]["last_layer"] == 7
