"""The shared clean pass: the test clips run up to the patched layer once, then once per intervention.

`Passes(encoder, batches, layer)` keeps one `Prefix` per batch (the expensive part of
the network, paid once) and `Passes.run(patch)` resumes every batch with the patched
state (one resume per batch and intervention). What a pass gives back (`Readout`) is
what the causal tests read: the last hidden state averaged over frames (the vector the
output-level probes and read-outs take, as the embedding store pools it) and, where the
model has them (CREPE), pitch in cents and periodicity per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np


@dataclass
class Readout:
    """What one pass over the test clips computes."""

    pooled: np.ndarray
    """[N, D] the last hidden state averaged over frames, per clip."""
    pitch: np.ndarray | None = None
    """[N, frames] predicted pitch in cents per frame (CREPE), else None."""
    periodicity: np.ndarray | None = None
    """[N, frames] periodicity per frame (CREPE), else None."""


class Passes:
    """Prefixes of the test batches (computed once) and the patched passes resumed from them."""

    def __init__(self, encoder, batches: Iterable, layer: int):
        self.encoder = encoder
        self.layer = int(layer)
        self.prefixes = [encoder.splice_prefix(b, self.layer) for b in batches]
        if not self.prefixes:
            raise ValueError("causal passes: no test clips to run")
        self.passes = 0
        self.clean = self.run(lambda h: h)

    @property
    def width(self) -> int:
        return int(self.prefixes[0].h.shape[-1])

    def states(self):
        """The clean hidden state of every batch, [B, T, D] each (what a patch edits)."""
        return [p.h for p in self.prefixes]

    def run(self, patch: Callable) -> Readout:
        """Resume every batch with `patch(h)` in place of the layer; the pooled last state and pitch per clip."""
        import torch

        pooled, pitch, period = [], [], []
        with torch.no_grad():
            for p in self.prefixes:
                out = self.encoder.splice_resume(p, patch(p.h))
                pooled.append(out.last().float().mean(dim=1).cpu().numpy().astype(np.float64))
                if "pitch_cents" in out.outputs:
                    pitch.append(out.outputs["pitch_cents"].float().cpu().numpy().astype(np.float64))
                    period.append(out.outputs["periodicity"].float().cpu().numpy().astype(np.float64))
        self.passes += 1
        return Readout(np.concatenate(pooled), np.concatenate(pitch) if pitch else None,
                       np.concatenate(period) if period else None)
