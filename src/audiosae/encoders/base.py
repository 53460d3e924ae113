"""What an encoder type knows about a configured model without running it.

Each encoder module (one per `source:` of the config) defines a class `Facts`
derived from `EncoderFacts`. The config, the rules and the extraction ask it,
through `audiosae.encoders.registry.model_facts`, for:

- `options`: the JSON schema of the model keys only this source accepts
  (merged into the config schema at validation);
- `check()`: checks of those keys a schema cannot express;
- `sample_rate()`, `layer_widths()` (None while unknown, e.g. before a Hugging
  Face model is downloaded), `depth()`;
- `layer_resolution()`: per hidden state, "frame" (one vector per frame, so a
  frame-level SAE can use it) or "clip" (one vector per input);
- the frame grid: `frame_rate()` (frames per second), `hop_samples()`,
  `num_frames(n_samples)` (the model's own output length for an input of that
  many samples: padding frames are never counted), `frame_times(n_frames)`
  (seconds of each frame's centre from the start of its input),
  `max_window_samples()` (the longest input the model takes, or None);
- `resources()`: memory (MB) and runtime (minutes) of one extraction job;
- `build(device, dtype)`: the runnable encoder (imports torch there, not here).

Nothing in this module or in a `Facts` class imports torch: the Snakefile builds
the DAG from these facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from audiosae.errors import FrameError

FRAME = "frame"
CLIP = "clip"


class EncoderFacts:
    """Facts about one `models.<name>` entry; subclasses fill in their source's."""

    source: ClassVar[str] = "?"
    options: ClassVar[dict] = {}
    needs_weights: ClassVar[bool] = False

    def __init__(self, name: str, cfg: dict, weights_dir: str | Path | None = None):
        self.name = name
        self.cfg = cfg
        self.weights_dir = None if weights_dir is None else Path(weights_dir)

    # ---------------------------------------------------------------- config

    def check(self) -> None:
        """Raise ConfigError for a bad combination of this source's keys."""

    # ---------------------------------------------------------------- layers

    def sample_rate(self) -> int:
        raise NotImplementedError

    def layer_widths(self) -> list[int] | None:
        raise NotImplementedError

    def depth(self) -> int | None:
        """Number of hidden states (index 0 included), or None while unknown."""
        widths = self.layer_widths()
        return None if widths is None else len(widths)

    def layer_resolution(self) -> list[str] | None:
        """FRAME or CLIP per hidden state (None while the depth is unknown)."""
        depth = self.depth()
        return None if depth is None else [FRAME] * depth

    # ---------------------------------------------------------------- frames

    def frame_rate(self) -> float:
        return self.sample_rate() / self.hop_samples()

    def hop_samples(self) -> int:
        raise self.unknown_frames("its hop between frames")

    def num_frames(self, n_samples: int) -> int:
        raise self.unknown_frames("its output length")

    def first_frame_s(self) -> float:
        """Time of frame 0's centre, from the start of the input."""
        return 0.0

    def frame_times(self, n_frames: int) -> np.ndarray:
        """Seconds from the start of the input to the centre of each of `n_frames` frames."""
        return self.first_frame_s() + np.arange(int(n_frames), dtype=np.float64) * self.hop_samples() / self.sample_rate()

    def max_window_samples(self) -> int | None:
        """The longest input the model takes (None: no limit)."""
        return None

    def unknown_frames(self, what: str) -> FrameError:
        return FrameError(
            f"model '{self.name}' (source {self.source}): audiosae cannot determine {what}, so it cannot "
            f"store its frames; remove 'frame' from sae.levels, or teach audiosae/encoders/{self.source}.py "
            f"this model's frame grid"
        )

    # ---------------------------------------------------------------- jobs

    def resources(self) -> dict:
        """Memory (MB) and runtime (minutes) asked for one extraction job of this model."""
        return {"mem_mb": 2000, "runtime": 120}

    def build(self, device, dtype):
        """The runnable encoder (see registry.Encoder) on `device` computing in torch `dtype`."""
        raise NotImplementedError
