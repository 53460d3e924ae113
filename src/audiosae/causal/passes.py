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


CODE_CACHE_BYTES = 512 * 2**20  # an SAE's codes of the test clips are kept when they fit in this


class Passes:
    """Prefixes of the test batches (computed once) and the patched passes resumed from them."""

    def __init__(self, encoder, batches: Iterable, layer: int):
        self.encoder = encoder
        self.layer = int(layer)
        self.prefixes = [encoder.splice_prefix(b, self.layer) for b in batches]
        if not self.prefixes:
            raise ValueError("causal passes: no test clips to run")
        self.passes = 0
        self._codes: dict = {}
        self.clean = self.run(lambda h: h)

    @property
    def width(self) -> int:
        return int(self.prefixes[0].h.shape[-1])

    def states(self):
        """The clean hidden state of every batch, [B, T, D] each (what a patch edits)."""
        return [p.h for p in self.prefixes]

    def removed(self, sae, level: str, indices) -> Readout:
        """The pass with latents `indices` of `sae` removed (`audiosae.splice.patches.edit`, the error term kept),
        the SAE's codes of the clean state computed once per SAE and level and reused by every removal."""
        import torch

        from audiosae.splice import patches as P

        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        key = (id(sae), level)
        if key not in self._codes:
            n = sum(p.h.shape[0] * (p.h.shape[1] if level == "frame" else 1) for p in self.prefixes)
            n_latents = int(sae.encode(self.prefixes[0].h[:1, 0].to(P._device(sae), torch.float32)).shape[-1])
            self._codes[key] = ([] if n * n_latents * 4 <= CODE_CACHE_BYTES else None)
            if self._codes[key] is not None:
                with torch.no_grad():
                    for p in self.prefixes:
                        x = p.h.reshape(-1, p.h.shape[-1]) if level == "frame" else p.h.mean(dim=1)
                        self._codes[key].append(sae.encode(x.to(P._device(sae), torch.float32)))
        cached = self._codes[key]
        if cached is None or idx.numel() == 0:
            return self.run(P.edit(sae, level, remove=idx))

        def patch_at(i, h):
            codes = cached[i]
            keep = torch.zeros(codes.shape[-1], dtype=torch.bool, device=codes.device)
            keep[idx.to(codes.device)] = True
            delta = P.contribution(sae, codes * keep).to(h)
            return h - (delta.reshape(h.shape) if level == "frame" else delta[:, None, :])

        return self.run(patch_at=patch_at)

    def run(self, patch: Callable | None = None, patch_at: Callable | None = None) -> Readout:
        """Resume every batch with `patch(h)` (or `patch_at(batch index, h)`) in place of the layer; the pooled last
        state and pitch per clip."""
        import torch

        pooled, pitch, period = [], [], []
        with torch.no_grad():
            for i, p in enumerate(self.prefixes):
                out = self.encoder.splice_resume(p, patch(p.h) if patch_at is None else patch_at(i, p.h))
                pooled.append(out.last().float().mean(dim=1).cpu().numpy().astype(np.float64))
                if "pitch_cents" in out.outputs:
                    pitch.append(out.outputs["pitch_cents"].float().cpu().numpy().astype(np.float64))
                    period.append(out.outputs["periodicity"].float().cpu().numpy().astype(np.float64))
        self.passes += 1
        return Readout(np.concatenate(pooled), np.concatenate(pitch) if pitch else None,
                       np.concatenate(period) if period else None)
