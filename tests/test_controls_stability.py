"""Seed stability: Hungarian matching of decoder directions against a random-direction baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audiosae.controls.stability import (decoder_directions, live_mask, match, random_directions, recurrence,
                                         stability)


def test_a_permuted_slightly_noised_copy_matches_at_cosine_one():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((48, 24))
    perm = rng.permutation(48)
    b = 3.0 * a[perm] + 0.02 * rng.standard_normal((48, 24))  # scale is irrelevant to a direction
    rows, cols, cos = match(a, b)
    assert np.array_equal(perm[cols], rows)  # every latent found its own copy
    s = stability(a, b)
    assert s.mean_cos > 0.99 and s.share_matched == 1.0
    assert s.baseline_mean_cos < 0.6 and s.baseline_share_matched < 0.05


def test_two_random_sets_sit_at_the_baseline():
    rng = np.random.default_rng(1)
    a, b = random_directions(48, 24, rng), random_directions(48, 24, rng)
    s = stability(a, b, baseline_draws=5, seed=3)
    assert abs(s.mean_cos - s.baseline_mean_cos) < 0.05
    assert s.share_matched == 0.0 and s.baseline_share_matched == 0.0
    # The baseline is itself a matched cosine: well above the mean |cosine| of random pairs.
    assert s.baseline_mean_cos > 0.3


def test_share_is_over_the_larger_set_and_half_a_dictionary_recurring_counts_half():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((40, 32))
    b = np.vstack([a[:20] + 0.01 * rng.standard_normal((20, 32)), rng.standard_normal((20, 32))])
    s = stability(a, b)
    assert s.share_matched == pytest.approx(0.5, abs=0.05)
    small = stability(a[:10], a)  # 10 of 40 recur
    assert small.matched == 10 and small.share_matched == pytest.approx(10 / 40)


def test_empty_set_gives_none_not_nan():
    s = stability(np.zeros((0, 8)), np.ones((3, 8)))
    assert s.mean_cos is None and s.share_matched is None and s.matched == 0


def test_recurrence_gives_each_latents_best_match():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((10, 16))
    best, cos = recurrence(a, np.vstack([rng.standard_normal((5, 16)), a[3:4] * 2]))
    assert best[3] == 5 and cos[3] == pytest.approx(1.0)
    assert (cos[np.arange(10) != 3] < 0.9).all()


def test_directions_and_live_latents_are_read_from_an_saes_outputs(tmp_path):
    from audiosae import store
    from audiosae.sae.model import SAEConfig, SparseAutoencoder

    sae = SparseAutoencoder(SAEConfig(input_dim=6, n_latents=5, k=2))
    sae.save(tmp_path / "sae.safetensors")
    d = decoder_directions(tmp_path / "sae.safetensors")
    assert np.allclose(d, sae.decoder.weight.detach().numpy().T)
    codes = np.zeros((4, 5), np.float32)
    codes[0, 1] = 1.0   # train: latent 1 fires
    codes[3, 4] = 2.0   # test only: latent 4 is not live on train
    index = pd.DataFrame({"clip_id": list("abcd"), "split": ["train", "train", "valid", "test"], "crop": 0})
    store.write_store(tmp_path / "latents.zarr", {"codes": codes}, index)
    assert live_mask(tmp_path / "latents.zarr").tolist() == [False, True, False, False, False]
