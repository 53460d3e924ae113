"""Claims judged against the random-weights twin: supported only where the trained model beats its null."""

from __future__ import annotations

import pandas as pd

from audiosae.controls.claims import ALSO_RANDOM, judge, split_twin, with_twin
from audiosae.report.claims import Claim, claim_disentanglement


def _dis(twin_sae_completeness: float) -> dict[str, pd.DataFrame]:
    rows = []
    for model, sae_c in (("m", 0.6), ("m_random", twin_sae_completeness)):
        for layer in (1, 2):
            rows.append({"model": model, "layer": layer, "rep": "original", "target": "egemaps", "top_n": 10,
                         "completeness_mean": 0.3, "effective_codes_mean": 5.0})
            for rep in ("sae0.5", "sae0.9"):
                better = sae_c > 0.3
                rows.append({"model": model, "layer": layer, "rep": rep, "target": "egemaps", "top_n": 10,
                             "completeness_mean": sae_c, "effective_codes_mean": 2.0 if better else 8.0})
    return {"disentanglement": pd.DataFrame(rows)}


def _claims(tables):
    return [claim_disentanglement(tables["disentanglement"])]


def test_claim_that_holds_for_the_model_and_not_its_twin_is_supported():
    (claim,) = with_twin(_claims, _dis(twin_sae_completeness=0.2))
    assert claim.numbers["trained_verdict"] == "supported" and claim.numbers["twin_verdict"] == "not supported"
    assert claim.verdict == "supported"
    assert "Random-weights twin:" in claim.sentence and "does not meet the same rule" in claim.sentence


def test_claim_that_holds_for_both_says_also_on_random_weights():
    (claim,) = with_twin(_claims, _dis(twin_sae_completeness=0.7))
    assert claim.numbers["twin_verdict"] == "supported"
    assert claim.verdict == ALSO_RANDOM
    assert "holds on random weights" in claim.sentence


def test_without_twin_rows_the_claim_is_unchanged():
    tables = _dis(0.7)
    tables["disentanglement"] = tables["disentanglement"].query("model == 'm'")
    (claim,) = with_twin(_claims, tables)
    assert claim.verdict == "supported" and "twin" not in claim.sentence


def test_twin_rows_are_renamed_to_their_trained_model():
    trained, twin = split_twin(_dis(0.7))
    assert set(trained["disentanglement"]["model"]) == {"m"} and set(twin["disentanglement"]["model"]) == {"m"}


def _claim(verdict, effect):
    return Claim(number=7, title="t", paper="p", sentence="s.", verdict=verdict, rule="r.", table="x", figure="y",
                 numbers={"effect": effect})


def test_with_an_effect_interval_supported_needs_the_trained_interval_above_the_twins():
    assert judge(_claim("supported", [0.3, 0.2, 0.4]), _claim("supported", [0.1, 0.0, 0.15])).verdict == "supported"
    assert judge(_claim("supported", [0.3, 0.2, 0.4]), _claim("supported", [0.25, 0.1, 0.3])).verdict == ALSO_RANDOM
    assert judge(_claim("supported", [0.3, 0.2, 0.4]),
                 _claim("not supported", [0.1, 0.0, 0.25])).verdict == "inconclusive"
    assert judge(_claim("mixed", [0.3, 0.2, 0.4]), _claim("supported", [0.1, 0.0, 0.1])).verdict == "mixed"


def test_the_report_shows_the_trained_and_the_twin_answer_side_by_side():
    from audiosae.report.html import _claim_block

    (claim,) = with_twin(_claims, _dis(twin_sae_completeness=0.7))
    block = _claim_block(claim, {}, {}, {})
    trained, twin = block.split("Random-weights twin", 1)
    assert 'v-supported">supported' in trained and "Trained models" in trained
    assert 'v-supported">supported' in twin  # the twin's own verdict, beside the trained one
    assert 'v-also-on-random-weights">also on random weights' in block  # the verdict that follows from the pair
    assert claim.numbers["twin_sentence"] in block
