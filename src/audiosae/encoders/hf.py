"""Any Hugging Face audio model, through AutoModel + AutoFeatureExtractor.

The weights come from the folder `download_model` wrote (resources/models/<name>/,
a snapshot of one pinned revision); loading never touches the network
(`local_files_only`, and the rule sets HF_HUB_OFFLINE=1). The model runs in
eval mode without gradients, with `output_hidden_states`, and each entry of
`hidden_states` (index 0 = the embedding output, the input of the first
transformer block) is averaged over its sequence axis:

- waveform models (WavLM, HuBERT, MERT, wav2vec 2.0): over the ~20 ms frames;
- AST: its feature extractor turns the crop into a 128-band log-mel
  spectrogram padded (or cut) to the model's fixed length (1024 frames =
  10.24 s), and the transformer sees 2 summary tokens plus one token per
  16x16 patch; we average over all of them, as `hidden_states[l].mean(1)`
  does (for a 5 s crop about half the patches cover the padding: the model
  was trained that way on AudioSet's 10 s clips).

All crops have the same length, so batches need no padding and no attention
mask (for wav2vec2-style models with group norm, Hugging Face advises passing
none anyway).

`trust_remote_code` (MERT) is allowed only when the config asks for it and
pins `revision` to a commit hash, and the folder must hold that very commit
(recorded by download_model, or in huggingface-cli's download metadata).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import torch

REVISION_FILE = "audiosae_revision.json"
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _dtype_kwarg() -> str:
    """`dtype` since transformers 4.56, `torch_dtype` before (now deprecated)."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


_DTYPE_KW = _dtype_kwarg()


class WeightsError(RuntimeError):
    """The model folder is missing, incomplete, or holds another revision than the config pins."""


def recorded_commit(weights_dir: str | Path) -> str | None:
    """The commit a model folder holds: download_model's record, else huggingface-cli's metadata, else None."""
    weights_dir = Path(weights_dir)
    record = weights_dir / REVISION_FILE
    if record.exists():
        return json.loads(record.read_text()).get("commit")
    # `huggingface-cli download --local-dir` keeps one .metadata per file whose first line is the commit.
    commits = set()
    for meta in (weights_dir / ".cache" / "huggingface" / "download").rglob("*.metadata"):
        first = meta.read_text().splitlines()[:1]
        if first and _HEX40.match(first[0].strip()):
            commits.add(first[0].strip())
    return commits.pop() if len(commits) == 1 else None


def check_weights(name: str, model_cfg: dict, weights_dir: str | Path) -> str | None:
    """Refuse a folder that is missing or holds another revision than the config pins; returns its commit."""
    weights_dir = Path(weights_dir)
    revision = model_cfg.get("revision", "main")
    if not (weights_dir / "config.json").exists():
        raise WeightsError(
            f"model '{name}': no config.json in {weights_dir}; run `snakemake resources/models/{name}` "
            f"on a machine with network (or put a snapshot of {model_cfg.get('id')} at revision {revision} there)"
        )
    commit = recorded_commit(weights_dir)
    if _HEX40.match(revision) and commit is not None and commit != revision:
        raise WeightsError(
            f"model '{name}': {weights_dir} holds commit {commit}, but config key 'models.{name}.revision' pins "
            f"{revision}; delete the folder and rerun download_model"
        )
    if model_cfg.get("trust_remote_code") and commit != revision:
        raise WeightsError(
            f"model '{name}': trust_remote_code runs the code in {weights_dir}, so its commit must be known and "
            f"equal the pinned revision {revision} (found {commit or 'no record'}); rerun download_model"
        )
    return commit


def _compat(config) -> None:
    """Let remote-code configs written for older transformers build with this one.

    MERT's MERTConfig predates `conv_pos_batch_norm`, which HubertPositionalConvEmbedding
    reads since transformers 4.48 (huggingface/transformers#35656); False is
    HubertConfig's default and what those checkpoints were trained with.
    """
    if not hasattr(config, "conv_pos_batch_norm"):
        config.conv_pos_batch_norm = False


class HFEncoder:
    """Pooled `hidden_states` of a Hugging Face audio model."""

    def __init__(self, model_cfg: dict, weights_dir: str | Path, device: torch.device, dtype: torch.dtype,
                 name: str = "model"):
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        self.name = name
        self.model_id = model_cfg.get("id", name)
        self.requested_revision = model_cfg.get("revision", "main")
        self.weights_dir = Path(weights_dir)
        self.commit = check_weights(name, model_cfg, self.weights_dir)
        trust = bool(model_cfg.get("trust_remote_code", False))
        kw = dict(local_files_only=True, trust_remote_code=trust)
        self.device = torch.device(device)
        self.dtype = dtype
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(str(self.weights_dir), **kw)
        config = AutoConfig.from_pretrained(str(self.weights_dir), **kw)
        if trust:
            _compat(config)
        model = AutoModel.from_pretrained(str(self.weights_dir), config=config, **{_DTYPE_KW: dtype}, **kw)
        self.model = model.eval().to(self.device)
        self.config = self.model.config
        fe_rate = int(getattr(self.feature_extractor, "sampling_rate", 16000))
        self.sample_rate = int(model_cfg.get("sample_rate") or fe_rate)
        self._fe_rate = fe_rate
        self._warned_truncation = False
        probe = self.hidden_states(torch.zeros(1, self.sample_rate))
        self.num_hidden_states = len(probe)
        self.layer_widths = [int(h.shape[1]) for h in probe]

    def inputs(self, batch: torch.Tensor) -> dict:
        """The feature extractor's tensors for a [B, T] batch (no attention mask: equal lengths)."""
        waves = [w.numpy() for w in torch.as_tensor(batch, dtype=torch.float32).cpu()]
        self._check_truncation(waves[0].shape[0])
        # `sampling_rate` is the extractor's own: a `sample_rate` override in the config means the
        # audio was resampled to that rate on purpose.
        feats = self.feature_extractor(waves, sampling_rate=self._fe_rate, return_tensors="pt")
        out = {}
        for key in ("input_values", "input_features"):
            if key in feats:
                out[key] = feats[key].to(self.device, self.dtype)
        if not out:
            raise RuntimeError(f"model '{self.name}': its feature extractor returned {list(feats)}, "
                               f"neither input_values nor input_features")
        return out

    def _check_truncation(self, n_samples: int) -> None:
        max_frames = getattr(self.feature_extractor, "max_length", None)
        if self._warned_truncation or not max_frames or not hasattr(self.feature_extractor, "num_mel_bins"):
            return
        # Spectrogram models (AST) see a fixed number of 10 ms frames.
        if n_samples / self._fe_rate * 100 > max_frames:
            warnings.warn(f"model '{self.name}': crops of {n_samples / self._fe_rate:.2f} s exceed its "
                          f"{max_frames / 100:.2f} s input; the feature extractor cuts them")
        self._warned_truncation = True

    def hidden_states(self, batch: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            out = self.model(**self.inputs(batch), output_hidden_states=True, return_dict=True)
            return [h.float().mean(dim=1).cpu() for h in out.hidden_states]

    def hop(self) -> str:
        cfg = self.config
        if getattr(cfg, "conv_stride", None):
            stride = math.prod(cfg.conv_stride)
            return f"{stride} samples ({1000 * stride / self._fe_rate:g} ms) per frame"
        if hasattr(cfg, "time_stride"):
            return (f"10 ms fbank frames padded/cut to {cfg.max_length}; {cfg.patch_size}x{cfg.patch_size} patches, "
                    f"time stride {cfg.time_stride}, frequency stride {cfg.frequency_stride}")
        return "model's own"

    def describe(self) -> dict:
        return {
            "model_id": self.model_id,
            "revision": self.commit or self.requested_revision,
            "revision_requested": self.requested_revision,
            "model_class": type(self.model).__name__,
            "pooling": "mean over the sequence axis of every hidden_states entry (index 0 = embedding output)",
            "hop": self.hop(),
        }
