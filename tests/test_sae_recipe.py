"""Issue 29's training options: tied init, the learning-rate schedule, and the paper's clip SAEs unchanged bit for bit."""

from __future__ import annotations

import hashlib

import pytest
import torch

from audiosae.sae.model import SAEConfig, SparseAutoencoder
from audiosae.sae.train import SAEAdam, SAEPaths, fit, fit_epochs, lr_factor, train_sae
from test_sae_train import dictionary, sparse_data, write_toy_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_tied_init_has_unit_norm_decoder_columns_and_encoder_equal_to_the_decoder_transpose():
    cfg = SAEConfig(input_dim=24, n_latents=96, k=6, init="tied")
    sae = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(3))
    dec = sae.decoder.weight.detach()  # [input_dim, n_latents]
    torch.testing.assert_close(dec.norm(dim=0), torch.ones(96), rtol=0, atol=1e-6)
    assert torch.equal(sae.encoder.weight.detach(), dec.t())
    assert torch.equal(sae.encoder.bias.detach(), torch.zeros(96))
    # random directions, drawn from the generator: another seed gives others, the same seed the same
    other = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(4)).decoder.weight.detach()
    again = SparseAutoencoder(cfg, generator=torch.Generator().manual_seed(3)).decoder.weight.detach()
    assert torch.equal(dec, again) and not torch.equal(dec, other)
    cos = dec.t() @ dec - torch.eye(96)
    assert cos.abs().max() < 0.9  # no two columns alike (random unit vectors in 24 dimensions)


def test_linear_init_is_the_default_and_an_unknown_init_is_refused():
    assert SAEConfig(input_dim=4, n_latents=8, k=2).init == "linear"
    with pytest.raises(ValueError, match="init"):
        SAEConfig(input_dim=4, n_latents=8, k=2, init="orthogonal")


def test_a_width_rule_has_a_floor():
    from audiosae.sae.sizes import latent_count

    assert latent_count("x0.125", 256, 32) == 32 and latent_count("x0.125", 360, 32) == 45
    assert latent_count("x0.125", 16, 32) == 32 and latent_count("x0.125", 16) == 2
    assert latent_count(2048, 768) == 2048 and latent_count(8, 768, 32) == 32


def test_lr_factor_formula():
    # 20 steps, warm-up 10 % (2 steps), decay over the last 25 % (5 steps): min of the two ramps
    got = [lr_factor(t, 20, warmup=0.1, decay=0.25) for t in range(20)]
    assert got == pytest.approx([0.5] + [1.0] * 15 + [0.8, 0.6, 0.4, 0.2])
    assert [lr_factor(t, 7) for t in range(7)] == [1.0] * 7
    with pytest.raises(ValueError, match="lr_warmup"):
        lr_factor(0, 10, warmup=1.0)


def test_the_schedule_sets_each_steps_learning_rate(monkeypatch):
    seen = []
    step = SAEAdam.step

    def recording_step(self):
        seen.append(self.optimizer.param_groups[0]["lr"] if not self.own else self.lr)
        step(self)

    monkeypatch.setattr(SAEAdam, "step", recording_step)
    x = torch.from_numpy(sparse_data(100, dictionary(), 2, 1))
    sae = SparseAutoencoder(SAEConfig(input_dim=16, n_latents=32, k=4))
    # 100 rows in batches of 10 over 2 epochs: 20 steps
    fit(sae, x, x[:20], lr=0.02, batch_size=10, epochs=2, progress=False, lr_warmup=0.1, lr_decay=0.25)
    expected = [0.02 * f for f in [0.5] + [1.0] * 15 + [0.8, 0.6, 0.4, 0.2]]
    assert seen == pytest.approx(expected, rel=1e-12)
    seen.clear()
    fit(sae, x, x[:20], lr=0.02, batch_size=10, epochs=2, progress=False)
    assert seen == [0.02] * 20  # no schedule: the optimizer's rate is never touched
    with pytest.raises(ValueError, match="total_steps"):
        fit_epochs(sae, lambda epoch: [x], lambda: 0.0, lr_warmup=0.1, progress=False)


# Digests of the weights `train_sae` gave for these settings (3 epochs on the store below, one torch thread)
# with the code before issue 29 (commit 450a963), on this project's machine.
BEFORE_ISSUE_29 = {
    "defaults": "0899c0da19635820a24187863efb74369605d7eff91fd64e64e6c684af4c139c",
    "options": "c2203707e70e382ed879df322f342e0ca42ce133c0c80d9732912f9e85fbc55c",
    "batchtopk": "80937ab8bd34593eb66b98d64293ce40f5135c42bfaa6bac8c6c67ba7a5208f5",
}
VARIANTS = {
    "defaults": {},
    "options": {"dim": 64, "pre_bias": True, "unit_norm_decoder": True, "auxk": 0.03125, "auxk_k": 8,
                "normalize_inputs": True},
    "batchtopk": {"dim": 64, "arch": "batchtopk"},
}


def weights_digest(path) -> str:
    from safetensors.torch import load_file

    w = load_file(str(path))
    h = hashlib.sha256()
    for key in sorted(w):
        h.update(key.encode())
        h.update(w[key].contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_clip_sae_defaults_give_the_same_weights_bit_for_bit_as_before(name, tmp_path, monkeypatch):
    # The digests are fused Adam's (the only update then); these small SAEs now take SAEAdam's own update, the same
    # formula with other float rounding (tests/test_sae_step.py: torch's single-tensor Adam bit for bit). Forced
    # onto the fused way, the defaults must still give the old weights.
    import audiosae.sae.train as sae_train

    monkeypatch.setattr(sae_train, "OWN_ADAM_BELOW", 0)
    atoms = dictionary()
    splits = {"train": sparse_data(300, atoms, 2, 1), "valid": sparse_data(60, atoms, 2, 2),
              "test": sparse_data(40, atoms, 2, 3)}
    write_toy_store(tmp_path / "toy.zarr", splits)
    train_sae(tmp_path / "toy.zarr", model="toy", layer=3, sparsity=0.95, outputs=SAEPaths.in_dir(tmp_path / name),
              epochs=3, device="cpu", progress=False, **VARIANTS[name])
    assert weights_digest(tmp_path / name / "sae.safetensors") == BEFORE_ISSUE_29[name]
