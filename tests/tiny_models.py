"""Tiny random-initialised Hugging Face audio models and small WAV corpora for the embeddings tests.

Each model is built from a config, saved with `save_pretrained` (with its
feature extractor) into a folder shaped like the ones download_model writes,
and then loaded through the same code path as the real checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
HF_KINDS = ("wavlm", "hubert", "ast")


def _small_transformer(**extra) -> dict:
    return dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=48, **extra)


def save_tiny_hf_model(kind: str, folder: Path, commit: str = FAKE_COMMIT) -> Path:
    """Write a random tiny `kind` model (wavlm | hubert | ast | ast-head) and its feature extractor into `folder`."""
    import torch
    from transformers import (ASTConfig, ASTFeatureExtractor, ASTModel, HubertConfig, HubertModel,
                              Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel)

    torch.manual_seed(0)
    conv = dict(conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    if kind == "wavlm":
        model = WavLMModel(WavLMConfig(**_small_transformer(**conv), num_buckets=32, max_bucket_distance=64))
        fe = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=False, return_attention_mask=True)
    elif kind == "hubert":
        model = HubertModel(HubertConfig(**_small_transformer(**conv)))
        fe = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False)
    elif kind == "ast":
        model = ASTModel(ASTConfig(**_small_transformer(), num_mel_bins=32, max_length=100))
        fe = ASTFeatureExtractor(num_mel_bins=32, max_length=100)
    elif kind == "ast-head":  # an AST checkpoint with its audio-classification head (as MIT/ast-finetuned-audioset)
        from transformers import ASTForAudioClassification

        labels = {i: f"class{i}" for i in range(5)}
        model = ASTForAudioClassification(ASTConfig(**_small_transformer(), num_mel_bins=32, max_length=100,
                                                    id2label=labels, label2id={v: k for k, v in labels.items()}))
        fe = ASTFeatureExtractor(num_mel_bins=32, max_length=100)
    else:
        raise ValueError(kind)
    folder = Path(folder)
    model.save_pretrained(folder)
    fe.save_pretrained(folder)
    (folder / "audiosae_revision.json").write_text(json.dumps({"id": f"tiny/{kind}", "commit": commit}))
    return folder


def write_corpus(root: Path, n_clips: int = 5, sr: int = 22050, seconds: float = 1.3, seed: int = 0) -> Path:
    """Short WAVs (tones in noise) and a manifest in the data stage's format; returns the manifest path."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    rows = []
    splits = ["train", "train", "valid", "test"]
    for i in range(n_clips):
        f0 = 110.0 * 2 ** (i / 4)
        dur = seconds * (0.7 + 0.6 * (i % 3) / 2)  # some shorter than a crop, some longer
        t = np.arange(int(dur * sr)) / sr
        wave = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
        rel = Path("resources/synthetic/FULL/female1/scales/straight") / f"clip{i}_a.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, wave.astype(np.float32), sr)
        rows.append({"clip_id": f"female1__scales__straight__clip{i}_a", "path": str(rel), "group": "female1",
                     "singer": "female1",
                     "context": "scales", "technique": "straight", "vowel": "a", "split": splits[i % 4],
                     "duration_s": round(dur, 4), "sample_rate": sr})
    manifest = root / "results/data/manifest.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest
