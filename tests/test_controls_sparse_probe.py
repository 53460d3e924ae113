"""k-sparse probing: ranking by class-mean difference, probes on the top k units, balanced accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiosae.controls.sparse_probe import (balanced_accuracy, from_dict, paired_difference, rank_units,
                                            sparse_probe, standardise)


def planted(n_train=300, n_test=150, units=30, planted_unit=7, seed=0):
    """3 classes; unit `planted_unit` is high for class 0 only, every other unit noise."""
    rng = np.random.default_rng(seed)

    def part(n):
        y = rng.integers(0, 3, size=n)
        x = rng.standard_normal((n, units))
        x[:, planted_unit] += 3.0 * (y == 0)
        return x, y

    return (*part(n_train), *part(n_test))


def test_planted_unit_is_chosen_at_k1_and_carries_its_class():
    xtr, ytr, xte, yte = planted()
    res = sparse_probe(xtr, ytr, xte, yte, ["a", "b", "c"], target="t", resamples=200)
    row = next(r for r in res.rows if r["class"] == "a" and r["k"] == 1)
    assert row["units"] == [7]
    assert row["balanced_accuracy"] > 0.9 and row["lo"] <= row["balanced_accuracy"] <= row["hi"]
    # A class no unit carries stays near chance, whatever unit it picks.
    row_b = next(r for r in res.rows if r["class"] == "b" and r["k"] == 1)
    assert row_b["balanced_accuracy"] < 0.65
    assert [s["k"] for s in res.summary] == [1, 2, 5, 10, 20]


def test_ranking_and_probe_ignore_a_units_scale():
    xtr, ytr, xte, yte = planted(seed=1)
    base = sparse_probe(xtr, ytr, xte, yte, ["a", "b", "c"], resamples=100)
    scale = np.ones(xtr.shape[1])
    scale[7], scale[3] = 1e-3, 1e4  # the planted unit tiny, a noise unit huge
    other = sparse_probe(xtr * scale, ytr, xte * scale, yte, ["a", "b", "c"], resamples=100)
    assert [r["units"] for r in base.rows] == [r["units"] for r in other.rows]
    assert np.allclose([r["balanced_accuracy"] for r in base.rows], [r["balanced_accuracy"] for r in other.rows])


def test_balanced_accuracy_matches_sklearn():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(2)
    y, p = rng.random(50) < 0.2, rng.random(50) < 0.3
    assert balanced_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y, p))


def test_rank_units_orders_by_mean_difference_and_constant_units_score_zero():
    x = np.array([[0, 1, 5.0], [0, 2, 5.0], [0, 9, 5.0], [0, 10, 5.0]])
    (xs,) = standardise(x)
    order, score = rank_units(xs, np.array([False, False, True, True]))
    assert order[0] == 1 and score[0] == 0 and score[2] == 0


def test_k_is_capped_at_the_number_of_units_and_results_round_trip_through_json():
    xtr, ytr, xte, yte = planted(units=4, planted_unit=2)
    res = sparse_probe(xtr, ytr, xte, yte, ["a", "b", "c"], resamples=50)
    assert res.ks == [1, 2, 4]
    back = from_dict(json.loads(json.dumps(res.as_dict())))
    est, lo, hi = paired_difference(res, back, 1, resamples=50)
    assert est == 0 and lo == 0 and hi == 0


def test_paired_difference_sees_the_planted_unit_beat_noise():
    xtr, ytr, xte, yte = planted(seed=3)
    good = sparse_probe(xtr, ytr, xte, yte, ["a", "b", "c"], resamples=200)
    keep = [u for u in range(xtr.shape[1]) if u != 7]
    noise = sparse_probe(xtr[:, keep], ytr, xte[:, keep], yte, ["a", "b", "c"], resamples=200)
    est, lo, hi = paired_difference(good, noise, 1, resamples=200)
    assert lo > 0 and est > 0.05
