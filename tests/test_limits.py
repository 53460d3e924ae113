"""Errors before the work (issue 31): every limit a stage would hit that the config and the corpus already fix stops
the run before any job, with one line naming the config key and the corpus's number; every `snakemake` command the docs
give prints a failed job's log."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from audiosae.config import ConfigError, validate
from audiosae.limits import LimitError, check_bootstrap, check_corpus_limits, check_sides, distinct_resamples
from conftest import REPO, run_snakemake, tiny_config
from test_user_corpus import study

WORDS = ("yes", "no", "stop")


def small_table(root: Path, test_speakers: int = 1, speakers: int = 4, takes: int = 1) -> dict:
    """`speakers` speakers x 3 words x `takes` takes, the first `test_speakers` speakers the test split."""
    rows = []
    for s in range(speakers):
        for word in WORDS:
            for take in range(takes):
                name = f"clips/spk{s}_{word}_{take}.wav"
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(b"")  # the corpus checks read no audio
                rows.append({"wav": name, "speaker": f"spk{s}", "word": word,
                             "split": "test" if s < test_speakers else "train"})
    pd.DataFrame(rows).to_csv(root / "corpus.csv", index=False)
    return {"corpus": "table", "table": {"file": str(root / "corpus.csv"), "path_column": "wav", "labels": ["word"],
                                         "group_column": "speaker", "split_column": "split"}}


def checked(cfg: dict):
    from audiosae.data.corpus import check_corpus, corpus_params

    cfg = validate(cfg)
    check_corpus_limits(check_corpus(corpus_params(cfg["data"]), cfg["probe"]["targets"]), cfg)


def test_folds_against_test_clips(tmp_path):
    cfg = study(small_table(tmp_path, test_speakers=3, speakers=6), [{"label": "word", "split": "corpus"}])
    cfg["disentangle"]["cv_folds"] = 5  # 9 test clips: 4 folds at most
    with pytest.raises(LimitError, match=r"'disentangle.cv_folds': the table .*corpus.csv has 9 test clips, too few "
                                         r"for 5 folds .* at most 4"):
        checked(cfg)
    cfg["disentangle"]["cv_folds"] = 4
    checked(cfg)


def test_bootstrap_against_test_clips(tmp_path):
    cfg = study(small_table(tmp_path, test_speakers=2, speakers=5), [{"label": "word", "split": "corpus"}])
    cfg["probe"]["bootstrap"] = 1000  # 6 test clips: C(11, 6) = 462 distinct resamples
    assert distinct_resamples(3) == 10 and distinct_resamples(6) == 462 and distinct_resamples(7) == 1716
    with pytest.raises(LimitError, match=r"'probe.bootstrap': probe target 'word' has 6 test clips, which have only "
                                         r"462 distinct bootstrap resamples, fewer than probe.bootstrap = 1000"):
        checked(cfg)
    cfg["probe"]["bootstrap"] = 462
    checked(cfg)
    check_bootstrap("word", 7, 1000)


def test_one_class_on_a_side_of_a_split():
    with pytest.raises(LimitError, match=r"probe target 'word': its test split holds one class \('yes'\)"):
        check_sides("word", {"train": ["yes", "no"], "valid": ["no", "yes"], "test": ["yes"]})
    check_sides("word", {"train": ["yes", "no"], "valid": ["no", "yes"], "test": ["yes", "no"]})


def test_ablation_m_against_the_sae_width():
    cfg = tiny_config(atlas={"ablation_m": 100000})
    with pytest.raises(ConfigError, match=r"'atlas.ablation_m': the ablation zeroes 100000 latents per class, but "
                                          r"model 'crepe' layer \d+'s clip SAEs have \d+"):
        validate(cfg)
    validate(tiny_config(atlas={"ablation_m": 100000}, sae={"levels": ["frame"]}))  # no clip SAE, no ablation


def test_the_synthetic_corpus_folds_and_bootstrap_against_its_test_singers():
    # tiny.yaml: 2 test singers x 10 techniques x 2 clips = 40 test clips
    with pytest.raises(ConfigError, match=r"'disentangle.cv_folds': the synthetic corpus has 40 test clips, too few "
                                          r"for 21 folds"):
        validate(tiny_config(disentangle={"cv_folds": 21}))
    validate(tiny_config(disentangle={"cv_folds": 20}))


def test_a_limit_stops_the_snakefile_with_one_line_before_any_job(tmp_path):
    cfg = study(small_table(tmp_path, test_speakers=3, speakers=6), [{"label": "word", "split": "corpus"}])
    cfg["disentangle"]["cv_folds"] = 5
    proc = run_snakemake(tmp_path / "run", "-n", config=cfg, check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("audiosae:")]
    assert len(lines) == 1 and "disentangle.cv_folds" in lines[0] and "9 test clips" in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "run" / "results").exists()


def test_every_snakemake_command_the_docs_give_shows_failed_logs():
    """A user's command prints a failed job's log, not only "check log file(s)": every `snakemake` command line in the
    README and docs/ passes --show-failed-logs or a profile that sets it."""
    import re

    import yaml

    commands = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            line = line.split("#")[0].strip()
            if re.match(r"^(\.venv/bin/)?snakemake\s", line) and not re.search(r"\s(-n|--dry-run|--report|--lint)\b",
                                                                              line):
                commands.append((doc.name, line))
    assert len(commands) >= 3, commands
    for doc, line in commands:
        profile = re.search(r"--profile\s+(\S+)", line)
        if profile:
            settings = yaml.safe_load((REPO / profile.group(1) / "profile.yaml").read_text())
            assert settings.get("show-failed-logs") is True, (doc, line)
        else:
            assert "--show-failed-logs" in line.split(), (doc, line)
