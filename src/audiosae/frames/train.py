"""A frame-level SAE: trained on every frame of the train clips, streamed from the frame store.

Same model, options, seeding, epoch selection and metrics as a clip SAE
(`audiosae.sae`): the SAE is built by `make_config`, trained by `fit_epochs`
with `train_step`, and measured by `SplitMetrics` — here per frame. What
differs is where the vectors come from: `FrameStream` (chunks in a new order
each epoch plus a shuffle buffer), so memory stays flat however long the corpus.
Input statistics (normalize_inputs, pre_bias) come from one streamed pass.

Outputs, in ``results/fsae/{model}/layer{L}/sparsity{s}/`` (the clip SAE's names):

- ``sae.safetensors`` + ``config.json``;
- ``metrics.json``: the clip SAE's keys (frame-level MSE, FVU, cosine, L0, dead
  fraction per split, history, best epoch) plus ``"level": "frame"``, frame counts
  and throughput;
- ``latents.zarr``: one row per item of the embedding store (same clip_id, split,
  crop): ``codes`` = the mean (``pooling: max``: the max) of the item's frame codes
  over exactly its crop's frames, and the other pooling as ``codes_max`` (or
  ``codes_mean``), so probes, disentanglement and the atlas read frame SAEs as
  they read clip SAEs;
- ``frame_codes.zarr``: the test clips' frame codes, sparse (CSR: ``indptr``,
  ``indices``, ``values``), with each test clip's rows and each frame's time.

Everything is written into a hidden temporary folder and moved into place at
the end, metrics.json last.
"""

from __future__ import annotations

import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from audiosae import store as zstore
from audiosae.frames.store import (Appender, clip_index, frame_split, item_index, layer_array, open_frames,
                                   selected_mask)
from audiosae.frames.stream import FrameStream
from audiosae.atomic import fresh_tmp_dir, publish
from audiosae.jsonio import write_json
from audiosae.sae.metrics import SplitMetrics
from audiosae.sae.model import SparseAutoencoder
from audiosae.sae.settings import FrameSAESettings
from audiosae.sae.train import SAEPaths, fit_epochs, make_config, mean_mse_blocks, prepare_stats

SPLITS = ("train", "valid", "test")
POOLINGS = ("mean", "max")


@dataclass
class FrameSAEPaths(SAEPaths):
    """The five outputs of one frame-level train job."""

    frame_codes: Path = Path("frame_codes.zarr")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.frame_codes = Path(self.frame_codes)

    @classmethod
    def in_dir(cls, directory: Path | str) -> "FrameSAEPaths":
        d = Path(directory)
        return cls(d / "sae.safetensors", d / "config.json", d / "metrics.json", d / "latents.zarr",
                   d / "frame_codes.zarr")


def fixed_mmap_threshold(nbytes: int = 128 * 1024) -> bool:
    """Have glibc serve every allocation above `nbytes` with its own mmap, returned to the system when freed.

    glibc raises this threshold each time a large block is freed; the evaluation
    pass then allocates its variable-sized blocks (masked selections) from the
    heap, which fragments and grows with the number of frames passed (measured:
    +60 % peak RSS from 50k to 200k frames). A fixed threshold keeps peak memory
    flat. Returns False where there is no glibc (nothing to do there).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, int(nbytes)))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def streamed_stats(stream: FrameStream) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and (population) std of the stream's frames, accumulated in float64 about a shift.

    The chunks stay float32 (the frames are float16 in the store, exact in float32); only
    the per-chunk sums are float64, so no float64 copy of a chunk is made.
    """
    shift = total = total_sq = None
    n = 0
    for block in stream.sequential():
        x = torch.from_numpy(block)
        if shift is None:
            shift = x.mean(0, dtype=torch.float64).float()
            total = torch.zeros(x.shape[1], dtype=torch.float64)
            total_sq = torch.zeros(x.shape[1], dtype=torch.float64)
        c = x - shift
        total += c.sum(0, dtype=torch.float64)
        total_sq += c.mul_(c).sum(0, dtype=torch.float64)
        n += x.shape[0]
    mean_c = total / n
    var = (total_sq / n - mean_c.pow(2)).clamp_min(0)
    return (shift.double() + mean_c).float(), var.sqrt().float()


class _PinnedBatches:
    """Pinned host buffers the stream gathers batches into, for asynchronous copies to a GPU.

    A ring of `depth` buffers; before a buffer is reused, the copy that last read it
    has finished (a CUDA event), so the host may run ahead of the device by depth - 1
    batches. On a CPU device (the logic tests) the buffers are ordinary memory and
    there is nothing to wait for.
    """

    def __init__(self, batch: int, width: int, device: torch.device, depth: int = 3):
        pin = device.type == "cuda"
        self.device = device
        self.host = [torch.empty((batch, width), dtype=torch.float32, pin_memory=pin) for _ in range(depth)]
        self.events: list = [None] * depth
        self.i = 0

    def out(self, n: int) -> np.ndarray:
        """The next buffer's first n rows as a numpy view (the stream's `batch_out`)."""
        self.i = (self.i + 1) % len(self.host)
        if self.events[self.i] is not None:
            self.events[self.i].synchronize()
        return self.host[self.i][:n].numpy()

    def to_device(self, block: np.ndarray) -> torch.Tensor:
        """The batch on the device; from the ring's own (pinned) tensor when `block` is its last buffer."""
        src = self.host[self.i][:len(block)]
        if src.data_ptr() != block.ctypes.data:  # not from `out` (cannot happen in train_frame_sae)
            src = torch.from_numpy(block)
        x = src.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
            self.events[self.i] = event
        return x


class _Pooler:
    """Mean and max of frame codes over each item's frame range, fed block by block in frame order."""

    def __init__(self, items, clips, n_latents: int):
        self.first = items["first_frame"].to_numpy(dtype=np.int64)
        self.end = self.first + items["n_frames"].to_numpy(dtype=np.int64)
        # Items come clip by clip; the items of clip c are rows [item_lo[c], item_lo[c + 1]).
        clip_of_item = items["clip_id"].to_numpy()
        order = {c: i for i, c in enumerate(clips["clip_id"])}
        idx = np.array([order[c] for c in clip_of_item], dtype=np.int64)
        if len(idx) and np.any(np.diff(idx) < 0):
            raise ValueError("frame store items are not in clip order")
        self.item_lo = np.searchsorted(idx, np.arange(len(clips) + 1))
        self.clip_first = clips["first_frame"].to_numpy(dtype=np.int64)
        self.clip_end = self.clip_first + clips["n_frames"].to_numpy(dtype=np.int64)
        self.n_latents = n_latents
        self.acc: dict[int, list] = {}

    def feed(self, start: int, codes: torch.Tensor) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Add a block of codes for frames [start, start + len); returns the items finished: (row, mean, max)."""
        stop = start + codes.shape[0]
        c_lo = int(np.searchsorted(self.clip_end, start, side="right"))
        c_hi = int(np.searchsorted(self.clip_first, stop, side="left"))
        done = []
        for row in range(int(self.item_lo[c_lo]), int(self.item_lo[c_hi])):
            a, b = max(self.first[row], start), min(self.end[row], stop)
            if a >= b:
                continue
            part = codes[a - start:b - start]
            s, m = part.sum(0, dtype=torch.float64), part.max(0).values
            if row in self.acc:
                acc = self.acc[row]
                acc[0] += s
                acc[1] = torch.maximum(acc[1], m)
            else:
                self.acc[row] = [s, m]
            if self.end[row] <= stop:
                s, m = self.acc.pop(row)
                n = self.end[row] - self.first[row]
                done.append((row, (s / n).float().cpu().numpy(), m.float().cpu().numpy()))
        return done


class FrameCodesWriter:
    """Writes ``frame_codes.zarr``: the test clips' frame codes, sparse (CSR: ``indptr``, ``indices``,
    ``values``), each frame's ``time_s``, and each test clip's ``clip_id``, ``first_row`` and ``n_frames``.

    Feed it the codes of every block of the frame store, in frame order (`feed`); `close` writes the index and
    `attrs`. Our frame SAEs (`train_frame_sae`) and imported frame-level SAEs (`audiosae.interop.latents`)
    write their test frame codes through it, and `audiosae.frames.acoustics.FrameSource` reads them.
    """

    def __init__(self, path: Path | str, store: Path | str, clips):
        self.group = zarr.open_group(str(path), mode="w")
        self.codes = Appender(self.group, {"indices": (None, "int32"), "values": (None, "float32")}, 1 << 16)
        self.rows = Appender(self.group, {"time_s": (None, "float64"), "row_nnz": (None, "int32")}, 1 << 16)
        self.times = open_frames(store)["time_s"]
        self.test = clips[clips["split"] == "test"]
        self.first = self.test["first_frame"].to_numpy(dtype=np.int64)
        self.end = self.first + self.test["n_frames"].to_numpy(dtype=np.int64)

    def feed(self, start: int, stop: int, codes: torch.Tensor) -> None:
        """The codes [stop - start, n_latents] of store frames [start, stop); keeps those of test clips."""
        tmask = selected_mask(self.first, self.end, start, stop)
        if not tmask.any():
            return
        tc = codes[torch.from_numpy(tmask).to(codes.device)].cpu()
        nz = tc != 0
        r, c = nz.nonzero(as_tuple=True)
        self.codes.add({"indices": c.numpy().astype(np.int32), "values": tc[r, c].numpy().astype(np.float32)})
        self.rows.add({"time_s": np.asarray(self.times[start:stop])[tmask],
                       "row_nnz": nz.sum(1).numpy().astype(np.int32)})

    def close(self, attrs: dict) -> None:
        nnz = self.codes.close()
        n_test = self.rows.close()
        g, test = self.group, self.test
        row_nnz = np.asarray(g["row_nnz"][:], dtype=np.int64)
        g.create_array("indptr", data=np.concatenate([[0], np.cumsum(row_nnz)]).astype(np.int64))
        offsets = np.concatenate([[0], np.cumsum(test["n_frames"].to_numpy(dtype=np.int64))])
        g.create_array("clip_id", shape=(len(test),), dtype=str)
        if len(test):
            g["clip_id"][:] = test["clip_id"].astype(str).to_numpy(dtype=object)
        g.create_array("first_row", data=offsets[:-1].astype(np.int64))
        g.create_array("n_frames", data=test["n_frames"].to_numpy(dtype=np.int64))
        g.attrs.update({**attrs, "n_frames": int(n_test), "nnz": int(nnz), "format": "CSR rows = test frames "
                        "(clip by clip, in frame order); row r holds indices[indptr[r]:indptr[r+1]]",
                        "complete": True})


def train_frame_sae(store: Path | str, *, model: str, layer: int, sparsity: float, outputs: FrameSAEPaths,
                    progress: bool = True, **settings) -> dict:
    """Train, select, evaluate and write one frame-level SAE on `layer{layer}` of a frame store.

    `settings`: FrameSAESettings fields (``sae.*`` and ``sae.frame.*``; the schema's defaults for those left out)."""
    t0 = time.perf_counter()
    s = FrameSAESettings(**settings)
    dim, lr, batch_size, epochs, patience, seed, device = s.dim, s.lr, s.batch_size, s.epochs, s.patience, s.seed, s.device
    max_frames, shuffle_buffer, pooling = s.max_frames, s.shuffle_buffer, s.pooling
    fixed_mmap_threshold()
    store = Path(store)
    sparsity = float(sparsity)
    if pooling not in POOLINGS:
        raise ValueError(f"sae.frame.pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    if not isinstance(device, torch.device):
        from audiosae.devices import resolve_device

        device = resolve_device(device)
    array = layer_array(store, layer, model)  # a named error when the store lacks the layer
    clips = clip_index(store)
    items = item_index(store)
    pinned = _PinnedBatches(batch_size, int(array.shape[1]), device) if device.type == "cuda" else None
    train = FrameStream(store, layer, ["train"], batch_size, shuffle_buffer, seed, model,
                        batch_out=pinned.out if pinned is not None else None)
    valid = FrameStream(store, layer, ["valid"], batch_size, shuffle_buffer, seed, model)
    for split, stream in (("train", train), ("valid", valid)):
        if stream.n_frames == 0:
            raise ValueError(f"frame store {store} has no {split} frames; the SAE needs train and valid clips "
                             f"(check the manifest's split column)")
    input_dim = int(array.shape[1])
    cfg = make_config(input_dim, sparsity, **s.model_kwargs(), dead_after=train.n_frames, model=model, layer=layer)
    budget = None if max_frames is None else int(max_frames)
    print(f"train_frame_sae: {model} layer {layer} sparsity {sparsity}: input_dim {input_dim}, n_latents "
          f"{cfg.n_latents}, k {cfg.k}, arch {cfg.arch}, {train.n_frames:,} train / {valid.n_frames:,} valid "
          f"frames, batch {batch_size}, buffer {train.buffer_frames:,} frames, chunks of {train.chunk}, "
          f"epochs {epochs}, frame budget {budget or 'none'}, device {device}", file=sys.stderr)

    generator = torch.Generator().manual_seed(seed)
    sae = SparseAutoencoder(cfg, generator=generator)
    mean, std = streamed_stats(train)
    prepare_stats(sae, mean, std)
    sae.to(device)

    def batches(epoch: int):
        for block in train.epoch(epoch):
            yield pinned.to_device(block) if pinned is not None else torch.from_numpy(block).to(device)

    def valid_mse() -> float:
        return mean_mse_blocks(sae, (torch.from_numpy(b).to(device) for b in valid.sequential()))

    t_train = time.perf_counter()
    total_steps = epochs * -(-train.n_frames // batch_size)  # FrameStream: ceil(frames / batch) per epoch
    if budget is not None:
        total_steps = min(total_steps, -(-budget // batch_size))
    result = fit_epochs(sae, batches, valid_mse, lr=lr, epochs=epochs, patience=patience, max_samples=budget,
                        progress=progress, desc=f"{model} L{layer} fs{sparsity}", compile=s.compile,
                        lr_warmup=s.lr_warmup, lr_decay=s.lr_decay, total_steps=total_steps)
    train_s = time.perf_counter() - t_train

    tmp = fresh_tmp_dir(outputs.metrics.parent / outputs.metrics.parent.name)
    try:
        stats = {s: SplitMetrics(cfg.n_latents) for s in SPLITS}
        attrs = {"model": model, "layer": layer, "sparsity": sparsity, "k": cfg.k, "n_latents": cfg.n_latents,
                 "input_dim": input_dim, "arch": cfg.arch, "level": "frame", "pooling": pooling,
                 "source_store": str(store), "source_array": f"layer{layer}", "sae_config": cfg.to_dict(),
                 "crop_seconds": open_frames(store).attrs.get("crop_seconds")}
        other = "codes_max" if pooling == "mean" else "codes_mean"
        index = items[["clip_id", "split", "crop"]]
        pooler = _Pooler(items, clips, cfg.n_latents)
        frame_codes = FrameCodesWriter(tmp / "frame_codes.zarr", store, clips)
        pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        next_row = 0
        total = int(array.shape[0])
        chunk = int(array.chunks[0])
        with torch.no_grad(), zstore.writing(tmp / "latents.zarr", index, attrs) as writer:
            writer.create("codes", cfg.n_latents)
            writer.create(other, cfg.n_latents)

            def flush(force: bool = False) -> None:
                nonlocal next_row
                rows = []
                while next_row + len(rows) in pending:
                    rows.append(pending.pop(next_row + len(rows)))
                if rows and (force or len(rows) >= zstore.CHUNK_ROWS):
                    means = np.stack([r[0] for r in rows])
                    maxes = np.stack([r[1] for r in rows])
                    writer.write_rows("codes", next_row, means if pooling == "mean" else maxes)
                    writer.write_rows(other, next_row, maxes if pooling == "mean" else means)
                    next_row += len(rows)
                else:
                    for k, r in enumerate(rows):
                        pending[next_row + k] = r

            for start in range(0, total, chunk):
                stop = min(start + chunk, total)
                x = torch.from_numpy(np.asarray(array[start:stop], dtype=np.float32)).to(device)
                codes = sae.encode(x)
                recon_n = sae.decode_normalised(codes)
                x_n = sae.normalize(x)
                split_of = frame_split(clips, start, stop)
                for split in SPLITS:
                    in_split = split_of == split
                    if in_split.all():  # the whole chunk: no masked copies
                        stats[split].update(x_n, recon_n, codes)
                    elif in_split.any():
                        mask = torch.from_numpy(in_split).to(device)
                        stats[split].update(x_n[mask], recon_n[mask], codes[mask])
                for row, m, mx in pooler.feed(start, codes):
                    pending[row] = (m, mx)
                flush()
                frame_codes.feed(start, stop, codes)
            flush(force=True)
            if next_row != len(items) or pending:
                raise RuntimeError(f"pooled {next_row} of {len(items)} items; the frame store's item ranges are broken")
        frame_codes.close({"model": model, "layer": layer, "sparsity": sparsity, "n_latents": cfg.n_latents})

        dead = stats["train"].dead_fraction()
        splits = {s: {**stats[s].result(), "dead_fraction": dead, "n_frames": int(stats[s].n)} for s in SPLITS}
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        metrics = {
            "model": model, "layer": layer, "sparsity": sparsity, "k": cfg.k, "n_latents": cfg.n_latents,
            "input_dim": input_dim, "arch": cfg.arch, "seed": seed, "device": str(device), "level": "frame",
            "pooling": pooling, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "frames_trained": result.samples_seen, "train_frames": train.n_frames,
            "train_time_s": round(train_s, 3),
            "frames_per_s": round(result.samples_seen / train_s, 1) if train_s > 0 else None,
            "step_frames_per_s": (round(result.samples_seen / result.step_time_s, 1)
                                  if result.step_time_s > 0 else None),
            "batch_size": batch_size, "shuffle_buffer": train.buffer_frames, "peak_rss_mb": round(peak_mb, 1),
            "wall_time_s": round(time.perf_counter() - t0, 3), "history": result.history, "splits": splits,
        }
        if device.type == "cuda":
            metrics["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        training = {"model": model, "layer": layer, "sparsity": sparsity, "store": str(store), "dim": dim, "lr": lr,
                    "lr_warmup": s.lr_warmup, "lr_decay": s.lr_decay, "init": s.init,
                    "batch_size": batch_size, "epochs": epochs, "max_frames": max_frames,
                    "shuffle_buffer": shuffle_buffer, "patience": patience, "seed": seed, "level": "frame",
                    "pooling": pooling}
        sae.cpu().save(tmp / "sae.safetensors", tmp / "config.json", extra={"training": training})
        write_json(tmp / "metrics.json", metrics, indent=2)
        for name, dst in (("latents.zarr", outputs.latents), ("frame_codes.zarr", outputs.frame_codes),
                          ("sae.safetensors", outputs.weights), ("config.json", outputs.config),
                          ("metrics.json", outputs.metrics)):
            publish(tmp / name, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    msg = ", ".join(f"{s} fvu {splits[s]['fvu']:.4g}" for s in SPLITS)
    print(f"train_frame_sae: best epoch {result.best_epoch} of {result.epochs_run}; {msg}; dead {dead:.3f}; "
          f"{metrics['frames_per_s']} frames/s; peak RSS {peak_mb:.0f} MB; {metrics['wall_time_s']} s",
          file=sys.stderr)
    return metrics


def read_frame_codes(path: Path | str, rows: slice | None = None) -> tuple[np.ndarray, dict]:
    """Dense codes [frames, n_latents] of a frame_codes.zarr (all test frames, or `rows`), and its attrs."""
    root = zstore.open_store(path)
    n_lat = int(root.attrs["n_latents"])
    indptr = np.asarray(root["indptr"][:])
    rows = rows or slice(0, len(indptr) - 1)
    a, b = int(indptr[rows.start]), int(indptr[rows.stop])
    idx = np.asarray(root["indices"][a:b])
    val = np.asarray(root["values"][a:b])
    dense = np.zeros((rows.stop - rows.start, n_lat), dtype=np.float32)
    counts = np.diff(indptr[rows.start:rows.stop + 1])
    r = np.repeat(np.arange(rows.stop - rows.start), counts)
    dense[r, idx] = val
    return dense, dict(root.attrs)

