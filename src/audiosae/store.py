"""Zarr v3 stores of pooled vectors: one row per item (a crop of a clip).

Layout of a store (``results/embeddings/{model}.zarr`` or an SAE's ``latents.zarr``):

- ``layer{L}`` (embeddings) or ``codes`` (latents): float32 ``[items, dim]``,
  chunked by items;
- ``clip_id`` (str), ``split`` (str), ``crop`` (int32): one value per item;
- group attributes: whatever the writer records (model id, revision, ...).

A store is written into a temporary sibling (``<name>.tmp-<pid>``) and renamed
into place only when complete, so a killed job never leaves a store that looks
done. Readers take rows in chunks; nothing here loads every layer at once.
"""

from __future__ import annotations

import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import zarr

from audiosae.atomic import clear_stale, publish, tmp_sibling

# Snakemake marks directory outputs with a `.snakemake_timestamp` file, which Zarr
# reports as a foreign object in the hierarchy; it is expected there.
warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp")

CHUNK_ROWS = 1024
INDEX_COLUMNS = ("clip_id", "split", "crop")


class StoreError(RuntimeError):
    """A store is missing, incomplete, or lacks the array asked for."""


class StoreWriter:
    """Writes a store incrementally into a temporary sibling; `commit()` publishes it."""

    def __init__(self, path: Path | str, index: pd.DataFrame, attrs: dict | None = None):
        self.path = Path(path)
        missing = [c for c in INDEX_COLUMNS if c not in index.columns]
        if missing:
            raise StoreError(f"index for {self.path} lacks columns {missing}")
        self.n = len(index)
        clear_stale(self.path)  # a killed writer's partial store
        self.tmp = tmp_sibling(self.path)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.root = zarr.open_group(str(self.tmp), mode="w")
        for col in ("clip_id", "split"):
            # Variable-length UTF-8 strings: the string type with a Zarr v3 specification.
            arr = self.root.create_array(col, shape=(self.n,), dtype=str)
            if self.n:
                arr[:] = index[col].astype(str).to_numpy(dtype=object)
        self.root.create_array("crop", data=index["crop"].to_numpy(dtype=np.int32))
        self.root.attrs.update(attrs or {})
        self._arrays: dict[str, zarr.Array] = {}

    def create(self, name: str, dim: int) -> zarr.Array:
        arr = self.root.create_array(
            name, shape=(self.n, dim), chunks=(min(CHUNK_ROWS, max(self.n, 1)), dim), dtype="float32"
        )
        self._arrays[name] = arr
        return arr

    def write_rows(self, name: str, start: int, values: np.ndarray) -> None:
        """Write rows [start, start + len(values)) of array `name` (created on first use)."""
        values = np.asarray(values, dtype=np.float32)
        if name not in self._arrays:
            self.create(name, values.shape[1])
        self._arrays[name][start : start + len(values)] = values

    def update_attrs(self, attrs: dict) -> None:
        self.root.attrs.update(attrs)

    def commit(self) -> None:
        """Publish the store: replace `path` by the finished temporary sibling."""
        self.root.attrs["complete"] = True
        publish(self.tmp, self.path)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextmanager
def writing(path: Path | str, index: pd.DataFrame, attrs: dict | None = None) -> Iterator[StoreWriter]:
    """Context manager: commit on success, delete the temporary store on any error."""
    writer = StoreWriter(path, index, attrs)
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def write_store(path: Path | str, arrays: dict[str, np.ndarray], index: pd.DataFrame, attrs: dict | None = None) -> None:
    """Write whole arrays at once (small stores: latents, tests)."""
    with writing(path, index, attrs) as w:
        for name, values in arrays.items():
            w.write_rows(name, 0, values)


def open_store(path: Path | str) -> zarr.Group:
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no store at {path}")
    root = zarr.open_group(str(path), mode="r")
    if not root.attrs.get("complete", False):
        raise StoreError(f"store {path} is incomplete (its writer did not finish); delete it and rerun")
    return root


def read_attrs(path: Path | str) -> dict:
    return dict(open_store(path).attrs)


def read_index(path: Path | str) -> pd.DataFrame:
    """clip_id, split and crop of every item, in row order."""
    root = open_store(path)
    return pd.DataFrame({c: np.asarray(root[c][:]).astype(object if c != "crop" else np.int64) for c in INDEX_COLUMNS}).astype(
        {"clip_id": str, "split": str, "crop": int}
    )


def array_names(path: Path | str) -> list[str]:
    return sorted(k for k in open_store(path).array_keys() if k not in INDEX_COLUMNS)


def layer_indices(path: Path | str) -> list[int]:
    """Hidden-state indices held by an embeddings store."""
    return sorted(int(n[5:]) for n in array_names(path) if n.startswith("layer"))


def iter_rows(path: Path | str, name: str, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """(start, block) pairs covering array `name` in row chunks."""
    root = open_store(path)
    if name not in root:
        raise StoreError(f"store {path} has no array {name!r}; it holds {array_names(path)}")
    arr = root[name]
    for start in range(0, arr.shape[0], chunk_rows):
        yield start, np.asarray(arr[start : start + chunk_rows], dtype=np.float32)


def read_array(path: Path | str, name: str, rows: np.ndarray | None = None, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Array `name` (optionally only the boolean/integer-selected `rows`), read chunk by chunk."""
    parts = []
    mask = None
    if rows is not None:
        rows = np.asarray(rows)
        if rows.dtype != bool:
            n = open_store(path)[name].shape[0]
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
        else:
            mask = rows
    for start, block in iter_rows(path, name, chunk_rows):
        parts.append(block if mask is None else block[mask[start : start + len(block)]])
    if not parts:
        dim = open_store(path)[name].shape[1]
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def read_split(path: Path | str, name: str, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows of one split: (values [n, dim], index rows with clip_id/split/crop)."""
    index = read_index(path)
    mask = (index["split"] == split).to_numpy()
    return read_array(path, name, mask), index[mask].reset_index(drop=True)
