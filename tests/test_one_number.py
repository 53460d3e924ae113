"""One number, one computation: a claim's sentence and the caption of the figure under it state the same numbers.

Issue 31: claim 5 said 36.7 % of live SAE latents had a clear label while the caption
of its figure said 31.9 %, because the caption counted an imported SAE and the claim
did not. Here the tables hold, beside the SAEs trained here, an imported SAE
(rep ext-…), frame-level SAEs and a random-weights twin, each with numbers far from
the rest; every claim that has a figure is answered, its figure drawn through its
section's `draw`, and every number the caption states must be one its sentence (or
rule) states.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from audiosae.report import registry
from audiosae.report.aggregate import build_tables
from audiosae.report.claims import answer_claims
from fake_results import write_fake_results

DECIMAL = re.compile(r"\d+\.\d+")
COUNT = re.compile(r"\d+ of \d+")


def with_others(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with an imported SAE, a frame SAE per SAE row and a random-weights twin, their values moved far."""
    if df.empty or "rep" not in df or "level" not in df:
        return df
    sae = df[df["level"] == "clip"]
    moved = [c for c in df.columns if pd.api.types.is_float_dtype(df[c]) and c not in ("sparsity", "auroc_threshold",
                                                                                          "rho_threshold")]
    ext = sae[sae["rep"] == sae["rep"].iloc[0]].assign(rep="ext-sparsify_l3", level="external", sparsity=np.nan)
    frame = sae.assign(rep=sae["rep"].str.replace("sae", "fsae", regex=False), level="frame")
    twin = df.assign(model=df["model"].astype(str) + "_random")
    for part, factor in ((ext, 0.3), (frame, 0.5), (twin, 0.2)):
        part[moved] = part[moved] * factor
    return pd.concat([df, ext, frame, twin], ignore_index=True)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    from audiosae.atlas.report import build_tables as atlas_tables

    root = tmp_path_factory.mktemp("one_number")
    paths = write_fake_results(root)
    t = {**build_tables(paths["metrics"], paths["probes"], paths["disentangle"], bootstrap=200),
         **atlas_tables(paths["atlas"], paths["ablation"])}
    return {name: with_others(df) for name, df in t.items()}, {"importance": [str(p) for p in paths["npz"]]}


def numbers(text: str) -> set[str]:
    """The measured numbers `text` states: every decimal (FVU 0.254, 36.7 %, -5.0 points) and every count "n of m";
    the integers of a description (top-10, 95 % intervals, 1 − entropy) are not results."""
    return set(DECIMAL.findall(text)) | set(COUNT.findall(text))


def test_every_claim_and_the_caption_under_it_state_the_same_numbers(tables, tmp_path):
    t, inputs = tables
    claims = [c for c in answer_claims(t) if c.figure]
    assert {c.figure for c in claims} >= {"probe_accuracy_vs_sparsity", "fvu_vs_sparsity",
                                           "interpretable_share_vs_sparsity"}
    captions = {}
    for section in registry.SECTIONS:
        names = [c.figure for c in claims if c.figure in section.figures]
        if names and all(name in t for name in section.tables):
            captions.update(section.draw_function()(t, inputs, {}, tmp_path / section.name, sorted(set(names))))
    checked = 0
    for figure in dict.fromkeys(c.figure for c in claims if c.figure in captions):
        under = [c for c in claims if c.figure == figure]  # claim 1 asks each target; its figure shows them all
        stated = set().union(*(numbers(c.sentence) | numbers(c.rule) for c in under))
        extra = numbers(captions[figure]) - stated
        assert not extra, (f"claim {under[0].number} and the caption of {figure} differ: the caption states "
                           f"{sorted(extra)}\n  sentences: {[c.sentence for c in under]}\n  caption: {captions[figure]}")
        checked += 1
    assert checked >= 4


def test_the_claim_and_caption_say_which_saes_they_count(tables, tmp_path):
    from audiosae.atlas.figures import fig_share
    from audiosae.atlas.report import claim_interpretable
    from audiosae.report.claims import claim_tables

    t, _ = tables
    claim = claim_interpretable(claim_tables(t))
    _, caption = fig_share(t)
    for text in (claim.sentence, caption):
        assert "clip-level SAEs trained here" in text and "not counted: imported SAE ext-sparsify_l3" in text, text
    assert f"{100 * claim.numbers['sae_share_mean']:.1f} % of live latents" in caption
