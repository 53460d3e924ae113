"""Read SAEs trained with other libraries; encode our stored vectors exactly as each library does.

Every reader returns an :class:`ExternalSAE` (encode, decode) or raises
:class:`InteropError` with one line naming the file and what is wrong. Which
source each follows:

- ``saelens`` (sae_lens 6.18.0, github jbloomAus/SAELens commit 91ca16c; same in
  the 6.54.12 wheel): a folder with ``cfg.json`` and ``sae_weights.safetensors``
  (``W_enc`` [d_in, d_sae], ``b_enc``, ``W_dec`` [d_sae, d_in], ``b_dec``,
  ``threshold`` for jumprelu). ``saes/sae.py`` ``process_sae_in``: ``x - b_dec``
  when ``apply_b_dec_to_input``; ``saes/topk_sae.py``: ``hidden_pre = sae_in @ W_enc
  + b_enc`` (times ``||W_dec row||`` with ``rescale_acts_by_decoder_norm``), top-k,
  then ReLU of the kept values; ``standard_sae.py``: ReLU; ``jumprelu_sae.py``:
  ``relu(hidden_pre) * (hidden_pre > threshold)``. Only ``normalize_activations:
  none`` is read (the others depend on statistics the file does not hold).
- ``sparsify`` (EleutherAI/sparsify 1.3.0, commit 9d3b136): a folder with
  ``cfg.json`` (``d_in``, ``k``, ``activation``, ``num_latents`` or
  ``expansion_factor``, ``transcode``) and ``sae.safetensors`` (``encoder.weight``
  [d_sae, d_in], ``encoder.bias``, ``W_dec`` [d_sae, d_in], ``b_dec``).
  ``sparse_coder.py`` ``SparseCoder.encode``: ``x - b_dec`` (not for transcoders),
  then ``fused_encoder.py``: ``relu(x W^T + b)``, then top-k (``activation: topk``)
  or the max of each of k equal groups (``groupmax``).
- ``dictionary_learning`` (saprmarks/dictionary_learning 0.1.0, commit 60ec6bf):
  a folder with ``ae.pt`` (a torch state dict) and ``config.json``
  (``trainer.dict_class``, ``trainer.k``). ``dictionary.py`` ``AutoEncoder``:
  ``relu(encoder(x - bias))``; ``trainers/top_k.py`` ``AutoEncoderTopK``:
  ``relu(encoder(x - b_dec))`` then top-k (its default ``use_threshold=False``);
  ``trainers/batch_top_k.py`` ``BatchTopKSAE``: ``relu(encoder(x - b_dec))`` kept
  where ``> threshold`` (its default ``use_threshold=True``);
  ``trainers/matryoshka_batch_top_k.py``: the same with ``(x - b_dec) @ W_enc + b_enc``.
  ``encoder.weight`` is [dict_size, d]; ``decoder.weight`` [d, dict_size].
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

FORMATS = ("saelens", "sparsify", "dictionary_learning")
ACTIVATIONS = ("topk_relu", "relu_topk", "relu", "jumprelu", "relu_threshold", "groupmax")


class InteropError(ValueError):
    """An external SAE file that does not match its format; the message is one line naming the file."""


class ExternalSAE(nn.Module):
    """An SAE from another library: ``encode`` gives its codes of our vectors, ``decode`` its reconstruction.

    ``pre = (x - b_in) @ W_enc + b_enc``, then `activation`:
    topk_relu (SAELens: top-k, then ReLU), relu_topk (sparsify, dictionary_learning:
    ReLU, then top-k), relu, jumprelu (``relu(pre) * (pre > threshold)``),
    relu_threshold (``relu(pre) * (relu(pre) > threshold)``), groupmax (max of each
    of k equal groups, after ReLU). ``decode(c) = c @ W_dec + b_dec``.
    """

    def __init__(self, *, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor,
                 b_in: torch.Tensor, activation: str, k: int | None = None, threshold: torch.Tensor | None = None,
                 rescale_by_decoder_norm: bool = False, source: str = "", description: str = ""):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.k = k
        self.rescale_by_decoder_norm = rescale_by_decoder_norm
        self.source = source
        self.description = description
        f32 = dict(dtype=torch.float32)
        self.register_buffer("W_enc", W_enc.detach().to(**f32).contiguous())
        self.register_buffer("b_enc", b_enc.detach().to(**f32))
        self.register_buffer("W_dec", W_dec.detach().to(**f32).contiguous())
        self.register_buffer("b_dec", b_dec.detach().to(**f32))
        self.register_buffer("b_in", b_in.detach().to(**f32))
        self.register_buffer("threshold", (threshold if threshold is not None else torch.tensor(0.0)).detach().to(**f32))

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = (x.to(torch.float32) - self.b_in) @ self.W_enc + self.b_enc
        if self.rescale_by_decoder_norm:
            pre = pre * self.W_dec.norm(dim=-1)
        act = self.activation
        if act == "topk_relu":
            top = pre.topk(self.k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
        relu = pre.relu()
        if act == "relu":
            return relu
        if act == "relu_topk":
            top = relu.topk(self.k, dim=-1, sorted=False)
            return torch.zeros_like(relu).scatter(-1, top.indices, top.values)
        if act == "jumprelu":
            return relu * (pre > self.threshold)
        if act == "relu_threshold":
            return relu * (relu > self.threshold)
        # groupmax: k groups of d_sae // k consecutive latents, the max of each kept
        values, idx = relu.unflatten(-1, (self.k, -1)).max(dim=-1)
        offsets = torch.arange(0, self.d_sae, self.d_sae // self.k, device=relu.device)
        return torch.zeros_like(relu).scatter(-1, idx + offsets, values)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.W_dec + self.b_dec


# ---------------------------------------------------------------- file helpers


def _need_file(folder: Path, name: str, fmt: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise InteropError(f"{path}: not found; a {fmt} SAE folder holds {name}")
    return path


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InteropError(f"{path}: not a readable JSON file ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InteropError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        raise InteropError(f"{path}: not a readable safetensors file ({str(err).splitlines()[0]})") from None


def _tensor(tensors: dict, name: str, shape: tuple, path: Path, what: dict[str, str]) -> torch.Tensor:
    """tensors[name] with the expected shape (each dim an int; `what` names the dims for the message)."""
    if name not in tensors:
        raise InteropError(f"{path}: missing tensor {name!r} (holds {', '.join(sorted(tensors)) or 'nothing'})")
    t = tensors[name]
    if tuple(t.shape) != tuple(shape):
        dims = " x ".join(f"{what.get(str(s), s)}={s}" if str(s) in what else str(s) for s in shape)
        raise InteropError(f"{path}: tensor {name!r} has shape {list(t.shape)}, expected [{dims}]")
    return t.float()


def _check_width(d_in_file: int, d_in: int | None, path: Path, key: str) -> None:
    if d_in is not None and int(d_in_file) != int(d_in):
        raise InteropError(f"{path}: {key} = {d_in_file}, but the node's layer has width {d_in}; "
                           f"the SAE was trained on another layer or model")


def _int_key(cfg: dict, key: str, path: Path, minimum: int = 1) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InteropError(f"{path}: key {key!r} must be an integer >= {minimum}, found {value!r}")
    return value


# ---------------------------------------------------------------- SAELens


SAELENS_ARCHS = ("standard", "topk", "jumprelu")


def read_saelens(folder: Path | str, d_in: int | None = None) -> ExternalSAE:
    folder = Path(folder)
    cfg_path = _need_file(folder, "cfg.json", "SAELens")
    w_path = _need_file(folder, "sae_weights.safetensors", "SAELens")
    cfg = _read_json(cfg_path)
    arch = cfg.get("architecture", "standard")  # SAELens's handle_config_defaulting: no key = standard
    if arch not in SAELENS_ARCHS:
        raise InteropError(f"{cfg_path}: architecture {arch!r} is not supported (supported: "
                           f"{', '.join(SAELENS_ARCHS)})")
    norm = cfg.get("normalize_activations", "none")
    if norm not in ("none", None):
        raise InteropError(f"{cfg_path}: normalize_activations {norm!r} is not supported; fold the scaling into "
                           f"the weights and set it to \"none\"")
    if cfg.get("reshape_activations", "none") not in ("none", None):
        raise InteropError(f"{cfg_path}: reshape_activations {cfg['reshape_activations']!r} is not supported")
    n_in, n_sae = _int_key(cfg, "d_in", cfg_path), _int_key(cfg, "d_sae", cfg_path)
    _check_width(n_in, d_in, cfg_path, "d_in")
    t = _read_safetensors(w_path)
    names = {str(n_in): "d_in", str(n_sae): "d_sae"}
    W_enc = _tensor(t, "W_enc", (n_in, n_sae), w_path, names)
    b_enc = _tensor(t, "b_enc", (n_sae,), w_path, names)
    W_dec = _tensor(t, "W_dec", (n_sae, n_in), w_path, names)
    b_dec = _tensor(t, "b_dec", (n_in,), w_path, names)
    b_in = b_dec if cfg.get("apply_b_dec_to_input", True) else torch.zeros(n_in)
    kwargs: dict = {}
    if arch == "topk":
        k = _int_key(cfg, "k", cfg_path)
        if k > n_sae:
            raise InteropError(f"{cfg_path}: k = {k} exceeds d_sae = {n_sae}")
        kwargs = {"activation": "topk_relu", "k": k,
                  "rescale_by_decoder_norm": bool(cfg.get("rescale_acts_by_decoder_norm", False))}
    elif arch == "jumprelu":
        kwargs = {"activation": "jumprelu", "threshold": _tensor(t, "threshold", (n_sae,), w_path, names)}
    else:
        kwargs = {"activation": "relu"}
    return ExternalSAE(W_enc=W_enc, b_enc=b_enc, W_dec=W_dec, b_dec=b_dec, b_in=b_in, source=str(folder),
                       description=f"SAELens {arch}", **kwargs)


# ---------------------------------------------------------------- sparsify


def read_sparsify(folder: Path | str, d_in: int | None = None) -> ExternalSAE:
    folder = Path(folder)
    cfg_path = _need_file(folder, "cfg.json", "sparsify")
    w_path = _need_file(folder, "sae.safetensors", "sparsify")
    cfg = _read_json(cfg_path)
    n_in = _int_key(cfg, "d_in", cfg_path)
    _check_width(n_in, d_in, cfg_path, "d_in")
    if cfg.get("transcode", False):
        raise InteropError(f"{cfg_path}: a transcoder (transcode: true) predicts another module's output; only "
                           f"SAEs of the layer itself can be analysed")
    activation = cfg.get("activation", "topk")
    if activation not in ("topk", "groupmax"):
        raise InteropError(f"{cfg_path}: activation {activation!r} is not supported (supported: topk, groupmax)")
    k = _int_key(cfg, "k", cfg_path)
    n_sae = cfg.get("num_latents") or n_in * cfg.get("expansion_factor", 32)  # SparseCoder.__init__
    if not isinstance(n_sae, int) or n_sae < 1:
        raise InteropError(f"{cfg_path}: num_latents / expansion_factor give no valid latent count ({n_sae!r})")
    if k > n_sae or (activation == "groupmax" and n_sae % k):
        raise InteropError(f"{cfg_path}: k = {k} does not fit num_latents = {n_sae} with activation {activation}")
    t = _read_safetensors(w_path)
    names = {str(n_in): "d_in", str(n_sae): "num_latents"}
    enc = _tensor(t, "encoder.weight", (n_sae, n_in), w_path, names)
    b_enc = _tensor(t, "encoder.bias", (n_sae,), w_path, names)
    W_dec = _tensor(t, "W_dec", (n_sae, n_in), w_path, names)
    b_dec = _tensor(t, "b_dec", (n_in,), w_path, names)
    return ExternalSAE(W_enc=enc.T, b_enc=b_enc, W_dec=W_dec, b_dec=b_dec, b_in=b_dec,
                       activation="relu_topk" if activation == "topk" else "groupmax", k=k, source=str(folder),
                       description=f"sparsify {activation}")


# ---------------------------------------------------------------- dictionary_learning


DL_CLASSES = ("AutoEncoder", "AutoEncoderTopK", "BatchTopKSAE", "MatryoshkaBatchTopKSAE")


def read_dictionary_learning(folder: Path | str, d_in: int | None = None) -> ExternalSAE:
    folder = Path(folder)
    cfg_path = _need_file(folder, "config.json", "dictionary_learning")
    w_path = _need_file(folder, "ae.pt", "dictionary_learning")
    cfg = _read_json(cfg_path)
    trainer = cfg.get("trainer")
    if not isinstance(trainer, dict):
        raise InteropError(f"{cfg_path}: no 'trainer' object (dictionary_learning's training writes "
                           f"{{\"trainer\": {{\"dict_class\": ..., ...}}}})")
    cls = trainer.get("dict_class")
    if cls not in DL_CLASSES:
        raise InteropError(f"{cfg_path}: trainer.dict_class {cls!r} is not supported (supported: "
                           f"{', '.join(DL_CLASSES)})")
    try:
        state = torch.load(str(w_path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise InteropError(f"{w_path}: not a readable torch state dict ({str(err).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise InteropError(f"{w_path}: expected a state dict, found {type(state).__name__}")
    if cls == "MatryoshkaBatchTopKSAE":
        if "W_enc" not in state:
            raise InteropError(f"{w_path}: missing tensor 'W_enc' (holds {', '.join(sorted(state))})")
        n_in, n_sae = state["W_enc"].shape
    else:
        if "encoder.weight" not in state:
            raise InteropError(f"{w_path}: missing tensor 'encoder.weight' (holds {', '.join(sorted(state))})")
        n_sae, n_in = state["encoder.weight"].shape  # nn.Linear(activation_dim, dict_size): [dict_size, d]
    _check_width(n_in, d_in, w_path, "the input width of encoder.weight/W_enc")
    for key, value in (("activation_dim", n_in), ("dict_size", n_sae)):
        if key in trainer and trainer[key] != value:
            raise InteropError(f"{cfg_path}: trainer.{key} = {trainer[key]}, but {w_path.name} has {value}")
    names = {str(n_in): "activation_dim", str(n_sae): "dict_size"}
    if cls == "MatryoshkaBatchTopKSAE":
        W_enc = _tensor(state, "W_enc", (n_in, n_sae), w_path, names)
        b_enc = _tensor(state, "b_enc", (n_sae,), w_path, names)
        W_dec = _tensor(state, "W_dec", (n_sae, n_in), w_path, names)
    else:
        W_enc = _tensor(state, "encoder.weight", (n_sae, n_in), w_path, names).T
        b_enc = _tensor(state, "encoder.bias", (n_sae,), w_path, names)
        W_dec = _tensor(state, "decoder.weight", (n_in, n_sae), w_path, names).T
    if cls == "AutoEncoder":
        bias = _tensor(state, "bias", (n_in,), w_path, names)
        return ExternalSAE(W_enc=W_enc, b_enc=b_enc, W_dec=W_dec, b_dec=bias, b_in=bias, activation="relu",
                           source=str(folder), description="dictionary_learning AutoEncoder")
    b_dec = _tensor(state, "b_dec", (n_in,), w_path, names)
    if "k" in state:
        k = int(state["k"])
    else:
        k = _int_key(trainer, "k", cfg_path)
    if not 1 <= k <= n_sae:
        raise InteropError(f"{w_path}: k = {k} is not between 1 and dict_size = {n_sae}")
    if cls == "AutoEncoderTopK":
        return ExternalSAE(W_enc=W_enc, b_enc=b_enc, W_dec=W_dec, b_dec=b_dec, b_in=b_dec, activation="relu_topk",
                           k=k, source=str(folder), description="dictionary_learning AutoEncoderTopK")
    threshold = _tensor(state, "threshold", (), w_path, names)
    return ExternalSAE(W_enc=W_enc, b_enc=b_enc, W_dec=W_dec, b_dec=b_dec, b_in=b_dec, activation="relu_threshold",
                       k=k, threshold=threshold, source=str(folder), description=f"dictionary_learning {cls}")


READERS = {"saelens": read_saelens, "sparsify": read_sparsify, "dictionary_learning": read_dictionary_learning}


def read_external(fmt: str, path: Path | str, d_in: int | None = None) -> ExternalSAE:
    """The SAE in folder `path` written by library `fmt`; `d_in` (when known) is the node's layer width."""
    if fmt not in READERS:
        raise InteropError(f"{path}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    path = Path(path)
    if not path.is_dir():
        raise InteropError(f"{path}: not a folder; a {fmt} SAE is a folder of files")
    return READERS[fmt](path, d_in)
