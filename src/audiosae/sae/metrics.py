"""Reconstruction and sparsity metrics of an SAE, accumulated over a whole split.

Every sum runs over the whole split, batch by batch, in float64, so the numbers
do not depend on the batch size (the element-wise work stays in the batch's own
dtype and device, float32 in training; only the reductions accumulate in float64,
so no float64 copy of a batch is made):

- ``mse``: mean squared error per element, sum((x - x_hat)^2) / (n * d);
- ``fvu``: fraction of variance unexplained, sum((x - x_hat)^2) / sum((x - mean(x))^2),
  the mean taken over the split (not about zero, not a mean of per-batch ratios);
- ``cosine``: mean over items of cos(x, x_hat);
- ``l0``: mean number of non-zero codes per item;
- ``dead_fraction``: fraction of latents never active on the split's items (the
  caller reports the train split's value for every split).
"""

from __future__ import annotations

import math

import torch


class SplitMetrics:
    """Accumulates metrics over batches; `result()` gives a dict of floats (NaN when empty)."""

    def __init__(self, n_latents: int):
        self.n = 0
        self.sq_err = 0.0
        self.cos_sum = 0.0
        self.l0_sum = 0.0
        self.fired = torch.zeros(n_latents, dtype=torch.bool)
        # Total SS about the split mean, streamed: sums about a shift (the first batch's
        # mean) avoid the cancellation of sum(x^2) - n * mean^2 on vectors far from zero.
        self._shift: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        self._sumsq: torch.Tensor | None = None

    @torch.no_grad()
    def update(self, x: torch.Tensor, recon: torch.Tensor, codes: torch.Tensor) -> None:
        if x.shape[0] == 0:
            return
        x, recon, codes = x.detach(), recon.detach(), codes.detach()
        f64 = torch.float64
        if self._shift is None:
            # the shift in the batch's dtype, so centring is one same-dtype subtraction
            self._shift = x.mean(0, dtype=f64).to(x.dtype)
            self._sum = torch.zeros(x.shape[1], dtype=f64, device=x.device)
            self._sumsq = torch.zeros(x.shape[1], dtype=f64, device=x.device)
        centred = x - self._shift.to(x.device, x.dtype)
        self._sum += centred.sum(0, dtype=f64).to(self._sum.device)
        self._sumsq += centred.mul_(centred).sum(0, dtype=f64).to(self._sum.device)
        self.n += x.shape[0]
        diff = x - recon
        self.sq_err += float(diff.mul_(diff).sum(dtype=f64))
        self.cos_sum += float(torch.nn.functional.cosine_similarity(x, recon, dim=-1, eps=1e-12).sum(dtype=f64))
        active = codes != 0
        self.l0_sum += float(active.sum())
        self.fired |= active.any(0).cpu()

    def total_ss(self) -> float:
        """Sum of squares about the split mean."""
        if self.n == 0:
            return math.nan
        return float((self._sumsq - self._sum.pow(2) / self.n).sum().cpu())

    def result(self) -> dict:
        if self.n == 0:
            nan = math.nan
            return {"mse": nan, "fvu": nan, "cosine": nan, "l0": nan, "dead_fraction": self.dead_fraction()}
        dim = self._shift.numel()
        total = self.total_ss()
        return {
            "mse": self.sq_err / (self.n * dim),
            "fvu": self.sq_err / total if total > 0 else math.nan,
            "cosine": self.cos_sum / self.n,
            "l0": self.l0_sum / self.n,
            "dead_fraction": self.dead_fraction(),
        }

    def dead_fraction(self) -> float:
        return float((~self.fired).float().mean())


def fvu(x: torch.Tensor, recon: torch.Tensor) -> float:
    """FVU of one in-memory set (see the module docstring)."""
    m = SplitMetrics(1)
    m.update(x, recon, torch.zeros(x.shape[0], 1))
    return m.result()["fvu"]
