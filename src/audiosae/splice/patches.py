"""What replaces a hidden state h, float32 [B, T, D] (T frames, or AST's tokens).

- `identity`: h itself (the clean network, exactly).
- `frame_sae(sae)`: every frame replaced by the SAE's reconstruction of it.
- `clip_sae(sae)`: the clip's mean over frames m replaced by the SAE's reconstruction
  of it; every frame is shifted by recon(m) - m, so the variation over time stays
  (the clip SAE saw only m, the vector the embedding store holds).
- `frame_mean(mu)`: every frame set to the layer's train frame mean (frame level's floor).
- `clip_mean(mu)`: the clip's mean moved to the train clip mean, by the same shift
  (clip level's floor).
- `edit(sae, level, remove=..., add=...)`: the SAE's codes edited while its error term stays:
  h - sum_{j in S} c_j d_j (+ add). An empty edit returns h unchanged. (The causal atlas's.)

An SAE is anything with `encode` and `decode` (ours or an imported one): latent j's
contribution to the reconstruction is decode(c_j e_j) - decode(0), whatever the SAE's
normalisation and biases.
"""

from __future__ import annotations

from typing import Callable

import torch

Patch = Callable[[torch.Tensor], torch.Tensor]


def _device(sae) -> torch.device:
    for t in list(sae.parameters()) + list(sae.buffers()):
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def reconstruct(sae, x: torch.Tensor) -> torch.Tensor:
    """decode(encode(x)) of [N, D] vectors, on the SAE's device, returned on x's."""
    return sae.decode(sae.encode(x.to(_device(sae), torch.float32))).to(x.device, torch.float32)


@torch.no_grad()
def contribution(sae, codes: torch.Tensor) -> torch.Tensor:
    """What `codes` add to the reconstruction: decode(codes) - decode(0)."""
    return sae.decode(codes) - sae.decode(torch.zeros_like(codes))


def identity(h: torch.Tensor) -> torch.Tensor:
    return h


def frame_sae(sae) -> Patch:
    def patch(h):
        return reconstruct(sae, h.reshape(-1, h.shape[-1])).reshape(h.shape)
    return patch


def shift_clip_mean(h: torch.Tensor, new_mean: torch.Tensor) -> torch.Tensor:
    """h with every frame shifted so that the clip's mean over frames becomes `new_mean` [B, D] (or [D])."""
    return h + (new_mean.to(h) - h.mean(dim=1))[:, None, :]


def clip_sae(sae) -> Patch:
    def patch(h):
        return shift_clip_mean(h, reconstruct(sae, h.mean(dim=1)))
    return patch


def frame_mean(mu: torch.Tensor) -> Patch:
    def patch(h):
        return mu.to(h).expand_as(h).clone()
    return patch


def clip_mean(mu: torch.Tensor) -> Patch:
    def patch(h):
        return shift_clip_mean(h, mu.to(h).expand(h.shape[0], -1))
    return patch


def edit(sae, level: str, remove: torch.Tensor | None = None, add: torch.Tensor | None = None) -> Patch:
    """Remove latents `remove` (a bool mask or index tensor over latents) from h, keeping the SAE's error term,
    then add `add` ([D], the same on every frame). level: "frame" (per frame) or "clip" (the clip mean's codes,
    the difference applied to every frame)."""
    if level not in ("frame", "clip"):
        raise ValueError(f"edit level must be frame or clip, got {level!r}")

    def patch(h):
        out = h
        if remove is not None and remove.numel():
            x = h.reshape(-1, h.shape[-1]) if level == "frame" else h.mean(dim=1)
            dev = _device(sae)
            codes = sae.encode(x.to(dev, torch.float32))
            keep = torch.zeros(codes.shape[-1], dtype=torch.bool, device=dev)
            keep[remove.to(dev)] = True
            delta = contribution(sae, codes * keep).to(h)
            out = h - (delta.reshape(h.shape) if level == "frame" else delta[:, None, :])
        if add is not None:
            out = out + add.to(h)
        return out
    return patch
