"""Downstream fidelity: a metric's value on clean, SAE-patched and mean-patched clips, and the fraction recovered.

A metric is a statistic over test clips. Each clip contributes a numerator and a
denominator per condition (clean, sae, mean), and the value is their ratio of sums
(an accuracy: correct / 1 over the target's test clips; a pitch share: frames
within 50 cents / voiced frames), or, for the median pitch error, a median over
the frames of the clips, each frame weighted by how often its clip was drawn.

Fraction recovered = (v_sae - v_mean) / (v_clean - v_mean): the share of the
damage the mean patch does that the SAE's reconstruction avoids (1: as good as
the clean network, 0: no better than the floor; SAELens's "loss recovered" with
the mean instead of zero). It is undefined (NaN, with a note) where the mean patch
does not change the metric. The interval is the percentile interval over
bootstrap resamples of the clips, every condition computed on the same resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CONDITIONS = ("clean", "sae", "mean")
# |v_clean - v_mean| below this: the floor does no damage to measure recovery against
NO_DAMAGE = 1e-9


@dataclass
class Metric:
    """Per-clip numerators and denominators of one metric under each condition."""

    name: str
    higher_is_better: bool
    num: dict[str, np.ndarray]
    den: dict[str, np.ndarray]
    domain: np.ndarray | None = None
    """Bool mask of the clips the metric is about (None: all)."""
    frames: dict | None = None
    """For a median metric: {"clip": [F] clip index per frame, cond: [F] values}."""
    unit: str = ""
    description: str = ""


def ratio_metric(name: str, num: dict, den: dict | None = None, *, higher_is_better: bool = True, domain=None,
                 unit: str = "", description: str = "") -> Metric:
    n = len(next(iter(num.values())))
    den = den or {c: np.ones(n) for c in num}
    return Metric(name, higher_is_better, {c: np.asarray(v, np.float64) for c, v in num.items()},
                  {c: np.asarray(v, np.float64) for c, v in den.items()},
                  None if domain is None else np.asarray(domain, bool), unit=unit, description=description)


def median_metric(name: str, clip_of_frame: np.ndarray, values: dict, n_clips: int, *, higher_is_better: bool = False,
                  unit: str = "", description: str = "") -> Metric:
    ones = np.ones(n_clips)
    return Metric(name, higher_is_better, {c: ones for c in values}, {c: ones for c in values},
                  frames={"clip": np.asarray(clip_of_frame, np.int64),
                          **{c: np.asarray(v, np.float64) for c, v in values.items()}},
                  unit=unit, description=description)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Median of `values` [F] under each row of `weights` [R, F] (NaN where a row's weights are all zero)."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[:, order]
    cum = np.cumsum(w, axis=1)
    total = cum[:, -1:]
    idx = (cum < 0.5 * total).sum(axis=1)
    out = v[np.minimum(idx, len(v) - 1)] if len(v) else np.full(len(w), np.nan)
    return np.where(total[:, 0] > 0, out, np.nan)


def _values(m: Metric, counts: np.ndarray, clips: np.ndarray) -> dict[str, np.ndarray]:
    """The metric under each condition for each row of clip counts [R, n] over clip indices `clips`."""
    out = {}
    for c in m.num:
        if m.frames is not None:
            where = np.isin(m.frames["clip"], clips)
            pos = np.searchsorted(clips, m.frames["clip"][where])
            out[c] = _weighted_median(m.frames[c][where], counts[:, pos])
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                out[c] = (counts @ m.num[c][clips]) / (counts @ m.den[c][clips])
    return out


def fraction(clean, sae, mean):
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.asarray(clean, np.float64) - np.asarray(mean, np.float64)
        return np.where(np.abs(gap) > NO_DAMAGE, (np.asarray(sae) - np.asarray(mean)) / np.where(gap == 0, 1, gap),
                        np.nan)


@dataclass
class Result:
    metric: str
    clean: float
    sae: float
    mean: float
    fraction_recovered: float
    lo: float
    hi: float
    higher_is_better: bool
    n_clips: int
    unit: str = ""
    note: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)


def measure(m: Metric, resamples: int = 1000, ci: float = 0.95, seed: int = 42) -> Result:
    """The metric's three values, fraction recovered and its bootstrap interval over clips."""
    n_all = len(next(iter(m.num.values())))
    clips = np.flatnonzero(m.domain) if m.domain is not None else np.arange(n_all)
    if m.frames is not None:
        clips = np.intersect1d(clips, np.unique(m.frames["clip"]))
    n = len(clips)
    if n == 0:
        return Result(m.name, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, m.higher_is_better, 0, m.unit,
                      "no test clip has what this metric needs", m.description)
    point = {c: float(v[0]) for c, v in _values(m, np.ones((1, n)), clips).items()}
    frac = float(fraction(point["clean"], point["sae"], point["mean"]))
    note = ""
    lo = hi = np.nan
    if not np.isfinite(frac):
        note = "the mean patch leaves this metric unchanged: no damage to recover"
    else:
        rng = np.random.default_rng(int(seed))
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=int(resamples)).astype(np.float64)
        boot = _values(m, counts, clips)
        fr = fraction(boot["clean"], boot["sae"], boot["mean"])
        fr = fr[np.isfinite(fr)]
        if len(fr):
            lo, hi = (float(x) for x in np.quantile(fr, [(1 - ci) / 2, 1 - (1 - ci) / 2]))
    return Result(m.name, point["clean"], point["sae"], point["mean"], frac, lo, hi, m.higher_is_better, n, m.unit,
                  note, m.description)
