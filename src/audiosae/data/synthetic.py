"""A synthetic, VocalSet-shaped singing corpus from a source-filter synthesiser.

Each clip is a glottal pulse train (Rosenberg pulses with a per-cycle jitter and
shimmer, an open quotient and a spectral-tilt low-pass) plus aspiration noise,
both shaped by an amplitude envelope and sent through a cascade of five formant
resonators. Its pitch contour comes from the context (a long tone, a scale, an
arpeggio, or a falling spoken phrase) and the technique:

================  =====================================================================
technique         what the synthesiser does
================  =====================================================================
straight          steady pitch, modal voice, little noise
vibrato           sinusoidal pitch modulation, 5-7 Hz, 30-100 cents peak deviation
trill             square-ish alternation between two notes 1-2 semitones apart, 5-8 Hz
trillo            steady pitch, amplitude gated to near silence 5-9 times a second
breathy           wide-open glottis: soft pulses, steep tilt, aspiration noise 15-35 % of energy
vocal_fry         40-90 Hz pulses with about 10 % jitter and strong shimmer, short open phase
lip_trill         20-30 Hz deep amplitude flutter, lips muffling the highs
belt              loud (about +7 dB), pressed pulses (short open phase), a strong 2-5 kHz ring, raised F1
inhaled           weak, irregular voicing (jitter, wobbling level) in 50-75 % noise, quiet
spoken            falling intonation over 3.5-5 syllables a second with silent gaps
================  =====================================================================

Virtual singers are named like VocalSet's (female1, male3): their sex sets the
f0 range and the vocal-tract length (formant scale); each has its own base
pitch, level and voice quality. Every clip is a pure function of
(seed, singer, technique, clip index), so adding a singer changes no other clip.

Files follow VocalSet's layout and names,
``FULL/<singer>/<context>/<technique>/<f1>_<context>_<technique>_<vowel>.wav``
(spoken: ``FULL/<singer>/excerpts/spoken/<f1>_excerpts_<piece>_spoken.wav``),
44.1 kHz 16-bit mono. ``factors.csv`` beside ``FULL/`` holds each clip's true
generative factors; its ``path`` is relative to the corpus folder. ``f0_hz`` is
the mean f0 over the sounding part; ``vibrato_rate_hz`` and ``vibrato_depth_cents``
describe any periodic pitch modulation (vibrato; for a trill, its alternation
rate and half the interval), 0 otherwise; ``noise_ratio`` is the aspiration
noise's share of the energy; ``loudness_db`` the clip's RMS in dBFS; ``f1_hz`` to
``f3_hz`` the formants used.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import lfilter, sosfilt
from tqdm import tqdm

from audiosae.atomic import atomic_output
from audiosae.data.vocalset import TECHNIQUES

log = logging.getLogger(__name__)

SR = 44100
VOWELS = ("a", "e", "i", "o", "u")
# F1-F3 of sung vowels for an adult male vocal tract (Hz), after classic formant
# tables; other singers scale them by their vocal-tract length factor.
VOWEL_FORMANTS = {
    "a": (730.0, 1150.0, 2600.0),
    "e": (450.0, 1900.0, 2550.0),
    "i": (290.0, 2250.0, 3000.0),
    "o": (450.0, 830.0, 2500.0),
    "u": (320.0, 800.0, 2300.0),
}
HIGH_FORMANTS = (3400.0, 4300.0)           # F4, F5
BANDWIDTHS = (70.0, 90.0, 130.0, 180.0, 230.0)
SING_CONTEXTS = ("scales", "arpeggios", "long_tones")
PATTERNS = {                                # semitones above the clip's base note
    "long_tones": [0.0],
    "scales": [0.0, 2.0, 4.0, 5.0, 7.0, 5.0, 4.0, 2.0, 0.0],
    "arpeggios": [0.0, 4.0, 7.0, 12.0, 7.0, 4.0, 0.0],
}
EXCERPTS = ("caro", "dona", "row")
TRACK_RATE = 100                            # frames per second of the stored f0 tracks
TRACK_KEY = "f0_track"
TRACKS_FILE = "f0_tracks.npz"
FACTOR_COLUMNS = ["path", "f0_hz", "vibrato_rate_hz", "vibrato_depth_cents", "noise_ratio", "loudness_db",
                  "f1_hz", "f2_hz", "f3_hz", "vowel", "singer", "technique"]


@dataclass(frozen=True)
class Voice:
    """How one technique drives the source: level, glottal shape, noise, irregularity."""

    level_db: float            # RMS of the whole clip, dBFS, before the singer's offset
    open_quotient: float       # fraction of the cycle the glottis is open
    tilt_hz: float             # corner of the spectral-tilt low-pass (lower = darker)
    noise: tuple[float, float]  # range of the noise share of the clip's energy
    jitter: float = 0.003      # std of the per-cycle f0 factor
    shimmer: float = 0.03      # std of the per-cycle log amplitude
    f1_scale: float = 1.0
    bandwidth_scale: float = 1.0
    ring_db: float = 0.0       # boost above 2 kHz (a belter's "ring": F3-F5 clustered and strong)


VOICES = {
    "straight": Voice(-20.0, 0.6, 1500.0, (0.005, 0.02)),
    "vibrato": Voice(-20.0, 0.6, 1500.0, (0.005, 0.02)),
    "trill": Voice(-20.0, 0.6, 1500.0, (0.005, 0.02)),
    "trillo": Voice(-22.0, 0.55, 1600.0, (0.01, 0.03)),
    "breathy": Voice(-26.0, 0.85, 500.0, (0.15, 0.35), bandwidth_scale=1.6),
    "vocal_fry": Voice(-28.0, 0.3, 1200.0, (0.02, 0.05), jitter=0.1, shimmer=0.25),
    "lip_trill": Voice(-23.0, 0.6, 1000.0, (0.03, 0.08)),
    "belt": Voice(-13.0, 0.35, 3200.0, (0.003, 0.01), f1_scale=1.1, ring_db=12.0),
    "inhaled": Voice(-30.0, 0.75, 700.0, (0.5, 0.75), jitter=0.05, shimmer=0.3, bandwidth_scale=1.5),
    "spoken": Voice(-22.0, 0.6, 1300.0, (0.03, 0.08)),
}


@dataclass(frozen=True)
class Singer:
    """A virtual singer: sex, pitch and vocal-tract length, level and voice quality offsets."""

    name: str
    prefix: str            # 'f1' for female1, as in VocalSet's file names
    sex: str
    base_f0: float         # comfortable lowest note of their patterns, Hz
    tract_scale: float     # formants relative to the adult male table
    level_db: float
    open_quotient: float   # added to the technique's
    tilt: float            # multiplies the technique's tilt corner
    breath: float          # multiplies the technique's noise share
    vibrato_rate: float    # the singer's preferred vibrato rate, Hz


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def make_singer(name: str, seed: int) -> Singer:
    """The virtual singer called `name` ('female1', 'male3', ...) for `seed`."""
    sex = "female" if name.startswith("female") else "male"
    number = name[len(sex):]
    rng = np.random.default_rng([int(seed), _stable_int("singer/" + name)])
    if sex == "female":
        base_f0, tract = rng.uniform(220.0, 330.0), rng.uniform(1.12, 1.22)
    else:
        base_f0, tract = rng.uniform(110.0, 165.0), rng.uniform(0.95, 1.05)
    return Singer(name=name, prefix=f"{sex[0]}{number}", sex=sex, base_f0=float(base_f0), tract_scale=float(tract),
                  level_db=float(rng.uniform(-2, 2)), open_quotient=float(rng.uniform(-0.05, 0.05)),
                  tilt=float(rng.uniform(0.8, 1.25)), breath=float(rng.uniform(0.8, 1.2)),
                  vibrato_rate=float(rng.uniform(5.3, 6.7)))


# ---------------------------------------------------------------- building blocks


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over `width` samples (edges held), applied twice: a smooth glide."""
    if width < 2:
        return x
    for _ in range(2):
        pad = np.concatenate([np.full(width, x[0]), x, np.full(width, x[-1])])
        c = np.cumsum(pad)
        x = ((c[width:] - c[:-width]) / width)[width // 2 : width // 2 + len(x)]
    return x


def _ramp(n: int, start: int, stop: int, fade: int) -> np.ndarray:
    """0 outside [start, stop), 1 inside, with raised-cosine fades of `fade` samples."""
    env = np.zeros(n)
    env[start:stop] = 1.0
    fade = max(1, min(fade, (stop - start) // 2))
    shape = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    env[start : start + fade] *= shape
    env[stop - fade : stop] *= shape[::-1]
    return env


def _slow_noise(rng: np.random.Generator, n: int, rate_hz: float) -> np.ndarray:
    """Unit-variance random wobble changing about `rate_hz` times a second."""
    knots = rng.standard_normal(int(n * rate_hz / SR) + 2)
    x = np.interp(np.arange(n), np.linspace(0, n - 1, len(knots)), knots)
    return x / (x.std() + 1e-12)


def rosenberg(phase: np.ndarray, open_quotient: float, speed_quotient: float = 2.5) -> np.ndarray:
    """Rosenberg glottal flow for cycle phase in [0, 1): rising, falling, then closed."""
    rise = open_quotient * speed_quotient / (1.0 + speed_quotient)
    fall = open_quotient - rise
    g = np.zeros_like(phase)
    up = phase < rise
    g[up] = 0.5 - 0.5 * np.cos(np.pi * phase[up] / rise)
    down = (phase >= rise) & (phase < open_quotient)
    g[down] = np.cos(0.5 * np.pi * (phase[down] - rise) / fall)
    return g


def formant_sos(formants: list[float], bandwidths: list[float]) -> np.ndarray:
    """Second-order sections of a cascade of resonators (unit gain at 0 Hz)."""
    sos = []
    for f, bw in zip(formants, bandwidths):
        r = np.exp(-np.pi * bw / SR)
        b1, b2 = 2 * r * np.cos(2 * np.pi * f / SR), -r * r
        sos.append([1.0 - b1 - b2, 0.0, 0.0, 1.0, -b1, -b2])
    return np.array(sos)


def _one_pole_lowpass(x: np.ndarray, corner_hz: float) -> np.ndarray:
    a = np.exp(-2 * np.pi * corner_hz / SR)
    return lfilter([1.0 - a], [1.0, -a], x)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-20))


# ---------------------------------------------------------------- one clip


def pitch_contour(technique: str, context: str, singer: Singer, n: int, on: int, off: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """(f0 in Hz per sample, modulation rate Hz, modulation depth cents) of one clip."""
    t = np.arange(n) / SR
    base = singer.base_f0 * 2 ** (rng.uniform(-2.0, 2.0) / 12)
    rate = depth = 0.0
    if technique == "spoken":
        # Declination from about 3 semitones above to 4 below a speaking pitch, with a wandering intonation.
        speak = singer.base_f0 * 2 ** (-5 / 12)
        frac = np.clip((np.arange(n) - on) / max(1, off - on), 0, 1)
        semis = 3.0 - 7.0 * frac + 0.8 * _slow_noise(rng, n, 4.0)
        return speak * 2 ** (semis / 12), rate, depth
    pattern = PATTERNS[context]
    notes = np.repeat(pattern, int(np.ceil((off - on) / len(pattern))))[: off - on]
    semis = np.empty(n)
    semis[:on], semis[on:off], semis[off:] = notes[0], notes, notes[-1]
    semis = _smooth(semis, int(0.03 * SR))
    cents = 100.0 * semis
    if technique == "vibrato":
        rate = float(np.clip(singer.vibrato_rate + rng.uniform(-0.3, 0.3), 5.0, 7.0))
        depth = float(rng.uniform(30.0, 100.0))
        cents += depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    elif technique == "trill":
        rate = float(rng.uniform(5.0, 8.0))
        extent = float(rng.uniform(100.0, 200.0))         # 1-2 semitones between the two notes
        depth = extent / 2
        square = np.tanh(4.0 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
        cents += depth * square
    elif technique == "vocal_fry":
        base = rng.uniform(45.0, 75.0)
        cents *= 0.25                                      # fry barely follows the melody
    elif technique == "inhaled":
        base *= 2 ** (3 / 12)                              # inhaled phonation sits higher and wobbles
        cents += 30.0 * _slow_noise(rng, n, 3.0)
    else:
        cents += 5.0 * _slow_noise(rng, n, 2.0)            # a steady voice still drifts a little
    f0 = base * 2 ** (cents / 1200)
    if technique == "vocal_fry":
        f0 = np.clip(f0, 40.0, 90.0)
    return f0, rate, depth


def amplitude_envelope(technique: str, n: int, on: int, off: int, rng: np.random.Generator) -> np.ndarray:
    """Onset/offset fades times the technique's amplitude pattern."""
    t = np.arange(n) / SR
    env = _ramp(n, on, off, int(0.06 * SR))
    if technique == "trillo":
        rate = rng.uniform(5.0, 9.0)
        env *= 0.02 + 0.98 * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t)) ** 2
    elif technique == "lip_trill":
        rate, depth = rng.uniform(20.0, 30.0), rng.uniform(0.75, 0.95)
        env *= 1.0 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    elif technique == "spoken":
        # Syllables: voiced for about 70 % of each syllable period, silent between.
        rate = rng.uniform(3.5, 5.0)
        cycle = np.cumsum(np.full(n, rate / SR) * (1 + 0.15 * _slow_noise(rng, n, 2.0)))
        frac = cycle % 1.0
        voiced = frac < 0.7
        syll = np.where(voiced, np.sin(np.pi * np.clip(frac / 0.7, 0, 1)) ** 0.6, 0.0)
        env *= syll
    elif technique == "inhaled":
        env *= 10 ** (4.0 * _slow_noise(rng, n, 6.0) / 20)
    elif technique == "vibrato":
        env *= 10 ** (0.5 * _slow_noise(rng, n, 1.0) / 20)
    return env


def synthesize_clip(singer: Singer, technique: str, context: str, vowel: str, duration_s: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(float32 samples at 44.1 kHz, true factors) of one clip."""
    if technique not in VOICES:
        raise ValueError(f"unknown technique {technique!r}; known: {sorted(VOICES)}")
    voice = VOICES[technique]
    n = int(round(duration_s * SR))
    on = int(rng.uniform(0.03, 0.12) * SR)
    off = n - int(rng.uniform(0.05, 0.15) * SR)

    f0, vib_rate, vib_depth = pitch_contour(technique, context, singer, n, on, off, rng)
    env = amplitude_envelope(technique, n, on, off, rng)

    # Glottal source: per-cycle jitter and shimmer, indexed by the cycle count.
    cycles = np.cumsum(f0) / SR
    n_cycles = int(cycles[-1]) + 2
    jitter = np.clip(1.0 + voice.jitter * rng.standard_normal(n_cycles), 0.7, 1.3)
    f0 = f0 * jitter[cycles.astype(int)]
    phase = np.cumsum(f0) / SR
    # Jitter can add cycles, so the shimmer draws are sized by the jittered phase.
    shimmer = np.exp(voice.shimmer * rng.standard_normal(int(phase[-1]) + 2))[phase.astype(int)]
    oq = float(np.clip(voice.open_quotient + singer.open_quotient, 0.2, 0.95))
    flow = rosenberg(phase % 1.0, oq) * shimmer
    excitation = _one_pole_lowpass(np.diff(flow, prepend=0.0), voice.tilt_hz * singer.tilt)

    vowel_f = np.array(VOWEL_FORMANTS[vowel]) * singer.tract_scale * rng.uniform(0.97, 1.03, size=3)
    vowel_f[0] *= voice.f1_scale
    formants = list(vowel_f) + [f * singer.tract_scale for f in HIGH_FORMANTS]
    bandwidths = [b * voice.bandwidth_scale for b in BANDWIDTHS]
    sos = formant_sos(formants, bandwidths)
    voiced = sosfilt(sos, excitation * env)
    if voice.ring_db:
        voiced += (10 ** (voice.ring_db / 20) - 1) * (voiced - _one_pole_lowpass(voiced, 2000.0))

    # Aspiration noise: pulsing with the glottal cycle, through the same tract.
    noise_src = rng.standard_normal(n) * env * (0.6 + 0.4 * rosenberg(phase % 1.0, oq))
    noise = sosfilt(sos, noise_src)
    ratio = float(np.clip(rng.uniform(*voice.noise) * singer.breath, 0.001, 0.95))
    noise *= np.sqrt(ratio / (1 - ratio)) * _rms(voiced) / _rms(noise)
    wave = voiced + noise
    if technique == "lip_trill":
        wave = _one_pole_lowpass(wave, 1800.0)           # closed lips muffle the highs

    level = voice.level_db + singer.level_db + rng.uniform(-1.0, 1.0)
    wave *= 10 ** (level / 20) / _rms(wave)
    wave += 10 ** (-75 / 20) * rng.standard_normal(n)    # a recording's noise floor
    peak = np.max(np.abs(wave))
    if peak > 0.98:
        wave *= 0.98 / peak
    active = env > 0.1 * env.max()
    # f0 per 10 ms frame over the sounding part (NaN elsewhere): lets the attributes stage describe the
    # exact crop the models see, where a scale or an arpeggio has a different mean pitch than the whole clip.
    hop = SR // TRACK_RATE
    n_frames = n // hop
    framed_f0 = f0[: n_frames * hop].reshape(n_frames, hop)
    framed_on = active[: n_frames * hop].reshape(n_frames, hop)
    sums = np.where(framed_on, framed_f0, 0.0).sum(axis=1)
    counts = framed_on.sum(axis=1)
    track = np.full(n_frames, np.nan)
    np.divide(sums, counts, out=track, where=counts > 0)
    factors = {
        TRACK_KEY: track.astype(np.float32),
        "f0_hz": float(np.mean(f0[active])),
        "vibrato_rate_hz": vib_rate,
        "vibrato_depth_cents": vib_depth,
        "noise_ratio": float(np.sum(noise**2) / (np.sum(voiced**2) + np.sum(noise**2))),
        "loudness_db": 20 * float(np.log10(_rms(wave))),
        "f1_hz": float(formants[0]),
        "f2_hz": float(formants[1]),
        "f3_hz": float(formants[2]),
        "vowel": vowel,
        "singer": singer.name,
        "technique": technique,
    }
    return wave.astype(np.float32), factors


# ---------------------------------------------------------------- the corpus


def clip_plan(singer: str, technique: str, clip: int) -> tuple[str, str]:
    """(context, vowel) of a singer's `clip`-th clip of `technique`.

    The vowel and (where free) the context depend on the singer and the clip
    index, not on the technique, so a singer sings the same vowels in every
    technique: technique is not confounded with vowel.
    """
    offset = _stable_int("plan/" + singer)
    vowel = VOWELS[(clip + offset) % len(VOWELS)]
    if technique == "spoken":
        return "excerpts", vowel
    if technique in ("trill", "trillo"):
        return "long_tones", vowel
    return SING_CONTEXTS[(clip + offset // len(VOWELS)) % len(SING_CONTEXTS)], vowel


def file_name(singer: Singer, technique: str, context: str, vowel: str, clip: int) -> str:
    """VocalSet-style stem; the caller adds '(n)' to names already taken."""
    if technique == "spoken":
        return f"{singer.prefix}_excerpts_{EXCERPTS[clip % len(EXCERPTS)]}_spoken"
    return f"{singer.prefix}_{context}_{technique}_{vowel}"


def synthesize_corpus(out_dir: Path | str, singers: list[str], clips_per_technique: int,
                      duration_s: tuple[float, float], seed: int,
                      techniques: list[str] | tuple[str, ...] = TECHNIQUES) -> pd.DataFrame:
    """Write the corpus to `out_dir` (atomically) and return its factors table."""
    lo, hi = sorted(float(d) for d in duration_s)
    rows, tracks = [], []
    jobs = [(name, tech, j) for name in singers for tech in techniques for j in range(clips_per_technique)]
    with atomic_output(out_dir) as tmp:
        taken: set[str] = set()
        for name, technique, j in tqdm(jobs, desc="synthesising clips", unit="clip", mininterval=2):
            singer = make_singer(name, seed)
            rng = np.random.default_rng([int(seed), _stable_int(f"clip/{name}/{technique}/{j}")])
            context, vowel = clip_plan(name, technique, j)
            duration = rng.uniform(lo, hi)
            wave, factors = synthesize_clip(singer, technique, context, vowel, duration, rng)
            folder = Path("FULL") / name / context / technique
            stem = file_name(singer, technique, context, vowel, j)
            rel, k = folder / f"{stem}.wav", 0
            while rel.as_posix() in taken:       # VocalSet's own way of naming a second take
                k += 1
                rel = folder / f"{stem}({k}).wav"
            taken.add(rel.as_posix())
            (tmp / folder).mkdir(parents=True, exist_ok=True)
            sf.write(str(tmp / rel), wave, SR, subtype="PCM_16")
            tracks.append(factors.pop(TRACK_KEY))
            rows.append({"path": rel.as_posix(), **factors})
        table = pd.DataFrame(rows, columns=FACTOR_COLUMNS)
        table.to_csv(tmp / "factors.csv", index=False, float_format="%.6g")
        save_f0_tracks(tmp / TRACKS_FILE, table["path"].tolist(), tracks)
    log.info("wrote %d clips of %d singers to %s", len(table), len(singers), out_dir)
    return table


def save_f0_tracks(path: Path | str, paths: list[str], tracks: list[np.ndarray]) -> None:
    """Every clip's f0 track (TRACK_RATE frames per second, NaN where silent) in one .npz."""
    lengths = np.array([len(t) for t in tracks], dtype=np.int64)
    np.savez_compressed(path, paths=np.array(paths, dtype=str), offsets=np.concatenate([[0], np.cumsum(lengths)]),
                        values=np.concatenate(tracks) if tracks else np.zeros(0, np.float32), rate=TRACK_RATE)


def load_f0_tracks(path: Path | str) -> dict[str, np.ndarray]:
    """{clip path relative to the corpus folder: f0 track} from save_f0_tracks's file."""
    with np.load(path) as data:
        off, values = data["offsets"], data["values"]
        return {str(p): values[off[i] : off[i + 1]] for i, p in enumerate(data["paths"])}


def crop_f0(track: np.ndarray, start_s: float, seconds: float | None) -> float:
    """Mean f0 (Hz) of the sounding frames of [start_s, start_s + seconds); the whole track when seconds is None."""
    a = int(round(start_s * TRACK_RATE))
    b = len(track) if seconds is None else int(round((start_s + seconds) * TRACK_RATE))
    part = track[a:b]
    part = part[np.isfinite(part)]
    return float(part.mean()) if len(part) else float("nan")
