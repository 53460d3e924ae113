"""A second corpus, unlike the synthetic one, run to the report: the invariants of issue 31 hold on it.

A table corpus of sung tones with three labels of its own (vowel, register, voice),
four voices of which ONE is the test split (9 test clips), one packaged model
layer, one sparsity and one SAE imported in sparsify's layout. On what the run
writes:

- every figure, redrawn from the run's tables through the registry, hides no data
  and has no empty panel (tests/test_figures_hold_data.py's inspection);
- every claim with a figure states the numbers its figure's caption states, and
  both name the imported SAE as not counted;
- a paired difference of 0 [0, 0] is "no change (identical on every test clip)";
- the same corpus with disentangle.cv_folds = 5 stops before any job, in one line;
- the atlas pages' search hint is a class of this corpus, their players load on play, the landing page has no MCC column; the model card names the table;
  the report says why extraction has no wall time;
- changing a probe hyperparameter re-plans exactly the rules docs/running.md lists;
- claim 1 speaks of each of its probe targets, and nothing it writes names VocalSet's words.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from conftest import REPO, run_snakemake
from test_figures_hold_data import check_figure
from test_one_number import numbers

pytestmark = pytest.mark.workflow

SR = 16000
VOICES = {"v0": "test", "v1": "valid", "v2": "train", "v3": "train"}
VOWELS = {"a": (800, 1200), "i": (300, 2300), "u": (350, 800)}  # two formants each
REGISTERS = {"low": 140.0, "mid": 230.0, "high": 380.0}
NO_CHANGE = "no change (identical on every test clip)"


def sing(path: Path, vowel: str, register: str, voice: int) -> None:
    """One second of a vowel: harmonics of the register's f0, shaped by the vowel's formants, the voice's vibrato."""
    t = np.arange(SR) / SR
    f0 = REGISTERS[register] * (1 + 0.03 * voice) * (1 + 0.015 * np.sin(2 * np.pi * (4.5 + voice) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    f1, f2 = VOWELS[vowel]
    wave = np.zeros(SR)
    for k in range(1, 16):
        fk = k * REGISTERS[register]
        gain = np.exp(-((fk - f1) / 250) ** 2) + 0.6 * np.exp(-((fk - f2) / 350) ** 2) + 0.02
        wave += gain * np.sin(k * phase)
    wave *= np.minimum(1, 10 * np.minimum(t, 1 - t))
    wave += 0.005 * np.random.default_rng(voice * 100 + len(vowel + register)).standard_normal(SR)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * wave / np.abs(wave).max()).astype(np.float32), SR)


def corpus(root: Path) -> Path:
    rows = []
    for i, (voice, split) in enumerate(VOICES.items()):
        for vowel in VOWELS:
            for register in REGISTERS:
                name = f"tones/{voice}/{vowel}_{register}.wav"
                sing(root / name, vowel, register, i)
                rows.append({"path": name, "vowel": vowel, "register": register, "voice": voice, "split": split})
    table = root / "sung_tones.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def imported_sae(root: Path, width: int) -> Path:
    """A random pre-biased top-k SAE of the node's width, written in EleutherAI sparsify's layout."""
    import test_interop as layouts
    from audiosae.sae.model import SAEConfig, SparseAutoencoder

    layouts.D = width
    try:
        sae = SparseAutoencoder(SAEConfig(input_dim=width, n_latents=2 * width, k=16, pre_bias=True),
                                generator=torch.Generator().manual_seed(3))
        torch.nn.init.normal_(sae.b_pre, std=0.1)
        layouts.write_sparsify(sae, root / "sparsify_l2")
    finally:
        layouts.D = 12
    return root / "sparsify_l2"


def study(table: Path, ext: Path | None, cv_folds: int = 2) -> dict:
    return {
        "data": {"corpus": "table", "table": {"file": str(table), "path_column": "path",
                                              "labels": ["vowel", "register", "voice"], "group_column": "voice",
                                              "split_column": "split"}},
        "audio": {"crop_seconds": 1.0, "train_crops": 1},
        "models": {"resemblyzer": {"source": "resemblyzer", "layers": [2]}},
        "sae": {"sparsities": [0.9], "dim": "x2", "epochs": 3,
                "external": [] if ext is None else [{"name": "sparsify_l2", "model": "resemblyzer", "layer": 2,
                                                     "format": "sparsify", "path": str(ext)}]},
        "probe": {"epochs": 20, "bootstrap": 200, "targets": [{"label": "vowel", "split": "corpus"},
                                                              {"label": "register", "split": "corpus"}]},
        "disentangle": {"cv_folds": cv_folds, "max_iter": 2000},
        # splice and the causal atlas run (their figures are checked too), the causal atlas at the tiny study's size
        "causal": {"top_n": 2, "multiples": [2], "random_directions": 2, "erasure_shares": [0.1, 1.0],
                   "resamples": 200},
        "report": {"title": "sung tones: vowels, registers, voices"},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from audiosae.config import validate
    from audiosae.interop.external import node_width

    root = tmp_path_factory.mktemp("second_corpus")
    table = corpus(root)
    width = node_width(validate(study(table, None)), "resemblyzer", 2)
    cfg = study(table, imported_sae(root, width))
    workdir = root / "run"
    run_snakemake(workdir, config=cfg)
    return workdir, cfg


def tables_of(workdir: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for csv in (workdir / "results/tables").glob("*.csv"):
        try:
            out[csv.stem] = pd.read_csv(csv)
        except pd.errors.EmptyDataError:
            out[csv.stem] = pd.DataFrame()
    return out


def test_its_figures_hide_no_data(run, tmp_path, monkeypatch):
    import matplotlib.figure

    from audiosae.report import registry

    workdir, cfg = run
    tables = tables_of(workdir)
    flags = registry.flags(cfg | {"sae": {**cfg["sae"], "levels": ["clip"]}})
    problems, seen = [], set()
    original = matplotlib.figure.Figure.savefig

    def inspect(fig, fname, *args, **kwargs):
        name = Path(str(fname)).name.split(".")[0]
        if name not in seen:
            seen.add(name)
            problems.extend(check_figure(name, fig))
        return original(fig, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", inspect)
    inputs = {"importance": [str(p) for p in (workdir / "results/disentangle").rglob("*.npz")]}
    for section in registry.sections(flags):
        section.draw_function()(tables, inputs, {}, tmp_path / section.name, section.figure_names(flags))
    assert {"fvu_vs_sparsity", "ablation", "interpretable_share_vs_sparsity"} <= seen
    assert not problems, "\n".join(problems)
    ablation = tables["ablation"]
    assert set(ablation["rep"]) == {"sae0.9", "ext-sparsify_l2"}  # ours and the imported one, at the one node


def test_claims_and_captions_state_the_same_numbers_and_say_what_they_count(run):
    workdir, _ = run
    claims = json.loads((workdir / "results/claims.json").read_text())
    claims = claims["claims"] if isinstance(claims, dict) else claims
    captions = {}
    for f in (workdir / "results/figures/captions").glob("*.json"):
        captions.update(json.loads(f.read_text()))
    checked = 0
    for figure in dict.fromkeys(c["figure"] for c in claims if c["figure"] in captions):
        under = [c for c in claims if c["figure"] == figure]
        stated = set().union(*(numbers(c["sentence"]) | numbers(c["rule"]) for c in under))
        assert not numbers(captions[figure]) - stated, (figure, captions[figure], [c["sentence"] for c in under])
        checked += 1
    assert checked >= 3
    five = next(c for c in claims if c["number"] == 5)
    for text in (five["sentence"], captions["interpretable_share_vs_sparsity"]):
        assert "not counted: imported SAE ext-sparsify_l2" in text, text


def test_its_report_speaks_of_its_own_targets_and_never_of_vocalset(run):
    """A user's table corpus to the report (tests/test_user_corpus.py runs CSV, JSONL and folder corpora to their
    probes): claim 1 per probe target of this corpus, each with its anchor on the page, and none of VocalSet's words
    in the report, claims, tables, captions or probes."""
    from test_user_corpus import check_no_vocalset_words

    workdir, cfg = run
    targets = [t["label"] for t in cfg["probe"]["targets"]]
    claims = json.loads((workdir / "results/claims.json").read_text())
    assert [c["rows"].get("target") for c in claims if c["number"] == 1] == targets
    page = (workdir / "results/report.html").read_text()
    assert all(f'id="claim-1-{t}"' in page for t in targets)
    check_no_vocalset_words(workdir)


def test_a_difference_of_zero_is_no_change(run):
    workdir, _ = run
    probe = pd.read_csv(workdir / "results/tables/probe.csv")
    sae = probe[probe["rep"] != "original"]
    zero = (sae["delta_accuracy"] == 0) & (sae["delta_accuracy_lo"] == 0) & (sae["delta_accuracy_hi"] == 0)
    assert (sae.loc[zero, "delta_verdict"] == NO_CHANGE).all()
    assert (sae.loc[~zero, "delta_verdict"] != NO_CHANGE).all()
    assert sae["delta_verdict"].isin(["higher", "lower", "inconclusive", NO_CHANGE]).all()


def test_too_many_folds_for_its_test_clips_stop_before_any_job(run, tmp_path):
    _, cfg = run
    bad = json.loads(json.dumps(cfg))
    bad["disentangle"]["cv_folds"] = 5
    proc = run_snakemake(tmp_path / "bad", "-n", config=bad, check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("audiosae:")]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
    assert "disentangle.cv_folds" in lines[0] and "has 9 test clips" in lines[0] and "sung_tones.csv" in lines[0]


def test_its_pages_and_card_speak_of_this_corpus(run):
    workdir, cfg = run
    r = workdir / "results"
    page = (r / "atlas/resemblyzer/layer2/sae0.9/index.html").read_text()
    hint = re.search(r'id="search" type="search" placeholder="search label, class(?: or attribute|, attribute or badge) '
                     r'\(e\.g\. ([^,"]+), F0',
                     page)
    assert hint and hint.group(1) in {*VOWELS, *REGISTERS, *VOICES}, page[:3000]
    assert "vibrato" not in page and 'preload="none"' in page
    landing = r / "atlas_site/index.html"
    assert "MCC" not in landing.read_text()
    card = (r / "sae/resemblyzer/layer2/sparsity0.9/export/README.md").read_text()
    assert f"| corpus | table {cfg['data']['table']['file']} (labels: vowel, register, voice)" in card
    report = (r / "report.html").read_text()
    assert "extract_embeddings is not in this table" in report


def test_a_probe_change_replans_what_the_docs_say(run):
    workdir, cfg = run
    changed = json.loads(json.dumps(cfg))
    changed["probe"]["epochs"] = 21
    proc = run_snakemake(workdir, "-n", "--rerun-triggers", "params", config=changed)
    stats = proc.stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0].splitlines()[3:]
    replanned = {line.split()[0] for line in stats if line.strip() and line.split()[0] not in ("total", "all")}
    row = next(ln for ln in (REPO / "docs/running.md").read_text().splitlines() if ln.startswith("| a probe hyper"))
    documented = set(re.findall(r"`([a-z_]+)`", row))
    assert replanned == documented, (sorted(replanned), row)
