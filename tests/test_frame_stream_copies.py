"""The frame stream without avoidable copies hands out exactly the batches of the row-moving scheme.

`FrameStream.epoch` moves no rows (a slot permutation does the compaction), casts
float16 chunks straight into the buffer, gathers each batch once (into caller
memory when asked), and may read chunks ahead on a thread. None of that may
change a single batch: the reference below is the row-moving algorithm the
stream's docstring defines, written out independently.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import zarr

from audiosae.frames.stream import FrameStream


def _store(path, lengths, splits, chunk, width=6):
    n = int(sum(lengths))
    rng = np.random.default_rng(1)
    data = rng.standard_normal((n, width)).astype(np.float16)
    root = zarr.open_group(str(path), mode="w")
    root.create_array("layer0", data=data, chunks=(chunk, width))
    for name, values in (("clip_id", [f"c{i}" for i in range(len(lengths))]), ("split", splits)):
        root.create_array(name, shape=(len(lengths),), dtype=str)
        root[name][:] = np.array(values, dtype=object)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    root.create_array("first_frame", data=first)
    root.create_array("n_frames", data=np.array(lengths, dtype=np.int64))
    root.create_array("duration_s", data=np.ones(len(lengths)))
    root.attrs["complete"] = True
    return data, first, first + np.array(lengths)


def reference_epoch(data, first, ends, chunk, batch, cap, seed, epoch):
    """The row-moving shuffle buffer: batches leave, the tail's rows fill their holes."""
    total = len(data)
    sel = np.zeros(total, dtype=bool)
    for a, b in zip(first, ends):
        sel[a:b] = True
    starts = [s for s in range(0, total, chunk) if sel[s:s + chunk].any()]
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(starts))
    cap = max(cap, batch)
    buf = np.empty((cap + chunk, data.shape[1]), np.float32)
    n = 0
    for c in order:
        s = starts[c]
        block = data[s:s + chunk][sel[s:s + chunk]].astype(np.float32)
        buf[n:n + len(block)] = block
        n += len(block)
        while n >= cap:
            take = np.sort(rng.choice(n, size=batch, replace=False))
            yield buf[take].copy()
            tail = n - batch
            keep = np.setdiff1d(np.arange(tail, n), take)
            holes = take[take < tail]
            buf[holes] = buf[keep]
            n = tail
    rest = rng.permutation(n)
    for s in range(0, n, batch):
        yield buf[rest[s:s + batch]].copy()


@pytest.mark.parametrize("keep_bytes", [0, 2**20], ids=["decode-each-pass", "kept"])
@pytest.mark.parametrize("prefetch", [0, 1, 3])
@pytest.mark.parametrize("buffer,batch", [(5, 7), (40, 7), (64, 16), (10_000, 9)])
def test_batches_equal_the_row_moving_reference(tmp_path, prefetch, buffer, batch, keep_bytes):
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(1, 50, size=30))
    splits = list(rng.choice(["train", "valid", "test"], size=30, p=[0.6, 0.2, 0.2]))
    lengths[0], splits[0] = 40, "train"  # one chunk entirely selected (the view path)
    data, first, ends = _store(tmp_path / "s.zarr", lengths, splits, chunk=16)
    train = np.array(splits) == "train"
    stream = FrameStream(tmp_path / "s.zarr", 0, ["train"], batch, buffer, seed=5, prefetch=prefetch,
                         keep_bytes=keep_bytes)
    assert (stream.kept is not None) == bool(keep_bytes)
    for epoch in (0, 1):
        got = list(stream.epoch(epoch))
        want = list(reference_epoch(data, first[train], ends[train], 16, batch, buffer, 5, epoch))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == np.float32 and np.array_equal(g, w)
    seq = np.concatenate(list(stream.sequential()))
    assert np.array_equal(seq, np.concatenate([data[a:b] for a, b in zip(first[train], ends[train])]).astype(np.float32))


def test_frames_that_fit_are_decoded_once_whatever_the_passes(tmp_path, monkeypatch):
    """Epochs after the first, and every validation pass, read the kept chunks: the store is decoded once."""
    _store(tmp_path / "s.zarr", [30, 30, 30], ["train", "train", "valid"], chunk=8)
    stream = FrameStream(tmp_path / "s.zarr", 0, ["train"], 8, 16, seed=1, prefetch=2)
    decoded = []
    real = stream._decode
    monkeypatch.setattr(stream, "_decode", lambda start: decoded.append(start) or real(start))
    first = [b.copy() for b in stream.epoch(0)]
    assert sorted(decoded) == stream.chunks
    list(stream.epoch(1)), list(stream.sequential())
    assert sorted(decoded) == stream.chunks  # no chunk decoded twice
    assert all(np.array_equal(a, b) for a, b in zip(first, stream.epoch(0)))
    # a stream whose selected frames exceed keep_bytes decodes on every pass (memory stays bounded)
    big = FrameStream(tmp_path / "s.zarr", 0, ["train"], 8, 16, seed=1, keep_bytes=8)
    assert big.kept is None


def test_batches_gather_into_caller_memory(tmp_path):
    data, first, ends = _store(tmp_path / "s.zarr", [30, 30, 30], ["train", "train", "valid"], chunk=8)
    given = []

    def out(n):
        given.append(np.empty((n, data.shape[1]), np.float32))
        return given[-1]

    plain = list(FrameStream(tmp_path / "s.zarr", 0, ["train"], 8, 16, seed=1).epoch(0))
    into = list(FrameStream(tmp_path / "s.zarr", 0, ["train"], 8, 16, seed=1, batch_out=out).epoch(0))
    assert len(given) == len(into) and all(b is g for b, g in zip(into, given))
    assert all(np.array_equal(a, b) for a, b in zip(plain, into))


def test_an_abandoned_epoch_stops_its_reader_thread(tmp_path):
    _store(tmp_path / "s.zarr", [200] * 5, ["train"] * 5, chunk=10)
    stream = FrameStream(tmp_path / "s.zarr", 0, ["train"], 4, 8, seed=1, prefetch=2)
    gen = stream.epoch(0)
    next(gen)
    assert any(t.name == "FrameStream-prefetch" for t in threading.enumerate())
    gen.close()  # what a training loop's break at its frame budget amounts to
    assert not any(t.name == "FrameStream-prefetch" for t in threading.enumerate())


def test_a_read_error_in_the_reader_thread_reaches_the_consumer(tmp_path, monkeypatch):
    _store(tmp_path / "s.zarr", [50] * 4, ["train"] * 4, chunk=10)
    stream = FrameStream(tmp_path / "s.zarr", 0, ["train"], 4, 8, seed=1, prefetch=2)
    calls = []
    real = stream._selected

    def flaky(start):
        calls.append(start)
        if len(calls) == 3:
            raise OSError(f"chunk at frame {start} unreadable")
        return real(start)

    monkeypatch.setattr(stream, "_selected", flaky)
    with pytest.raises(OSError, match="unreadable"):
        list(stream.epoch(0))
    assert not any(t.name == "FrameStream-prefetch" for t in threading.enumerate())


def test_pinned_ring_hands_the_stream_s_batches_to_the_device(tmp_path):
    """The CUDA path's ring of host buffers, run on CPU (plain memory, nothing to wait for)."""
    import torch

    from audiosae.frames.train import _PinnedBatches

    _store(tmp_path / "s.zarr", [40, 40, 40], ["train"] * 3, chunk=8)
    ring = _PinnedBatches(8, 6, torch.device("cpu"), depth=2)
    plain = list(FrameStream(tmp_path / "s.zarr", 0, ["train"], 8, 16, seed=2).epoch(0))
    stream = FrameStream(tmp_path / "s.zarr", 0, ["train"], 8, 16, seed=2, batch_out=ring.out)
    moved = [ring.to_device(b).clone() for b in stream.epoch(0)]
    assert len(moved) == len(plain)
    assert all(np.array_equal(m.numpy(), p) for m, p in zip(moved, plain))


def test_streamed_statistics_equal_float64_statistics(tmp_path):
    import torch

    from audiosae.frames.train import streamed_stats

    data, first, ends = _store(tmp_path / "s.zarr", [37, 50, 29, 61], ["train", "valid", "train", "train"], chunk=16)
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")
    root["layer0"][:] = (data.astype(np.float64) * 30 + 500).astype(np.float16)  # far from zero
    x = np.concatenate([np.asarray(root["layer0"][a:b], np.float64) for a, b, s in
                        zip(first, ends, [1, 0, 1, 1]) if s])
    mean, std = streamed_stats(FrameStream(tmp_path / "s.zarr", 0, ["train"], 8, 16, seed=0))
    np.testing.assert_allclose(mean.numpy(), x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), x.std(0), rtol=1e-5)
    assert mean.dtype == std.dtype == torch.float32
