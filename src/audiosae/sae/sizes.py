"""Sizes of an SAE, computable from the config alone (no torch import)."""

from __future__ import annotations


def latent_count(dim: int | str, width: int, min_dim: int = 1) -> int:
    """Number of latents: `dim` as an integer, or "x<factor>" times the input width; at least `min_dim`."""
    if isinstance(dim, str):
        if not dim.startswith("x"):
            raise ValueError(f"sae.dim must be an integer or 'x<factor>', got {dim!r}")
        return max(1, int(min_dim), int(round(float(dim[1:]) * width)))
    return max(int(min_dim), int(dim))


def k_for(sparsity: float, n_latents: int) -> int:
    """Active codes per item at a target sparsity: k = int((1 - s) * n), as in the paper.

    The product is rounded to 9 decimals first so that, e.g., (1 - 0.8) * 2048 =
    409.59999... is not taken for 409.5999 by accident of binary floating point;
    int() then truncates as the paper's code does.
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    return int(round((1.0 - sparsity) * n_latents, 9))
