"""Reading, resampling and cropping: the audio contract shared by extraction and attributes."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audiosae.data.audio import AudioError, crop, crop_starts, load_audio, read_wav


def test_read_wav_averages_channels(tmp_path):
    stereo = np.stack([np.full(100, 0.2), np.full(100, 0.4)], axis=1).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, 8000, subtype="FLOAT")
    wave, sr = read_wav(tmp_path / "s.wav")
    assert sr == 8000 and wave.dtype == np.float32 and wave.shape == (100,) and np.allclose(wave, 0.3)


def test_load_audio_resamples(tmp_path):
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100, subtype="FLOAT")
    wave = load_audio(tmp_path / "tone.wav", 16000)
    assert wave.dtype == np.float32 and abs(len(wave) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * 16000 / len(wave) - 440) < 2


@pytest.mark.parametrize("content", [b"RIFF\x00\x00\x00\x00WAVEjunk", b""])
def test_bad_files_raise_naming_the_file(tmp_path, content):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(AudioError, match="bad.wav"):
        load_audio(tmp_path / "bad.wav", 16000)


def test_crop_pads_with_zeros_at_the_end():
    wave = np.arange(1, 11, dtype=np.float32)
    assert np.array_equal(crop(wave, 10, 0.0, 0.5), wave[:5])
    assert np.array_equal(crop(wave, 10, 0.8, 0.5), np.array([9, 10, 0, 0, 0], dtype=np.float32))
    assert crop(wave, 10, 0.0, 2.0).shape == (20,) and crop(wave, 10, 0.0, 2.0)[10:].sum() == 0


def test_crop_starts():
    train = crop_starts("female1__scales__belt__f1_scales_belt_a", 7.0, 5.0, 4, seed=42, split="train")
    assert len(train) == 4 and all(0.0 <= s <= 2.0 for s in train) and len(set(train)) == 4
    assert train == crop_starts("female1__scales__belt__f1_scales_belt_a", 7.0, 5.0, 4, seed=42, split="train")
    assert train != crop_starts("female1__scales__belt__f1_scales_belt_e", 7.0, 5.0, 4, seed=42, split="train")
    assert train != crop_starts("female1__scales__belt__f1_scales_belt_a", 7.0, 5.0, 4, seed=1, split="train")
    assert crop_starts("x", 3.0, 5.0, 3, seed=42, split="train") == [0.0, 0.0, 0.0]   # shorter than a crop
    assert crop_starts("x", 9.0, 5.0, 3, seed=42, split="valid") == [0.0]
    assert crop_starts("x", 9.0, 5.0, 3, seed=42, split="test") == [0.0]
