"""An encoder type defined outside the package: one module (this) and one registry line (the test adds it)."""

from __future__ import annotations

from audiosae.encoders.base import CLIP, FRAME, EncoderFacts


class Facts(EncoderFacts):
    source = "fake"
    options = {"knob": {"type": "integer", "minimum": 1, "description": "A fake encoder's own key."}}

    def sample_rate(self) -> int:
        return 8000

    def layer_widths(self) -> list[int]:
        return [4] * self.cfg.get("knob", 2)

    def layer_resolution(self) -> list[str]:
        return [FRAME] * (len(self.layer_widths()) - 1) + [CLIP]  # the last state is one vector per input

    def hop_samples(self) -> int:
        return 80

    def num_frames(self, n_samples: int) -> int:
        return int(n_samples) // 80
