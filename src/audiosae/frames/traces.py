"""A frame-level SAE latent's activation over a clip's crop, for the atlas's cards.

The atlas shows each clip's crop 0 (audio and spectrogram). For a frame SAE, a
card draws the latent frame by frame over that spectrogram: the frames of the
crop (the frame store's item range, the same one the pooled code averages),
encoded by the SAE, placed in slots of one hop across the crop (null where the
crop is zero padding), and, to keep pages light, max-pooled to at most
`max_points` slots (the page is 200 pixels wide).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from audiosae import store as zstore
from audiosae.frames.store import item_index, layer_array


def crop0_traces(frame_store: Path | str, sae_weights: Path | str, layer: int, wanted: dict[str, set[int]],
                 max_points: int = 48) -> dict[tuple[int, str], list[float | None]]:
    """{(unit, clip id): activation per slot of the clip's crop 0} for the (clip, units) in `wanted`."""
    from audiosae.sae.model import SparseAutoencoder

    sae = SparseAutoencoder.load(sae_weights)
    attrs = zstore.read_attrs(frame_store)
    rate, crop = float(attrs["frame_rate"]), float(attrs["crop_seconds"])
    n_slots = max(1, math.ceil(crop * rate - 1e-9))
    group = max(1, math.ceil(n_slots / max_points))
    n_points = math.ceil(n_slots / group)
    items = item_index(frame_store)
    items = items[(items["crop"] == 0) & items["clip_id"].isin(list(wanted))]
    arr = layer_array(frame_store, layer)
    times = zstore.open_store(frame_store)["time_s"]
    out: dict[tuple[int, str], list[float | None]] = {}
    with torch.no_grad():
        for it in items.itertuples(index=False):
            a, b = int(it.first_frame), int(it.first_frame + it.n_frames)
            codes = sae.encode(torch.from_numpy(np.asarray(arr[a:b], dtype=np.float32))).numpy()
            slot = np.clip(np.floor((np.asarray(times[a:b]) - it.start_s) * rate).astype(int), 0, n_slots - 1)
            point = slot // group
            for u in sorted(wanted[it.clip_id]):
                trace: list[float | None] = [None] * n_points
                for p, v in zip(point, codes[:, u]):
                    trace[p] = float(v) if trace[p] is None else max(trace[p], float(v))
                out[(u, it.clip_id)] = trace
    return out
