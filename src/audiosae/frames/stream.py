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
per-clip bookkeeping; the store's size does not enter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from audiosae.frames.store import clip_index, layer_array, selected_mask


class FrameStream:
    """Batches of float32 frames of one layer, for the clips whose split is in `splits`."""

    def __init__(self, store: Path | str, layer: int, splits: tuple[str, ...] | list[str], batch_size: int,
                 buffer_frames: int, seed: int, model: str | None = None):
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

    def rows(self, start: int) -> np.ndarray:
        stop = min(start + self.chunk, self.total)
        block = np.asarray(self.array[start:stop], dtype=np.float32)
        return block[selected_mask(self.first, self.ends, start, stop)]

    def sequential(self) -> Iterator[np.ndarray]:
        """The selected frames in store order, one chunk at a time (for evaluation)."""
        for start in self.chunks:
            block = self.rows(start)
            if len(block):
                yield block

    def epoch(self, epoch: int) -> Iterator[np.ndarray]:
        """The shuffled batches of one epoch (the last one may be smaller)."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        order = rng.permutation(len(self.chunks))
        cap = self.buffer_frames
        b = self.batch_size
        buf = np.empty((cap + self.chunk, self.dim), dtype=np.float32)
        n = 0
        for c in order:
            block = self.rows(self.chunks[c])
            buf[n:n + len(block)] = block
            n += len(block)
            while n >= cap:
                take = np.sort(rng.choice(n, size=b, replace=False))
                yield buf[take].copy()
                # Fill the holes below n - b with the rows of the tail [n - b, n) that were not taken.
                tail = n - b
                holes = take[take < tail]
                taken_tail = np.zeros(b, dtype=bool)
                taken_tail[take[take >= tail] - tail] = True
                movers = tail + np.flatnonzero(~taken_tail)
                buf[holes] = buf[movers]
                n = tail
        rest = rng.permutation(n)
        for start in range(0, n, b):
            yield buf[rest[start:start + b]].copy()
