"""The Zarr store: atomic publication, incomplete stores refused, chunked reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr

from audiosae import store


def index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"clip_id": [f"c{i // 2}" for i in range(n)], "split": ["train"] * (n - 2) + ["test"] * 2,
                         "crop": [i % 2 for i in range(n)]})


def test_an_error_inside_writing_leaves_no_store(tmp_path):
    path = tmp_path / "m.zarr"
    with pytest.raises(RuntimeError, match="boom"):
        with store.writing(path, index(6), {"model": "m"}) as w:
            w.write_rows("layer0", 0, np.ones((3, 4)))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_an_error_keeps_the_previous_complete_store(tmp_path):
    path = tmp_path / "m.zarr"
    store.write_store(path, {"layer0": np.zeros((6, 2))}, index(6), {"v": 1})
    with pytest.raises(KeyboardInterrupt):
        with store.writing(path, index(6), {"v": 2}) as w:
            w.write_rows("layer0", 0, np.ones((6, 2)))
            raise KeyboardInterrupt
    assert store.read_attrs(path)["v"] == 1
    assert np.all(store.read_array(path, "layer0") == 0)


def test_an_incomplete_store_is_refused_by_readers(tmp_path):
    path = tmp_path / "m.zarr"
    writer = store.StoreWriter(path, index(4), {"model": "m"})
    writer.write_rows("layer0", 0, np.ones((4, 3)))
    # A killed job leaves only the temporary sibling: nothing at `path`.
    with pytest.raises(store.StoreError, match="no store"):
        store.read_index(path)
    # A folder at `path` without the completion mark (e.g. copied half-way) is refused.
    writer.tmp.rename(path)
    with pytest.raises(store.StoreError, match="incomplete"):
        store.read_array(path, "layer0")
    assert zarr.open_group(str(path), mode="r").attrs.get("complete") is None


def test_round_trip_and_chunked_reads(tmp_path):
    path = tmp_path / "m.zarr"
    rng = np.random.default_rng(0)
    values = rng.standard_normal((10, 5)).astype(np.float32)
    store.write_store(path, {"layer0": values, "layer3": values[:, :2]}, index(10), {"model_id": "x", "n": [1, 2]})
    assert store.layer_indices(path) == [0, 3]
    assert store.read_attrs(path)["n"] == [1, 2]
    np.testing.assert_array_equal(store.read_array(path, "layer0", chunk_rows=3), values)
    test, rows = store.read_split(path, "layer0", "test")
    np.testing.assert_array_equal(test, values[-2:])
    assert list(rows["clip_id"]) == ["c4", "c4"] and list(rows["crop"]) == [0, 1]
    with pytest.raises(store.StoreError, match="has no array 'layer7'"):
        store.read_array(path, "layer7")
