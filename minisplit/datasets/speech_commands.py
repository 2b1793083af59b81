"""Google Speech Commands, read from files the user already has, with minisplit's MFCCs
(docs/datasets.md, docs/audio.md)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from minisplit._checks import check_bool, check_real, check_type, make_rng
from minisplit.datasets._base import Dataset
from minisplit.datasets.shipped import _KEYWORD_COEFFICIENTS, _KEYWORD_FRAMES, KEYWORD_CLASSES

_SPEECH_RATE = 16000  # Speech Commands: one-second clips, 16 kHz mono 16-bit PCM
_SPEECH_NOISE = "_background_noise_"
_SPEECH_LISTS = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
# where each part cuts its silence clips in a background-noise file, in tenths of its length:
# disjoint spans, so no stretch of noise is in two parts
_SILENCE_SPANS = {"training": (0, 8), "validation": (8, 9), "testing": (9, 10)}
_SPEECH_CHUNK = 512  # clips read and turned into MFCCs at a time: 65 MB of float64 audio


# ----------------------------------------------------------------------------- Speech Commands


def _wav(path):
    """The samples of a 16 kHz mono 16-bit WAV file as float64 in [-1, 1): int16 / 32768."""
    import scipy.io.wavfile  # scipy only when audio is read

    try:
        rate, samples = scipy.io.wavfile.read(path)
    except (ValueError, EOFError) as error:  # scipy's complaint about a file that is not WAV
        raise OSError(f"{path} must be a WAV file: {error}") from error
    if rate != _SPEECH_RATE:
        raise OSError(f"{path} must be sampled at {_SPEECH_RATE} Hz, got {rate} Hz")
    if samples.ndim != 1:
        raise OSError(f"{path} must be mono, got {samples.shape[1]} channels")
    if samples.dtype != np.int16:
        raise OSError(f"{path} must hold 16-bit integer samples, got {samples.dtype}")
    return samples.astype(np.float64) / 32768.0  # (n_samples,)


def _one_second(x):
    """x padded with zeros at the end, or cut after its first second: (16000,)."""
    clip = np.zeros(_SPEECH_RATE)  # (16000,)
    n = min(_SPEECH_RATE, x.size)
    clip[:n] = x[:n]
    return clip


def _speech_list(folder, name):
    """The clips a split list names ("word/file.wav" per line), each checked to exist."""
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (a Speech Commands folder holds "
                                f"{' and '.join(_SPEECH_LISTS.values())})")
    names = {line.strip() for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()}
    for entry in sorted(names):
        if not (folder / entry).is_file():
            raise FileNotFoundError(f"{path} names {entry}, which is missing from {folder}")
    return names


def _speech_clips(folder):
    """{part: [(relative path, label)]} for "training", "validation" and "testing"."""
    words = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("_"))
    missing = [word for word in KEYWORD_CLASSES[2:] if word not in words]
    if missing:
        raise FileNotFoundError(f"{folder} must hold a folder of WAV files per keyword, "
                                f"missing: {', '.join(missing)}")
    lists = {part: _speech_list(folder, name) for part, name in _SPEECH_LISTS.items()}
    both = lists["validation"] & lists["testing"]
    if both:
        raise OSError(f"{folder}: a clip must be in at most one of {_SPEECH_LISTS['validation']} "
                      f"and {_SPEECH_LISTS['testing']}, got {len(both)} in both, e.g. "
                      f"{sorted(both)[0]}")
    clips = {"training": [], "validation": [], "testing": []}
    for word in words:
        label = KEYWORD_CLASSES.index(word) if word in KEYWORD_CLASSES[2:] else 1
        for file in sorted((folder / word).glob("*.wav")):
            entry = f"{word}/{file.name}"
            part = next((p for p, names in lists.items() if entry in names), "training")
            clips[part].append((entry, label))
    return clips


def _silence(noises, part, count, rng):
    """``count`` one-second cuts (count, 16000) from the part's tenths of random noise files."""
    low, high = _SILENCE_SPANS[part]
    cuts = np.empty((count, _SPEECH_RATE))  # (count, 16000)
    for i in range(count):
        noise = noises[rng.integers(len(noises))]
        start = rng.integers(noise.size * low // 10, noise.size * high // 10 - _SPEECH_RATE + 1)
        cuts[i] = noise[start : start + _SPEECH_RATE]
    return cuts


def _speech_part(folder, clips, part, noises, silence_fraction, unknown_fraction, rng):
    """MFCCs (n, 49, 10) and int64 labels (n,) of one part, rows shuffled."""
    from minisplit.audio import mfcc_batch  # scipy only when audio is read

    chosen = [clip for clip in clips if clip[1] >= 2]
    n_keywords = len(chosen)
    if n_keywords == 0:
        raise OSError(f"{folder}: the {part} part must hold keyword clips, got none")
    unknown = [clip for clip in clips if clip[1] == 1]
    if unknown_fraction is not None:
        n_unknown = min(len(unknown), math.ceil(unknown_fraction * n_keywords))
        unknown = [unknown[i] for i in np.sort(rng.choice(len(unknown), n_unknown,
                                                          replace=False))]
    chosen += unknown
    n_silence = math.ceil(silence_fraction * n_keywords)
    features = []
    for start in range(0, len(chosen), _SPEECH_CHUNK):
        audio = np.stack([_one_second(_wav(folder / entry))
                          for entry, _ in chosen[start : start + _SPEECH_CHUNK]])  # (m, 16000)
        features.append(mfcc_batch(audio))  # (m, 49, 10)
    if n_silence:
        features.append(mfcc_batch(_silence(noises, part, n_silence, rng)))
    X = np.concatenate(features)  # (n, 49, 10)
    y = np.array([label for _, label in chosen] + [0] * n_silence, dtype=np.int64)  # (n,)
    order = rng.permutation(len(y))
    return X[order], y[order]


def _speech_noises(folder):
    """The background-noise recordings, each long enough for every part's silence cuts."""
    noise_folder = folder / _SPEECH_NOISE
    files = sorted(noise_folder.glob("*.wav")) if noise_folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{noise_folder} must hold the background-noise WAV files the "
                                "_silence_ clips are cut from (or pass silence_fraction=0)")
    noises = [_wav(file) for file in files]
    shortest = min(_SILENCE_SPANS.values(), key=lambda span: span[1] - span[0])
    need = _SPEECH_RATE * 10 // (shortest[1] - shortest[0])
    for file, noise in zip(files, noises):
        if noise.size < need:
            raise OSError(f"{file} must hold at least {need} samples ({need // _SPEECH_RATE} s, "
                          f"so that each part's tenth holds a one-second cut), got {noise.size}")
    return noises


def load_speech_commands(path, validation=False, images=False, silence_fraction=0.1,
                         unknown_fraction=0.1, seed=0):
    """Read Google Speech Commands (v0.02 layout) from a folder you already have, as MFCCs.

    The 12 classes of ``KEYWORD_CLASSES``: the ten keywords, "_unknown_" for every other word
    folder, "_silence_" for one-second cuts of the background noise. Each WAV becomes
    x = int16 / 32768, padded with zeros at the end or cut after its first second, then
    ``minisplit.audio.mfcc_batch`` (49 x 10), as the shipped ``keywords`` data. The split is the
    official one: ``testing_list.txt`` (or ``validation_list.txt``) is the test part, every clip
    in neither list is training.

    Per part, as TensorFlow's ``speech_commands`` input pipeline (used by Hello Edge) with its
    default percentages: with K keyword clips in the part, ceil(unknown_fraction K) unknown
    clips drawn at random from the part's other words (all of them if fewer), and
    ceil(silence_fraction K) silence clips, each a one-second stretch at a random place in a
    random file of ``_background_noise_``. Each noise file is cut in tenths of its length:
    training silence comes from the first eight, validation from the ninth, testing from the
    tenth, so no noise is in two parts.

    Parameters
    ----------
    path : str or os.PathLike
        The folder: one subfolder of 16 kHz mono 16-bit WAVs per word, ``_background_noise_``,
        ``validation_list.txt`` and ``testing_list.txt`` (paths like ``yes/0a7c2a8d_nohash_0.wav``).
        Subfolders whose names start with ``_`` are not words; other files are ignored.
    validation : bool
        Make the test part the validation list (for choosing settings) instead of the testing
        list. The training part is the same either way.
    images : bool
        Return X as NCHW images (n, 1, 49, 10) instead of flat rows (n, 490).
    silence_fraction : float
        Silence clips per keyword clip in each part (>= 0; 0 needs no noise folder).
    unknown_fraction : float or None
        Unknown-word clips per keyword clip in each part (>= 0); None keeps them all.
    seed : int or np.random.Generator
        Draws the unknown clips and the silence cuts, and shuffles the rows of each part.

    Returns
    -------
    Dataset
        ``name="speech_commands"``, ``n_classes=12``, ``class_names=KEYWORD_CLASSES``, X float64
        (n, 490) or (n, 1, 49, 10), y int64.

    Raises
    ------
    FileNotFoundError
        If the folder, a list, a keyword's folder, a listed clip or the noise files are missing.
    OSError
        If a WAV is not a WAV file, not 16 kHz, not mono or not 16-bit; a noise file is shorter
        than 10 s; a clip is in both lists; or a part has no keyword clips. The message names the
        file.

    Notes
    -----
    All of v0.02 (105,829 clips) takes about 0.4 GB as float64 MFCCs and minutes to read; the
    audio is read and transformed 512 clips at a time, so it never all sits in memory.

    References
    ----------
    P. Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition", 2018,
    arXiv:1804.03209.

    Examples
    --------
    Not run by the doctests (it needs the real folder, 2.3 GB)::

        data = load_speech_commands("speech_commands_v0.02")
        data.X_train.shape[1], data.class_names[:3]
        # (490, ('_silence_', '_unknown_', 'yes'))
    """
    check_type(path, "path", (str, os.PathLike), "a str or os.PathLike (the Speech Commands "
               "folder)")
    check_bool(validation, "validation")
    check_bool(images, "images")
    silence_fraction = check_real(silence_fraction, "silence_fraction", low=0)
    unknown_fraction = check_real(unknown_fraction, "unknown_fraction", low=0, none=True)
    rng = make_rng(seed)
    folder = Path(path)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"Speech Commands folder {folder} {state} (expected one folder "
                                "per word, _background_noise_ and the two split lists)")
    clips = _speech_clips(folder)
    noises = _speech_noises(folder) if silence_fraction > 0 else []
    shape = (-1, 1, _KEYWORD_FRAMES, _KEYWORD_COEFFICIENTS) if images else (
        -1, _KEYWORD_FRAMES * _KEYWORD_COEFFICIENTS)
    parts = []
    for part in ("training", "validation" if validation else "testing"):
        X, y = _speech_part(folder, clips[part], part, noises, silence_fraction,
                            unknown_fraction, rng)
        parts += [X.reshape(shape), y]
    return Dataset("speech_commands", "classification", *parts, n_classes=12,
                   class_names=KEYWORD_CLASSES)


