"""Shuffled batches of frames streamed from a frame store, in memory that does not grow with the corpus.

An epoch visits the store's chunks (blocks of `chunk_frames` consecutive
frames) in an order drawn afresh per epoch, keeps the frames of the selected
clips (e.g. the train split), and pours them into a shuffle buffer of
`buffer_frames` rows. Whenever the buffer is full, a batch of random rows
leaves it (their places taken by the buffer's last rows); when the chunks are
exhausted the rest leaves in a random order. So every selected frame comes out
exactly once per epoch, batches mix frames from about buffer/chunk chunks, and
the order is a function of (seed, epoch) only.

Memory: one chunk plus the buffer (`buffer_frames` x width float32) plus
per-clip bookkeeping, plus `prefetch` chunks read ahead; the store's size does
not enter.

Copies: a chunk's float16 frames are cast into the buffer's float32 rows in one
pass (no float32 chunk in between, no masked copy when every frame is
selected); a batch is one gather from the buffer (into `batch_out(n)` when
given, e.g. pinned host memory for a GPU). The buffer's rows never move: a
permutation of row slots does the compaction the order is defined by, so the
batches are exactly those of the row-moving scheme.

Reading: with ``prefetch > 0`` a reader thread decodes the next chunks (in
the epoch's order, into a bounded queue) while the caller computes on the
current batch; Zarr decoding and torch both release the GIL. The order, and so
every batch, is the same with or without it.

Keeping: where the selected frames, as stored, take at most `keep_bytes`
(`KEEP_BYTES`, 256 MiB, by default), each chunk is decoded once and kept, so
later epochs (and every validation pass) read memory instead of decoding the
store again: the demo's frame SAEs run over a node's frames 31 to 123 times.
The batches are the same; memory stays bounded by `keep_bytes`.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from audiosae.frames.store import clip_index, layer_array, selected_mask

KEEP_BYTES = 256 * 2**20  # selected frames up to this size (as stored) are decoded once per stream


class FrameStream:
    """Batches of float32 frames of one layer, for the clips whose split is in `splits`."""

    def __init__(self, store: Path | str, layer: int, splits: tuple[str, ...] | list[str], batch_size: int,
                 buffer_frames: int, seed: int, model: str | None = None, prefetch: int = 2,
                 batch_out: Callable[[int], np.ndarray] | None = None, keep_bytes: int = KEEP_BYTES):
        self.store = Path(store)
        self.array = layer_array(store, layer, model)
        clips = clip_index(store)
        chosen = clips[clips["split"].isin(list(splits))]
        self.first = chosen["first_frame"].to_numpy(dtype=np.int64)
        self.ends = self.first + chosen["n_frames"].to_numpy(dtype=np.int64)
        self.n_frames = int((self.ends - self.first).sum())
        self.dim = int(self.array.shape[1])
        self.chunk = int(self.array.chunks[0])
        self.batch_size = int(batch_size)
        self.buffer_frames = max(int(buffer_frames), self.batch_size)
        self.seed = int(seed)
        total = int(self.array.shape[0])
        starts = np.arange(0, total, self.chunk)
        # Only chunks holding a selected frame are read.
        self.chunks = [int(s) for s in starts
                       if selected_mask(self.first, self.ends, int(s), min(int(s) + self.chunk, total)).any()]
        self.total = total
        self.prefetch = max(int(prefetch), 0)
        self.batch_out = batch_out
        # decoded chunks by start, when the selected frames fit in keep_bytes (None: decode on every pass)
        fits = self.n_frames * self.dim * self.array.dtype.itemsize <= int(keep_bytes)
        self.kept: dict[int, np.ndarray] | None = {} if fits else None

    def _selected(self, start: int) -> np.ndarray:
        """The selected frames of the chunk at `start`, as stored (float16): a view when all are selected."""
        if self.kept is not None:
            if start not in self.kept:
                self.kept[start] = self._decode(start)
            return self.kept[start]
        return self._decode(start)

    def _decode(self, start: int) -> np.ndarray:
        stop = min(start + self.chunk, self.total)
        raw = np.asarray(self.array[start:stop])
        mask = selected_mask(self.first, self.ends, start, stop)
        return raw if mask.all() else raw[mask]

    def _chunks(self, starts: Iterable[int]) -> Iterator[np.ndarray]:
        """`_selected` of each start in order, read `prefetch` chunks ahead by a thread when prefetch > 0."""
        starts = list(starts)
        kept = self.kept is not None and all(s in self.kept for s in starts)
        if self.prefetch == 0 or len(starts) < 2 or kept:
            for start in starts:
                yield self._selected(start)
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            """Queue `item` unless the consumer has gone (then False)."""
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def reader() -> None:
            try:
                for start in starts:
                    if not put(self._selected(start)):
                        return
                put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                put(exc)

        thread = threading.Thread(target=reader, name="FrameStream-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    def rows(self, start: int) -> np.ndarray:
        """The selected frames of the chunk at `start`, float32."""
        return self._selected(start).astype(np.float32, copy=False)

    def sequential(self) -> Iterator[np.ndarray]:
        """The selected frames in store order, one float32 chunk at a time (for evaluation)."""
        for block in self._chunks(self.chunks):
            if len(block):
                yield block.astype(np.float32, copy=False)

    def _gather(self, buf: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self.batch_out is None:
            return buf[rows]
        out = self.batch_out(len(rows))
        np.take(buf, rows, axis=0, out=out)
        return out

    def epoch(self, epoch: int) -> Iterator[np.ndarray]:
        """The shuffled batches of one epoch (the last one may be smaller)."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        order = rng.permutation(len(self.chunks))
        cap = self.buffer_frames
        b = self.batch_size
        buf = np.empty((cap + self.chunk, self.dim), dtype=np.float32)
        slot = np.arange(cap + self.chunk)  # buffer position p holds the frame in row slot[p]
        n = 0
        for block in self._chunks(self.chunks[c] for c in order):
            m = len(block)
            dest = slot[n:n + m]
            if m and dest[-1] - dest[0] == m - 1 and np.all(np.diff(dest) == 1):
                buf[dest[0]:dest[0] + m] = block  # the float16 -> float32 cast happens in this one copy
            else:
                buf[dest] = block
            n += m
            while n >= cap:
                take = np.sort(rng.choice(n, size=b, replace=False))
                freed = slot[take]
                yield self._gather(buf, freed)
                # Positions: fill the holes below n - b with the tail [n - b, n)'s positions not taken;
                # the taken rows become the free positions [n - b, n). No frame moves.
                tail = n - b
                holes = take[take < tail]
                taken_tail = np.zeros(b, dtype=bool)
                taken_tail[take[take >= tail] - tail] = True
                movers = tail + np.flatnonzero(~taken_tail)
                slot[holes] = slot[movers]
                slot[tail:n] = freed
                n = tail
        rest = rng.permutation(n)
        for start in range(0, n, b):
            yield self._gather(buf, slot[rest[start:start + b]])
