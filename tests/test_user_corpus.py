"""A user's own corpus, built here, runs through the study with probes per target.

Three corpora, each the smallest study (one packaged model, one layer, one
sparsity, a few epochs): a flat folder of WAVs with a CSV whose labels have the
user's names (speaker, word), the same as JSONL, and a folder tree whose
first-level folders are the label, each run to the probe table (past the manifest
and the probes, no stage reads the corpus's format). None of VocalSet's names may
appear in what they produce. tests/test_second_corpus.py runs a table corpus of its
own to the report, the splice and causal stages included, and checks the same there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiosae.data.vocalset import TECHNIQUES
from conftest import run_snakemake

pytestmark = pytest.mark.workflow

SR = 16000
SPEAKERS = [f"spk{i}" for i in range(6)]
WORDS = {"yes": 220.0, "no": 330.0, "stop": 495.0}
VOCALSET_WORDS = re.compile(r"\b(" + "|".join([*TECHNIQUES, "technique", "techniques", "singer", "singers",
                                                 "vocalset", r"(fe)?male\d+"]) + r")\b", re.IGNORECASE)


def say(path: Path, word: str, speaker: int, take: int) -> None:
    """One second of a 'word': a tone whose pitch names the word, a speaker's own vibrato rate and brightness."""
    t = np.arange(SR) / SR
    f0 = WORDS[word] * (1 + 0.05 * speaker) * (1 + 0.01 * np.sin(2 * np.pi * (4 + speaker) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wave = sum((0.6 / k ** (1 + 0.3 * speaker)) * np.sin(k * phase) for k in range(1, 6))
    wave = wave * np.minimum(1, 8 * np.minimum(t, 1 - t)) + 0.01 * np.random.default_rng(take).standard_normal(SR)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * wave / np.abs(wave).max()).astype(np.float32), SR)


def speech_rows(root: Path) -> list[dict]:
    rows = []
    for s, speaker in enumerate(SPEAKERS):
        for word in WORDS:
            for take in range(2):
                name = f"recordings/{speaker}_{word}_{take}.wav"
                say(root / name, word, s, take)
                rows.append({"wav": name, "speaker": speaker, "word": word})
    return rows


def study(data: dict, targets: list[dict]) -> dict:
    return {
        "data": {**data, "valid_fraction": 0.25, "test_fraction": 0.34, "split_seed": 1},
        "audio": {"crop_seconds": 1.0, "train_crops": 1},
        "models": {"resemblyzer": {"source": "resemblyzer", "layers": [2]}},
        "sae": {"sparsities": [0.9], "dim": "x2", "epochs": 3},
        "probe": {"epochs": 20, "targets": targets, "bootstrap": 200},
        "disentangle": {"cv_folds": 2, "max_iter": 2000},
        "report": {"title": "a study of my own recordings"},
        "splice": {"enabled": False},
        "causal": {"enabled": False},
    }


def outputs_text(workdir: Path) -> dict[Path, str]:
    r = workdir / "results"
    files = [f for f in (r / "report.html", r / "claims.json") if f.exists()]
    files += [r / "data/manifest.csv", *r.glob("tables/*"),
             *r.glob("figures/captions/*.json"), *r.glob("probe/**/*.json")]
    return {f: f.read_text(errors="replace") for f in files}


PROBE_TABLE = "results/tables/probe.csv"


def check_probes(workdir: Path, targets: list[str]) -> None:
    """Probes per target on the layer and its SAE, with intervals, in the probe table; no VocalSet word anywhere."""
    r = workdir / "results"
    for t in targets:
        for rep in ("original", "sae0.9"):
            doc = json.loads((r / f"probe/{t}/resemblyzer/layer2/{rep}.json").read_text())
            assert doc["target"] == t and len(doc["accuracy_ci"]) == 2
            assert np.load(r / f"probe/{t}/resemblyzer/layer2/{rep}.npz")["weight"].shape[0] == len(doc["classes"])
    probe = pd.read_csv(r / "tables/probe.csv")
    assert list(dict.fromkeys(probe["target"])) == targets
    assert probe[["accuracy_lo", "accuracy_hi"]].notna().all().all()
    assert probe.loc[probe["rep"] != "original", "delta_verdict"].isin(["higher", "lower", "inconclusive",
                                                                  "no change (identical on every test clip)"]).all()
    check_no_vocalset_words(workdir)


def check_no_vocalset_words(workdir: Path) -> None:
    for path, text in outputs_text(workdir).items():
        found = [text[max(0, m.start() - 60):m.end() + 60] for m in VOCALSET_WORDS.finditer(text)]
        assert not found, f"{path} names VocalSet's words: {found[:3]}"


def test_a_csv_corpus_with_its_own_labels_runs_to_its_probes(tmp_path):
    write = pd.DataFrame(speech_rows(tmp_path))
    write.to_csv(tmp_path / "my_corpus.csv", index=False)
    targets = [{"label": "word", "split": "corpus"}, {"label": "speaker", "split": "random"}]
    cfg = study({"corpus": "table", "table": {"file": "my_corpus.csv", "path_column": "wav",
                                              "labels": ["word", "speaker"], "group_column": "speaker"}}, targets)
    run_snakemake(tmp_path, PROBE_TABLE, config=cfg)
    check_probes(tmp_path, ["word", "speaker"])
    man = pd.read_csv(tmp_path / "results/data/manifest.csv")
    assert list(man.columns) == ["clip_id", "path", "group", "word", "speaker", "split", "duration_s", "sample_rate"]
    test_speakers = set(man.loc[man["split"] == "test", "speaker"])
    assert test_speakers and not test_speakers & set(man.loc[man["split"] != "test", "speaker"])


def test_a_jsonl_corpus_runs_to_its_probes(tmp_path):
    rows = speech_rows(tmp_path / "audio")
    meta = tmp_path / "meta" / "train.jsonl"
    meta.parent.mkdir()
    meta.write_text("".join(json.dumps({"audio_path": "../audio/" + r["wav"], "label": r["word"],
                                        "spk": r["speaker"]}) + "\n" for r in rows))
    cfg = study({"corpus": "table", "table": {"file": "meta/train.jsonl", "path_column": "audio_path",
                                              "labels": ["label"], "group_column": "spk"}},
                [{"label": "label", "split": "corpus"}])
    run_snakemake(tmp_path, PROBE_TABLE, config=cfg)
    check_probes(tmp_path, ["label"])


def test_a_folder_tree_runs_to_its_probes(tmp_path):
    for i, word in enumerate(WORDS):
        for s in range(len(SPEAKERS)):
            for take in range(2):
                say(tmp_path / "tree" / word / f"take{take}" / f"{s}.wav", word, s, take)
    cfg = study({"corpus": "folders", "folders": {"root": "tree", "label": "command"}},
                [{"label": "command", "split": "corpus"}])
    run_snakemake(tmp_path, PROBE_TABLE, config=cfg)
    check_probes(tmp_path, ["command"])
