"""Resemblyzer's GE2E speaker encoder, whose weights ship inside the package.

The network is a 3-layer LSTM of 256 units over a 40-band mel spectrogram
(power, not log; 25 ms Hann windows every 10 ms at 16 kHz, Slaney mel scale
and normalisation: what resemblyzer's `wav_to_mel_spectrogram` computes with
librosa), then a linear projection to the speaker embedding. Its own
preprocessing also raises each waveform's volume to -30 dBFS (never lowers it)
and cuts long silences with a voice-activity detector. We keep the volume step
(per crop) and drop the silence trimming: it would give crops of different
lengths and remove the pauses the analysis may want to see.

To read every layer, the LSTM runs one layer at a time (the same weights in
three single-layer LSTMs), batched over clips. Hidden states: 0 = the mel
input (40 wide), 1..3 = the outputs of LSTM layers 1..3 (256 wide); each is
averaged over the crop's mel frames.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os

from audiosae.encoders.base import EncoderFacts

SAMPLE_RATE = 16000
N_MELS = 40
WINDOW_MS = 25
HOP_MS = 10
HIDDEN = 256
EMBEDDING = 256
N_LAYERS = 3
TARGET_DBFS = -30.0
_INT16_MAX = 2**15 - 1


def layer_widths() -> list[int]:
    """Width of each hidden state: 0 is the 40-band mel input, 1..3 the LSTM layers."""
    return [N_MELS] + [HIDDEN] * N_LAYERS


class Facts(EncoderFacts):
    """Resemblyzer's facts: fixed widths; one centred mel frame every 10 ms (frame 0 at t = 0)."""

    source = "resemblyzer"

    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def layer_widths(self) -> list[int]:
        return layer_widths()

    def hop_samples(self) -> int:
        return SAMPLE_RATE * HOP_MS // 1000

    def num_frames(self, n_samples: int) -> int:
        # A centred STFT: one frame per hop, the first centred on sample 0.
        return 1 + int(n_samples) // self.hop_samples()

    def build(self, device, dtype):
        from audiosae.encoders.twin import twin_seed

        return ResemblyzerEncoder(device=device, dtype=dtype, random_seed=twin_seed(self.cfg))


def weights_path() -> str:
    """pretrained.pt inside the installed resemblyzer package (found without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the resemblyzer package is not installed (pip install resemblyzer)")
    return os.path.join(list(spec.submodule_search_locations)[0], "pretrained.pt")


def normalize_volume(batch, target_dbfs: float = TARGET_DBFS):
    """Raise each waveform's level to `target_dbfs` (never lower it), as resemblyzer's preprocessing does."""
    import torch

    rms = torch.sqrt(torch.mean((batch * _INT16_MAX) ** 2, dim=-1, keepdim=True))
    dbfs = 20 * torch.log10(rms.clamp_min(1e-12) / _INT16_MAX)
    change = target_dbfs - dbfs
    gain = torch.where((change > 0) & (rms > 0), 10 ** (change / 20), torch.ones_like(change))
    return batch * gain


class ResemblyzerEncoder:
    """Pooled mel input and LSTM layer outputs of resemblyzer's VoiceEncoder.

    With `random_seed`, the random-weights twin: the LSTMs keep PyTorch's
    default initialisation, drawn under that seed (see audiosae.encoders.twin).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, device="cpu", dtype=None, random_seed: int | None = None):
        import torch
        import torchaudio

        from audiosae.encoders.twin import seeded

        self.device = torch.device(device)
        self.dtype = dtype or torch.float32
        self.random_seed = random_seed
        self.layers = torch.nn.ModuleList()
        if random_seed is None:
            state = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
            for k in range(N_LAYERS):
                lstm = torch.nn.LSTM(N_MELS if k == 0 else HIDDEN, HIDDEN, num_layers=1, batch_first=True)
                lstm.load_state_dict({f"{p}_l0": state[f"lstm.{p}_l{k}"]
                                      for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
                self.layers.append(lstm)
            self.projection = torch.nn.Linear(HIDDEN, EMBEDDING)
            self.projection.load_state_dict({"weight": state["linear.weight"], "bias": state["linear.bias"]})
        else:
            with seeded(random_seed):
                for k in range(N_LAYERS):
                    self.layers.append(torch.nn.LSTM(N_MELS if k == 0 else HIDDEN, HIDDEN, num_layers=1,
                                                     batch_first=True))
                # drawn after the LSTMs, so the twin's LSTMs are the ones its stores were extracted with
                self.projection = torch.nn.Linear(HIDDEN, EMBEDDING)
        self.layers = self.layers.eval().to(self.device, self.dtype)
        self.projection = self.projection.eval().to(self.device, self.dtype)
        n_fft = SAMPLE_RATE * WINDOW_MS // 1000
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=n_fft, win_length=n_fft, hop_length=SAMPLE_RATE * HOP_MS // 1000,
            n_mels=N_MELS, power=2.0, center=True, pad_mode="constant", norm="slaney", mel_scale="slaney",
        ).to(self.device)
        self.layer_widths = layer_widths()
        self.num_hidden_states = len(self.layer_widths)

    def mels(self, batch):
        """[B, T] waveforms → [B, frames, 40] mel power spectrograms, after the volume step."""
        import torch

        batch = torch.as_tensor(batch, dtype=torch.float32).to(self.device)
        return self.mel(normalize_volume(batch)).transpose(1, 2)

    def hidden_states(self, batch) -> list:
        return [h.mean(dim=1) for h in self.frame_states(batch)]

    def frame_states(self, batch) -> list:
        """Every hidden state per mel frame: float32 [B, 1 + T // 160, width] on CPU."""
        import torch

        with torch.no_grad():
            x = self.mels(batch)
            states = [x.cpu()]
            x = x.to(self.dtype)
            for lstm in self.layers:
                x, _ = lstm(x)
                states.append(x.float().cpu())
        return states

    # ------------------------------------------------------------- splicing (audiosae.encoders.splice)

    def splice_prefix(self, batch, layer: int):
        """Run the mel front end and LSTM layers 1..layer; `h` is hidden state `layer` per mel frame."""
        import torch

        from audiosae.encoders.splice import Prefix, check_layer

        layer = check_layer("resemblyzer", layer, self.num_hidden_states)
        with torch.no_grad():
            x = self.mels(batch)
            h = x
            for lstm in self.layers[:layer]:
                h, _ = lstm(h.to(self.dtype))
        return Prefix(layer, h.float())

    def splice_resume(self, prefix, h):
        """LSTM layers after `prefix.layer` on `h` [B, frames, D]; outputs the speaker embedding [B, 256]."""
        import torch

        from audiosae.encoders.splice import Spliced, check_patch

        check_patch(prefix.h, h, f"Resemblyzer hidden state {prefix.layer}")
        hidden = {prefix.layer: h.float().cpu()}
        with torch.no_grad():
            x = h.to(self.device)
            for k, lstm in enumerate(self.layers[prefix.layer:], start=prefix.layer + 1):
                x, _ = lstm(x.to(self.dtype))
                hidden[k] = x.float().cpu()
            raw = torch.relu(self.projection(x[:, -1].to(self.dtype))).float()
            embedding = raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return Spliced(hidden, {"embedding": embedding.cpu()})

    def describe(self) -> dict:
        extra = {}
        if self.random_seed is None:
            with open(weights_path(), "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            revision = f"resemblyzer {importlib.metadata.version('resemblyzer')}, pretrained.pt sha256:{digest}"
        else:
            from audiosae.encoders.twin import provenance

            revision = f"{provenance(self.random_seed)} (3 single-layer LSTMs, PyTorch default init)"
            extra = {"weights": "random"}
        return {
            "model_id": "resemblyzer/VoiceEncoder",
            "revision": revision,
            **extra,
            "pooling": "mean over mel frames of the mel input and of each LSTM layer's output",
            "hop": f"{HOP_MS} ms mel frames ({WINDOW_MS} ms windows) at {SAMPLE_RATE} Hz; volume raised to "
                   f"{TARGET_DBFS:g} dBFS per crop, no silence trimming",
        }
