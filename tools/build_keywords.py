"""Build minisplit/data/keywords.npz: synthetic spoken keywords as MFCC features.

Development time only: the package ships the result and never runs this. Needs NumPy, SciPy,
the standard library, minisplit itself (for ``minisplit.audio.mfcc_batch``) and two speech
synthesisers from Debian: ``apt-get install espeak-ng flite``.

Command line (the shipped file was made with the defaults, from the repository root)::

    python tools/build_keywords.py [--out FILE] [--seed N] [--train-per-class N]
                                   [--test-per-class N] [--jobs N]

What it does, deterministically for a given seed and the same engine versions:

1. lists the voices: every espeak-ng English language in ``LANGUAGES`` with every variant in
   ``VARIANTS`` (``-v en-us+f3``; "" is the language's own voice), and the flite voices in
   ``FLITE_VOICES``. A voice is a *test voice* if its espeak-ng variant is in
   ``TEST_VARIANTS``, its language in ``TEST_LANGUAGES``, or it is a flite voice in
   ``FLITE_TEST``; every other voice is a training voice, so no voice is on both sides;
2. plans every clip with ``np.random.default_rng(seed)``: for each of the 12 classes,
   ``train_per_class`` clips from training voices, then ``test_per_class`` from test voices.
   A keyword clip says its keyword; an "_unknown_" clip says one of ``UNKNOWN_WORDS`` (each
   equally often, in random order); a "_silence_" clip is noise alone. A spoken clip picks
   flite with probability ``FLITE_SHARE``, else espeak-ng, then a voice of that engine and side
   uniformly, and draws the engine's speed, pitch and amplitude uniformly from ``ESPEAK`` or
   ``FLITE``;
3. synthesises each word (``espeak-ng -v VOICE -s SPEED -p PITCH -a AMPLITUDE -w OUT.wav WORD``
   or ``flite -voice VOICE --setf duration_stretch=S --setf int_f0_target_mean=F0 -t WORD -o
   OUT.wav``), trims the leading and trailing samples quieter than 2 % of its peak, and
   resamples it to 16 kHz with ``scipy.signal.resample_poly`` (espeak-ng writes 22,050 Hz,
   flite 16 kHz or 8 kHz for ``kal``); flite's level is set by a gain in dB;
4. places the word in one second (16,000 samples), centred and then shifted by up to
   ``MAX_SHIFT`` samples either way (never past an edge), and adds white, pink or brown noise
   (power spectral density proportional to 1, 1/f or 1/f^2) at a signal-to-noise ratio drawn
   uniformly from ``SNR_DB``, measured against the power of the trimmed word. A silence clip is
   such noise alone at an RMS level log-uniform in ``SILENCE_RMS``;
5. rounds each clip to 16-bit integers as a WAV file would hold it, computes
   ``minisplit.audio.mfcc_batch(clips / 32768)`` with the defaults (49 x 10 per clip), and saves
   the features as float16 with labels, voice and word indices, and the names, with
   ``np.savez_compressed`` (arrays only, so ``allow_pickle=False`` reads it).

It prints the counts, the float16 rounding error and the file's SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import scipy.signal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # minisplit from this checkout, not an installed copy

from minisplit.audio import mfcc_batch  # noqa: E402

OUT = ROOT / "minisplit" / "data" / "keywords.npz"
RATE, N_SAMPLES = 16000, 16000
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# the 12 classes in TensorFlow's speech_commands order (Hello Edge's labels)
CLASSES = ("_silence_", "_unknown_", *KEYWORDS)
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin",
    "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero",
)
WORDS = (*KEYWORDS, *UNKNOWN_WORDS)
LANGUAGES = (
    "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-us-nyc", "en-029",
)
VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "croak", "whisper", "Annie", "Andy", "benjamin", "linda",
    "grandpa", "grandma",
)
TEST_LANGUAGES = ("en-029",)
TEST_VARIANTS = ("m4", "f3", "klatt3", "Annie", "grandpa")
FLITE_VOICES = ("awb", "kal", "kal16", "rms", "slt")
FLITE_TEST = ("rms", "slt")  # kal and kal16 are one speaker (8 and 16 kHz), kept together
FLITE_SHARE = 0.2
ESPEAK = {"speed": (120, 230), "pitch": (20, 80), "amplitude": (60, 180)}  # -s wpm, -p, -a
FLITE = {"stretch": (0.75, 1.35), "f0": (80.0, 220.0), "gain_db": (-12.0, 3.0)}
SNR_DB = (5.0, 40.0)
SILENCE_RMS = (1e-4, 3e-2)  # of full scale 1.0
NOISES = ("white", "pink", "brown")
MAX_SHIFT = 1600  # samples: 100 ms
TRAIN_PER_CLASS, TEST_PER_CLASS = 200, 50


def voices() -> tuple[list[str], list[bool]]:
    """Every voice id ("espeak-ng:en-us+f3", "flite:slt") and whether it is a test voice."""
    names, test = [], []
    for language in LANGUAGES:
        for variant in VARIANTS:
            names.append(f"espeak-ng:{language}" + (f"+{variant}" if variant else ""))
            test.append(language in TEST_LANGUAGES or variant in TEST_VARIANTS)
    for voice in FLITE_VOICES:
        names.append(f"flite:{voice}")
        test.append(voice in FLITE_TEST)
    return names, test


def plan(seed=0, train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS) -> list[dict]:
    """Every clip's class, word, voice and random settings, drawn in a fixed order."""
    rng = np.random.default_rng(seed)
    names, test = voices()
    pools = {}
    for side in (False, True):
        for engine in ("espeak-ng", "flite"):
            pools[side, engine] = [i for i, name in enumerate(names)
                                   if test[i] == side and name.startswith(engine + ":")]
    clips = []
    for label, name in enumerate(CLASSES):
        for side, count in ((False, train_per_class), (True, test_per_class)):
            if name == "_unknown_":
                words = rng.permutation(np.arange(count) % len(UNKNOWN_WORDS))
                words = [WORDS.index(UNKNOWN_WORDS[w]) for w in words]
            else:
                words = [WORDS.index(name) if name in WORDS else -1] * count
            for word in words:
                clip = {"label": label, "test": side, "word": word, "voice": -1,
                        "noise": NOISES[rng.integers(len(NOISES))],
                        "noise_seed": int(rng.integers(2**32)),
                        "snr_db": rng.uniform(*SNR_DB), "shift": rng.uniform(-1.0, 1.0),
                        "rms": math.exp(rng.uniform(*np.log(SILENCE_RMS)))}
                if word >= 0:
                    engine = "flite" if rng.uniform() < FLITE_SHARE else "espeak-ng"
                    pool = pools[side, engine]
                    clip["voice"] = pool[rng.integers(len(pool))]
                    ranges = ESPEAK if engine == "espeak-ng" else FLITE
                    for key, (low, high) in ranges.items():
                        value = rng.uniform(low, high)
                        clip[key] = int(round(value)) if engine == "espeak-ng" else value
                clips.append(clip)
    return clips


def command(clip, path) -> list[str]:
    """The synthesiser's command line that writes ``clip``'s word to the WAV file ``path``."""
    engine, voice = voices()[0][clip["voice"]].split(":")
    word = WORDS[clip["word"]]
    if engine == "espeak-ng":
        return ["espeak-ng", "-v", voice, "-s", str(clip["speed"]), "-p", str(clip["pitch"]),
                "-a", str(clip["amplitude"]), "-w", str(path), word]
    return ["flite", "-voice", voice, "--setf", f"duration_stretch={clip['stretch']:.3f}",
            "--setf", f"int_f0_target_mean={clip['f0']:.1f}", "-t", word, "-o", str(path)]


def synthesise(clip, folder) -> np.ndarray:
    """The trimmed word at 16 kHz, float64 in full-scale units (int16 / 32768)."""
    path = Path(folder) / f"clip-{id(clip)}.wav"
    subprocess.run(command(clip, path), check=True, capture_output=True)
    rate, samples = scipy.io.wavfile.read(path)
    path.unlink()
    x = samples.astype(np.float64) / 32768.0  # (n,)
    loud = np.flatnonzero(np.abs(x) >= 0.02 * np.abs(x).max())
    x = x[loud[0] : loud[-1] + 1]
    g = math.gcd(RATE, rate)
    x = scipy.signal.resample_poly(x, RATE // g, rate // g)  # (n * 16000 / rate,)
    if "gain_db" in clip:
        x = x * 10.0 ** (clip["gain_db"] / 20.0)
    return x


def coloured_noise(kind, n, rng) -> np.ndarray:
    """Unit-RMS noise (n,) whose power spectral density is proportional to 1/f^beta.

    beta = 0 (white), 1 (pink), 2 (brown): complex Gaussian spectrum scaled by f^(-beta/2),
    the DC bin given the first bin's scale and then removed with the mean.
    """
    beta = NOISES.index(kind)
    f = np.arange(n // 2 + 1, dtype=np.float64)  # (n // 2 + 1,)
    f[0] = 1.0
    spectrum = rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)
    x = np.fft.irfft(spectrum * f ** (-beta / 2.0), n)  # (n,)
    x -= x.mean()
    return x / np.sqrt(np.mean(x**2))


def clip_audio(clip, word) -> np.ndarray:
    """One second of int16 audio (16000,): the word (or nothing) placed in noise."""
    rng = np.random.default_rng(clip["noise_seed"])
    noise = coloured_noise(clip["noise"], N_SAMPLES, rng)  # (16000,)
    if word is None:
        x = clip["rms"] * noise
    else:
        if word.size > N_SAMPLES:  # longer than a second: keep the middle
            start = (word.size - N_SAMPLES) // 2
            word = word[start : start + N_SAMPLES]
        slack = N_SAMPLES - word.size
        offset = slack // 2 + int(round(clip["shift"] * min(MAX_SHIFT, slack // 2)))
        x = np.zeros(N_SAMPLES)  # (16000,)
        x[offset : offset + word.size] = word
        power = np.mean(word**2)
        x += np.sqrt(power / 10.0 ** (clip["snr_db"] / 10.0)) * noise
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def audio(clips, jobs=2) -> np.ndarray:
    """Every clip's int16 audio (n_clips, 16000), in the order of ``clips``."""
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(jobs) as pool:
        words = list(pool.map(lambda c: None if c["word"] < 0 else synthesise(c, folder), clips))
    return np.stack([clip_audio(c, w) for c, w in zip(clips, words)])


def build(clips, waves) -> tuple[dict, dict]:
    """The arrays of the shipped file, and each part's float64 features before float16."""
    features = mfcc_batch(waves / 32768.0)  # (n_clips, 49, 10)
    test = np.array([c["test"] for c in clips])
    arrays = {"classes": np.array(CLASSES), "voices": np.array(voices()[0]),
              "words": np.array(WORDS)}
    exact = {}
    for part, rows in (("train", ~test), ("test", test)):
        exact[part] = features[rows]  # (n_part, 49, 10)
        arrays[f"X_{part}"] = exact[part].astype(np.float16)
        arrays[f"y_{part}"] = np.array([c["label"] for c in clips], dtype=np.uint8)[rows]
        arrays[f"voice_{part}"] = np.array([c["voice"] for c in clips], dtype=np.int16)[rows]
        arrays[f"word_{part}"] = np.array([c["word"] for c in clips], dtype=np.int8)[rows]
    return arrays, exact


def versions() -> str:
    """The first line of ``espeak-ng --version`` and flite's version line."""
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    flite = subprocess.run(["flite", "--version"], capture_output=True, text=True)
    flite_line = next(line.strip() for line in flite.stdout.splitlines() if "version" in line)
    return f"{espeak.stdout.strip()}\n{flite_line}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the .npz to write (default {OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the plan (default 0)")
    parser.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS,
                        help=f"training clips per class (default {TRAIN_PER_CLASS})")
    parser.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS,
                        help=f"test clips per class (default {TEST_PER_CLASS})")
    parser.add_argument("--jobs", type=int, default=2,
                        help="synthesiser processes at once (default 2; no effect on the result)")
    args = parser.parse_args(argv)
    print(versions())
    clips = plan(args.seed, args.train_per_class, args.test_per_class)
    arrays, exact = build(clips, audio(clips, args.jobs))
    np.savez_compressed(args.out, **arrays)
    features = np.concatenate([exact["train"], exact["test"]])  # (n_clips, 49, 10)
    stored = np.concatenate([arrays["X_train"], arrays["X_test"]]).astype(np.float64)
    error = np.abs(stored - features)
    scale = features.reshape(-1, features.shape[-1]).std(axis=0)  # (10,) per coefficient
    print(f"features: min {features.min():.3f}, max {features.max():.3f}; float16 error: max "
          f"{error.max():.3g}, RMS {np.sqrt(np.mean(error**2)):.3g}, max relative to the "
          f"coefficient's std {(error / scale).max():.3g}")
    for part in ("train", "test"):
        counts = np.bincount(arrays[f"y_{part}"], minlength=len(CLASSES))
        used = np.unique(arrays[f"voice_{part}"][arrays[f"voice_{part}"] >= 0])
        print(f"{part}: {len(arrays[f'y_{part}'])} clips, per class {counts.tolist()}, "
              f"{used.size} voices")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out}: {args.out.stat().st_size:,} bytes, SHA-256 {digest}")


if __name__ == "__main__":
    main()
