"""Train one SAE on one layer of an embeddings store; evaluate it; write its outputs.

The vectors come from the Zarr store the extraction stage wrote (no encoder runs
here). Training uses the train split, keeps the epoch with the lowest valid MSE,
and is seeded: one ``torch.Generator`` draws the initial weights and then every
epoch's batch order, so two runs on CPU give bitwise-identical weights.

With ``normalize_inputs``, the train split's per-dimension mean and std are
stored in the SAE and applied in training and evaluation alike; the loss, the
valid MSE that selects the epoch, and every metric are measured in that
normalised space. Without it (the paper) that space is the original one.

Outputs (one directory per (model, layer, sparsity)) are first written into a
hidden temporary sibling and renamed into place at the end, metrics.json last,
so a killed job leaves nothing that looks complete.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from audiosae import store as zstore
from audiosae.config import ConfigError
from audiosae.atomic import fresh_tmp_dir, publish
from audiosae.jsonio import write_json
from audiosae.sae.metrics import SplitMetrics
from audiosae.sae.model import SAEConfig, SAEOutput, SparseAutoencoder
from audiosae.sae.settings import SAESettings
from audiosae.sae.sizes import k_for, latent_count

SPLITS = ("train", "valid", "test")


@dataclass
class SAEPaths:
    """The four outputs of one train_sae job."""

    weights: Path
    config: Path
    metrics: Path
    latents: Path

    def __post_init__(self) -> None:
        for name in ("weights", "config", "metrics", "latents"):
            setattr(self, name, Path(getattr(self, name)))

    @classmethod
    def in_dir(cls, directory: Path | str) -> "SAEPaths":
        d = Path(directory)
        return cls(d / "sae.safetensors", d / "config.json", d / "metrics.json", d / "latents.zarr")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_mse: float = math.inf
    epochs_run: int = 0
    samples_seen: int = 0
    step_time_s: float = 0.0
    """Wall time in the epochs' batch loops (data and steps), the valid passes excluded."""


def zero_k_error(model: str, layer: int, sparsity: float, n_latents: int) -> ConfigError:
    """The error audiosae.config raises before any job runs, for models whose width is known only now."""
    return ConfigError(
        f"config key 'sae.sparsities': model '{model}', layer {layer}, sparsity {sparsity} gives "
        f"k = int((1 - {sparsity}) * {n_latents}) = 0 active codes; lower the sparsity or raise sae.dim"
    )


def make_config(input_dim: int, sparsity: float, *, dead_after: int | None = None, model: str = "?",
                layer: int = -1, **settings) -> SAEConfig:
    """The SAEConfig for a layer of width `input_dim` at a target sparsity (ConfigError if k = 0).

    `settings`: SAESettings fields (those that shape the SAE are used; defaults as in the config schema)."""
    s = SAESettings(**settings)
    n = latent_count(s.dim, input_dim, s.min_dim)
    k = k_for(sparsity, n)
    if k == 0:
        raise zero_k_error(model, layer, sparsity, n)
    m = s.model_kwargs()
    del m["dim"], m["min_dim"]
    return SAEConfig(input_dim=input_dim, n_latents=n, k=k, **{**m, "auxk": float(s.auxk), "l1": float(s.l1)},
                     dead_after=dead_after)


def prepare(sae: SparseAutoencoder, train_x: torch.Tensor) -> None:
    """Input statistics and pre-bias from the train split (what "fit on train" means here)."""
    x = train_x.double()
    sae.set_input_stats(x.mean(0).float(), x.std(0, unbiased=False).float())
    sae.init_pre_bias(sae.normalize(train_x).double().mean(0).float())


def prepare_stats(sae: SparseAutoencoder, mean: torch.Tensor, std: torch.Tensor) -> None:
    """`prepare` from precomputed train statistics (streamed data): the normalised mean is normalize(mean)."""
    sae.set_input_stats(mean, std)
    sae.init_pre_bias(sae.normalize(torch.as_tensor(mean, dtype=torch.float32)))


def _contiguous_alias(t: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...] | None]:
    """`t` as a contiguous tensor over the same memory (its dimensions permuted), and the permutation
    (None when `t` is contiguous already, or no permutation makes it so)."""
    if t.is_contiguous():
        return t, None
    dims = tuple(sorted(range(t.dim()), key=lambda d: -t.stride(d)))
    alias = t.detach().permute(dims)
    return (alias, dims) if alias.is_contiguous() else (t, None)


OWN_ADAM_BELOW = 2**22  # parameters: smaller SAEs on CPU take `SAEAdam`'s own update (no torch.optim import)


class SAEAdam:
    """Adam over an SAE's parameters (betas 0.9 / 0.999, eps 1e-8, no weight decay), in one of two ways.

    **Small SAEs on CPU** (fewer than `OWN_ADAM_BELOW` parameters: every SAE of
    the demo and the tests): the update written here, torch.optim.Adam's
    single-tensor update operation for operation, so bit for bit the same numbers
    (tests/test_sae_step.py). Constructing any torch.optim optimizer imports
    torch._dynamo: 2 to 4 s per job on the 2-core machine, more than such an
    SAE's whole training (a demo clip SAE trains in about 1 s).

    **Otherwise** (CUDA, or the paper's SAEs: WavLM's 768 x 3072 has 4.7 M
    parameters) torch's fused Adam, each parameter updated through a contiguous
    alias of its memory. The fused kernel computes the update in one loop instead
    of about ten whole-tensor operations; measured on this project's CPU it
    updates a 768 x 2048 SAE about 6x faster, which is most of a batch-16 clip
    step. Same formula, different float rounding from unfused Adam (float noise);
    deterministic run to run. The import is a small share of such a training.

    Aliases: the decoder weight is stored column-major (see `SparseAutoencoder`),
    and torch's CPU fused kernel copies a non-contiguous parameter into a
    contiguous one and back on every step (a transposing copy of the whole
    decoder, twice, measured as the largest per-step cost of a batch-16 clip
    step). Adam is elementwise, so updating the decoder's memory through its
    contiguous transpose gives the same numbers bit for bit
    (tests/test_sae_step.py), without the copies. `zero_grad` and `step`
    are the optimizer's; `step` points each alias's gradient at its parameter's.

    `own`: force one way (True: the update written here; False: torch's); None chooses as above.
    """

    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(self, params, lr: float, own: bool | None = None):
        self.params = list(params)
        if own is None:
            own = (all(p.device.type == "cpu" for p in self.params)
                   and sum(p.numel() for p in self.params) < OWN_ADAM_BELOW)
        self.own = bool(own)
        self.lr = float(lr)
        self.fused = False
        self.state: list[tuple[int, torch.Tensor, torch.Tensor] | None] = [None] * len(self.params)
        if self.own:
            return
        self.aliases, self.dims = zip(*(_contiguous_alias(p) for p in self.params)) if self.params else ((), ())
        try:
            self.optimizer = torch.optim.Adam(list(self.aliases), lr=lr, fused=True)
            self.fused = True
        except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
            self.optimizer = torch.optim.Adam(list(self.aliases), lr=lr)
            self.fused = False

    def set_lr(self, lr: float) -> None:
        self.lr = float(lr)
        if not self.own:
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    def step(self) -> None:
        if self.own:
            self._own_step()
            return
        for p, alias, dims in zip(self.params, self.aliases, self.dims):
            if dims is not None:
                alias.grad = None if p.grad is None else p.grad.permute(dims)
        self.optimizer.step()

    @torch.no_grad()
    def _own_step(self) -> None:
        """torch.optim.Adam's `_single_tensor_adam` (torch 2.11) without the options this project never sets."""
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:  # as torch: a parameter without a gradient is not stepped
                continue
            if self.state[i] is None:
                self.state[i] = (0, torch.zeros_like(p, memory_format=torch.preserve_format),
                                 torch.zeros_like(p, memory_format=torch.preserve_format))
            step, exp_avg, exp_avg_sq = self.state[i]
            step += 1
            self.state[i] = (step, exp_avg, exp_avg_sq)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_correction1 = 1 - beta1 ** float(step)
            bias_correction2 = 1 - beta2 ** float(step)
            step_size = self.lr / bias_correction1
            bias_correction2_sqrt = bias_correction2 ** 0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)


def lr_factor(step: int, total_steps: int, warmup: float = 0.0, decay: float = 0.0) -> float:
    """The learning rate of optimiser step `step` (0-based, of `total_steps`) as a fraction of the base rate.

    Linear warm-up over the first W = max(1, round(warmup * T)) steps, factor (step + 1) / W; linear decay to
    zero over the last D = round(decay * T) steps, factor (T - step) / D; the smaller of the two. With
    warmup = decay = 0 the factor is 1 throughout (the paper's constant rate). Warm-up as in OpenAI's top-k SAEs
    and sparsify; decay over the last part of training as in Anthropic's April 2024 update (last 20 %)."""
    if not (0 <= warmup < 1 and 0 <= decay <= 1):
        raise ValueError(f"lr_warmup must lie in [0, 1) and lr_decay in [0, 1], got {warmup} and {decay}")
    factor = 1.0
    if warmup > 0:
        w = max(1, round(warmup * total_steps))
        factor = min(factor, (step + 1) / w)
    if decay > 0:
        d = max(1, round(decay * total_steps))
        if step >= total_steps - d:
            factor = min(factor, max(total_steps - step, 0) / d)
    return factor


def make_optimizer(sae: SparseAutoencoder, lr: float) -> SAEAdam:
    """Adam over the SAE's parameters (`SAEAdam`: fused where torch has it, contiguous aliases)."""
    return SAEAdam(sae.parameters(), lr)


def train_step(sae: SparseAutoencoder, optimizer: "SAEAdam | torch.optim.Optimizer", batch: torch.Tensor,
               forward: Callable[..., SAEOutput] | None = None) -> SAEOutput:
    """One optimiser step on one batch (in training mode). The output's `codes` is None where the SAE
    decodes sparsely (the step needs no [B, n_latents] code matrix). `forward`: the SAE's forward to use
    (`training_forward`: compiled or not); the SAE itself when None."""
    optimizer.zero_grad(set_to_none=True)
    out = (forward if forward is not None else sae)(batch, dense_codes=False)
    out.total.backward()
    if sae.cfg.unit_norm_decoder:
        sae.remove_parallel_grad_()
    optimizer.step()
    if sae.cfg.unit_norm_decoder:
        sae.normalize_decoder_()
    return out


def training_forward(sae: SparseAutoencoder, compile: bool = False) -> Callable[..., SAEOutput]:
    """The forward the training step calls: `torch.compile(sae)` when `compile` and the SAE is on CUDA,
    else the SAE itself.

    Compilation fuses the step's elementwise work (ReLU, top-k bookkeeping, the
    loss) around the matmuls and ``embedding_bag``, and AOTAutograd compiles the
    backward likewise; it pays off where per-kernel launch cost matters (a GPU).
    On CPU it is ignored: measured at the demo's sizes it does not pay (see
    docs/sae-training-speed.md), and it needs a C++ toolchain per job. The
    compiled step computes the same function with different float rounding
    (fused kernels); run to run on one GPU it is as deterministic as the eager one.
    """
    if not compile or sae.encoder.weight.device.type != "cuda":
        return sae
    return torch.compile(sae)


@torch.no_grad()
def mean_mse_blocks(sae: SparseAutoencoder, blocks: Iterable[torch.Tensor]) -> float:
    """MSE per element over all rows of `blocks` (normalised space), the model in evaluation mode."""
    was_training = sae.training
    sae.eval()
    sq, count = 0.0, 0
    for xb in blocks:
        recon = sae.decode_normalised(sae.encode(xb))
        sq += float((recon - sae.normalize(xb)).double().pow(2).sum())
        count += xb.numel()
    sae.train(was_training)
    return sq / max(count, 1)


def mean_mse(sae: SparseAutoencoder, x: torch.Tensor, batch_size: int = 1024) -> float:
    """MSE per element over all of `x` (normalised space), the model in evaluation mode."""
    return mean_mse_blocks(sae, (x[start:start + batch_size] for start in range(0, x.shape[0], batch_size)))


def fit(sae: SparseAutoencoder, train_x: torch.Tensor, valid_x: torch.Tensor, *, lr: float = 1e-3,
        batch_size: int = 16, epochs: int = 100, patience: int | None = None,
        generator: torch.Generator | None = None, progress: bool = True, desc: str = "sae",
        compile: bool = False, lr_warmup: float = 0.0, lr_decay: float = 0.0) -> FitResult:
    """Adam on shuffled in-memory train batches; afterwards `sae` holds the weights of the best valid-MSE epoch.

    `train_x` and `valid_x` already live on the SAE's device.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    n = train_x.shape[0]

    def batches(epoch: int) -> Iterator[torch.Tensor]:
        order = torch.randperm(n, generator=generator).to(train_x.device)
        for start in range(0, n, batch_size):
            # index_select, not train_x[idx]: the same rows, but advanced indexing costs about 2 ms
            # per call on this CPU (measured), a quarter of a batch-16 step
            yield train_x.index_select(0, order[start:start + batch_size])

    return fit_epochs(sae, batches, lambda: mean_mse(sae, valid_x), lr=lr, epochs=epochs, patience=patience,
                      progress=progress, desc=desc, compile=compile, lr_warmup=lr_warmup, lr_decay=lr_decay,
                      total_steps=epochs * math.ceil(n / batch_size))


def _mean_of_batches(mses: list[torch.Tensor], sizes: list[int]) -> float:
    """sum(mse_b * size_b) / sum(size_b) in float64, summed in batch order (NaN for no batches)."""
    if not mses:
        return math.nan
    sq = 0.0
    for mse, size in zip(torch.stack(mses).double().tolist(), sizes):
        sq += mse * size
    return sq / max(sum(sizes), 1)


def fit_epochs(sae: SparseAutoencoder, epoch_batches: Callable[[int], Iterable[torch.Tensor]],
               valid_mse: Callable[[], float], *, lr: float = 1e-3, epochs: int = 100, patience: int | None = None,
               max_samples: int | None = None, progress: bool = True, desc: str = "sae",
               compile: bool = False, lr_warmup: float = 0.0, lr_decay: float = 0.0,
               total_steps: int | None = None) -> FitResult:
    """Adam over `epoch_batches(epoch)` for each epoch; keeps the weights of the epoch with the lowest `valid_mse()`.

    The batches already live on the SAE's device (in memory for clip SAEs, streamed
    for frame SAEs). `patience`: stop after that many epochs without a better
    valid MSE (None: run every epoch). `max_samples`: stop once that many training
    vectors have been seen (the epoch in progress ends there and is evaluated). `compile`: the step's
    forward through `torch.compile` on CUDA (`training_forward`; ignored on CPU). `lr_warmup`, `lr_decay`: the
    learning-rate schedule of `lr_factor` over `total_steps` optimiser steps (needed when either is > 0; steps
    past it, should there be any, take the last factor's formula, i.e. zero).
    """
    scheduled = lr_warmup > 0 or lr_decay > 0
    if scheduled and not total_steps:
        raise ValueError("a learning-rate schedule (lr_warmup or lr_decay > 0) needs total_steps")
    if scheduled:
        lr_factor(0, total_steps, lr_warmup, lr_decay)  # checks the fractions before any step
    optimizer = make_optimizer(sae, lr)
    step = 0
    forward = training_forward(sae, compile)
    result = FitResult()
    best_state = None
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", file=sys.stderr, disable=not progress,
               mininterval=5.0)
    for epoch in bar:
        sae.train()
        mses, sizes = [], []  # per step: the batch's MSE (left on the device: no sync per step) and size
        t_epoch = time.perf_counter()
        for batch in epoch_batches(epoch):
            if scheduled:
                optimizer.set_lr(lr * lr_factor(step, total_steps, lr_warmup, lr_decay))
            step += 1
            out = train_step(sae, optimizer, batch, forward)
            mses.append(out.mse.detach())
            sizes.append(batch.numel())
            result.samples_seen += batch.shape[0]
            if max_samples is not None and result.samples_seen >= max_samples:
                break
        train_mse = _mean_of_batches(mses, sizes)  # (one wait for the device, per epoch)
        result.step_time_s += time.perf_counter() - t_epoch
        valid = valid_mse()
        result.history.append({"epoch": epoch, "train_mse": train_mse, "valid_mse": valid})
        result.epochs_run = epoch
        if valid < result.best_valid_mse:
            result.best_valid_mse, result.best_epoch = valid, epoch
            best_state = {k: v.detach().clone() for k, v in sae.state_dict().items()}
        dead = float(sae.dead_mask().float().mean()) if sae.cfg.dead_after else float("nan")
        msg = (f"epoch {epoch}/{epochs}: train_mse {train_mse:.6g} valid_mse {valid:.6g} "
               f"best {result.best_valid_mse:.6g} (epoch {result.best_epoch})")
        if not math.isnan(dead):
            msg += f" dead {dead:.3f}"
        if progress:
            tqdm.write(msg, file=sys.stderr)
        if patience is not None and epoch - result.best_epoch >= patience:
            if progress:
                tqdm.write(f"no better valid MSE for {patience} epochs: stopping", file=sys.stderr)
            break
        if max_samples is not None and result.samples_seen >= max_samples:
            if progress:
                tqdm.write(f"budget of {max_samples} training vectors reached: stopping", file=sys.stderr)
            break
    if best_state is not None:
        sae.load_state_dict(best_state)
    sae.eval()
    return result


def _read_split(store: Path, array: str, split: str) -> np.ndarray:
    values, _ = zstore.read_split(store, array, split)
    return values


def train_sae(store: Path | str, *, model: str, layer: int, sparsity: float, outputs: SAEPaths,
              chunk_rows: int = zstore.CHUNK_ROWS, progress: bool = True, **settings) -> dict:
    """Train, select, evaluate and write one SAE for array `layer{layer}` of `store`; returns metrics.json's dict.

    `settings`: SAESettings fields (``sae.*`` of the config; the schema's defaults for those left out)."""
    t0 = time.perf_counter()
    s = SAESettings(**settings)
    dim, lr, batch_size, epochs, patience, seed, device = s.dim, s.lr, s.batch_size, s.epochs, s.patience, s.seed, s.device
    store = Path(store)
    array = f"layer{layer}"
    sparsity = float(sparsity)
    if not isinstance(device, torch.device):
        from audiosae.devices import resolve_device

        device = resolve_device(device)

    train_np = _read_split(store, array, "train")
    valid_np = _read_split(store, array, "valid")
    for split, values in (("train", train_np), ("valid", valid_np)):
        if len(values) == 0:
            raise ValueError(f"store {store} has no {split} items; the SAE needs train and valid rows "
                             f"(check the manifest's split column)")
    input_dim = train_np.shape[1]
    cfg = make_config(input_dim, sparsity, **s.model_kwargs(), dead_after=len(train_np), model=model, layer=layer)
    print(f"train_sae: {model} layer {layer} sparsity {sparsity}: input_dim {input_dim}, "
          f"n_latents {cfg.n_latents}, k {cfg.k}, arch {cfg.arch}, {len(train_np)} train / "
          f"{len(valid_np)} valid items, device {device}", file=sys.stderr)

    generator = torch.Generator().manual_seed(seed)
    sae = SparseAutoencoder(cfg, generator=generator)
    prepare(sae, torch.from_numpy(train_np))
    sae.to(device)
    train_x = torch.from_numpy(train_np).to(device)
    valid_x = torch.from_numpy(valid_np).to(device)
    del train_np, valid_np
    result = fit(sae, train_x, valid_x, lr=lr, batch_size=batch_size, epochs=epochs, patience=patience,
                 generator=generator, progress=progress, desc=f"{model} L{layer} s{sparsity}", compile=s.compile,
                 lr_warmup=s.lr_warmup, lr_decay=s.lr_decay)
    del train_x, valid_x

    tmp = fresh_tmp_dir(outputs.metrics.parent / outputs.metrics.parent.name)
    try:
        index = zstore.read_index(store)
        split_of = index["split"].to_numpy()
        stats = {s: SplitMetrics(cfg.n_latents) for s in SPLITS}
        attrs = {"model": model, "layer": layer, "sparsity": sparsity, "k": cfg.k, "n_latents": cfg.n_latents,
                 "input_dim": input_dim, "arch": cfg.arch, "source_store": str(store), "source_array": array,
                 "sae_config": cfg.to_dict()}
        with torch.no_grad(), zstore.writing(tmp / "latents.zarr", index, attrs) as writer:
            writer.create("codes", cfg.n_latents)
            for start, block in zstore.iter_rows(store, array, chunk_rows):
                x = torch.from_numpy(block).to(device)
                codes = sae.encode(x)
                recon_n = sae.decode_normalised(codes)
                x_n = sae.normalize(x)
                writer.write_rows("codes", start, codes.cpu().numpy())
                rows = split_of[start:start + len(block)]
                for split in SPLITS:
                    mask = torch.from_numpy(rows == split).to(device)
                    if bool(mask.any()):
                        stats[split].update(x_n[mask], recon_n[mask], codes[mask])
        dead = stats["train"].dead_fraction()
        splits = {}
        for split in SPLITS:
            splits[split] = {**stats[split].result(), "dead_fraction": dead}
        metrics = {
            "model": model, "layer": layer, "sparsity": sparsity, "k": cfg.k, "n_latents": cfg.n_latents,
            "input_dim": input_dim, "arch": cfg.arch, "seed": seed, "device": str(device),
            "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "wall_time_s": round(time.perf_counter() - t0, 3), "history": result.history, "splits": splits,
        }
        training = {"model": model, "layer": layer, "sparsity": sparsity, "store": str(store), "dim": dim,
                    "lr": lr, "lr_warmup": s.lr_warmup, "lr_decay": s.lr_decay, "batch_size": batch_size, "epochs": epochs, "patience": patience, "seed": seed}
        sae.cpu().save(tmp / "sae.safetensors", tmp / "config.json", extra={"training": training})
        write_json(tmp / "metrics.json", metrics, indent=2)

        for name, dst in (("latents.zarr", outputs.latents), ("sae.safetensors", outputs.weights),
                          ("config.json", outputs.config), ("metrics.json", outputs.metrics)):
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            publish(tmp / name, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    splits_msg = ", ".join(f"{s} fvu {splits[s]['fvu']:.4g}" for s in SPLITS)
    print(f"train_sae: best epoch {result.best_epoch} of {result.epochs_run}; {splits_msg}; "
          f"dead {dead:.3f}; {metrics['wall_time_s']} s", file=sys.stderr)
    return metrics
