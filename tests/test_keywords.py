"""Tests of the keyword data: the shipped synthetic features, their build script, and
load_speech_commands on a tiny folder in Speech Commands' own layout."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from minisplit.audio import mfcc_batch
from minisplit.datasets import (
    KEYWORD_CLASSES,
    Dataset,
    keywords,
    load,
    load_speech_commands,
    shipped,
    speech_commands,
)

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000


def _import_build_script():
    spec = importlib.util.spec_from_file_location(
        "build_keywords", ROOT / "tools" / "build_keywords.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_script = _import_build_script()


def _shipped():
    with np.load(shipped._KEYWORDS_PATH, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


# ----------------------------------------------------------------------------- shipped file


def test_keywords_shapes_dtypes_and_balance():
    X_train, y_train, X_test, y_test = keywords()
    assert X_train.shape == (2400, 490) and X_test.shape == (600, 490)
    assert X_train.dtype == X_test.dtype == np.float64
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [200] * 12
    assert np.bincount(y_test).tolist() == [50] * 12
    # exactly the stored float16 values, widened
    np.testing.assert_array_equal(X_train.astype(np.float16).astype(np.float64), X_train)
    # MFCCs of audio that always holds some noise: c0 never reaches digital silence's
    # 40 log(1e-12) / sqrt(40) = -174.8
    assert -174 < X_train[:, ::10].min() and X_train[:, ::10].max() < 100


def test_keywords_images_are_frames_by_coefficients():
    X, y, _, _ = keywords()
    images, labels, _, _ = keywords(images=True)
    assert images.shape == (2400, 1, 49, 10)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(images[:, 0, 7, 3], X[:, 10 * 7 + 3])  # frame 7, c3
    # silence is noise alone: its energy c0 is below the spoken clips' in the middle frames,
    # where the words sit; a transposed layout would compare other numbers
    c0 = images[:, 0, 20:30, 0].mean(axis=1)  # (2400,)
    assert np.median(c0[y == 0]) < np.median(c0[y != 0]) - 5


def test_keyword_class_names():
    assert KEYWORD_CLASSES == ("_silence_", "_unknown_", "yes", "no", "up", "down", "left",
                               "right", "on", "off", "stop", "go")
    assert KEYWORD_CLASSES == build_script.CLASSES
    assert tuple(_shipped()["classes"].tolist()) == KEYWORD_CLASSES
    assert load("keywords").class_names == KEYWORD_CLASSES


def test_keywords_voices_are_disjoint_between_train_and_test():
    found = shipped._read_keywords(shipped._KEYWORDS_PATH)
    names = found["voices"].tolist()
    train = set(found["voice_train"].tolist()) - {-1}
    test = set(found["voice_test"].tolist()) - {-1}
    assert train and test and not train & test
    assert len(train) > 100 and len(test) > 40  # many voices on each side
    # the held-out rule of the build script: a test voice has a test variant or language,
    # or is a test flite voice
    for i in test:
        engine, voice = names[i].split(":")
        language, _, variant = voice.partition("+")
        assert (variant in build_script.TEST_VARIANTS
                or language in build_script.TEST_LANGUAGES
                or voice in build_script.FLITE_TEST), names[i]
    for i in train:
        assert not names[i].endswith(tuple("+" + v for v in build_script.TEST_VARIANTS))
    # both engines speak on both sides
    for side in (train, test):
        assert {names[i].split(":")[0] for i in side} == {"espeak-ng", "flite"}


def test_keywords_words_match_their_classes():
    found = shipped._read_keywords(shipped._KEYWORDS_PATH)
    words = found["words"].tolist()
    for part in ("train", "test"):
        y, word, voice = found[f"y_{part}"], found[f"word_{part}"], found[f"voice_{part}"]
        np.testing.assert_array_equal(word < 0, y == 0)  # silence says nothing
        np.testing.assert_array_equal(voice < 0, y == 0)
        for label in range(2, 12):
            assert {words[w] for w in word[y == label]} == {KEYWORD_CLASSES[label]}
        unknown = [words[w] for w in word[y == 1]]
        assert set(unknown) == set(build_script.UNKNOWN_WORDS)  # all 20 other words
        assert not set(unknown) & set(KEYWORD_CLASSES)
        counts = np.unique(unknown, return_counts=True)[1]
        assert counts.max() - counts.min() <= 1  # each unknown word equally often


def _rows(X):
    return sorted(row.tobytes() for row in X)


def test_load_keywords_keeps_the_voice_split_and_shuffles_rows():
    X_train, y_train, X_test, y_test = keywords()
    data = load("keywords", seed=5)
    assert isinstance(data, Dataset) and data.name == "keywords"
    assert data.task == "classification" and data.n_classes == 12
    assert _rows(data.X_test) == _rows(X_test) and _rows(data.X_train) == _rows(X_train)
    assert not np.array_equal(data.y_test, y_test)
    label_of = {row.tobytes(): label for row, label in zip(X_test, y_test)}
    assert [label_of[row.tobytes()] for row in data.X_test] == data.y_test.tolist()
    np.testing.assert_array_equal(load("keywords", seed=5).y_train, data.y_train)
    assert load("keywords", images=True).X_train.shape == (2400, 1, 49, 10)


def test_load_keywords_refuses_a_test_fraction():
    with pytest.raises(ValueError, match=r"test_fraction must be None for 'keywords', whose test "
                       r"part is fixed \(the clips of voices that never speak in training\), "
                       r"got 0.25"):
        load("keywords", test_fraction=0.25)
    with pytest.raises(TypeError, match="images must be True or False, got 'yes'"):
        keywords(images="yes")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a: a.pop("voice_test"), "expected arrays"),
        (lambda a: a.update(X_train=a["X_train"].astype(np.float32)), "X_train must be float16"),
        (lambda a: a.update(y_test=np.full(600, 12, np.uint8)), "y_test must hold labels 0..11"),
        (lambda a: a.update(classes=a["classes"][::-1].copy()), "classes must be"),
        (lambda a: a.update(voice_train=np.full(2400, -1, np.int16)),
         "voice_train must index voices"),
        (lambda a: a["X_test"].__setitem__((0, 0, 0), np.inf), "X_test must be finite"),
    ],
)
def test_keywords_file_with_wrong_contents_is_reported(tmp_path, change, match):
    arrays = _shipped()
    change(arrays)
    path = tmp_path / "keywords.npz"
    np.savez_compressed(path, **arrays)
    with pytest.raises(OSError, match=f"corrupt or incomplete .*{match}"):
        shipped._read_keywords(path)


def test_keywords_file_damaged_is_reported(tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(shipped._KEYWORDS_PATH.read_bytes()[:5000])
    with pytest.raises(OSError, match="truncated.npz is corrupt or incomplete"):
        shipped._read_keywords(truncated)


# ----------------------------------------------------------------------------- build script


@pytest.mark.parametrize("kind, beta", [("white", 0), ("pink", 1), ("brown", 2)])
def test_coloured_noise_has_unit_rms_and_its_spectral_slope(kind, beta):
    rng = np.random.default_rng(0)
    x = build_script.coloured_noise(kind, 16000, rng)  # (16000,)
    assert abs(np.sqrt(np.mean(x**2)) - 1) < 1e-12 and abs(x.mean()) < 1e-12
    power = np.abs(np.fft.rfft(x)) ** 2  # (8001,)
    f = np.arange(power.size)
    band = (f >= 10) & (f <= 4000)
    slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert abs(slope + beta) < 0.1  # PSD ~ 1 / f^beta


def test_clip_audio_places_the_word_at_the_requested_snr():
    word = 0.3 * np.sin(2 * np.pi * 500 * np.arange(8000) / RATE)  # (8000,) half a second
    clip = {"noise": "white", "noise_seed": 1, "snr_db": 20.0, "shift": 0.5, "rms": 0.0}
    x = build_script.clip_audio(clip, word).astype(np.float64) / 32768  # (16000,)
    # centred at 4000, shifted by 0.5 * min(1600, 4000) = 800 samples
    noise = build_script.coloured_noise("white", RATE, np.random.default_rng(1))
    residual = x.copy()
    residual[4800:12800] -= word
    scale = np.sqrt(np.mean(word**2) / 100.0)  # 20 dB below the word
    np.testing.assert_allclose(residual, scale * noise, atol=1 / 32768)


def test_build_plan_is_balanced_and_voice_disjoint():
    clips = build_script.plan(seed=3, train_per_class=4, test_per_class=2)
    _, is_test = build_script.voices()
    assert len(clips) == 12 * 6
    for clip in clips:
        assert (clip["voice"] < 0) == (clip["label"] == 0)
        if clip["voice"] >= 0:
            assert is_test[clip["voice"]] == clip["test"]
    assert build_script.plan(seed=3, train_per_class=4, test_per_class=2) == clips


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                    reason="espeak-ng and flite are needed to re-synthesise clips")
def test_rebuilding_some_clips_gives_the_shipped_features():
    clips = build_script.plan()  # the shipped file's plan (seed 0, 200 + 50 per class)
    found = _shipped()
    # the first two test clips of each class, re-synthesised; the test part is stored in plan
    # order, class by class
    test_clips = [c for c in clips if c["test"]]
    rows = [50 * label + i for label in range(12) for i in range(2)]
    chosen = [test_clips[r] for r in rows]
    features = mfcc_batch(build_script.audio(chosen) / 32768.0).astype(np.float16)
    np.testing.assert_array_equal(features, found["X_test"][rows])
    np.testing.assert_array_equal([c["voice"] for c in chosen], found["voice_test"][rows])


# ----------------------------------------------------------------------------- Speech Commands

UNKNOWN = ("bed", "cat")
PERIOD = 320  # the noise files repeat every frame step, so a cut's MFCCs depend on start % 320
TENTH = 50 * PERIOD  # 16,000 samples: the noise files are 10 s long
GAINS = (1,) * 8 + (3, 9)  # the noise's gain in each tenth: training, validation, testing


def _write(path, samples, rate=RATE):
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.wavfile.write(path, rate, samples)


def _tone(index, n):
    """A distinct int16 tone per clip: 0.3 full scale at 150 + 23 index Hz."""
    t = np.arange(n) / RATE
    return np.round(0.3 * 32768 * np.sin(2 * np.pi * (150 + 23 * index) * t)).astype(np.int16)


@pytest.fixture
def speech_folder(tmp_path):
    """A Speech Commands folder: 3 clips per keyword, 4 per unknown word, two noise files.

    Clip j of a word is one second (j = 0), half a second (j = 1, padded) or 1.25 s (j = 2, cut);
    j = 3 (unknown words only) is one second. Validation lists every word's clip 1, testing
    its clip 2. Returns the folder and {entry: (int16 samples, label, part)}.
    """
    folder = tmp_path / "speech_commands_v0.02"
    clips, index = {}, 0
    validation, testing = [], []
    for word in (*KEYWORD_CLASSES[2:], *UNKNOWN):
        label = KEYWORD_CLASSES.index(word) if word in KEYWORD_CLASSES else 1
        for j, n in enumerate((RATE, RATE // 2, RATE + RATE // 4, RATE)[: 4 if label == 1 else 3]):
            entry = f"{word}/{index:08x}_nohash_{j}.wav"
            samples = _tone(index, n)
            _write(folder / entry, samples)
            part = ("training", "validation", "testing", "training")[j]
            (validation if j == 1 else testing if j == 2 else []).append(entry)
            clips[entry] = (samples, label, part)
            index += 1
    (folder / "validation_list.txt").write_text("\n".join(validation) + "\n")
    (folder / "testing_list.txt").write_text("\n".join(testing) + "\n")
    (folder / "README.md").write_text("not a word\n")
    rng = np.random.default_rng(0)
    for name in ("white_noise", "running_tap"):
        base = rng.integers(-1000, 1000, PERIOD)  # (320,)
        noise = np.concatenate([np.tile(gain * base, TENTH // PERIOD) for gain in GAINS])
        _write(folder / "_background_noise_" / f"{name}.wav", noise.astype(np.int16))
    return folder, clips


def _expected_features(samples):
    clip = np.zeros(RATE)
    clip[: min(RATE, samples.size)] = samples[:RATE] / 32768.0
    return mfcc_batch(clip[None])[0].ravel()  # (490,)


def _match(rows, candidates):
    """For each row, the index of the candidate it equals (to rounding), or -1."""
    found = []
    for row in rows:
        close = np.flatnonzero(np.all(np.abs(candidates - row) <= 1e-9 * (1 + np.abs(row)),
                                      axis=1))
        found.append(int(close[0]) if close.size == 1 else -1)
    return np.array(found)


def _silence_candidates(folder, part):
    """MFCCs (n, 490) of every distinct one-second cut of the part's span of each noise file."""
    low, high = (TENTH * t for t in speech_commands._SILENCE_SPANS[part])
    cuts = []
    for file in sorted((folder / "_background_noise_").glob("*.wav")):
        noise = scipy.io.wavfile.read(file)[1] / 32768.0
        cuts += [noise[start : start + RATE]
                 for start in range(low, min(low + PERIOD, high - RATE + 1))]
    return mfcc_batch(np.array(cuts)).reshape(len(cuts), -1)


@pytest.mark.parametrize("validation", [False, True])
def test_speech_commands_mapping_split_padding_and_features(speech_folder, validation):
    folder, clips = speech_folder
    data = load_speech_commands(folder, validation=validation, unknown_fraction=None,
                                silence_fraction=0.3, seed=1)
    assert isinstance(data, Dataset) and data.name == "speech_commands"
    assert data.n_classes == 12 and data.class_names == KEYWORD_CLASSES
    test_part = "validation" if validation else "testing"
    for part, X, y in (("training", data.X_train, data.y_train), (test_part, data.X_test,
                                                                   data.y_test)):
        entries = [e for e, (_, _, p) in clips.items() if p == part]
        expected = np.array([_expected_features(clips[e][0]) for e in entries])  # (n, 490)
        spoken = y != 0
        which = _match(X[spoken], expected)
        # every word clip of the part exactly once, with its word's label
        assert sorted(which.tolist()) == list(range(len(entries)))
        assert [clips[entries[i]][1] for i in which] == y[spoken].tolist()
        # 10 keyword clips per part: ceil(0.3 * 10) = 3 silence clips, cut from the part's span
        assert int((y == 0).sum()) == 3
        own = _match(X[~spoken], _silence_candidates(folder, part))
        assert np.all(own >= 0)
    assert X.shape[1] == 490 and data.X_train.dtype == np.float64


def test_speech_commands_pads_short_clips_with_zeros_at_the_end(speech_folder):
    folder, clips = speech_folder
    data = load_speech_commands(folder, images=True, silence_fraction=0)
    assert data.X_train.shape[1:] == (1, 49, 10)
    short = _expected_features(clips["yes/00000001_nohash_1.wav"][0]).reshape(49, 10)
    # the last frames read only the zeros: digital silence, c0 = sqrt(40) log(1e-12)
    assert np.isclose(short[-1, 0], np.sqrt(40) * np.log(1e-12))
    assert short[0, 0] > short[-1, 0] + 50  # the tone itself, far above the floor
    # the clip is in the validation list, so only the validation part holds it
    assert not np.any(np.all(np.isclose(data.X_test[:, 0], short), axis=(1, 2)))
    validation = load_speech_commands(folder, validation=True, images=True, silence_fraction=0)
    assert np.any(np.all(np.isclose(validation.X_test[:, 0], short), axis=(1, 2)))


def test_speech_commands_draws_unknown_clips_as_tensorflow_does(speech_folder):
    folder, _ = speech_folder
    data = load_speech_commands(folder, seed=0)  # unknown and silence: ceil(0.1 * 10) = 1 each
    assert np.bincount(data.y_train).tolist() == [1, 1] + [1] * 10
    assert np.bincount(data.y_test).tolist() == [1, 1] + [1] * 10
    everything = load_speech_commands(folder, unknown_fraction=None, silence_fraction=0)
    # training holds clips 0 and 3 of each unknown word
    assert np.bincount(everything.y_train, minlength=12).tolist() == [0, 4] + [1] * 10
    again = load_speech_commands(folder, seed=0)
    np.testing.assert_array_equal(again.X_train, data.X_train)


def test_silence_cuts_stay_in_their_part_of_the_noise():
    noise = np.arange(10 * RATE, dtype=np.float64)  # (160000,): a sample says where it was
    rng = np.random.default_rng(0)
    for part, (low, high) in speech_commands._SILENCE_SPANS.items():
        cuts = speech_commands._silence([noise], part, 50, rng)  # (50, 16000)
        np.testing.assert_array_equal(np.diff(cuts, axis=1), 1)  # contiguous seconds
        assert cuts[:, 0].min() >= low * RATE and cuts[:, -1].max() < high * RATE


def test_speech_commands_missing_pieces_are_reported(speech_folder, tmp_path):
    folder, _ = speech_folder
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        load_speech_commands(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="README.md is not a folder"):
        load_speech_commands(folder / "README.md")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        load_speech_commands(3)
    with pytest.raises(ValueError, match="silence_fraction must be a finite number >= 0"):
        load_speech_commands(folder, silence_fraction=-0.1)
    with pytest.raises(TypeError, match="validation must be True or False"):
        load_speech_commands(folder, validation=1)
    listed = (folder / "testing_list.txt").read_text()
    (folder / "testing_list.txt").write_text(listed + "go/missing.wav\n")
    with pytest.raises(FileNotFoundError, match="testing_list.txt names go/missing.wav, which is "
                       "missing"):
        load_speech_commands(folder)
    (folder / "testing_list.txt").write_text(listed + "yes/00000001_nohash_1.wav\n")
    with pytest.raises(OSError, match="in at most one of .* got 1 in both, e.g. yes/00000001"):
        load_speech_commands(folder)
    (folder / "testing_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testing_list.txt is missing"):
        load_speech_commands(folder)
    (folder / "testing_list.txt").write_text(listed)
    shutil.rmtree(folder / "_background_noise_")
    with pytest.raises(FileNotFoundError, match="_background_noise_ must hold the background"):
        load_speech_commands(folder)
    assert load_speech_commands(folder, silence_fraction=0).X_test.shape == (11, 490)
    _write(folder / "_background_noise_" / "short.wav", np.zeros(9 * RATE, np.int16))
    with pytest.raises(OSError, match="short.wav must hold at least 160000 samples"):
        load_speech_commands(folder)
    for word in ("stop", "go"):
        shutil.rmtree(folder / word)
    with pytest.raises(FileNotFoundError, match="must hold a folder of WAV files per keyword, "
                       "missing: stop, go"):
        load_speech_commands(folder, silence_fraction=0)


@pytest.mark.parametrize(
    "samples, rate, match",
    [
        (np.zeros(RATE, np.int16), 8000, "must be sampled at 16000 Hz, got 8000 Hz"),
        (np.zeros((RATE, 2), np.int16), RATE, "must be mono, got 2 channels"),
        (np.zeros(RATE, np.float32), RATE, "must hold 16-bit integer samples, got float32"),
        (np.zeros(RATE, np.int32), RATE, "must hold 16-bit integer samples, got int32"),
        (None, RATE, "must be a WAV file"),
    ],
)
def test_speech_commands_wav_of_the_wrong_kind_is_reported(speech_folder, samples, rate, match):
    folder, _ = speech_folder
    bad = folder / "no" / "bad_nohash_0.wav"
    if samples is None:
        bad.write_bytes(b"RIFF, but not really")
    else:
        _write(bad, samples, rate)
    with pytest.raises(OSError, match=f"bad_nohash_0.wav {match}"):
        load_speech_commands(folder, silence_fraction=0)


def test_speech_commands_part_without_keywords_is_reported(speech_folder):
    folder, _ = speech_folder
    (bed,) = (folder / "bed").glob("*_nohash_1.wav")
    (folder / "validation_list.txt").write_text(f"bed/{bed.name}\n")
    with pytest.raises(OSError, match="the validation part must hold keyword clips, got none"):
        load_speech_commands(folder, validation=True)
