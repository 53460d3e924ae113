"""The synthetic corpus: each technique is what it claims, measured from the audio alone.

The measurements use a small YIN pitch tracker and an amplitude envelope written
here, independent of the synthesiser's internals; the true factors are only
compared with what the audio shows.
"""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfiltfilt

from audiosae.data import synthetic as S
from audiosae.data.vocalset import TECHNIQUES, scan_corpus

SINGERS = ("female1", "male2")


# ---------------------------------------------------------------- measuring tools


def yin(x: np.ndarray, sr: int, fmin: float = 35.0, fmax: float = 900.0, hop_s: float = 0.005,
        win_s: float = 0.05, threshold: float = 0.1):
    """(times, f0, aperiodicity, rms) per frame: YIN on the signal decimated by 4."""
    x = resample_poly(np.asarray(x, float), 1, 4)
    sr = sr / 4
    W, tmax, tmin, hop = int(win_s * sr), int(np.ceil(sr / fmin)), int(sr / fmax), int(hop_s * sr)
    L = W + tmax
    starts = np.arange(0, len(x) - L, hop)
    F = x[starts[:, None] + np.arange(L)[None, :]]
    nfft = 1 << int(np.ceil(np.log2(2 * L)))
    cross = np.fft.irfft(np.conj(np.fft.rfft(F[:, :W], nfft)) * np.fft.rfft(F, nfft), nfft)[:, : tmax + 1]
    sq = np.concatenate([np.zeros((len(F), 1)), np.cumsum(F**2, axis=1)], axis=1)
    tau = np.arange(tmax + 1)
    d = sq[:, W][:, None] + sq[:, tau + W] - sq[:, tau] - 2 * cross
    cmndf = np.full_like(d, 2.0)
    cmndf[:, 1:] = d[:, 1:] * tau[1:] / np.maximum(np.cumsum(d[:, 1:], axis=1), 1e-12)
    cmndf[:, :tmin] = 2.0
    f0, ap = np.empty(len(F)), np.empty(len(F))
    for i, c in enumerate(cmndf):
        below = np.flatnonzero(c < threshold)
        if len(below):
            t = below[0]
            while t < tmax and c[t + 1] < c[t]:
                t += 1
        else:
            t = tmin + int(np.argmin(c[tmin:]))
        shift = 0.0
        if 1 <= t < tmax and (den := c[t - 1] - 2 * c[t] + c[t + 1]) > 0:
            shift = 0.5 * (c[t - 1] - c[t + 1]) / den
        f0[i], ap[i] = sr / (t + shift), c[t]
    return (starts + W / 2) / sr, f0, ap, np.sqrt(sq[:, W] / W)


def envelope(x: np.ndarray, sr: int, rate: int = 500) -> np.ndarray:
    """Amplitude envelope (sqrt of the 50 Hz low-passed power), `rate` values a second."""
    power = sosfiltfilt(butter(4, 50.0, fs=sr, output="sos"), np.asarray(x, float) ** 2)
    return np.sqrt(np.maximum(power, 0.0))[:: sr // rate]


def peak_frequency(sig: np.ndarray, rate: float, lo: float, hi: float) -> tuple[float, float]:
    """Frequency of the strongest spectral peak of `sig` in [lo, hi] Hz, and its share of the spectrum above 1 Hz."""
    sig = sig - sig.mean()
    n = len(sig)
    spec = np.abs(np.fft.rfft(sig * np.hanning(n), 16 * n))
    freqs = np.fft.rfftfreq(16 * n, 1 / rate)
    band = (freqs >= lo) & (freqs <= hi)
    k = np.argmax(spec[band])
    return float(freqs[band][k]), float(spec[band][k] / spec[freqs > 1].sum())


def active(rms: np.ndarray) -> np.ndarray:
    return rms > 0.1 * np.percentile(rms, 95)


def hnr_db(x: np.ndarray) -> float:
    """Harmonics-to-noise ratio from YIN's aperiodicity over the sounding frames."""
    _, _, ap, rms = yin(x, S.SR)
    a = float(np.clip(np.median(ap[active(rms)]), 1e-4, 1 - 1e-4))
    return 10 * np.log10((1 - a) / a)


def cents_track(x: np.ndarray, trim_s: float = 0.25, **yin_args):
    """(frame rate, cents around the median f0) over the sounding middle of a clip, gaps interpolated."""
    times, f0, ap, rms = yin(x, S.SR, **yin_args)
    keep = active(rms) & (times > times[active(rms)][0] + trim_s) & (times < times[active(rms)][-1] - trim_s)
    good = keep & (ap < 0.25)
    cents = 1200 * np.log2(f0 / np.median(f0[good]))
    good &= np.abs(cents) < 600  # octave errors of the tracker, not the singer
    idx = np.flatnonzero(keep)
    track = np.interp(idx, np.flatnonzero(good), cents[good])
    return 1 / (times[1] - times[0]), track - np.polyval(np.polyfit(idx, track, 1), idx)


def db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x))))


def high_band_ratio(x: np.ndarray) -> float:
    """Energy in 2-5 kHz over energy below 1 kHz: how bright a voice sounds."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / S.SR)
    return float(spec[(freqs > 2000) & (freqs < 5000)].sum() / spec[freqs < 1000].sum())


# ---------------------------------------------------------------- clips


@pytest.fixture(scope="module")
def clips():
    """(singer, technique) -> (wave, factors): every technique on a long tone of /a/, 2.5 s."""
    out = {}
    for name in SINGERS:
        singer = S.make_singer(name, seed=3)
        for technique in TECHNIQUES:
            rng = np.random.default_rng([3, len(out)])
            context = "excerpts" if technique == "spoken" else "long_tones"
            out[name, technique] = S.synthesize_clip(singer, technique, context, "a", 2.5, rng)
    return out


@pytest.mark.parametrize("name", SINGERS)
def test_straight_is_steady_at_the_recorded_pitch(clips, name):
    wave, f = clips[name, "straight"]
    _, f0, ap, rms = yin(wave, S.SR)
    voiced = active(rms) & (ap < 0.25)
    assert abs(np.median(f0[voiced]) / f["f0_hz"] - 1) < 0.03
    _, cents = cents_track(wave)
    assert np.percentile(cents, 90) - np.percentile(cents, 10) < 40


@pytest.mark.parametrize("name", SINGERS)
def test_vibrato_is_a_5_to_7_hz_pitch_modulation_of_30_to_100_cents(clips, name):
    wave, f = clips[name, "vibrato"]
    rate, cents = cents_track(wave)
    measured_rate, _ = peak_frequency(cents, rate, 2.0, 15.0)
    measured_depth = np.sqrt(2) * cents.std()  # a sine's peak is sqrt(2) times its std
    assert 5.0 <= measured_rate <= 7.0 and abs(measured_rate - f["vibrato_rate_hz"]) < 0.5
    assert 25 <= measured_depth <= 110 and abs(measured_depth / f["vibrato_depth_cents"] - 1) < 0.25
    _, straight = cents_track(clips[name, "straight"][0])
    assert cents.std() > 3 * straight.std()


@pytest.mark.parametrize("name", SINGERS)
def test_trill_alternates_between_two_notes_1_to_2_semitones_apart(clips, name):
    wave, f = clips[name, "trill"]
    # A short window, so that the tracker follows the jumps between the two notes.
    rate, cents = cents_track(wave, win_s=0.025, fmin=80.0)
    low, high = np.percentile(cents, [5, 95])
    assert 80 <= high - low <= 230 and abs((high - low) / (2 * f["vibrato_depth_cents"]) - 1) < 0.2
    measured_rate, _ = peak_frequency(cents, rate, 2.0, 15.0)
    assert abs(measured_rate - f["vibrato_rate_hz"]) < 0.5

    def time_near_the_two_notes(c):
        lo, hi = np.percentile(c, [5, 95])
        return np.mean(np.abs(c - (lo + hi) / 2) > 0.3 * (hi - lo))

    # Two notes, not a sine: most of the time is spent on one pitch or the other.
    _, vibrato = cents_track(clips[name, "vibrato"][0], win_s=0.025, fmin=80.0)
    assert time_near_the_two_notes(cents) > 0.68
    assert time_near_the_two_notes(cents) > time_near_the_two_notes(vibrato) + 0.1


@pytest.mark.parametrize("name", SINGERS)
def test_vocal_fry_is_low_and_irregular(clips, name):
    wave, f = clips[name, "vocal_fry"]
    # A 400 Hz low-pass first, as for any low voice: the formants ring far longer than a fry pulse lasts
    # relative to its period, and would otherwise pass for the pitch.
    _, f0, ap, rms = yin(sosfiltfilt(butter(4, 400.0, fs=S.SR, output="sos"), wave), S.SR)
    assert 35 <= np.median(f0[active(rms)]) < 100 and f["f0_hz"] < 100
    assert hnr_db(wave) < hnr_db(clips[name, "straight"][0]) - 5


@pytest.mark.parametrize("name", SINGERS)
def test_breathy_and_inhaled_are_noisier_than_straight(clips, name):
    straight = hnr_db(clips[name, "straight"][0])
    breathy = hnr_db(clips[name, "breathy"][0])
    inhaled = hnr_db(clips[name, "inhaled"][0])
    assert breathy < straight - 5 and inhaled < breathy
    assert db(clips[name, "inhaled"][0]) < db(clips[name, "straight"][0]) - 5
    assert clips[name, "straight"][1]["noise_ratio"] < clips[name, "breathy"][1]["noise_ratio"]


@pytest.mark.parametrize("name", SINGERS)
def test_lip_trill_flutters_at_20_to_30_hz(clips, name):
    env = envelope(clips[name, "lip_trill"][0], S.SR)[250:-250]
    freq, share = peak_frequency(env, 500, 3.0, 45.0)
    _, straight_share = peak_frequency(envelope(clips[name, "straight"][0], S.SR)[250:-250], 500, 3.0, 45.0)
    assert 20.0 <= freq <= 30.0 and share > 3 * straight_share


@pytest.mark.parametrize("name", SINGERS)
def test_trillo_repeats_the_note_with_deep_amplitude_dips(clips, name):
    env = envelope(clips[name, "trillo"][0], S.SR)[250:-250]
    freq, _ = peak_frequency(env, 500, 2.0, 15.0)
    assert 5.0 <= freq <= 9.0
    assert np.percentile(env, 10) < 0.25 * np.percentile(env, 90)
    steady = envelope(clips[name, "straight"][0], S.SR)[250:-250]
    assert np.percentile(steady, 10) > 0.5 * np.percentile(steady, 90)


@pytest.mark.parametrize("name", SINGERS)
def test_belt_is_louder_and_brighter_than_straight(name):
    singer = S.make_singer(name, seed=3)
    brighter = []
    for k, vowel in enumerate(S.VOWELS):
        belt, _ = S.synthesize_clip(singer, "belt", "long_tones", vowel, 1.0, np.random.default_rng([4, k]))
        straight, _ = S.synthesize_clip(singer, "straight", "long_tones", vowel, 1.0, np.random.default_rng([4, k]))
        assert db(belt) > db(straight) + 4
        brighter.append(10 * np.log10(high_band_ratio(belt) / high_band_ratio(straight)))
    # Averaged over the vowels: one harmonic landing on F1 can tip a single clip.
    assert np.mean(brighter) > 4 and min(brighter) > 0


@pytest.mark.parametrize("name", SINGERS)
def test_spoken_falls_in_pitch_over_syllables(clips, name):
    wave, _ = clips[name, "spoken"]
    times, f0, ap, rms = yin(wave, S.SR)
    voiced = active(rms) & (ap < 0.25)
    t, semis = times[voiced], 12 * np.log2(f0[voiced] / np.median(f0[voiced]))
    semis = (semis + 6) % 12 - 6  # fold the tracker's octave errors back
    first, last = semis[t < t[0] + (t[-1] - t[0]) / 3], semis[t > t[-1] - (t[-1] - t[0]) / 3]
    assert np.median(first) - np.median(last) > 2.5
    env = envelope(wave, S.SR)[100:-100]
    freq, _ = peak_frequency(env, 500, 1.5, 15.0)
    assert 2.5 <= freq <= 6.5  # a syllabic rhythm
    assert np.mean(env < 0.1 * np.percentile(env, 90)) > 0.1  # silent gaps between syllables


# How closely YIN's median f0 over the voiced frames must match the recorded mean f0: sustained notes
# closely; a trill's two notes and speech's glide (median vs mean) more loosely. Vocal fry and inhaled
# voice are too irregular or too noisy for a pitch tracker.
F0_TOLERANCE = {"straight": 0.03, "vibrato": 0.03, "trillo": 0.03, "belt": 0.03, "lip_trill": 0.03, "breathy": 0.03,
                "trill": 0.06, "spoken": 0.10}
# Techniques whose aspiration noise YIN's aperiodicity measures directly (a steady periodic part).
STEADY = ("straight", "vibrato", "trillo", "belt", "breathy", "inhaled")


def test_recorded_factors_match_the_audio(clips):
    """Loudness, f0 and the noise share as recorded, against independent measurements of the audio."""
    from scipy.stats import spearmanr

    noise, aperiodic = [], []
    for (name, technique), (wave, f) in clips.items():
        assert abs(db(wave) - f["loudness_db"]) < 0.01
        assert f["singer"] == name and f["technique"] == technique and f["vowel"] == "a"
        if technique not in ("vibrato", "trill"):
            assert f["vibrato_rate_hz"] == 0 and f["vibrato_depth_cents"] == 0
        # f0: YIN (written here) on the audio. A breathy voice's noise draws the tracker to subharmonics,
        # so there it searches from the voice type's floor (by the singer's sex, not the recorded f0: a
        # semitone under the lowest note the synthesiser's voices of that sex sing, 220 / 110 Hz less 2).
        floor = 35.0 if technique != "breathy" else (0.84 * 220.0 if name.startswith("female") else 0.84 * 110.0)
        _, f0, ap, rms = yin(wave, S.SR, fmin=floor)
        if technique in F0_TOLERANCE:
            voiced = active(rms) & (ap < 0.25)
            assert voiced.sum() >= 50, (name, technique)  # a quarter second at least
            assert np.median(f0[voiced]) == pytest.approx(f["f0_hz"], rel=F0_TOLERANCE[technique]), (name, technique)
        # noise: YIN's aperiodicity (the share of a frame's energy its period does not explain) over the
        # sounding frames.
        a = float(np.median(ap[active(rms)]))
        noise.append(f["noise_ratio"])
        aperiodic.append(a)
        if technique in STEADY:
            assert a == pytest.approx(f["noise_ratio"], abs=0.1), (name, technique)
    assert spearmanr(noise, aperiodic).statistic > 0.6
    assert clips["female1", "straight"][1]["f1_hz"] > clips["male2", "straight"][1]["f1_hz"]  # shorter tract


# ---------------------------------------------------------------- the corpus on disk


def small_corpus(path, seed=5, **kw):
    args = dict(singers=["female1", "male3"], clips_per_technique=1, duration_s=(0.5, 0.8), seed=seed)
    args.update(kw)
    return S.synthesize_corpus(path, **args)


def test_corpus_layout_names_and_factors(tmp_path):
    table = small_corpus(tmp_path / "synthetic")
    root = tmp_path / "synthetic"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]
    on_disk = pd.read_csv(root / "factors.csv")
    assert list(on_disk.columns) == S.FACTOR_COLUMNS and len(on_disk) == 2 * len(TECHNIQUES)
    assert "FULL/female1/excerpts/spoken/f1_excerpts_caro_spoken.wav" in set(on_disk["path"])
    assert "FULL/male3/long_tones/trillo/m3_long_tones_trillo_i.wav" in set(on_disk["path"])
    for rel in on_disk["path"]:
        assert (root / rel).is_file()
    scan = scan_corpus(root)
    assert len(scan.clips) == len(table) and scan.dropped.empty
    assert set(scan.clips["technique"]) == set(TECHNIQUES)
    info = sf.info(root / on_disk["path"].iloc[0])
    assert info.samplerate == 44100 and info.channels == 1


def test_corpus_is_deterministic_for_a_seed(tmp_path):
    a, b, c = small_corpus(tmp_path / "a"), small_corpus(tmp_path / "b"), small_corpus(tmp_path / "c", seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["f0_hz"], c["f0_hz"])
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not cmp.diff_files
    for rel in a["path"]:
        assert filecmp.cmp(tmp_path / "a" / rel, tmp_path / "b" / rel, shallow=False)


def test_a_singer_added_changes_no_other_clip(tmp_path):
    a = small_corpus(tmp_path / "a", singers=["female1"], techniques=["belt"])
    b = small_corpus(tmp_path / "b", singers=["female1", "male3"], techniques=["belt"])
    pd.testing.assert_frame_equal(a, b.iloc[: len(a)])


def test_second_takes_are_named_like_vocalset(tmp_path):
    table = small_corpus(tmp_path / "s", singers=["female1"], clips_per_technique=6, techniques=["trill"])
    names = sorted(p.rsplit("/", 1)[1] for p in table["path"])
    _, vowel = S.clip_plan("female1", "trill", 5)  # the sixth clip repeats the first one's vowel
    assert f"f1_long_tones_trill_{vowel}(1).wav" in names and len(set(names)) == 6
    assert len(scan_corpus(tmp_path / "s").clips) == 6


def test_written_clips_keep_their_technique(tmp_path):
    """Read back from disk: breathy is noisier than straight on the same vowel and melody; fry stays low."""
    table = small_corpus(tmp_path / "s", clips_per_technique=2, duration_s=(1.5, 2.0),
                         techniques=["straight", "breathy", "vocal_fry"])
    table = table.assign(clip=table.groupby(["singer", "technique"]).cumcount())
    lowpass = butter(4, 400.0, fs=S.SR, output="sos")
    for (singer, clip), rows in table.groupby(["singer", "clip"]):
        wave = {r.technique: sf.read(tmp_path / "s" / r.path, dtype="float32")[0] for r in rows.itertuples()}
        assert hnr_db(wave["breathy"]) < hnr_db(wave["straight"]) - 5
        _, f0, _, rms = yin(sosfiltfilt(lowpass, wave["vocal_fry"]), S.SR)
        assert np.median(f0[active(rms)]) < 100
