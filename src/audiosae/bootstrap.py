"""Bootstrap intervals over test clips: one accuracy, and paired differences of two.

Every resample draws n test clips with replacement (n = the test set's size)
from a generator seeded once per call, resample after resample, so the same
seed and the same n give the same clips: the interval of an SAE's accuracy, of
the original's and of their difference all use the same resampled clips. The
interval is the percentile interval of the resampled statistic.

- ``accuracy_interval(correct)``: ``correct`` is [n] or [seeds, n] (1 where a
  probe got the clip right); the statistic is the accuracy averaged over seeds,
  so the interval is over test clips and the seed spread is reported beside it.
- ``paired_interval(correct_a, correct_b)``: accuracy of a minus accuracy of b
  on the same resampled clips. Paired, it is much narrower than two separate
  intervals when both probes get mostly the same clips right.
- ``difference_verdict(lo, hi, estimate)``: "higher" when the interval lies
  above 0, "lower" below it, "no change (identical on every test clip)" when the
  estimate and both ends are 0 (the two probes are right on the same clips), and
  "inconclusive" when it holds 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIGHER, LOWER, INCONCLUSIVE = "higher", "lower", "inconclusive"
# Estimate and interval ends all 0: every resample of the test clips gives the same accuracy to both, so they are
# right and wrong on the same clips. Not "we could not tell" (inconclusive) but "nothing changed".
NO_CHANGE = "no change (identical on every test clip)"


@dataclass(frozen=True)
class Interval:
    estimate: float
    lo: float
    hi: float

    def as_list(self) -> list[float]:
        return [self.lo, self.hi]


def _per_clip(correct) -> np.ndarray:
    """[n] share of seeds that got each clip right, from [n] or [seeds, n]."""
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim == 1:
        return c
    if c.ndim == 2:
        return c.mean(axis=0)
    raise ValueError(f"expected [n] or [seeds, n] values, got shape {c.shape}")


def resample_means(values, resamples: int = 1000, seed: int = 42) -> np.ndarray:
    """Mean of `values` [n] over `resamples` bootstrap resamples of its n entries."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        raise ValueError("cannot bootstrap an empty test set")
    rng = np.random.default_rng(int(seed))
    out = np.empty(int(resamples))
    for b in range(int(resamples)):
        out[b] = v[rng.integers(0, n, size=n)].mean()
    return out


def percentile_interval(stats: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    lo, hi = np.quantile(stats, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def accuracy_interval(correct, resamples: int = 1000, ci: float = 0.95, seed: int = 42) -> Interval:
    """Accuracy (mean over seeds) and its bootstrap interval over test clips."""
    per_clip = _per_clip(correct)
    lo, hi = percentile_interval(resample_means(per_clip, resamples, seed), ci)
    return Interval(float(per_clip.mean()), lo, hi)


def paired_interval(correct_a, correct_b, resamples: int = 1000, ci: float = 0.95, seed: int = 42) -> Interval:
    """Accuracy of a minus accuracy of b, with a bootstrap interval over the same resampled clips."""
    a, b = _per_clip(correct_a), _per_clip(correct_b)
    if a.shape != b.shape:
        raise ValueError(f"paired predictions must cover the same clips: {a.shape} vs {b.shape}")
    d = a - b
    lo, hi = percentile_interval(resample_means(d, resamples, seed), ci)
    return Interval(float(d.mean()), lo, hi)


def difference_verdict(lo: float, hi: float, estimate: float | None = None) -> str:
    """'higher' / 'lower' when the whole interval is above / below 0; NO_CHANGE when `estimate` and both ends are
    exactly 0; else 'inconclusive'."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo == 0 and hi == 0 and estimate is not None and estimate == 0:
        return NO_CHANGE
    if lo > 0:
        return HIGHER
    if hi < 0:
        return LOWER
    return INCONCLUSIVE
