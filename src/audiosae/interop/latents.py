"""An external SAE's codes of a node, in the layout our own SAEs write.

``write_external(...)`` writes into ``out_dir`` (``results/ext/{model}/layer{L}/{name}``):

- ``latents.zarr``: one row per item of the embedding store (its clip_id, split,
  crop), array ``codes`` [items, d_sae]: at the clip level the SAE's codes of each
  crop's pooled vector (as ``train_sae`` writes them); at the frame level the mean
  (``pooling: max``: the max) of its frame codes over exactly the crop's frames,
  the other pooling as ``codes_max`` / ``codes_mean`` (as ``train_frame_sae``);
- at the frame level, ``frame_codes.zarr``: the test clips' frame codes, sparse, in the
  layout ``train_frame_sae`` writes (``audiosae.frames.train.FrameCodesWriter``), which
  the frame acoustics read;
- ``metrics.json``: the keys of our SAEs' metrics (FVU, cosine, L0 per split,
  dead share on the train split; frame-level metrics per frame), with ``rep``
  ``ext-<name>``, ``sparsity`` null (an external SAE has no target sparsity; the
  measured L0 is there) and where the SAE came from.

Probes, disentanglement, the atlas and the report then read it like ours.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiosae import store as zstore
from audiosae.atomic import fresh_tmp_dir, publish
from audiosae.jsonio import write_json
from audiosae.sae.metrics import SplitMetrics

SPLITS = ("train", "valid", "test")


def ext_rep(name: str) -> str:
    """The representation name of external SAE `name` (REP.md: ``ext-{name}``)."""
    return f"ext-{name}"


def _attrs(sae, *, model, layer, name, fmt, path, level, store, extra=None) -> dict:
    return {"model": model, "layer": int(layer), "rep": ext_rep(name), "sparsity": None, "k": sae.k,
            "n_latents": sae.d_sae, "input_dim": sae.d_in, "arch": sae.description, "level": level,
            "external": {"name": name, "format": fmt, "path": str(path)}, "source_store": str(store),
            "source_array": f"layer{layer}", **(extra or {})}


def _metrics(attrs: dict, stats: dict, t0: float, extra: dict | None = None) -> dict:
    dead = stats["train"].dead_fraction()
    splits = {s: {**stats[s].result(), "dead_fraction": dead, **({"n": int(stats[s].n)})} for s in SPLITS}
    return {**{k: attrs[k] for k in ("model", "layer", "rep", "sparsity", "k", "n_latents", "input_dim", "arch",
                                     "level", "external")},
            "seed": None, "epochs_run": None, "best_epoch": None, **(extra or {}),
            "wall_time_s": round(time.perf_counter() - t0, 3), "splits": splits}


def write_external(sae, store: Path | str, out_dir: Path | str, *, model: str, layer: int, name: str, fmt: str,
                   path: Path | str, level: str = "clip", pooling: str = "mean", device: str = "cpu",
                   chunk_rows: int = zstore.CHUNK_ROWS, progress: bool = True) -> dict:
    """Encode every vector of (model, layer) with `sae`; write latents.zarr (frame level: and frame_codes.zarr)
    and metrics.json into `out_dir`."""
    t0 = time.perf_counter()
    store, out_dir = Path(store), Path(out_dir)
    sae = sae.to(device).eval()
    tmp = fresh_tmp_dir(out_dir)
    try:
        if level == "clip":
            metrics = _write_clip(sae, store, tmp, model=model, layer=layer, name=name, fmt=fmt, path=path,
                                  device=device, chunk_rows=chunk_rows, progress=progress, t0=t0)
        elif level == "frame":
            metrics = _write_frame(sae, store, tmp, model=model, layer=layer, name=name, fmt=fmt, path=path,
                                   pooling=pooling, device=device, progress=progress, t0=t0)
        else:
            raise ValueError(f"level must be clip or frame, not {level!r}")
        write_json(tmp / "metrics.json", metrics, indent=2)
        parts = ["latents.zarr", "metrics.json"]
        if level == "frame":
            parts.insert(1, "frame_codes.zarr")
        for part in parts:  # metrics.json last: a folder with it is complete
            publish(tmp / part, out_dir / part)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    msg = ", ".join(f"{s} fvu {metrics['splits'][s]['fvu']:.4g} l0 {metrics['splits'][s]['l0']:.3g}" for s in SPLITS)
    print(f"external SAE {name} ({fmt}) on {model} layer {layer}, {level} level: {msg}; "
          f"dead {metrics['splits']['train']['dead_fraction']:.3f}", file=sys.stderr)
    return metrics


def _width_check(sae, width: int, store: Path, layer: int) -> None:
    if sae.d_in != width:
        from audiosae.interop.readers import InteropError

        raise InteropError(f"{sae.source}: the SAE reads {sae.d_in}-d vectors, but layer {layer} of {store} is "
                           f"{width}-d; the SAE was trained on another layer or model")


def _write_clip(sae, store, tmp, *, model, layer, name, fmt, path, device, chunk_rows, progress, t0) -> dict:
    array = f"layer{layer}"
    index = zstore.read_index(store)
    root = zstore.open_store(store)
    if array not in root:
        raise zstore.StoreError(f"store {store} has no array {array!r}; it holds {zstore.array_names(store)}")
    _width_check(sae, int(root[array].shape[1]), store, layer)
    split_of = index["split"].to_numpy()
    stats = {s: SplitMetrics(sae.d_sae) for s in SPLITS}
    attrs = _attrs(sae, model=model, layer=layer, name=name, fmt=fmt, path=path, level="clip", store=store)
    with torch.no_grad(), zstore.writing(tmp / "latents.zarr", index, attrs) as writer:
        writer.create("codes", sae.d_sae)
        for start, block in tqdm(zstore.iter_rows(store, array, chunk_rows), desc=f"ext-{name}", file=sys.stderr,
                                 disable=not progress, total=-(-len(index) // chunk_rows), mininterval=5.0):
            x = torch.from_numpy(block).to(device)
            codes = sae.encode(x)
            writer.write_rows("codes", start, codes.cpu().numpy())
            recon = sae.decode(codes)
            rows = split_of[start:start + len(block)]
            for split in SPLITS:
                mask = torch.from_numpy(rows == split).to(device)
                if bool(mask.any()):
                    stats[split].update(x[mask], recon[mask], codes[mask])
    return _metrics(attrs, stats, t0)


def _write_frame(sae, store, tmp, *, model, layer, name, fmt, path, pooling, device, progress, t0) -> dict:
    from audiosae.frames.store import clip_index, frame_split, item_index, layer_array, open_frames
    from audiosae.frames.train import FrameCodesWriter, _Pooler

    if pooling not in ("mean", "max"):
        raise ValueError(f"pooling must be mean or max, not {pooling!r}")
    array = layer_array(store, layer, model)
    _width_check(sae, int(array.shape[1]), store, layer)
    clips, items = clip_index(store), item_index(store)
    stats = {s: SplitMetrics(sae.d_sae) for s in SPLITS}
    attrs = _attrs(sae, model=model, layer=layer, name=name, fmt=fmt, path=path, level="frame", store=store,
                   extra={"pooling": pooling, "crop_seconds": open_frames(store).attrs.get("crop_seconds")})
    other = "codes_max" if pooling == "mean" else "codes_mean"
    pooler = _Pooler(items, clips, sae.d_sae)
    frame_codes = FrameCodesWriter(tmp / "frame_codes.zarr", store, clips)
    pooled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    total, chunk = int(array.shape[0]), int(array.chunks[0])
    with torch.no_grad(), zstore.writing(tmp / "latents.zarr", items[["clip_id", "split", "crop"]], attrs) as writer:
        writer.create("codes", sae.d_sae)
        writer.create(other, sae.d_sae)
        for start in tqdm(range(0, total, chunk), desc=f"ext-{name} frames", file=sys.stderr, disable=not progress,
                          mininterval=5.0):
            stop = min(start + chunk, total)
            x = torch.from_numpy(np.asarray(array[start:stop], dtype=np.float32)).to(device)
            codes = sae.encode(x)
            recon = sae.decode(codes)
            split_of = frame_split(clips, start, stop)
            for split in SPLITS:
                mask = torch.from_numpy(split_of == split).to(device)
                if bool(mask.any()):
                    stats[split].update(x[mask], recon[mask], codes[mask])
            for row, mean, mx in pooler.feed(start, codes):
                pooled[row] = (mean, mx)
            frame_codes.feed(start, stop, codes)
        if len(pooled) != len(items):
            raise RuntimeError(f"pooled {len(pooled)} of {len(items)} items; the frame store's item ranges are broken")
        for lo in range(0, len(items), zstore.CHUNK_ROWS):
            rows = range(lo, min(lo + zstore.CHUNK_ROWS, len(items)))
            means = np.stack([pooled[r][0] for r in rows])
            maxes = np.stack([pooled[r][1] for r in rows])
            writer.write_rows("codes", lo, means if pooling == "mean" else maxes)
            writer.write_rows(other, lo, maxes if pooling == "mean" else means)
    frame_codes.close({"model": model, "layer": int(layer), "rep": ext_rep(name), "sparsity": None,
                       "n_latents": sae.d_sae})
    return _metrics(attrs, stats, t0, {"pooling": pooling})
