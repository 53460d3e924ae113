"""Sparse decoding (only the k active latents) computes the dense decoder's step, within float noise.

The two ways sum the same products in a different order, so they agree to float32
rounding: the stated tolerance is 1e-5 relative (plus 1e-6 absolute) on the loss,
every gradient, and 1e-5 absolute (1 % of the learning rate 1e-3) on every weight
after one Adam step: Adam's first step is lr * g / (|g| + 1e-8), so a gradient
element near 1e-8, where the summation order matters relative to its size, moves
its weight by a different fraction of lr. Over many steps two runs drift apart as
any two float orders do, which is why the guarantee is per step. Gradients of latents that did
not fire are exactly zero either way. Training stays bitwise reproducible: one
seed, one machine, identical weights.
"""

from __future__ import annotations

import pytest
import torch

from audiosae.sae.model import SAEConfig, SparseAutoencoder, sparse_pays
from audiosae.sae.train import fit, train_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RTOL, ATOL = 1e-5, 1e-6
WEIGHT_ATOL = 1e-5  # after one Adam step at lr 1e-3

OPTIONS = {
    "paper": {},
    "all-options": {"pre_bias": True, "normalize_inputs": True, "unit_norm_decoder": True, "auxk": 0.5,
                    "auxk_k": 32, "dead_after": 64},
    "batchtopk": {"arch": "batchtopk", "pre_bias": True},
}


def pair(seed=0, **kw):
    cfg = SAEConfig(**{"input_dim": 48, "n_latents": 256, "k": 12, **kw})
    saes = []
    for mode in ("dense", "sparse"):
        sae = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(seed))
        sae.decode_mode = mode
        saes.append(sae)
    return saes


def data(n=96, d=48, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * 2 + torch.linspace(-1, 3, d)


def prepare_both(saes, x, dead_fraction=0.0):
    for sae in saes:
        sae.set_input_stats(x.mean(0), x.std(0))
        sae.init_pre_bias(sae.normalize(x).mean(0))
        if dead_fraction:  # the same latents count as dead in both (AuxK has work to do)
            n_dead = int(dead_fraction * sae.cfg.n_latents)
            sae.samples_since_fired[:n_dead] = 10_000


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_one_step_sparse_equals_dense(name):
    dense, sparse = pair(**OPTIONS[name])
    x = data()
    prepare_both((dense, sparse), x, dead_fraction=0.5 if "auxk" in OPTIONS[name] else 0.0)
    outs = []
    for sae in (dense, sparse):
        sae.train()
        sae.zero_grad()
        out = sae(x)
        out.total.backward()
        outs.append(out)
    d, s = outs
    assert sparse.sparse_decoding() and not dense.sparse_decoding()
    for field in ("total", "mse", "auxk"):
        torch.testing.assert_close(getattr(s, field), getattr(d, field), rtol=RTOL, atol=ATOL)
    if "auxk" in OPTIONS[name]:
        assert float(d.auxk.detach()) > 0  # the AuxK term was exercised
    torch.testing.assert_close(s.reconstruction, d.reconstruction, rtol=RTOL, atol=ATOL)
    assert torch.equal(s.codes, d.codes)  # selection happens before decoding: identical
    for (pname, pd), (_, ps) in zip(dense.named_parameters(), sparse.named_parameters()):
        torch.testing.assert_close(ps.grad, pd.grad, rtol=RTOL, atol=ATOL, msg=lambda m: f"{pname}: {m}")
    # columns of latents that fired nowhere get no decoder gradient at all
    idle = (d.codes == 0).all(0)
    if not OPTIONS[name].get("auxk"):
        assert idle.any() and torch.count_nonzero(sparse.decoder.weight.grad[:, idle]) == 0
    # the whole training step (parallel-gradient removal, Adam, renormalisation)
    for sae in (dense, sparse):
        train_step(sae, torch.optim.Adam(sae.parameters(), lr=1e-3), data(seed=10))
    for (pname, pd), (_, ps) in zip(dense.named_parameters(), sparse.named_parameters()):
        torch.testing.assert_close(ps, pd, rtol=RTOL, atol=WEIGHT_ATOL, msg=lambda m: f"{pname}: {m}")
    assert torch.equal(dense.samples_since_fired, sparse.samples_since_fired)
    if OPTIONS[name].get("arch") == "batchtopk":
        torch.testing.assert_close(sparse.threshold, dense.threshold, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_sparse_forward_is_decode_of_encode_and_evaluation_agrees(name):
    dense, sparse = pair(**OPTIONS[name])
    x = data()
    prepare_both((dense, sparse), x)
    for training in (True, False):
        for sae in (dense, sparse):
            sae.train(training)
        out, _ = sparse(x), dense(x)  # (batchtopk learns its evaluation threshold in training mode)
        torch.testing.assert_close(out.reconstruction, sparse.decode(sparse.encode(x)), rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(sparse.decode(sparse.encode(x)), dense.decode(dense.encode(x)),
                                   rtol=RTOL, atol=ATOL)
    # decode of arbitrary codes (ablations), more than k per row and empty rows included
    codes = torch.relu(torch.randn(5, 256))
    codes[2] = 0
    torch.testing.assert_close(sparse.decode(codes), dense.decode(codes), rtol=RTOL, atol=1e-5)


def test_training_is_reproducible_on_the_sparse_path():
    x, v = data(n=256, seed=3), data(n=64, seed=4)

    def run():
        sae = SparseAutoencoder(SAEConfig(input_dim=48, n_latents=256, k=12, pre_bias=True, auxk=0.1,
                                          dead_after=128, unit_norm_decoder=True),
                                generator=torch.Generator().manual_seed(7))
        sae.decode_mode = "sparse"
        fit(sae, x, v, batch_size=32, epochs=3, generator=torch.Generator().manual_seed(7), progress=False)
        return sae.state_dict()

    a, b = run(), run()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]) or (key == "threshold" and a[key].isnan() and b[key].isnan()), key


def test_size_rule_and_layout():
    # the paper's 2048 latents: sparsity 0.95 (k = 102) and 0.99 decode sparsely on CPU, 0.9 and below densely
    assert sparse_pays(102, 2048, "cpu") and sparse_pays(20, 2048, "cpu")
    assert not sparse_pays(204, 2048, "cpu") and not sparse_pays(512, 2048, "cpu")
    sae = SparseAutoencoder(SAEConfig(input_dim=8, n_latents=32, k=2, arch="relu_l1"))
    assert not sae.sparse_decoding()  # relu_l1 codes are not sparse by construction
    sae.decode_mode = "sideways"
    with pytest.raises(ValueError, match="decode_mode"):
        sae.sparse_decoding()
    # nn.Linear's shape and values; the transposed table is contiguous (no copy per step)
    w = sae.decoder.weight
    assert w.shape == (8, 32) and w.t().is_contiguous()
    # initial values as nn.Linear draws them (encoder weight, its bias, decoder weight, one generator)
    sae2 = SparseAutoencoder(SAEConfig(input_dim=8, n_latents=32, k=2))
    g = torch.Generator().manual_seed(3)
    enc = torch.empty(32, 8)
    torch.nn.init.kaiming_uniform_(enc, a=5 ** 0.5, generator=g)
    torch.nn.init.uniform_(torch.empty(32), -8 ** -0.5, 8 ** -0.5, generator=g)
    dec = torch.empty(8, 32)
    torch.nn.init.kaiming_uniform_(dec, a=5 ** 0.5, generator=g)
    sae2.reset_parameters(torch.Generator().manual_seed(3))
    assert torch.equal(sae2.encoder.weight, enc) and torch.equal(sae2.decoder.weight, dec)
