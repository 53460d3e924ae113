"""Bootstrap intervals: against a direct computation, the exact bootstrap distribution, and the 2-of-400 case."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from audiosae.bootstrap import (
    HIGHER, INCONCLUSIVE, LOWER, accuracy_interval, difference_verdict, paired_interval, resample_means,
)


def direct_interval(correct_a, correct_b=None, resamples=1000, ci=0.95, seed=42):
    """The bootstrap written out clip by clip: resample clip indices, recount, take the percentiles."""
    rng = np.random.default_rng(seed)
    n = len(correct_a)
    stats = []
    for _ in range(resamples):
        picks = rng.integers(0, n, size=n)
        right_a = sum(int(correct_a[i]) for i in picks) / n
        right_b = sum(int(correct_b[i]) for i in picks) / n if correct_b is not None else 0.0
        stats.append(right_a - right_b)
    stats.sort()
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2

    def quantile(q):  # linear interpolation between order statistics, as numpy's default
        pos = q * (len(stats) - 1)
        k = int(np.floor(pos))
        return stats[k] + (stats[min(k + 1, len(stats) - 1)] - stats[k]) * (pos - k)

    return quantile(lo_q), quantile(hi_q)


def test_accuracy_interval_equals_the_direct_computation():
    correct = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1]
    iv = accuracy_interval(np.array(correct), resamples=500, ci=0.9, seed=3)
    lo, hi = direct_interval(correct, resamples=500, ci=0.9, seed=3)
    assert iv.estimate == pytest.approx(8 / 12)
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi), abs=1e-12)


def test_paired_interval_equals_the_direct_computation():
    a = [1, 1, 0, 1, 0, 1, 1, 0, 1, 1]
    b = [1, 0, 0, 1, 0, 1, 0, 0, 1, 1]
    iv = paired_interval(np.array(a), np.array(b), resamples=400, seed=9)
    lo, hi = direct_interval(a, b, resamples=400, seed=9)
    assert iv.estimate == pytest.approx(0.2)
    assert (iv.lo, iv.hi) == pytest.approx((lo, hi), abs=1e-12)


def test_the_resampled_distribution_matches_the_exact_bootstrap_distribution():
    """For 6 clips all 6^6 resamples can be enumerated: the bootstrap's quantiles must approach theirs."""
    correct = np.array([1, 1, 1, 0, 1, 0], dtype=float)
    exact = np.array([correct[list(idx)].mean() for idx in itertools.product(range(6), repeat=6)])
    draws = resample_means(correct, resamples=20000, seed=1)
    assert draws.mean() == pytest.approx(exact.mean(), abs=0.005)
    assert draws.std() == pytest.approx(exact.std(), abs=0.005)
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(draws, q) == pytest.approx(np.quantile(exact, q), abs=1 / 6 + 1e-9)


def test_seeds_average_before_resampling_and_the_interval_is_seeded():
    per_seed = np.tile(np.array([[1, 0, 1, 1], [1, 1, 1, 0]]), 10)
    iv = accuracy_interval(per_seed, resamples=300, seed=5)
    assert iv.estimate == pytest.approx(0.75)
    assert accuracy_interval(per_seed, resamples=300, seed=5) == iv
    assert accuracy_interval(per_seed.mean(axis=0), resamples=300, seed=5) == iv
    assert not np.array_equal(resample_means(per_seed.mean(axis=0), 300, seed=5),
                              resample_means(per_seed.mean(axis=0), 300, seed=6))


def test_pairing_narrows_the_interval_when_probes_agree():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.7
    b = a.copy()
    b[:6] = ~b[:6]
    paired = paired_interval(a, b)
    ia, ib = accuracy_interval(a), accuracy_interval(b)
    assert paired.hi - paired.lo < 0.25 * ((ia.hi - ia.lo) + (ib.hi - ib.lo))


def test_two_of_four_hundred_clips_differ_gives_an_inconclusive_paired_interval():
    rng = np.random.default_rng(7)
    original = rng.random(400) < 0.72
    sae = original.copy()
    sae[[10, 200]] = ~sae[[10, 200]]  # the SAE's probe differs on 2 of 400 clips
    iv = paired_interval(sae, original, resamples=1000, ci=0.95, seed=42)
    assert abs(iv.estimate) <= 2 / 400
    assert iv.lo <= 0 <= iv.hi
    assert difference_verdict(iv.lo, iv.hi) == INCONCLUSIVE


def test_difference_verdicts():
    assert difference_verdict(0.01, 0.05) == HIGHER
    assert difference_verdict(-0.05, -0.001) == LOWER
    assert difference_verdict(-0.01, 0.02) == INCONCLUSIVE
    assert difference_verdict(float("nan"), 0.1) == INCONCLUSIVE


def test_bad_input():
    with pytest.raises(ValueError, match="same clips"):
        paired_interval(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        accuracy_interval(np.array([]))
    with pytest.raises(ValueError, match="ci"):
        accuracy_interval(np.ones(3), ci=1.5)
