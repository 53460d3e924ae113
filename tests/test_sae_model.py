"""The SAE module's invariants: sizes, sparsity, gradients, decoder norms, metrics, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from audiosae.config import ConfigError, validate
from audiosae.sae.metrics import SplitMetrics, fvu
from audiosae.sae.model import SAEConfig, SparseAutoencoder
from audiosae.sae.sizes import k_for, latent_count
from audiosae.sae.train import train_step, zero_k_error


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_sae(seed: int = 0, **kw) -> SparseAutoencoder:
    opts = {"input_dim": 12, "n_latents": 40, "k": 5, **kw}
    return SparseAutoencoder(SAEConfig(**opts), generator=torch.Generator().manual_seed(seed))


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_k_at_the_paper_sparsities():
    sparsities = [0.75, 0.80, 0.85, 0.90, 0.95, 0.99]
    assert [k_for(s, 2048) for s in sparsities] == [512, 409, 307, 204, 102, 20]
    assert latent_count(2048, 768) == 2048
    assert latent_count("x4", 16) == 64


def test_config_is_validated():
    with pytest.raises(ValueError, match="arch"):
        SAEConfig(input_dim=4, n_latents=8, k=2, arch="gated")
    with pytest.raises(ValueError, match="exceeds"):
        SAEConfig(input_dim=4, n_latents=8, k=9)
    with pytest.raises(ValueError, match="dead_after"):
        SAEConfig(input_dim=4, n_latents=8, k=2, auxk=0.1)
    with pytest.raises(ValueError, match="k must be a positive"):
        SAEConfig(input_dim=4, n_latents=8, k=0)


def test_at_most_k_codes_and_exactly_k_when_enough_are_positive():
    sae = make_sae()
    x = randn(64, 12)
    codes = sae.encode(x)
    positive = (sae.pre_activations(x) > 0).sum(1)
    assert torch.equal((codes != 0).sum(1), positive.clamp(max=5))
    with torch.no_grad():
        sae.encoder.bias.fill_(10.0)  # every pre-activation positive
    assert torch.equal((sae.encode(x) != 0).sum(1), torch.full((64,), 5))
    # the kept ones are the k largest
    acts = sae.pre_activations(x)
    kept = sae.encode(x)
    assert torch.all(kept.max(1).values == acts.max(1).values)
    assert torch.all(acts.topk(5).values[:, -1] == kept.masked_fill(kept == 0, float("inf")).min(1).values)


def test_gradients_reach_only_kept_units():
    sae = make_sae()
    with torch.no_grad():
        sae.encoder.bias.fill_(1.0)
    x = randn(1, 12)
    out = sae(x)
    out.total.backward()
    kept = out.codes[0] != 0
    enc_rows = sae.encoder.weight.grad.abs().sum(1) > 0
    dec_cols = sae.decoder.weight.grad.abs().sum(0) > 0
    assert kept.sum() == 5
    assert torch.equal(enc_rows, kept)
    assert torch.equal(dec_cols, kept)
    assert torch.equal(sae.encoder.bias.grad != 0, kept)


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "relu_l1"])
@pytest.mark.parametrize("extras", [{}, {"pre_bias": True, "normalize_inputs": True}])
def test_forward_is_decode_of_encode(arch, extras):
    sae = make_sae(arch=arch, **extras)
    x = randn(16, 12) * 3 + 5
    with torch.no_grad():
        sae.set_input_stats(x.mean(0), x.std(0))
        sae.init_pre_bias(sae.normalize(x).mean(0))
    for training in (True, False):
        sae.train(training)
        out = sae(x)
        assert torch.equal(out.reconstruction, sae.decode(sae.encode(x)))
        assert out.reconstruction.shape == x.shape and out.codes.shape == (16, 40)


def test_unit_norm_decoder_stays_unit_norm():
    sae = make_sae(unit_norm_decoder=True)
    assert torch.allclose(sae.decoder.weight.norm(dim=0), torch.ones(40), atol=1e-6)
    opt = torch.optim.Adam(sae.parameters(), lr=0.05)
    for step in range(20):
        train_step(sae, opt, randn(32, 12, seed=step))
    assert torch.allclose(sae.decoder.weight.norm(dim=0), torch.ones(40), atol=1e-5)
    # the step first removes the part of each column's gradient parallel to the column
    sae.zero_grad()
    sae(randn(32, 12, seed=99)).total.backward()
    assert (sae.decoder.weight.grad * sae.decoder.weight).sum(0).abs().max() > 1e-4
    sae.remove_parallel_grad_()
    assert torch.allclose((sae.decoder.weight.grad * sae.decoder.weight).sum(0), torch.zeros(40), atol=1e-7)


def test_fvu_matches_torch_var_and_ignores_batching():
    x = randn(300, 7) * 2 + 100.0  # far from zero: variance about zero would be wrong
    recon = x + 0.5 * randn(300, 7, seed=1)
    direct = float((x - recon).pow(2).sum() / (x.var(dim=0, unbiased=False).sum() * x.shape[0]))
    assert fvu(x, recon) == pytest.approx(direct, rel=1e-6)
    m = SplitMetrics(3)
    codes = torch.zeros(300, 3)
    codes[:, 0] = 1.0
    codes[::2, 1] = 2.0
    for start in range(0, 300, 37):
        m.update(x[start:start + 37], recon[start:start + 37], codes[start:start + 37])
    r = m.result()
    assert r["fvu"] == pytest.approx(direct, rel=1e-6)
    assert r["mse"] == pytest.approx(float((x - recon).pow(2).mean()), rel=1e-6)
    assert r["cosine"] == pytest.approx(float(torch.cosine_similarity(x, recon).mean()), rel=1e-6)
    assert r["l0"] == pytest.approx(1.5)
    assert r["dead_fraction"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_save_load_round_trip(tmp_path, arch):
    sae = make_sae(arch=arch, pre_bias=True, normalize_inputs=True, auxk=0.1, dead_after=10)
    x = randn(32, 12) + 2
    with torch.no_grad():
        sae.set_input_stats(x.mean(0), x.std(0))
    opt = torch.optim.Adam(sae.parameters(), lr=0.01)
    train_step(sae, opt, x)  # batchtopk learns its threshold here
    sae.eval()
    sae.save(tmp_path / "sae.safetensors")
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["arch"] == arch and cfg["k"] == 5 and cfg["normalize_inputs"] is True
    loaded = SparseAutoencoder.load(tmp_path / "sae.safetensors")
    assert loaded.cfg == sae.cfg
    for name, value in sae.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(loaded(x).reconstruction, sae(x).reconstruction)


def test_batchtopk_keeps_k_per_item_on_average():
    sae = make_sae(arch="batchtopk")
    with torch.no_grad():
        sae.encoder.bias.fill_(3.0)
    x = randn(16, 12)
    sae.train()
    codes = sae(x).codes
    assert int((codes != 0).sum()) == 5 * 16
    per_item = (codes != 0).sum(1)
    assert per_item.float().mean() == 5 and per_item.min() < per_item.max()  # not k each
    # at evaluation a learnt threshold replaces the batch: an item's codes ignore its batch-mates
    sae.eval()
    assert torch.isfinite(sae.threshold)
    assert torch.allclose(sae.encode(x[:1]), sae.encode(x)[:1], atol=1e-6)


def test_relu_l1_is_dense_relu_with_a_penalty():
    sae = make_sae(arch="relu_l1", l1=0.5)
    x = randn(16, 12)
    out = sae(x)
    assert torch.equal(out.codes, sae.pre_activations(x))
    assert (out.codes != 0).sum(1).max() > 5  # k is not enforced
    expected_l1 = (out.codes * sae.decoder.weight.norm(dim=0)).sum(1).mean()
    assert torch.allclose(out.l1, expected_l1)
    assert torch.allclose(out.total, out.mse + 0.5 * out.l1)
    # a stronger penalty gives sparser codes
    l0 = {}
    for coef in (0.0, 1.0):
        s = make_sae(arch="relu_l1", l1=coef)
        opt = torch.optim.Adam(s.parameters(), lr=0.01)
        for step in range(60):
            train_step(s, opt, randn(64, 12, seed=step))
        l0[coef] = float((s.encode(randn(64, 12, seed=999)) != 0).sum(1).float().mean())
    assert l0[1.0] < 0.5 * l0[0.0]


def test_auxk_gives_gradient_to_dead_latents():
    x = randn(32, 12)
    grads = {}
    for coef in (0.0, 0.5):
        sae = make_sae(auxk=coef, auxk_k=8, dead_after=1)
        with torch.no_grad():
            # latents 0..9: small positive pre-activations that never win a top-k slot
            sae.encoder.weight[:10] *= 1e-3
            sae.encoder.bias[:10] = 1e-3
            sae.encoder.bias[10:] = 5.0
        sae.train()
        sae(x)  # first pass: latents 0..9 do not fire, so they count as dead afterwards
        assert sae.dead_mask()[:10].all() and not sae.dead_mask()[10:].any()
        out = sae(x)
        assert (out.auxk > 0) == (coef > 0)
        out.total.backward()
        grads[coef] = sae.encoder.weight.grad[:10].abs().sum(1)
    assert torch.all(grads[0.0] == 0)
    assert torch.all(grads[0.5] > 0)


def test_auxk_revives_dead_latents():
    def dead_after_training(coef):
        sae = make_sae(seed=3, auxk=coef, auxk_k=16, dead_after=64)
        with torch.no_grad():  # half the dictionary starts too weak to ever win a top-k slot
            sae.encoder.weight[:20] *= 1e-3
            sae.encoder.bias[:20] = 1e-3
        opt = torch.optim.Adam(sae.parameters(), lr=0.01)
        for step in range(100):
            train_step(sae, opt, randn(32, 12, seed=step))
        return float(sae.dead_mask().float().mean())

    without, with_auxk = dead_after_training(0.0), dead_after_training(1.0)
    assert without >= 0.4  # they get gradient only when an item has fewer than k positive units
    assert with_auxk < 0.25


def test_zero_k_is_a_config_error_naming_model_layer_and_sparsity():
    cfg = {"models": {"crepe": {"source": "crepe", "capacity": "tiny", "layers": [0, 1]}},
           "sae": {"sparsities": [0.5, 0.95], "dim": "x1"}}
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    # layer 1 of CREPE tiny is 16 wide: k = int(0.05 * 16) = 0 (layer 0, 128 wide, gives 6)
    assert "'crepe'" in message and "layer 1" in message and "sparsity 0.95" in message
    # the training-time check for Hugging Face models says the same thing
    assert str(zero_k_error("crepe", 1, 0.95, 16)) == message
