"""The sparse autoencoder: the paper's top-k SAE, plus the usual refinements as options.

Default (the paper): ``codes = TopK_k(ReLU(W_enc x + b_enc))``, ``x_hat = W_dec codes``
with a bias-free decoder and a plain MSE loss. Options, all off by default:

- ``arch="batchtopk"``: keep the ``k * B`` largest activations of a batch of B
  instead of k per item; at evaluation a threshold learnt during training
  replaces the batch, so an item's codes do not depend on its batch-mates.
- ``arch="relu_l1"``: ReLU codes with an L1 penalty (each code weighted by its
  decoder column's norm, so the penalty cannot be dodged by rescaling); k is
  recorded but not enforced.
- ``pre_bias``: a learnt bias subtracted before encoding and added after
  decoding, initialised from the train mean.
- ``unit_norm_decoder``: decoder columns kept at unit norm; the training step
  removes the gradient component parallel to each column, then renormalises.
- ``auxk``: the AuxK loss — the top ``auxk_k`` dead latents reconstruct the
  residual, which gives them gradient and a chance to come back.
- ``init="tied"``: decoder columns drawn as random unit vectors (Gaussian, normalised) and the
  encoder started as the decoder's transpose, encoder bias zero (OpenAI's top-k SAEs, Gao et al.
  2024, and EleutherAI's sparsify); ``"linear"`` (the paper) is nn.Linear's default for both.
- ``normalize_inputs``: per-dimension standardisation with train statistics
  stored in the checkpoint. Losses and metrics are then measured in the
  normalised space (the one the SAE models); ``reconstruction`` and ``decode``
  return the original space.

Decoding, dense or sparse (the same function, different float sums): the dense
way multiplies the [B, n_latents] code matrix by the decoder; the sparse way
sums only the active latents' decoder columns (``embedding_bag`` with the codes
as per-sample weights), so its forward and backward cost scales with k, not
n_latents, and the decoder's gradient touches only the active columns. Which
way runs is decided per call by ``decode_mode`` ("auto" by default, or "dense" /
"sparse", a plain attribute, not saved): "auto" takes the sparse way when the
active fraction k / n_latents is at most ``SPARSE_MAX_FRACTION[device type]``
(measured, see `sparse_pays`), and always the dense way for ``relu_l1`` (whose
codes are not sparse by construction). The decoder weight keeps nn.Linear's
shape [input_dim, n_latents] (checkpoints unchanged) but is stored
column-major, so the [n_latents, input_dim] table the sparse way gathers from
is its transpose without a copy.

On CUDA the encoder's matmul runs under bf16 autocast in training
(``bf16_encoder``; master weights, top-k, decoder and loss stay float32).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from audiosae.sae.shape import ARCHS, INITS, SAEConfig  # noqa: F401  (SAEConfig's home before; imported from here too)

DECODE_MODES = ("auto", "dense", "sparse")
# The largest active fraction k / n_latents at which decoding only the active latents beats
# the dense matmul, by device type (benchmarks/sae_step.py --sweep measures it). CPU: measured
# on this project's 2-core machine at 768 x 2048, batch 4096 (float32 GEMM is ~10x more
# efficient per multiply-add than embedding_bag's row gathers, so sparse pays only when
# k / n is at most about 1/20). CUDA: not measured here; 1/8 follows sparsify's practice.
SPARSE_MAX_FRACTION = {"cpu": 0.05, "cuda": 0.125}
_THRESHOLD_MOMENTUM = 0.99  # batchtopk: running average of the smallest kept activation


def sparse_pays(k: int, n_latents: int, device: torch.device | str = "cpu") -> bool:
    """Whether decoding k active latents of n_latents sparsely is the faster way on `device` (see the module doc)."""
    kind = torch.device(device).type
    return k <= SPARSE_MAX_FRACTION.get(kind, SPARSE_MAX_FRACTION["cuda"]) * n_latents


class SAEOutput(NamedTuple):
    """What a forward pass returns. Loss parts are unweighted; `total` applies the coefficients."""

    reconstruction: torch.Tensor  # [B, input_dim], original space
    codes: torch.Tensor | None  # [B, n_latents]; None when forward(..., dense_codes=False) took the sparse way
    mse: torch.Tensor  # mean squared error, in the normalised space when normalize_inputs
    auxk: torch.Tensor  # residual reconstructed by dead latents, as a fraction of its variance (0 when off)
    l1: torch.Tensor  # mean over items of sum_j |code_j| * ||decoder column j|| (0 unless relu_l1)
    total: torch.Tensor  # mse + auxk_coef * auxk + l1_coef * l1


class SparseAutoencoder(nn.Module):
    """Top-k sparse autoencoder (and variants, see the module docstring)."""

    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Linear(cfg.input_dim, cfg.n_latents, bias=True)
        self.decoder = nn.Linear(cfg.n_latents, cfg.input_dim, bias=False)
        # Column-major storage: decoder.weight.t() is the contiguous [n_latents, input_dim] table
        # the sparse decode gathers rows from (same shape, values and checkpoint as nn.Linear's).
        self.decoder.weight = nn.Parameter(torch.empty(cfg.n_latents, cfg.input_dim).t())
        self.decode_mode = "auto"
        self.bf16_encoder = True
        self.b_pre = nn.Parameter(torch.zeros(cfg.input_dim)) if cfg.pre_bias else None
        self.register_buffer("input_mean", torch.zeros(cfg.input_dim))
        self.register_buffer("input_std", torch.ones(cfg.input_dim))
        # batchtopk's evaluation threshold; NaN until the first training batch.
        self.register_buffer("threshold", torch.tensor(float("nan")))
        # Training bookkeeping for AuxK, not part of the checkpoint.
        self.register_buffer("samples_since_fired", torch.zeros(cfg.n_latents, dtype=torch.long), persistent=False)
        self.reset_parameters(generator)

    # ------------------------------------------------------------------ set-up

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The initial weights of `cfg.init`, drawn from `generator` when given: nn.Linear's default (linear,
        the paper's) or tied (see the module docstring)."""
        if self.cfg.init == "tied":
            self._tied_init(generator)
            return
        for lin in (self.encoder, self.decoder):
            # drawn into a row-major tensor, so the values (and their order in the generator's
            # stream) are nn.Linear's whatever the parameter's memory layout
            w = torch.empty(lin.weight.shape, dtype=lin.weight.dtype, device=lin.weight.device)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
            lin.weight.copy_(w)
            if lin.bias is not None:
                bound = 1.0 / math.sqrt(lin.in_features)
                nn.init.uniform_(lin.bias, -bound, bound, generator=generator)
        if self.cfg.unit_norm_decoder:
            self.normalize_decoder_()

    @torch.no_grad()
    def _tied_init(self, generator: torch.Generator | None) -> None:
        w = self.decoder.weight  # [input_dim, n_latents]
        cols = torch.randn(self.cfg.n_latents, self.cfg.input_dim, generator=generator, dtype=w.dtype)
        cols = cols / cols.norm(dim=1, keepdim=True).clamp_min(1e-12)
        w.copy_(cols.t().to(w.device))
        self.encoder.weight.copy_(cols.to(w.device))
        self.encoder.bias.zero_()

    @torch.no_grad()
    def set_input_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store train-split mean and std (used only when normalize_inputs)."""
        std = torch.as_tensor(std, dtype=torch.float32)
        # A constant dimension carries nothing to scale; leave it unscaled rather than divide by ~0.
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(std)

    @torch.no_grad()
    def init_pre_bias(self, mean_normalised: torch.Tensor) -> None:
        """Start the pre-encoder bias at the train mean (in the normalised space)."""
        if self.b_pre is not None:
            self.b_pre.copy_(torch.as_tensor(mean_normalised, dtype=torch.float32))

    # ------------------------------------------------------------------ maps

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cfg.normalize_inputs:
            return x
        return (x - self.input_mean) / self.input_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cfg.normalize_inputs:
            return x
        return x * self.input_std + self.input_mean

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU(W_enc (x_n - b_pre) + b_enc), x_n the normalised input."""
        x = self.normalize(x)
        if self.b_pre is not None:
            x = x - self.b_pre
        if self.training and self.bf16_encoder and x.is_cuda:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                pre = self.encoder(x)
            return torch.relu(pre.float())
        return torch.relu(self.encoder(x))

    def sparse_decoding(self, device: torch.device | str | None = None) -> bool:
        """Whether decoding takes the sparse way (see the module docstring): `decode_mode` and the size rule."""
        if self.decode_mode not in DECODE_MODES:
            raise ValueError(f"decode_mode must be one of {DECODE_MODES}, got {self.decode_mode!r}")
        if self.cfg.arch == "relu_l1" or self.decode_mode == "dense":
            return False
        if self.decode_mode == "sparse":
            return True
        return sparse_pays(self.cfg.k, self.cfg.n_latents, device if device is not None else self.encoder.weight.device)

    def _decoder_table(self) -> torch.Tensor:
        """The decoder as a contiguous [n_latents, input_dim] table (a view of the column-major weight)."""
        table = self.decoder.weight.t()
        return table if table.is_contiguous() else table.contiguous()

    def decode_active(self, indices: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """sum_j values[b, j] * decoder column indices[b, j], for [B, m] indices and values (no bias)."""
        return torch.nn.functional.embedding_bag(indices, self._decoder_table(), per_sample_weights=values,
                                                 mode="sum")

    def _decode_sparse(self, codes: torch.Tensor) -> torch.Tensor:
        """W_dec codes over the non-zero codes only, each row summed in latent order."""
        rows, cols = codes.nonzero(as_tuple=True)
        offsets = torch.zeros(codes.shape[0] + 1, dtype=torch.long, device=codes.device)
        offsets[1:] = torch.bincount(rows, minlength=codes.shape[0]).cumsum(0)
        return torch.nn.functional.embedding_bag(cols, self._decoder_table(), offsets, mode="sum",
                                                 per_sample_weights=codes[rows, cols], include_last_offset=True)

    def _select(self, acts: torch.Tensor) -> torch.Tensor:
        arch, k = self.cfg.arch, self.cfg.k
        if arch == "relu_l1":
            return acts
        if arch == "batchtopk":
            if not self.training and torch.isfinite(self.threshold):
                return acts * (acts > self.threshold)
            flat = acts.flatten()
            top = flat.topk(min(k * acts.shape[0], flat.numel()), sorted=False)
            return torch.zeros_like(flat).scatter(0, top.indices, top.values).view_as(acts)
        top = acts.topk(k, dim=-1, sorted=False)
        return torch.zeros_like(acts).scatter(-1, top.indices, top.values)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Sparse codes [B, n_latents] of inputs [B, input_dim] (original space)."""
        return self._select(self.pre_activations(x))

    def decode_normalised(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the normalised space (the space losses and metrics use)."""
        out = self._decode_sparse(codes) if self.sparse_decoding(codes.device) else self.decoder(codes)
        return out + self.b_pre if self.b_pre is not None else out

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the original input space."""
        return self.denormalize(self.decode_normalised(codes))

    def forward(self, x: torch.Tensor, dense_codes: bool = True) -> SAEOutput:
        """Codes, reconstruction and losses of a batch. `dense_codes=False` (the training step) lets the
        sparse way skip building the [B, n_latents] code matrix; `codes` is then None."""
        acts = self.pre_activations(x)
        if self.cfg.arch == "topk" and self.sparse_decoding(x.device):
            top = acts.topk(self.cfg.k, dim=-1, sorted=False)
            recon_n = self.decode_active(top.indices, top.values)
            if self.b_pre is not None:
                recon_n = recon_n + self.b_pre
            codes = torch.zeros_like(acts).scatter(-1, top.indices, top.values) if dense_codes else None
        else:
            top = None
            codes = self._select(acts)
            recon_n = self.decode_normalised(codes)
        x_n = self.normalize(x)
        mse = (recon_n - x_n).pow(2).mean()
        zero = mse.new_zeros(())
        l1 = zero
        if self.cfg.arch == "relu_l1":
            l1 = (codes * self.decoder.weight.norm(dim=0)).sum(-1).mean()
        auxk = zero
        if self.cfg.auxk > 0:
            auxk = self._auxk_loss(acts, x_n - recon_n.detach())
        if self.training:
            if top is not None:
                self._update_fired(top.indices, top.values, x.shape[0])
            else:
                self._update_training_stats(codes)
        # only the terms that are on: adding a zero term changes no bit of the loss or the gradients,
        # but costs two autograd nodes per step
        total = mse
        if self.cfg.auxk > 0:
            total = total + self.cfg.auxk * auxk
        if self.cfg.arch == "relu_l1":
            total = total + self.cfg.l1 * l1
        return SAEOutput(self.denormalize(recon_n), codes, mse, auxk, l1, total)

    def _auxk_loss(self, acts: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        dead = self.dead_mask()
        n_dead = int(dead.sum())
        if n_dead == 0:
            return acts.new_zeros(())
        masked = acts * dead  # live latents cannot be picked (their value becomes 0, like a silent dead one)
        top = masked.topk(min(self.cfg.auxk_k, n_dead), dim=-1, sorted=False)
        residual = residual.detach()
        # no bias: the residual has none to add back
        if self.decode_mode != "dense" and (self.decode_mode == "sparse" or sparse_pays(
                top.indices.shape[1], self.cfg.n_latents, acts.device)):
            estimate = self.decode_active(top.indices, top.values)
        else:
            estimate = self.decoder(torch.zeros_like(acts).scatter(-1, top.indices, top.values))
        total = (residual - residual.mean(0)).pow(2).sum().clamp_min(1e-12)
        return (estimate - residual).pow(2).sum() / total

    @torch.no_grad()
    def _update_fired(self, indices: torch.Tensor, values: torch.Tensor, batch: int) -> None:
        """Dead-latent bookkeeping from a batch of `batch` items' top-k indices and values: a latent fired
        where one of its values is > 0.

        Counted with bincount (zero values sent to an extra bin), not by indexing with the positive
        entries: the same counters, without the boolean-mask `nonzero` pass (measured: 0.9 ms instead of
        7.7 ms per batch of 4096 frames at k = 102)."""
        n = self.cfg.n_latents
        counts = torch.bincount(indices.masked_fill(values <= 0, n).flatten(), minlength=n + 1)
        self.samples_since_fired.add_(batch).masked_fill_(counts[:n] > 0, 0)

    @torch.no_grad()
    def _update_training_stats(self, codes: torch.Tensor) -> None:
        fired = (codes > 0).any(0)
        self.samples_since_fired.add_(codes.shape[0]).masked_fill_(fired, 0)
        if self.cfg.arch == "batchtopk":
            kept = codes[codes > 0]
            if kept.numel():
                low = kept.min()
                if torch.isfinite(self.threshold):
                    self.threshold.mul_(_THRESHOLD_MOMENTUM).add_((1 - _THRESHOLD_MOMENTUM) * low)
                else:
                    self.threshold.copy_(low)

    def dead_mask(self) -> torch.Tensor:
        """Latents that have not fired for `dead_after` training samples (all False if unset)."""
        if self.cfg.dead_after is None:
            return torch.zeros_like(self.samples_since_fired, dtype=torch.bool)
        return self.samples_since_fired >= self.cfg.dead_after

    # ------------------------------------------------------------------ unit-norm decoder

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        w = self.decoder.weight  # [input_dim, n_latents]: column j is latent j's direction
        w.div_(w.norm(dim=0, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def remove_parallel_grad_(self) -> None:
        """Drop the part of each decoder column's gradient that would only change its norm."""
        w, g = self.decoder.weight, self.decoder.weight.grad
        if g is None:
            return
        unit = w / w.norm(dim=0, keepdim=True).clamp_min(1e-12)
        g.sub_((g * unit).sum(0, keepdim=True) * unit)

    # ------------------------------------------------------------------ checkpoints

    def save(self, weights_path: Path | str, config_path: Path | str | None = None, extra: dict | None = None) -> None:
        """Write safetensors weights and a config.json beside them (the config also rides in the metadata)."""
        from safetensors.torch import save_file

        weights_path = Path(weights_path)
        config_path = Path(config_path) if config_path else weights_path.with_name("config.json")
        cfg = self.cfg.to_dict()
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(weights_path), metadata={"config": json.dumps(cfg)})
        config_path.write_text(json.dumps({**cfg, **(extra or {})}, indent=2) + "\n")

    @classmethod
    def load(cls, weights_path: Path | str, config_path: Path | str | None = None,
             device: torch.device | str = "cpu") -> "SparseAutoencoder":
        """An SAE from its safetensors file and the config.json beside it (in eval mode)."""
        from safetensors.torch import load_file

        weights_path = Path(weights_path)
        config_path = Path(config_path) if config_path else weights_path.with_name("config.json")
        if not config_path.exists():
            raise FileNotFoundError(f"no SAE config at {config_path}; it is written beside {weights_path.name}")
        sae = cls(SAEConfig.from_dict(json.loads(config_path.read_text())))
        sae.load_state_dict(load_file(str(weights_path)))
        return sae.to(device).eval()
