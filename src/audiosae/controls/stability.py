"""Do two SAEs trained on the same data with different seeds learn the same dictionary?

Each live latent j of an SAE has a decoder direction, column j of the decoder
weight (the vector it adds to the reconstruction), compared by cosine. Two
SAEs' live directions are paired one to one by the Hungarian algorithm on the
cosine matrix (scipy's `linear_sum_assignment`, maximising the summed cosine;
with unequal counts the smaller set is matched fully). From the matched
cosines:

- `mean_cos`: their mean;
- `share_matched`: the number of pairs at cosine >= `threshold` (0.7 by
  default) divided by the LARGER live count, so a seed that keeps fewer live
  latents cannot look more stable;
- the same two numbers for a baseline: two sets of directions drawn uniformly
  on the unit sphere, of the same counts and width, matched the same way
  (averaged over `baseline_draws` draws). Stability near its baseline means the
  dictionary is not determined by the data.

`recurrence(a, b)` is the per-latent view for the atlas: for each live latent
of one SAE, its best match among another's live latents (not one to one) and
that cosine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

THRESHOLD = 0.7


def unit_rows(directions) -> np.ndarray:
    """[n, d] rows scaled to unit norm (a zero row stays zero)."""
    x = np.asarray(directions, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected [n, d] directions, got shape {x.shape}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def match(a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of the rows of a [n_a, d] and b [n_b, d] maximising the summed cosine.

    Returns (rows of a, rows of b, their cosines), min(n_a, n_b) pairs.
    """
    from scipy.optimize import linear_sum_assignment

    a, b = unit_rows(a), unit_rows(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"directions of different widths cannot be matched: {a.shape[1]} vs {b.shape[1]}")
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    cos = a @ b.T
    rows, cols = linear_sum_assignment(cos, maximize=True)
    return rows, cols, cos[rows, cols]


@dataclass(frozen=True)
class Stability:
    n_a: int
    n_b: int
    matched: int
    mean_cos: float | None
    share_matched: float | None
    baseline_mean_cos: float | None
    baseline_share_matched: float | None
    threshold: float

    def as_dict(self) -> dict:
        return asdict(self)


def _summary(cos: np.ndarray, n_a: int, n_b: int, threshold: float) -> tuple[float | None, float | None]:
    if len(cos) == 0:
        return None, None
    return float(cos.mean()), float((cos >= threshold).sum() / max(n_a, n_b))


def random_directions(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n directions uniform on the unit sphere in d dimensions."""
    return unit_rows(rng.standard_normal((int(n), int(d))))


def stability(a, b, threshold: float = THRESHOLD, baseline_draws: int = 3, seed: int = 0) -> Stability:
    """Matched-cosine stability of two direction sets a [n_a, d], b [n_b, d], with its random baseline."""
    a, b = unit_rows(a), unit_rows(b)
    _, _, cos = match(a, b)
    mean_cos, share = _summary(cos, len(a), len(b), threshold)
    rng = np.random.default_rng(seed)
    base = []
    for _ in range(int(baseline_draws)):
        _, _, c = match(random_directions(len(a), a.shape[1], rng), random_directions(len(b), b.shape[1], rng))
        base.append(_summary(c, len(a), len(b), threshold))
    if base and base[0][0] is not None:
        base_cos, base_share = float(np.mean([x[0] for x in base])), float(np.mean([x[1] for x in base]))
    else:
        base_cos = base_share = None
    return Stability(len(a), len(b), int(len(cos)), mean_cos, share, base_cos, base_share, float(threshold))


def recurrence(a, b) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a: the index of its most similar row of b and that cosine (-1 and nan when b is empty)."""
    a, b = unit_rows(a), unit_rows(b)
    if len(b) == 0:
        return np.full(len(a), -1), np.full(len(a), np.nan)
    cos = a @ b.T
    best = cos.argmax(axis=1)
    return best, cos[np.arange(len(a)), best]


# ---------------------------------------------------------------- SAE outputs


def live_mask(latents_store: str | Path, split: str = "train") -> np.ndarray:
    """[n_latents] latents that fire (code > 0) on at least one item of `split` in an SAE's latents.zarr."""
    from audiosae import store

    codes, _ = store.read_split(latents_store, "codes", split)
    return (np.asarray(codes) > 0).any(axis=0)


def decoder_directions(weights: str | Path) -> np.ndarray:
    """[n_latents, input_dim]: each latent's decoder column, from an SAE's safetensors file."""
    from safetensors.numpy import load_file

    return np.asarray(load_file(str(weights))["decoder.weight"], dtype=np.float64).T
