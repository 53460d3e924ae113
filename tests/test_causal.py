"""The causal atlas on a network built by hand, whose layer -> output map is linear and known.

The patched layer h [B, T, D] feeds `last = h @ W`; the output-level probe reads `last` averaged over frames.
The SAE is planted: encode(x) = ReLU(x - 0.2), decode(c) = c, so latent j's direction is the basis vector e_j and
its error term (what the threshold cuts) is not zero.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from audiosae.atlas.stats import unit_statistics
from audiosae.causal import erasure as er
from audiosae.causal import steering as st
from audiosae.causal.passes import Passes
from audiosae.encoders.splice import Prefix, Spliced
from audiosae.splice import patches
from audiosae.splice.data import OutputProbe


class LinearNet:
    """Hidden state `layer` is the input itself; the last hidden state is h @ W."""

    def __init__(self, w: np.ndarray):
        self.w = torch.as_tensor(w, dtype=torch.float32)

    def splice_prefix(self, batch, layer):
        return Prefix(layer, torch.as_tensor(batch, dtype=torch.float32))

    def splice_resume(self, prefix, h):
        return Spliced({prefix.layer: h, prefix.layer + 1: h @ self.w}, {})


class PlantedSAE(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.register_buffer("threshold", torch.full((width,), 0.2))

    def encode(self, x):
        return torch.relu(x - self.threshold)

    def decode(self, c):
        return c


def clips(n_per_class, width, classes=4, frames=5, seed=0, level=3.0):
    """[N, frames, width] states: class c < classes - 1 has dim c at `level` on every frame, the last class none
    (so a class whose dim is removed looks like it); every dim carries small noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    h = rng.uniform(0.0, 0.4, size=(len(y), frames, width))
    planted = y < classes - 1
    h[np.flatnonzero(planted), :, y[planted]] += level
    return h.astype(np.float32), y


def probe_on(pooled, y, classes):
    model = LogisticRegression(max_iter=2000).fit(pooled, y)
    return OutputProbe("cls", classes, np.zeros(pooled.shape[1]), np.ones(pooled.shape[1]), model, len(y))


def network(width=8, mute=None):
    w = np.eye(width)
    if mute is not None:
        w[mute, :] = 0.0  # the unit is never read downstream
    return LinearNet(w)


def passes_of(net, h, batch=16):
    return Passes(net, [torch.from_numpy(h[i:i + batch]) for i in range(0, len(h), batch)], layer=2)


def test_empty_edit_gives_the_clean_outputs_exactly():
    h, _ = clips(6, 8)
    p = passes_of(network(), h)
    sae = PlantedSAE(8)
    for level in ("frame", "clip"):
        out = p.run(patches.edit(sae, level, remove=torch.zeros(0, dtype=torch.long)))
        assert np.array_equal(out.pooled, p.clean.pooled)
    assert np.allclose(p.clean.pooled, h.mean(axis=1) @ np.eye(8), atol=1e-6)  # the known linear map
    # removing a latent does change the output: the edit is not a no-op
    assert not np.array_equal(p.run(patches.edit(sae, "frame", remove=torch.tensor([0]))).pooled, p.clean.pooled)


@pytest.mark.parametrize("level", ["frame", "clip"])
def test_erasing_the_planted_latent_removes_its_class_and_random_removal_does_not(level):
    width = 8
    h_train, y_train = clips(20, width, seed=1)
    h_test, y_test = clips(20, width, seed=2)
    net, sae = network(width), PlantedSAE(width)
    classes = ["a", "b", "c", "none"]
    probe = probe_on(h_train.mean(axis=1) @ np.eye(width), y_train, classes)
    p = passes_of(net, h_test)
    codes_train = sae.encode(torch.from_numpy(h_train.mean(axis=1))).numpy()
    live = codes_train.max(axis=0) > 0
    ranking = er.rank_latents(codes_train, y_train, 4, live)
    assert list(ranking[:3, 0]) == [0, 1, 2]  # each class's planted latent ranks first

    def predict(indices):
        return probe.predict(p.run(patches.edit(sae, level, remove=torch.as_tensor(indices, dtype=torch.long))).pooled)

    curves, summary = er.erasure_curves(predict, y_test, classes, ranking, live, [1 / width, 0.5, 1.0], target="cls",
                                        draws=5, seed=3)
    a = summary.set_index("class").loc["a"]
    assert a["clean_lo"] > 0.9
    assert a["status"] == er.ERASED and a["erased_n"] == 1 and a["erased_share"] == pytest.approx(1 / width)
    one = curves[(curves["class"] == "a") & (curves["n"] == 1)].set_index("removal")
    assert one.loc["top", "lo"] <= 0.5 < one.loc["random", "lo"]  # one random latent of 8 leaves the class
    assert one.loc["random", "balanced_accuracy"] > 0.8
    # collateral: removing a's latent leaves b and c recognisable
    assert one.loc["top", "others_balanced_accuracy"] > 0.9
    # fewer passes than a naive loop: the random draws are shared by every class, the full removal computed once
    assert p.passes <= 1 + 4 * 2 + 2 * 5 + 1


def test_untestable_when_the_clean_probe_is_at_chance():
    y = np.array([0, 0, 1, 1] * 10)
    ranking = np.array([[0, 1], [1, 0]])
    _, summary = er.erasure_curves(lambda idx: np.zeros(len(y), dtype=int), y, ["a", "b"], ranking,
                                   np.array([True, True]), [0.5, 1.0])
    assert set(summary["status"]) == {er.UNTESTABLE}


def test_removal_sizes():
    assert er.removal_sizes(64, [0.01, 0.05, 0.25, 1.0]) == [1, 3, 16, 64]
    assert er.removal_sizes(0, [0.5]) == []


def test_steering_the_planted_direction_moves_the_output_by_the_analytic_amount():
    width = 64
    h, _ = clips(10, width, seed=4)
    net, sae = network(width), PlantedSAE(width)
    p = passes_of(net, h)
    w_read = np.zeros(width)
    w_read[5] = 2.0  # the planted read-out of the output reads latent 5's direction
    test = st.Test(unit=5, label="attr ↑ ρ 0.9", kind="attribute", column="attr", readout=lambda x: x @ w_read)
    direction = patches.contribution(sae, torch.eye(width)[5:6])[0].numpy()
    assert np.allclose(direction, np.eye(width)[5])
    alpha = 1.5

    def run(v):
        return p.run(patches.edit(sae, "frame", add=torch.as_tensor(v, dtype=torch.float32)))

    res = st.steer(test, run, p.clean, direction, alpha, [1, 3], n_random=20, seed=0)
    for m in res["multiples"]:
        assert m["effect"] == pytest.approx(m["multiple"] * alpha * 2.0, rel=1e-5)  # (α m e_5 @ W) @ w_read
        assert abs(m["random_mean"]) < 0.1 * m["effect"]  # random directions of the same norm: about zero
    assert res["badge"] == st.CAUSAL and "raises" in res["line"]


def test_a_label_that_the_network_never_reads_is_not_causal():
    width, classes = 8, ["a", "b", "c", "none"]
    h_train, y_train = clips(20, width, seed=5)
    h_test, y_test = clips(20, width, seed=6)
    sae = PlantedSAE(width)
    codes = sae.encode(torch.from_numpy(np.concatenate([h_train, h_test]).mean(axis=1))).numpy()
    labels = pd.DataFrame({"cls": np.asarray(classes)[np.concatenate([y_train, y_test])]})
    stats = unit_statistics(codes, [f"c{i:03d}" for i in range(len(codes))], labels)
    assert stats.table.loc[0, "label"].startswith("cls=a") and stats.table.loc[1, "label"].startswith("cls=b")
    results = {}
    for mute in (0, None):  # latent 0's unit muted downstream, then the same network reading it
        net = network(width, mute=mute)
        probe = probe_on(h_train.mean(axis=1) @ net.w.numpy(), y_train, classes)
        p = passes_of(net, h_test)
        tests = {t.unit: t for t in st.card_tests(stats.table, 8, pitch_output=False, probes={"cls": probe},
                                                  attribute_readouts={})}
        assert set(tests) >= {0, 1, 2}
        alpha = float(np.quantile(codes[codes[:, 0] > 0, 0], 0.95))

        def run(v):
            return p.run(patches.edit(sae, "clip", add=torch.as_tensor(v, dtype=torch.float32)))

        results[mute] = st.steer(tests[0], run, p.clean, np.eye(width)[0], alpha, [1.0], n_random=5, seed=1)
    muted, read = results[0], results[None]
    assert muted["badge"] == st.NOT_CAUSAL and muted["effect"] == 0.0
    assert read["badge"] == st.CAUSAL and read["effect"] > 0


def test_untestable_cards():
    table = pd.DataFrame({"unit": [0], "dead": [False], "constant": [False], "clear": [True], "clarity": [1.5],
                          "label": ["singer=x (AUROC 0.95)"], "clear_by_auroc": [True], "best_auroc": [0.95],
                          "best_auroc_column": ["singer"], "singer_class": ["x"], "singer_auroc": [0.95], "best_attribute": [""]})
    [test] = st.card_tests(table, 3, pitch_output=False, probes={}, attribute_readouts={})
    res = st.steer(test, None, None, np.ones(2), 1.0, [1.0])
    assert res["badge"] == st.UNTESTABLE and "no output-level probe" in res["line"]


def test_atlas_page_shows_the_badge_and_units_csv_keeps_it():
    from audiosae.atlas.build import causal_cards
    from audiosae.atlas.page import page_data, render_page

    codes = np.array([[0.0, 1.0], [2.0, 0.0], [3.0, 0.5], [0.0, 2.0]])
    labels = pd.DataFrame({"cls": ["a", "b", "b", "a"]})
    stats = unit_statistics(codes, ["c0", "c1", "c2", "c3"], labels)
    doc = {"model": "m", "layer": 1, "n_clips": 4, "settings": {"top_n": 2},
           "reps": {"sae0.9": {"steering": [{"unit": 0, "badge": "causal", "line": "causal: steering raises P(b)"},
                                            {"unit": 1, "badge": "not causal", "line": "not causal: flat"}]}}}
    assert causal_cards(doc, "fsae0.9", 2) is None  # a rep the job did not test gets no badge
    cards = causal_cards(doc, "sae0.9", 2)
    media = {c: ("a.ogg", "a.png") for c in stats.clip_ids}
    data = page_data(stats, media, model="m", layer=1, rep="sae0.9", summary={}, thresholds={}, causal=cards)
    by_unit = {u["u"]: u for u in data["units"]}
    assert by_unit[0]["causal"] == ["causal", "causal: steering raises P(b)"]
    assert by_unit[1]["causal"][0] == "not causal"
    assert data["causal"]["counts"] == {"causal": 1, "not causal": 1} and "top 2" in data["causal"]["note"]
    page = render_page({**data, "summary": {"live": 2, "units": 2, "dead": 0, "constant": 0, "clear": 2,
                                            "share": 1.0, "clear_by_auroc": 2, "clear_by_rho": 0}})
    assert 'value="causal"' in page and "badge" in page


def test_subsample_keeps_at_most_k_test_clips_per_class():
    from audiosae.causal.run import subsample
    from audiosae.splice.data import SpliceClips

    items = pd.DataFrame({"clip_id": [f"c{i}" for i in range(30)], "technique": ["a"] * 20 + ["b"] * 10,
                          "split:technique": ["test"] * 25 + ["train"] * 5})
    out = subsample(SpliceClips(items, ["technique"]), "technique", 4, seed=0)
    assert out.items["technique"].value_counts().to_dict() == {"a": 4, "b": 4}
    assert (out.items["split:technique"] == "test").all()
    assert subsample(SpliceClips(items, ["technique"]), "technique", 4, seed=0).items.equals(out.items)


def _tables(trained_erased_share, twin_erased_share, n=8):
    rows = []
    for model, share in (("m", trained_erased_share), ("m_random", twin_erased_share)):
        for c in range(n):
            rows.append({"model": model, "twin": model.endswith("_random"), "layer": 1, "rep": "sae0.9",
                         "level": "clip", "sparsity": 0.9, "target": "t", "class": f"k{c}", "status": "erased"
                         if share is not None else "not erased", "erased_share": share, "random_erased_share": 1.0})
    return {"erasure": pd.DataFrame(rows), "steering": pd.DataFrame(columns=["model", "level", "badge"])}


def test_few_latents_claim_is_judged_against_the_twin():
    from audiosae.causal.report import causal_claims
    from audiosae.controls.claims import with_twin

    claims = {c.key: c for c in with_twin(causal_claims, _tables(0.1, None))}
    assert claims["10"].verdict == "supported"  # the twin's classes are not erased
    assert claims["11"].verdict == "untestable"
    claims = {c.key: c for c in with_twin(causal_claims, _tables(0.1, 0.2))}
    assert claims["10"].verdict == "also on random weights"
    claims = {c.key: c for c in with_twin(causal_claims, _tables(0.5, None))}
    assert claims["10"].verdict == "not supported"  # erased, but only by half of the live latents


@pytest.mark.parametrize("level", ["frame", "clip"])
def test_cached_removal_equals_the_edit_patch(level):
    h, _ = clips(5, 8, seed=9)
    p, sae = passes_of(network(), h, batch=6), PlantedSAE(8)
    for idx in ([], [0], [1, 3, 5]):
        want = p.run(patches.edit(sae, level, remove=torch.as_tensor(idx, dtype=torch.long))).pooled
        assert np.array_equal(p.removed(sae, level, idx).pooled, want)
