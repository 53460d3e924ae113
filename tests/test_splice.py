"""Splice (issue 27): a forward pass with one hidden state replaced, the patches, and fraction recovered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosae.encoders.splice import clean, patched
from audiosae.splice import patches as P
from audiosae.splice.measure import measure, median_metric, ratio_metric

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _audio(n: int = 2, seconds: float = 0.6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(16000 * seconds)) / 16000
    tone = torch.stack([0.3 * torch.sin(2 * np.pi * (180 + 60 * i) * t) for i in range(n)])
    return tone + 0.01 * torch.randn(tone.shape, generator=g)


@pytest.fixture(scope="module")
def crepe():
    from audiosae.encoders.crepe import CrepeEncoder

    return CrepeEncoder(hop_ms=40)


@pytest.fixture(scope="module")
def resemblyzer():
    from audiosae.encoders.resemblyzer import ResemblyzerEncoder

    return ResemblyzerEncoder()


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    from audiosae.encoders.hf import HFEncoder
    from tiny_models import save_tiny_hf_model

    out = {}
    for kind in ("wavlm", "ast-head"):
        folder = save_tiny_hf_model(kind, tmp_path_factory.mktemp(kind) / kind)
        out[kind] = HFEncoder({"source": "hf", "id": f"tiny/{kind}"}, folder, torch.device("cpu"), torch.float32,
                              name=kind, with_head=True)
    return out


# ---------------------------------------------------------------- identity = the clean network, bit for bit


@pytest.mark.parametrize("name", ["crepe", "resemblyzer"])
def test_identity_patch_gives_the_encoders_own_forward_bit_for_bit(name, request):
    enc = request.getfixturevalue(name)
    batch = _audio()
    own = enc.frame_states(batch)  # the extraction's path (hooks, CREPE's own forward)
    for layer in range(enc.num_hidden_states):
        out = patched(enc, batch, layer, P.identity)
        assert sorted(out.hidden) == list(range(layer, enc.num_hidden_states))
        for i, h in out.hidden.items():
            assert torch.equal(h, own[i]), (name, layer, i)
        again = patched(enc, batch, layer, lambda h: h.clone())  # a new tensor with the same values
        for key, value in out.outputs.items():
            assert torch.equal(again.outputs[key], value), (name, layer, key)


def test_crepe_patched_mean_equal_to_the_clean_mean_gives_the_clean_pitch(crepe):
    """The patch replaces each frame's per-channel mean inside a block; the same mean keeps everything."""
    batch = _audio()
    ref = clean(crepe, batch, 6)
    for layer in range(6):
        prefix = crepe.splice_prefix(batch, layer)
        same = prefix.h.detach().clone()
        out = crepe.splice_resume(prefix, same)
        assert torch.equal(out.outputs["pitch_cents"], ref.outputs["pitch_cents"])
        assert torch.equal(out.outputs["periodicity"], ref.outputs["periodicity"])
    # and the pitch it reports is the tone's: 180 Hz and 240 Hz, within 50 cents on voiced frames
    cents = ref.outputs["pitch_cents"][:, 3:-3]
    want = torch.tensor([1200 * np.log2(180 / 10), 1200 * np.log2(240 / 10)])[:, None]
    assert (cents - want).abs().median() < 50


def test_crepe_patch_moves_the_frame_mean_and_keeps_the_variation_inside_the_frame(crepe):
    batch = _audio()
    layer = 2
    prefix = crepe.splice_prefix(batch, layer)
    out = prefix.state["out"].clone()
    delta = torch.randn(prefix.h.shape, generator=torch.Generator().manual_seed(1))
    seen = {}
    bn = crepe.model.conv4_BN  # block 4 reads block 3's max-pooled output: check the patched block itself
    handle = crepe.model.conv3_BN.register_forward_hook(lambda m, i, o: seen.setdefault("x", o))
    crepe.splice_resume(prefix, prefix.h + delta)
    handle.remove()
    assert "x" not in seen  # the blocks before the patched one are not run again
    # the patched block output: mean inside each frame = the patched value, deviations kept
    shifted = out + (delta.reshape(-1, delta.shape[-1]))[:, :, None, None]
    assert torch.allclose(shifted.mean(dim=(2, 3)), (prefix.h + delta).reshape(-1, delta.shape[-1]), atol=1e-5)
    assert torch.allclose(shifted - shifted.mean(dim=2, keepdim=True), out - out.mean(dim=2, keepdim=True),
                          atol=1e-5)
    assert bn is not None


def test_resemblyzer_embedding_is_resemblyzers_own(resemblyzer):
    """The 256-d embedding: projection of the last LSTM's final state, ReLU, L2 norm (resemblyzer's forward)."""
    from resemblyzer import VoiceEncoder

    batch = _audio()
    ours = clean(resemblyzer, batch, 3).outputs["embedding"]
    theirs = VoiceEncoder(device="cpu", verbose=False)
    with torch.no_grad():
        ref = theirs(resemblyzer.mels(batch))
    assert ours.shape == (2, 256)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(ours.norm(dim=1), torch.ones(2), atol=1e-6)


@pytest.mark.parametrize("kind", ["wavlm", "ast-head"])
def test_identity_patch_gives_the_hugging_face_forward_bit_for_bit(kind, tiny_hf):
    enc = tiny_hf[kind]
    batch = _audio()
    model = enc.head_model if enc.head_model is not None else enc.model
    with torch.no_grad():
        ref = model(**enc.inputs(batch), output_hidden_states=True, return_dict=True)
    for layer in range(enc.num_hidden_states):
        out = patched(enc, batch, layer, lambda h: h.clone())
        for i, h in out.hidden.items():
            assert torch.equal(h, ref.hidden_states[i].float()), (kind, layer, i)
        if kind == "ast-head":
            assert torch.equal(out.outputs["logits"], ref.logits.float())
        else:
            assert torch.equal(out.outputs["last_hidden_state"], ref.last_hidden_state.float())


@pytest.mark.parametrize("kind", ["wavlm", "ast-head"])
def test_a_patch_adding_delta_changes_that_state_by_delta_and_nothing_before_it(kind, tiny_hf):
    enc = tiny_hf[kind]
    batch = _audio()
    with torch.no_grad():
        ref = enc._run(enc.inputs(batch)).hidden_states
    mods = enc._layers()
    for layer in range(enc.num_hidden_states):
        delta = 0.5 * torch.randn(ref[layer].shape, generator=torch.Generator().manual_seed(layer))
        earlier = {}

        def record(i):
            def hook(module, args, output):
                earlier[i] = output[0] if isinstance(output, tuple) else output  # returns None: output unchanged
            return hook

        hooks = [mods[i].register_forward_hook(record(i)) for i in range(max(layer - 1, 0))]
        try:
            out = patched(enc, batch, layer, lambda h: h + delta)
        finally:
            for h in hooks:
                h.remove()
        assert torch.allclose(out.hidden[layer], ref[layer].float() + delta, atol=1e-6)
        for i, h in earlier.items():  # the blocks before it give what they gave in the clean pass
            assert torch.equal(h, ref[i + 1]), (kind, layer, i)
        if layer + 1 < enc.num_hidden_states:
            assert not torch.allclose(out.hidden[layer + 1], ref[layer + 1].float(), atol=1e-4)
    # the model is left as it was: a clean pass afterwards is the clean pass
    with torch.no_grad():
        after = enc._run(enc.inputs(batch)).hidden_states
    assert all(torch.equal(a, b) for a, b in zip(after, ref))


def test_splicing_a_layer_the_model_does_not_have_names_it(crepe):
    with pytest.raises(ValueError, match="hidden state 7.*0..6"):
        crepe.splice_prefix(_audio(), 7)
    prefix = crepe.splice_prefix(_audio(), 1)
    with pytest.raises(ValueError, match="shape"):
        crepe.splice_resume(prefix, prefix.h[:, :-1])


# ---------------------------------------------------------------- patches


class _Linear(torch.nn.Module):
    """A planted 'SAE': encode = x A, decode = c B (+ b); exact when B = A^-1 and b = 0."""

    def __init__(self, a, b, bias=None):
        super().__init__()
        self.register_buffer("a", a)
        self.register_buffer("b", b)
        self.register_buffer("bias", torch.zeros(b.shape[1]) if bias is None else bias)

    def encode(self, x):
        return x @ self.a

    def decode(self, c):
        return c @ self.b + self.bias


def test_clip_patch_moves_every_frames_mean_to_the_reconstruction_and_keeps_each_deviation():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 7, 4, generator=g)
    sae = _Linear(0.5 * torch.eye(4), torch.eye(4), torch.ones(4))  # recon(m) = m / 2 + 1
    out = P.clip_sae(sae)(h)
    m = h.mean(dim=1)
    assert torch.allclose(out.mean(dim=1), m / 2 + 1, atol=1e-6)
    assert torch.allclose(out - out.mean(dim=1, keepdim=True), h - m[:, None], atol=1e-6)
    floor = P.clip_mean(torch.full((4,), 3.0))(h)
    assert torch.allclose(floor.mean(dim=1), torch.full((3, 4), 3.0), atol=1e-6)
    assert torch.allclose(P.frame_mean(torch.arange(4.0))(h), torch.arange(4.0).expand(3, 7, 4))


def test_an_exact_sae_spliced_into_crepe_gives_the_clean_network(crepe):
    batch = _audio()
    exact = _Linear(torch.eye(16), torch.eye(16))
    ref = clean(crepe, batch, 1)
    for patch in (P.frame_sae(exact), P.clip_sae(exact)):
        out = patched(crepe, batch, 1, patch)
        assert torch.allclose(out.outputs["salience"], ref.outputs["salience"], atol=1e-5)


def test_an_empty_edit_is_the_clean_state_and_removing_a_latent_subtracts_its_contribution():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 5, 3, generator=g)
    sae = _Linear(torch.eye(3), 2 * torch.eye(3), torch.ones(3))
    assert torch.equal(P.edit(sae, "frame")(h), h)
    assert torch.equal(P.edit(sae, "clip", remove=torch.tensor([], dtype=torch.long))(h), h)
    out = P.edit(sae, "frame", remove=torch.tensor([1]))(h)
    want = h.clone()
    want[..., 1] -= 2 * h[..., 1]  # codes c = h; latent 1 contributes 2 c_1 along axis 1, the bias stays
    assert torch.allclose(out, want, atol=1e-6)
    steer = P.edit(sae, "clip", add=torch.tensor([0.0, 0.0, 5.0]))(h)
    assert torch.allclose(steer - h, torch.tensor([0.0, 0.0, 5.0]).expand_as(h))


# ---------------------------------------------------------------- fraction recovered


def test_fraction_recovered_is_one_for_an_exact_reconstruction_and_zero_for_the_floor():
    rng = np.random.default_rng(0)
    clean_ = rng.random(40) > 0.2
    floor = rng.random(40) > 0.7
    exact = ratio_metric("acc", {"clean": clean_, "sae": clean_, "mean": floor})
    r = measure(exact, resamples=200)
    assert r.fraction_recovered == 1 and r.lo == 1 and r.hi == 1
    none = measure(ratio_metric("acc", {"clean": clean_, "sae": floor, "mean": floor}), resamples=200)
    assert none.fraction_recovered == 0 and none.lo == 0 and none.hi == 0
    half = measure(ratio_metric("cos", {"clean": np.ones(40), "sae": np.full(40, 0.9), "mean": np.full(40, 0.8)}))
    assert half.fraction_recovered == pytest.approx(0.5)


def test_a_floor_that_does_no_damage_leaves_fraction_recovered_undefined_with_its_reason():
    same = np.ones(10)
    r = measure(ratio_metric("cos", {"clean": same, "sae": 0.9 * same, "mean": same}))
    assert np.isnan(r.fraction_recovered) and "unchanged" in r.note


def test_the_median_pitch_error_weights_frames_by_their_clip():
    clip_of = np.array([0, 0, 0, 1, 1])
    err = {"clean": np.zeros(5), "sae": np.array([10, 10, 10, 30, 30.0]), "mean": np.array([100.0] * 5)}
    r = measure(median_metric("pitch_error_cents", clip_of, err, 2), resamples=300)
    assert r.sae == 10 and r.mean == 100 and r.clean == 0
    assert r.fraction_recovered == pytest.approx(0.9)
    assert 0.7 - 1e-9 <= r.lo <= r.hi <= 0.9 + 1e-9


def test_an_imported_sae_splices_like_the_same_sae_of_ours(crepe, tmp_path):
    """sae.external entries are spliced too: our SAE written in sparsify's layout gives the same network outputs."""
    import json

    from safetensors.torch import save_file

    from audiosae.sae.model import SAEConfig, SparseAutoencoder
    from audiosae.splice.run import load_sae

    ours = SparseAutoencoder(SAEConfig(input_dim=16, n_latents=64, k=8), generator=torch.Generator().manual_seed(0))
    (tmp_path / "ours").mkdir()
    ours.save(tmp_path / "ours" / "sae.safetensors")
    folder = tmp_path / "sparsify"
    folder.mkdir()
    save_file({"encoder.weight": ours.encoder.weight.detach().contiguous(), "encoder.bias": ours.encoder.bias.detach(),
               "W_dec": ours.decoder.weight.detach().T.contiguous(), "b_dec": torch.zeros(16)},
              str(folder / "sae.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"activation": "topk", "num_latents": 64, "k": 8, "d_in": 16,
                                                 "transcode": False}))
    batch = _audio()
    mine = load_sae({"dir": str(tmp_path / "ours")}, 16, "cpu")
    theirs = load_sae({"format": "sparsify", "path": str(folder)}, 16, "cpu")
    for patch in (P.frame_sae, P.clip_sae):
        a = patched(crepe, batch, 1, patch(mine)).outputs["salience"]
        b = patched(crepe, batch, 1, patch(theirs)).outputs["salience"]
        assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(Exception, match="16|width|d_in"):
        load_sae({"format": "sparsify", "path": str(folder)}, 32, "cpu")
