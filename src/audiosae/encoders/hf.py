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

Frames (`frame_states`, for frame-level SAEs): waveform models give one vector
per conv-encoder frame, as many as the conv stack's own length formula says
(`Facts.num_frames`: floor((L - kernel) / stride) + 1 per conv layer, the one in
`_get_feat_extract_output_lengths`); AST gives, per time column of patches, the
mean of that column's patch tokens over frequency, for the columns whose 16
fbank frames all lie inside the audio (the padding to 10.24 s is dropped).

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

from audiosae.encoders.base import EncoderFacts
from audiosae.errors import ConfigError

# torch and transformers are imported inside functions: the Snakefile asks Facts
# for layer widths and frame grids (read from the snapshot's JSON files).

REVISION_FILE = "audiosae_revision.json"
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_AST = "audio-spectrogram-transformer"
_FBANK_WINDOW, _FBANK_HOP, _FBANK_RATE = 400, 160, 16000  # ASTFeatureExtractor: Kaldi fbank, 25 ms / 10 ms


def _dtype_kwarg() -> str:
    """`dtype` since transformers 4.56, `torch_dtype` before (now deprecated)."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _conv_out(length: int, kernel: int, stride: int) -> int:
    return max(0, (int(length) - int(kernel)) // int(stride) + 1) if length >= kernel else 0


class Facts(EncoderFacts):
    """A Hugging Face model's facts, read from its snapshot's config.json and preprocessor_config.json.

    Before download_model has fetched the snapshot, widths and depth are unknown
    (None): the Snakefile then waits for the download (a checkpoint) before it
    resolves `layers: all` or negative indices.
    """

    source = "hf"
    needs_weights = True
    options = {
        "id": {"type": "string", "description": "Hugging Face model id."},
        "revision": {"type": "string",
                     "description": "Hugging Face revision, default main (a commit hash pins it; required to be a "
                                    "hash when trust_remote_code is set)."},
        "trust_remote_code": {"type": "boolean",
                              "description": "Allow the model repository's own code (MERT needs it; default false)."},
        "sample_rate": {"type": "integer", "minimum": 1000,
                        "description": "Override the model's input rate (default: its feature extractor's)."},
    }

    def check(self) -> None:
        if "id" not in self.cfg:
            raise ConfigError(f"config key 'models.{self.name}.id': a Hugging Face model needs its id")
        if self.cfg.get("trust_remote_code") and not _HEX40.match(self.cfg.get("revision", "")):
            raise ConfigError(
                f"config key 'models.{self.name}.revision': trust_remote_code runs the repository's own code, "
                f"so pin it to a 40-hex commit hash (got {self.cfg.get('revision')!r})"
            )

    def _json(self, file: str) -> dict | None:
        if self.weights_dir is None or not (self.weights_dir / file).exists():
            return None
        return json.loads((self.weights_dir / file).read_text())

    def model_config(self) -> dict:
        cfg = self._json("config.json")
        if cfg is None:
            raise ConfigError(f"model '{self.name}': no config.json in {self.weights_dir}; run "
                              f"`snakemake resources/models/{self.name}` first (download_model)")
        return cfg

    def sample_rate(self) -> int:
        if self.cfg.get("sample_rate"):
            return int(self.cfg["sample_rate"])
        return int((self._json("preprocessor_config.json") or {}).get("sampling_rate", 16000))

    def layer_widths(self) -> list[int] | None:
        cfg = self._json("config.json")
        if cfg is None or "num_hidden_layers" not in cfg or "hidden_size" not in cfg:
            return None
        # hidden_states: the embedding output plus one entry per transformer block, all hidden_size wide.
        return [int(cfg["hidden_size"])] * (int(cfg["num_hidden_layers"]) + 1)

    # ---------------------------------------------------------------- frames

    def _grid(self) -> tuple[str, dict]:
        cfg = self.model_config()
        if cfg.get("conv_stride") and cfg.get("conv_kernel"):
            return "conv", cfg
        if cfg.get("model_type") == _AST or all(k in cfg for k in ("time_stride", "patch_size", "max_length")):
            return "ast", cfg
        raise self.unknown_frames(f"the frame rate or output length of its model type "
                                  f"{cfg.get('model_type', '?')!r} (no conv_stride/conv_kernel, not an AST)")

    def hop_samples(self) -> int:
        kind, cfg = self._grid()
        if kind == "conv":
            return math.prod(int(s) for s in cfg["conv_stride"])
        return int(cfg["time_stride"]) * _FBANK_HOP * self.sample_rate() // _FBANK_RATE

    def num_frames(self, n_samples: int) -> int:
        kind, cfg = self._grid()
        n = int(n_samples)
        if kind == "conv":
            for kernel, stride in zip(cfg["conv_kernel"], cfg["conv_stride"]):
                n = _conv_out(n, kernel, stride)
            return n
        fbank = min(_conv_out(n * _FBANK_RATE // self.sample_rate(), _FBANK_WINDOW, _FBANK_HOP),
                    int(cfg["max_length"]))
        return _conv_out(fbank, int(cfg["patch_size"]), int(cfg["time_stride"]))

    def first_frame_s(self) -> float:
        kind, cfg = self._grid()
        if kind == "conv":
            # Centre of frame 0's receptive field: 1 + sum_j (kernel_j - 1) * prod_{l<j} stride_l samples.
            field, jump = 1, 1
            for kernel, stride in zip(cfg["conv_kernel"], cfg["conv_stride"]):
                field += (int(kernel) - 1) * jump
                jump *= int(stride)
            return (field - 1) / 2 / self.sample_rate()
        # Centre of the first patch column: fbank frames 0..patch-1, frame j centred at j * 10 ms + 12.5 ms.
        return ((int(cfg["patch_size"]) - 1) / 2 * _FBANK_HOP + _FBANK_WINDOW / 2) / _FBANK_RATE

    def max_window_samples(self) -> int | None:
        kind, cfg = self._grid()
        if kind == "conv":
            return None
        # The feature extractor cuts the fbank at max_length frames (10.24 s for AudioSet's AST).
        return (_FBANK_WINDOW + (int(cfg["max_length"]) - 1) * _FBANK_HOP) * self.sample_rate() // _FBANK_RATE

    def ast_grid(self) -> tuple[int, int]:
        """(frequency, time) patches of an AST's token grid (summary tokens excluded)."""
        cfg = self.model_config()
        freq = (int(cfg["num_mel_bins"]) - int(cfg["patch_size"])) // int(cfg["frequency_stride"]) + 1
        time = (int(cfg["max_length"]) - int(cfg["patch_size"])) // int(cfg["time_stride"]) + 1
        return freq, time

    def resources(self) -> dict:
        return {"mem_mb": 8000, "runtime": 720}  # a base-size transformer; the CPU fallback is slow

    def build(self, device, dtype):
        if self.weights_dir is None:
            raise ValueError(f"model '{self.name}': a Hugging Face model needs its weights folder "
                             f"(resources/models/{self.name})")
        return HFEncoder(self.cfg, self.weights_dir, device, dtype, name=self.name)


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
    """Pooled (and per-frame) `hidden_states` of a Hugging Face audio model."""

    def __init__(self, model_cfg: dict, weights_dir: str | Path, device: "torch.device", dtype: "torch.dtype",
                 name: str = "model", with_head: bool = False):
        import torch
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
        from audiosae.encoders.twin import seeded, twin_seed

        self.random_seed = twin_seed(model_cfg)
        if self.random_seed is None:
            model = AutoModel.from_pretrained(str(self.weights_dir), config=config, **{_dtype_kwarg(): dtype}, **kw)
        else:
            # The twin: the architecture's own initialisation under the seed; the weights file is never read.
            with seeded(self.random_seed):
                model = AutoModel.from_config(config, trust_remote_code=trust).to(dtype)
        # With `with_head` (splicing) and a checkpoint that has an audio-classification head (AST), the head model
        # too; `self.model` stays the base model that extraction reads, with the very same weights.
        self.head_model = self._head(config, model, kw, dtype) if with_head else None
        self.model = model.eval().to(self.device)
        self.config = self.model.config
        fe_rate = int(getattr(self.feature_extractor, "sampling_rate", 16000))
        self.sample_rate = int(model_cfg.get("sample_rate") or fe_rate)
        self._fe_rate = fe_rate
        self._warned_truncation = False
        self.facts = Facts(name, model_cfg, self.weights_dir)
        probe = self.hidden_states(torch.zeros(1, self.sample_rate))
        self.num_hidden_states = len(probe)
        self.layer_widths = [int(h.shape[1]) for h in probe]

    def _head(self, config, base, kw: dict, dtype):
        """The checkpoint's audio-classification model around `base`, or None when it has no such head."""
        from transformers import AutoModelForAudioClassification

        from audiosae.encoders.twin import seeded

        if not any(str(a).endswith("ForAudioClassification") for a in (getattr(config, "architectures", None) or [])):
            return None
        if self.random_seed is None:
            head = AutoModelForAudioClassification.from_pretrained(str(self.weights_dir), config=config,
                                                                   **{_dtype_kwarg(): dtype}, **kw)
        else:
            # the twin's head: random under the next seed, around the twin's own base weights
            with seeded(self.random_seed + 1):
                head = AutoModelForAudioClassification.from_config(config).to(dtype)
        # The head runs on `base` itself (same weights as extraction's), so a hook on the base model's blocks
        # is a hook on the head model's.
        setattr(head, head.base_model_prefix, base)
        return head.eval().to(self.device)

    def inputs(self, batch: "torch.Tensor") -> dict:
        """The feature extractor's tensors for a [B, T] batch (no attention mask: equal lengths)."""
        import torch

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

    def _hidden(self, batch: "torch.Tensor"):
        import torch

        with torch.no_grad():
            return self.model(**self.inputs(batch), output_hidden_states=True, return_dict=True).hidden_states

    def hidden_states(self, batch: "torch.Tensor") -> "list[torch.Tensor]":
        return [h.float().mean(dim=1).cpu() for h in self._hidden(batch)]

    def frame_states(self, batch: "torch.Tensor") -> "list[torch.Tensor]":
        """Every hidden state per frame, float32 [B, F, width] on CPU, F = Facts.num_frames(T).

        The batch's waveforms must have equal length (no padding: padding changes
        a waveform model's group norm and attention, so frames would depend on batch-mates).
        """
        from audiosae.errors import FrameError

        n_samples = int(batch.shape[-1])
        want = self.facts.num_frames(n_samples)
        states = self._hidden(batch)
        kind, _ = self.facts._grid()
        if kind == "ast":
            freq, time = self.facts.ast_grid()
            out = []
            for h in states:
                grid = h[:, 2:, :].reshape(h.shape[0], freq, time, h.shape[-1])  # tokens are frequency-major
                out.append(grid[:, :, :want].float().mean(dim=1).cpu())
            return out
        got = int(states[0].shape[1])
        if got != want:
            raise FrameError(f"model '{self.name}' gave {got} frames for {n_samples} samples, but its conv "
                             f"stack's formula says {want}; its frame grid is not the one audiosae assumes")
        return [h.float().cpu() for h in states]

    # ------------------------------------------------------------- splicing (audiosae.encoders.splice)

    def _layers(self):
        """The transformer blocks: hidden_states[i] (i >= 1) is block i - 1's output, hidden_states[0] its input."""
        import torch

        enc = getattr(self.model, "encoder", None)
        for attr in ("layers", "layer"):
            mods = getattr(enc, attr, None)
            if isinstance(mods, torch.nn.ModuleList) and len(mods) == self.num_hidden_states - 1:
                return mods
        raise RuntimeError(f"model '{self.name}' ({type(self.model).__name__}): no encoder.layers or encoder.layer "
                           f"list of {self.num_hidden_states - 1} blocks to splice into")

    def _run(self, inputs: dict):
        model = self.head_model if self.head_model is not None else self.model
        return model(**inputs, output_hidden_states=True, return_dict=True)

    def splice_prefix(self, batch, layer: int):
        """Run the model once, recording the outputs of the blocks before hidden state `layer`.

        `h` is hidden_states[layer], the whole sequence [B, S, D] (AST's two summary tokens and
        its patches included: the tokens the clip vector averages).
        """
        import torch

        from audiosae.encoders.splice import Prefix, check_layer

        layer = check_layer(self.name, layer, self.num_hidden_states)
        mods = self._layers()
        cached: dict[int, object] = {}
        seen: dict[str, torch.Tensor] = {}

        def keep(i):
            def hook(module, args, output):
                cached[i] = output
            return hook

        def keep_input(module, args, kwargs):
            seen["input"] = args[0] if args else kwargs["hidden_states"]

        handles = [mods[i].register_forward_hook(keep(i)) for i in range(layer)]
        if layer == 0:
            handles.append(mods[0].register_forward_pre_hook(keep_input, with_kwargs=True))
        # The last hidden state may be the final norm's output (AST, stable-layer-norm wav2vec 2.0: transformers
        # ties hidden_states[-1] to last_hidden_state); then that norm is the module to patch.
        norms = self._final_norms() if layer == self.num_hidden_states - 1 else {}
        handles += [mod.register_forward_hook(keep(name)) for name, mod in norms.items()]
        inputs = self.inputs(batch)
        try:
            with torch.no_grad():
                out = self._run(inputs)
        finally:
            for handle in handles:
                handle.remove()
        h = out.hidden_states[layer]
        at = _main(cached[layer - 1]) if layer > 0 else seen["input"]
        final_norm = None
        if at.shape != h.shape or not torch.equal(at, h):
            final_norm = next((name for name in norms if torch.equal(_main(cached[name]), h)), None)
            at = h if final_norm is not None else at
        if at.shape != h.shape or not torch.equal(at, h):
            raise RuntimeError(f"model '{self.name}' ({type(self.model).__name__}): hidden_states[{layer}] is not "
                               f"the {'output of block ' + str(layer - 1) if layer else 'input of block 0'}; "
                               f"audiosae cannot splice this architecture at that layer")
        return Prefix(layer, h.float(), {"inputs": inputs, "cached": cached, "final_norm": final_norm})

    def _final_norms(self) -> dict:
        """LayerNorm modules of the base model outside its blocks ({dotted name: module})."""
        import torch

        blocks = {id(m) for block in self._layers() for m in block.modules()}
        return {name: mod for name, mod in self.model.named_modules()
                if isinstance(mod, torch.nn.LayerNorm) and id(mod) not in blocks}

    def splice_resume(self, prefix, h):
        """Rerun the model with hidden_states[layer] := h: the blocks before it return their recorded outputs
        (only the front end runs again), the blocks after it run on h."""
        import torch

        from audiosae.encoders.splice import Spliced, check_patch

        check_patch(prefix.h, h, f"model '{self.name}' hidden state {prefix.layer}")
        layer = prefix.layer
        new = h.to(self.device, self.dtype)
        mods = self._layers()
        cached = prefix.state["cached"]
        handles = []
        final_norm = prefix.state.get("final_norm")
        patched_mods = [mods[i] for i in range(layer)]
        try:
            for i in range(layer):
                recorded = _with_main(cached[i], new) if i == layer - 1 and final_norm is None else cached[i]
                mods[i].forward = _returning(recorded)
            if final_norm is not None:
                norm = self.model.get_submodule(final_norm)
                norm.forward = _returning(_with_main(cached[final_norm], new))
                patched_mods.append(norm)
            if layer == 0:
                def swap(module, args, kwargs):
                    if args:
                        return (new, *args[1:]), kwargs
                    return args, {**kwargs, "hidden_states": new}
                handles.append(mods[0].register_forward_pre_hook(swap, with_kwargs=True))
            with torch.no_grad():
                out = self._run(prefix.state["inputs"])
        finally:
            for mod in patched_mods:
                mod.__dict__.pop("forward", None)
            for handle in handles:
                handle.remove()
        # hidden_states[layer] is what the patch put there (for layer 0 the model records the block's input
        # before the pre-hook swaps it)
        hidden = {layer: new.float().cpu(),
                  **{i: out.hidden_states[i].float().cpu() for i in range(layer + 1, len(out.hidden_states))}}
        outputs = {}
        if getattr(out, "last_hidden_state", None) is not None:
            outputs["last_hidden_state"] = out.last_hidden_state.float().cpu()
        if getattr(out, "logits", None) is not None:
            outputs["logits"] = out.logits.float().cpu()
        return Spliced(hidden, outputs)

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
        if self.random_seed is not None:
            from audiosae.encoders.twin import provenance

            return {
                "model_id": self.model_id,
                "revision": f"{provenance(self.random_seed)} (architecture from config.json of "
                            f"{self.commit or self.requested_revision})",
                "weights": "random",
                "revision_requested": self.requested_revision,
                "model_class": type(self.model).__name__,
                "pooling": "mean over the sequence axis of every hidden_states entry (index 0 = embedding output)",
                "hop": self.hop(),
            }
        return {
            "model_id": self.model_id,
            "revision": self.commit or self.requested_revision,
            "revision_requested": self.requested_revision,
            "model_class": type(self.model).__name__,
            "pooling": "mean over the sequence axis of every hidden_states entry (index 0 = embedding output)",
            "hop": self.hop(),
        }


def _main(output):
    """The hidden-state tensor of a block's output (a tensor, or a tuple whose first entry it is)."""
    return output if not isinstance(output, (tuple, list)) else output[0]


def _with_main(output, tensor):
    """`output` with its hidden-state tensor replaced, the rest (WavLM's position bias, ...) unchanged."""
    if not isinstance(output, (tuple, list)):
        return tensor
    return type(output)((tensor, *output[1:])) if isinstance(output, tuple) else [tensor, *output[1:]]


def _returning(output):
    def forward(*args, **kwargs):
        return output
    return forward
