"""The training loop's shortcuts compute exactly what the plain loop computes, bit for bit.

`fit` gathers batches with `index_select`, updates through `SAEAdam` (for a small
SAE on CPU its own copy of torch's single-tensor Adam, which spares the job torch.optim's
import of torch._dynamo; otherwise fused Adam over contiguous aliases of the
parameters: the column-major decoder is updated through its transpose, without the
copies torch's fused kernel makes of a non-contiguous tensor), leaves zero loss
terms out of the graph, and averages the train MSE once per epoch. Each is checked
here against the plain way (advanced indexing, torch's Adam over the parameters
themselves, a running float64 sum on the device): same seed, same weights, same
history.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from audiosae.sae.model import SAEConfig, SparseAutoencoder
from audiosae.sae.train import SAEAdam, fit, make_optimizer, mean_mse, train_step, training_forward

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OPTIONS = {
    "paper-sparse": {"k": 12},  # 12 / 256 < 0.05: the sparse decoder
    "paper-dense": {"k": 64},
    "all-options": {"k": 12, "pre_bias": True, "normalize_inputs": True, "unit_norm_decoder": True, "auxk": 0.5,
                    "auxk_k": 32, "dead_after": 64},
    "batchtopk": {"k": 12, "arch": "batchtopk", "pre_bias": True},
    "relu_l1": {"k": 12, "arch": "relu_l1"},
}


def make_sae(**kw) -> SparseAutoencoder:
    sae = SparseAutoencoder(SAEConfig(**{"input_dim": 48, "n_latents": 256, **kw}),
                            generator=torch.Generator().manual_seed(5))
    sae.train()
    return sae


def data(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 48, generator=torch.Generator().manual_seed(seed)) * 2 + torch.linspace(-1, 3, 48)


def plain_adam(sae: SparseAutoencoder, lr: float = 1e-3, own: bool = True) -> torch.optim.Optimizer:
    """torch's Adam over the parameters themselves, as SAEAdam computes it: its single-tensor update (`own`, the
    way of a small SAE on CPU, as every SAE here), or fused (the way of a large one, or on CUDA)."""
    if own:
        return torch.optim.Adam(list(sae.parameters()), lr=lr, foreach=False, fused=False)
    return torch.optim.Adam(list(sae.parameters()), lr=lr, fused=True)


def assert_same_state(a: SparseAutoencoder, b: SparseAutoencoder) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        same = torch.equal(sa[key], sb[key]) or (sa[key].isnan().all() and sb[key].isnan().all())
        assert same, f"{key}: largest difference {float((sa[key] - sb[key]).abs().max())}"
    assert torch.equal(a.samples_since_fired, b.samples_since_fired)


def test_the_decoder_is_updated_through_a_contiguous_alias_of_its_memory():
    sae = make_sae(k=12)
    assert make_optimizer(sae, 1e-3).own  # a small SAE on CPU: the update written here
    opt = SAEAdam(sae.parameters(), 1e-3, own=False)
    assert not sae.decoder.weight.is_contiguous()  # column-major, as the sparse decoder needs
    for p, alias in zip(sae.parameters(), opt.aliases):
        assert alias.is_contiguous() and alias.data_ptr() == p.data_ptr() and alias.numel() == p.numel()
    assert sum(d is not None for d in opt.dims) == 1  # the decoder weight, and only it


@pytest.mark.parametrize("own", [True, False], ids=["own-update", "fused-through-aliases"])
@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_sae_adam_equals_torch_adam_over_the_parameters(name, own):
    ours, plain = make_sae(**OPTIONS[name]), make_sae(**OPTIONS[name])
    for sae in (ours, plain):
        sae.set_input_stats(data(96, 0).mean(0), data(96, 0).std(0))
    opt_ours, opt_plain = SAEAdam(ours.parameters(), 1e-3, own=own), plain_adam(plain, own=own)
    for step in range(6):
        x = data(32, 10 + step)
        out_ours = train_step(ours, opt_ours, x)
        out_plain = train_step(plain, opt_plain, x)
        assert torch.equal(out_ours.total, out_plain.total)
    assert_same_state(ours, plain)
    # zero_grad(set_to_none=False) keeps the gradient tensors and zeroes them
    opt_ours.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in ours.parameters())


def test_a_small_sae_trains_without_importing_torch_dynamo():
    """torch.optim's optimizers import torch._dynamo when constructed (2 to 4 s per job on 2 cores); a small SAE's
    training job does not pay it."""
    code = ("import sys, torch\n"
            "from audiosae.sae.model import SAEConfig, SparseAutoencoder\n"
            "from audiosae.sae.train import make_optimizer, train_step\n"
            "sae = SparseAutoencoder(SAEConfig(input_dim=360, n_latents=1440, k=36)); sae.train()\n"
            "opt = make_optimizer(sae, 1e-3)\n"
            "train_step(sae, opt, torch.randn(16, 360))\n"
            "print(opt.own, 'torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]


def old_fit_one_epoch(sae, train_x, valid_x, batch_size, generator, lr=1e-3):
    """fit's epoch before the shortcuts: advanced indexing, torch's Adam, a float64 running sum."""
    opt = plain_adam(sae, lr)
    order = torch.randperm(train_x.shape[0], generator=generator)
    sq, numel = None, 0
    for start in range(0, train_x.shape[0], batch_size):
        batch = train_x[order[start:start + batch_size]]
        out = train_step(sae, opt, batch)
        term = out.mse.detach().double() * batch.numel()
        sq = term if sq is None else sq + term
        numel += batch.numel()
    return float(sq) / numel, mean_mse(sae, valid_x)


@pytest.mark.parametrize("name", ["paper-sparse", "all-options", "relu_l1"])
def test_fit_gives_the_weights_and_history_of_the_plain_loop(name):
    opts = {**OPTIONS[name], "dead_after": 64} if OPTIONS[name].get("auxk") else OPTIONS[name]
    ours, plain = make_sae(**opts), make_sae(**opts)
    x, v = data(200, 1), data(40, 2)  # 200 / 16: a short last batch too
    r = fit(ours, x, v, batch_size=16, epochs=1, generator=torch.Generator().manual_seed(9), progress=False)
    train_mse, valid_mse = old_fit_one_epoch(plain, x, v, 16, torch.Generator().manual_seed(9))
    assert r.history == [{"epoch": 1, "train_mse": train_mse, "valid_mse": valid_mse}]
    assert_same_state(ours, plain)
    assert not math.isnan(train_mse)


def test_dead_latent_counters_equal_the_plain_indexing():
    sae = make_sae(k=12, auxk=0.1, dead_after=64)
    g = torch.Generator().manual_seed(3)
    start = torch.randint(0, 500, (256,), generator=g)
    acts = torch.relu(torch.randn(32, 256, generator=g))
    acts[::2, 10:] = 0  # even rows: at most 10 positive, so their top-40 holds zeros (those did not fire)
    top = acts.topk(40, dim=-1, sorted=False)
    assert (top.values == 0).any() and (top.values > 0).any()
    sae.samples_since_fired.copy_(start)
    sae._update_fired(top.indices, top.values, 32)
    plain = start + 32
    plain[top.indices[top.values > 0]] = 0
    assert torch.equal(sae.samples_since_fired, plain)
    # the dense way (codes of batchtopk / relu_l1 / dense decoding)
    codes = torch.zeros_like(acts).scatter(-1, top.indices, top.values)
    sae.samples_since_fired.copy_(start)
    sae._update_training_stats(codes)
    assert torch.equal(sae.samples_since_fired, plain)


def test_compile_is_ignored_on_cpu():
    sae = make_sae(k=12)
    assert training_forward(sae, compile=True) is sae and training_forward(sae, compile=False) is sae
    x, v = data(64, 1), data(16, 2)
    a, b = make_sae(k=12), make_sae(k=12)
    fit(a, x, v, batch_size=16, epochs=1, generator=torch.Generator().manual_seed(1), progress=False, compile=True)
    fit(b, x, v, batch_size=16, epochs=1, generator=torch.Generator().manual_seed(1), progress=False)
    assert_same_state(a, b)
