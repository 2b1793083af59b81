"""minisplit.audio: MFCCs against python_speech_features, hand-checkable signals, bad input.

The independent implementation is python_speech_features 0.6 (the ``test`` extra), called with
Hello Edge's parameters and everything it adds switched off (no pre-emphasis, no lifter, no
energy in c[0]) and our periodic Hann window. Three conventions still differ (docs/audio.md,
"Against python_speech_features"):

1. its power spectrum is |X|^2 / n_fft, ours |X|^2: log energies differ by log(n_fft), which the
   orthonormal DCT-II puts into c[0] alone, as sqrt(M) log(n_fft) (sum_m cos(pi j (m + 1/2) / M)
   = 0 for j > 0);
2. its filters have their edges rounded down to bins, floor((n_fft + 1) f / sample_rate), ours
   are evaluated at the exact bin frequencies;
3. it pads the last partial frame with zeros, we drop it.

So each step is compared where the conventions agree, to round-off: the mel scale, the framed
and windowed power spectra (after the 1/n_fft), the log + DCT-II + truncation (given its
filterbank), and c[0]'s offset; the filterbank difference (2.) is bounded by derived bounds.
"""

from __future__ import annotations

import numpy as np
import pytest
import python_speech_features as psf
from python_speech_features import sigproc

import minisplit as ms
from minisplit import audio

EPS_MACH = np.finfo(np.float64).eps
RATE, L, S, N_FFT, M = 16000, 640, 320, 1024, 40


def hann(n):
    """The periodic Hann window, written from its formula (not minisplit's)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def edges_hz(n_mels=M, f_min=20.0, f_max=4000.0):
    """The M + 2 band edges, equally spaced in HTK mels (centre of band m: entry m + 1)."""
    mel = 2595 * np.log10(1 + np.array([f_min, f_max]) / 700)
    return 700 * (10 ** (np.linspace(mel[0], mel[1], n_mels + 2) / 2595) - 1)


def noise(n=RATE, seed=0):
    return 0.1 * np.random.default_rng(seed).normal(size=n)


def psf_mfcc(x):
    return psf.mfcc(x, RATE, winlen=0.04, winstep=0.02, numcep=10, nfilt=M, nfft=N_FFT,
                    lowfreq=20, highfreq=4000, preemph=0, ceplifter=0, appendEnergy=False,
                    winfunc=hann)


# ---- against python_speech_features ------------------------------------------------------


def test_mel_scale_matches_python_speech_features():
    f = np.linspace(0, 8000, 101)
    np.testing.assert_allclose(audio.hz_to_mel(f), psf.hz2mel(f), rtol=1e-14)
    m = np.linspace(0, 2840, 101)
    np.testing.assert_allclose(audio.mel_to_hz(m), psf.mel2hz(m), rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("n_samples", [16000, 12345])
def test_power_spectrum_matches_python_speech_features_over_n_fft(n_samples):
    """Same frames, same window, same zero-padded rfft: equal after psf's 1/n_fft (1.).

    For 12345 samples psf pads a 38th frame (3.); the 37 whole frames agree.
    """
    x = noise(n_samples)
    P = audio.power_spectrum(audio.frames(x, L, S), N_FFT)  # (T, 513)
    T = 1 + (n_samples - L) // S
    assert P.shape == (T, N_FFT // 2 + 1)
    P_psf = sigproc.powspec(sigproc.framesig(x, L, S, hann), N_FFT)
    assert P_psf.shape[0] == T + int((n_samples - L) % S > 0)
    np.testing.assert_allclose(P / N_FFT, P_psf[:T], rtol=0, atol=1e2 * EPS_MACH * P_psf.max())


def test_log_dct_matches_python_speech_features_given_its_filterbank():
    """cepstrum() on psf's filterbank reproduces psf.mfcc: log, DCT-II ortho, first 10.

    Each of the 40 log energies agrees to ~1e-15 (the spectra to round-off), the DCT sums 40
    of them: 1e-12 leaves a margin of ~100. Without psf's 1/n_fft the difference is exactly
    sqrt(M) log(n_fft) = 43.838 in c[0] and nothing elsewhere (1.).
    """
    x = noise()
    C_psf = psf_mfcc(x)  # (49, 10)
    H_psf = psf.get_filterbanks(M, N_FFT, RATE, 20, 4000)  # (40, 513)
    P = audio.power_spectrum(audio.frames(x, L, S), N_FFT)
    np.testing.assert_allclose(audio.cepstrum(P / N_FFT, H_psf, 10), C_psf, rtol=0, atol=1e-12)
    offset = audio.cepstrum(P, H_psf, 10) - C_psf
    expected = np.zeros(10)
    expected[0] = np.sqrt(M) * np.log(N_FFT)
    np.testing.assert_allclose(offset, np.broadcast_to(expected, offset.shape), rtol=0,
                               atol=1e-12)


def test_filterbank_differs_from_python_speech_features_only_by_rounding_edges_to_bins():
    """The two filterbanks on the same mel-spaced edges, bounded where they differ (2.).

    In bins, our edge j sits at a_j = n_fft f_j / rate, psf's at b_j = floor(a_j + f_j / rate)
    with f_j / rate <= 4000 / 16000 = 1/4, so b_j is floor(a_j) or floor(a_j) + 1:

    - the peaks: ours at floor(a) or ceil(a), psf's at b: at most one bin apart;
    - the areas: psf's triangle sums to (b_{m+2} - b_m) / 2 over the bins (exactly: the rising
      side gives (b1 - b0 - 1) / 2, the falling side (b2 - b1 + 1) / 2), which lies within
      (1/4 + 1) / 2 = 0.625 of the true area (a_{m+2} - a_m) / 2; ours, a piecewise linear
      hat summed over the integers, is within (1/w1 + 1/w2) / 6 of that area (Euler-Maclaurin:
      slope jumps 1/w1, 1/w1 + 1/w2, 1/w2 times |B2({x}) / 2| <= 1/12), w the sides in bins.

    Measured: the peaks differ by 0 or 1 bin, the row sums by at most 0.40 bins (areas 2.2-13).
    """
    H = audio.mel_filterbank(N_FFT, RATE, M, 20.0, 4000.0)
    H_psf = psf.get_filterbanks(M, N_FFT, RATE, 20, 4000)
    assert H.shape == H_psf.shape == (M, N_FFT // 2 + 1)
    assert np.all(np.abs(np.argmax(H, axis=1) - np.argmax(H_psf, axis=1)) <= 1)
    a = N_FFT * edges_hz() / RATE  # (42,) edges in bins
    w1, w2 = np.diff(a)[:-1], np.diff(a)[1:]
    bound = 0.625 + (1 / w1 + 1 / w2) / 6
    assert np.all(np.abs(H.sum(axis=1) - H_psf.sum(axis=1)) < bound)
    assert np.all(np.abs(H.sum(axis=1) - (a[2:] - a[:-2]) / 2) <= (1 / w1 + 1 / w2) / 6)


def test_mfcc_is_the_composition_of_its_steps():
    x = noise()
    P = audio.power_spectrum(audio.frames(x, L, S), N_FFT)
    expected = audio.cepstrum(P, audio.mel_filterbank(), 10)
    np.testing.assert_array_equal(audio.mfcc(x), expected)


# ---- hand-checkable signals ----------------------------------------------------------------


def test_hann_power_spectrum_satisfies_parseval():
    """P[0] + P[n/2] + 2 sum_{0<k<n/2} P[k] = n_fft sum (w x)^2 (the rfft keeps k <= n/2)."""
    x = audio.frames(noise(), L, S)  # (49, 640)
    P = audio.power_spectrum(x, N_FFT)  # (49, 513)
    weights = np.full(N_FFT // 2 + 1, 2.0)
    weights[[0, -1]] = 1.0
    np.testing.assert_allclose(P @ weights, N_FFT * np.sum((hann(L) * x) ** 2, axis=1),
                               rtol=1e-12)


def test_dc_offset_puts_its_power_at_0_hz_and_its_leakage_in_the_lowest_bands():
    """A constant a: P[0] = (a sum_n w[n])^2 = (0.5 * 320)^2 = 25600 in every frame.

    f_min = 20 Hz keeps bin 0 out of the filterbank: the bands see only the Hann window's
    leakage, whose main lobe ends 2 bins of its 640-point DFT (50 Hz) from 0 Hz, so band 0
    (20-89 Hz) holds over 99% of it and the energies fall with frequency.
    """
    P = audio.power_spectrum(audio.frames(np.full(RATE, 0.5), L, S), N_FFT)
    np.testing.assert_allclose(P[:, 0], 25600.0, rtol=1e-12)
    E = P @ audio.mel_filterbank().T  # (49, 40)
    np.testing.assert_allclose(E, np.broadcast_to(E[0], E.shape), rtol=1e-12)
    assert np.all(np.diff(E[0]) < 0)
    assert E[0, 0] > 0.99 * E[0].sum()


def test_silence_gives_the_floor():
    """Zero energy in every band -> l[m] = log(floor): c[0] = sqrt(40) log(1e-12) = -174.75."""
    C = audio.mfcc(np.zeros(RATE))
    expected = np.zeros(10)
    expected[0] = np.sqrt(M) * np.log(1e-12)
    np.testing.assert_allclose(C, np.broadcast_to(expected, C.shape), rtol=0, atol=1e-12)
    C = audio.mfcc(np.zeros(RATE), floor=1e-6)
    assert np.allclose(C[:, 0], np.sqrt(M) * np.log(1e-6), rtol=0, atol=1e-12)


def test_a_gain_shifts_only_c0():
    """mfcc(g x) = mfcc(x) + [2 sqrt(M) log g, 0, ...]: E scales by g^2, log adds 2 log g."""
    x = noise()
    shift = audio.mfcc(3.0 * x) - audio.mfcc(x)
    expected = np.zeros(10)
    expected[0] = 2 * np.sqrt(M) * np.log(3.0)
    np.testing.assert_allclose(shift, np.broadcast_to(expected, shift.shape), rtol=0,
                               atol=1e-12)


def tone_energies(freqs, phases):
    t = np.arange(RATE) / RATE
    x = np.sin(2 * np.pi * np.asarray(freqs)[:, None] * t + np.asarray(phases)[:, None])
    P = audio.power_spectrum(audio.frames(x, L, S), N_FFT)  # (n, 49, 513)
    return P @ audio.mel_filterbank().T  # (n, 49, 40)


def test_a_tone_at_a_band_centre_lands_in_that_band():
    """A sine at centre m: filter m is 1 there, its neighbours 0, so band m is the largest in
    every frame; bands m-1..m+1 reach 2 spacings (>= 70 Hz) either side, past the Hann main
    lobe (50 Hz), which holds 99.95% of the window's energy: over 99% lands there."""
    centres = edges_hz()[1:-1]  # (40,)
    E = tone_energies(centres, np.zeros(M))  # (40, 49, 40)
    assert np.all(np.argmax(E, axis=2) == np.arange(M)[:, None])
    for m in range(M):
        near = E[m, :, max(m - 1, 0):m + 2].sum(axis=1)
        assert np.all(near > 0.99 * E[m].sum(axis=1))


def test_a_tone_lands_in_the_band_whose_centre_is_nearest():
    """Between centres c_m < f < c_{m+1} the two filters weigh f by (c_{m+1} - f) / gap and
    (f - c_m) / gap: the larger is the one with the nearer centre."""
    rng = np.random.default_rng(1)
    centres = edges_hz()[1:-1]
    freqs = rng.uniform(centres[0], centres[-1], 60)
    E = tone_energies(freqs, rng.uniform(0, 2 * np.pi, 60))
    nearest = np.argmin(np.abs(centres - freqs[:, None]), axis=1)  # (60,)
    assert np.all(np.argmax(E, axis=2) == nearest[:, None])


def test_hand_worked_mel_scale_and_frames():
    # mel(700) = 2595 log10(2) = 2595 * 0.30103 = 781.17; mel(1000) = 2595 log10(17/7) = 999.99
    assert audio.hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2), rel=1e-15)
    assert audio.hz_to_mel(1000.0) == pytest.approx(999.985, abs=1e-3)
    assert audio.mel_to_hz(audio.hz_to_mel(3210.0)) == pytest.approx(3210.0, rel=1e-14)
    # 7 samples, L = 3, S = 2: T = 1 + (7 - 3) // 2 = 3 frames starting at 0, 2, 4; sample 6
    # sits in the third frame, none is dropped; with L = 4, T = 1 + 3 // 2 = 2, sample 6 dropped
    np.testing.assert_array_equal(audio.frames(np.arange(7), 3, 2),
                                  [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    assert audio.frames(np.arange(7), 4, 2).shape == (2, 4)


def test_filterbank_rows_are_triangles_at_mel_spaced_centres():
    H = audio.mel_filterbank()  # (40, 513)
    f = np.arange(N_FFT // 2 + 1) * RATE / N_FFT  # bin frequencies
    e = edges_hz()
    assert np.all(H >= 0)
    for m in range(M):
        lo, centre, hi = e[m], e[m + 1], e[m + 2]
        assert np.all(H[m, (f <= lo) | (f >= hi)] == 0)
        assert np.all(H[m, (f > lo) & (f < hi)] > 0)
        peak = np.argmax(H[m])
        assert peak in (np.floor(centre * N_FFT / RATE), np.ceil(centre * N_FFT / RATE))
        rising, falling = (f > lo) & (f <= centre), (f >= centre) & (f < hi)
        # linear on each side: equal steps per bin, slope 1/(centre - lo) per Hz
        np.testing.assert_allclose(np.diff(H[m, rising]), RATE / N_FFT / (centre - lo),
                                   rtol=1e-10)
        np.testing.assert_allclose(np.diff(H[m, falling]), -RATE / N_FFT / (hi - centre),
                                   rtol=1e-10)
    # the centres are equally spaced in mel, from 20 Hz to 4000 Hz
    assert e[0] == pytest.approx(20.0) and e[-1] == pytest.approx(4000.0)
    np.testing.assert_allclose(np.diff(audio.hz_to_mel(e)), (audio.hz_to_mel(4000.0)
                               - audio.hz_to_mel(20.0)) / 41, rtol=1e-12)
    # covering: every bin strictly inside (20, 4000) Hz is in some band, none outside; between
    # the first and the last centre the triangles sum to 1
    covered = H.sum(axis=0)
    assert np.all(covered[(f > 20) & (f < 4000)] > 0)
    assert np.all(covered[(f <= 20) | (f >= 4000)] == 0)
    inner = (f >= e[1]) & (f <= e[-2])
    np.testing.assert_allclose(covered[inner], 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("n_samples", "rate", "frames_expected", "n_fft"), [
    (16000, 16000, 49, 1024),   # 1 + 15360 // 320
    (16319, 16000, 49, 1024),   # 319 extra samples: no 50th whole frame
    (16320, 16000, 50, 1024),
    (640, 16000, 1, 1024),      # exactly one window
    (8000, 8000, 49, 512),      # L = 320, S = 160
    (22050, 22050, 49, 1024),   # L = 882, S = 441
])
def test_output_shape(n_samples, rate, frames_expected, n_fft):
    C = audio.mfcc(noise(n_samples), rate)
    assert C.shape == (frames_expected, 10)
    P = audio.power_spectrum(audio.frames(noise(n_samples), round(0.04 * rate),
                                          round(0.02 * rate)), n_fft)
    np.testing.assert_array_equal(C, audio.cepstrum(P, audio.mel_filterbank(n_fft, rate), 10))


def test_options_change_the_shape():
    x = noise()
    assert audio.mfcc(x, n_coefficients=13, n_mels=26).shape == (49, 13)
    assert audio.mfcc(x, window_ms=25, stride_ms=10).shape == (1 + (RATE - 400) // 160, 10)
    assert audio.mfcc(x, n_fft=640).shape == (49, 10)


def test_batch_rows_are_single_clips_across_chunks():
    signals = noise(130 * 1000).reshape(130, 1000)  # 130 > 128: two chunks
    C = audio.mfcc_batch(signals, n_coefficients=12)
    assert C.shape == (130, 1 + (1000 - 640) // 320, 12)
    for i in (0, 127, 128, 129):
        np.testing.assert_allclose(C[i], audio.mfcc(signals[i], n_coefficients=12),
                                   rtol=1e-13, atol=1e-12)
    images = audio.as_images(C)
    assert images.shape == (130, 1, 2, 12)
    np.testing.assert_array_equal(images[:, 0], C)


def test_input_is_not_modified_and_float32_or_int16_become_float64():
    x = noise()
    before = x.copy()
    audio.mfcc(x)
    np.testing.assert_array_equal(x, before)
    assert audio.mfcc(x.astype(np.float32)).dtype == np.float64
    pcm = np.round(x * 32767).astype(np.int16)
    np.testing.assert_allclose(audio.mfcc(pcm), audio.mfcc(pcm.astype(np.float64)), rtol=0,
                               atol=0)


def test_lazy_public_module():
    assert ms.audio.mfcc is audio.mfcc


# ---- bad input -----------------------------------------------------------------------------

ONE_SECOND = np.zeros(RATE)

REFUSALS = [
    (lambda: audio.mfcc(ONE_SECOND, 16000.0), TypeError, "sample_rate must be an integer"),
    (lambda: audio.mfcc(ONE_SECOND, "16k"), TypeError, "sample_rate must be an integer"),
    (lambda: audio.mfcc(ONE_SECOND, True), TypeError, "sample_rate must be an integer"),
    (lambda: audio.mfcc(ONE_SECOND, 0), ValueError, "sample_rate must be an integer >= 1"),
    (lambda: audio.mfcc(np.zeros(639)), ValueError, "signal must have at least 640 samples"),
    (lambda: audio.mfcc(np.zeros(200), 8000), ValueError,
     "signal must have at least 320 samples per clip .* at 8000 Hz"),
    (lambda: audio.mfcc(np.r_[ONE_SECOND[1:], np.nan]), ValueError, "signal must be finite"),
    (lambda: audio.mfcc(np.r_[np.inf, ONE_SECOND]), ValueError, "signal must be finite"),
    (lambda: audio.mfcc(np.array(["a"] * 700)), TypeError, "signal must hold real numbers"),
    (lambda: audio.mfcc(ONE_SECOND + 0j), TypeError, "signal must hold real numbers"),
    (lambda: audio.mfcc(np.zeros((RATE, 2))), ValueError,
     r"signal must be 1-dimensional \(n_samples,\) mono audio, got shape \(16000, 2\)"),
    (lambda: audio.mfcc(np.zeros((4, RATE))), ValueError, "pass a batch of clips to mfcc_batch"),
    (lambda: audio.mfcc_batch(ONE_SECOND), ValueError,
     r"signals must be 2-dimensional \(n_clips, n_samples\), got shape \(16000,\)"),
    (lambda: audio.mfcc_batch(np.zeros((RATE, 2))), ValueError,
     "a stereo array .* is not a batch"),
    (lambda: audio.mfcc(ONE_SECOND, f_max=8001.0), ValueError,
     "f_max must be <= the Nyquist frequency sample_rate / 2 = 8000 Hz, got 8001"),
    (lambda: audio.mfcc(np.zeros(8000), 8000, f_max=4500), ValueError,
     "f_max must be <= the Nyquist frequency"),
    (lambda: audio.mfcc(ONE_SECOND, f_min=4000.0), ValueError,
     "f_max must be a finite number > 4000"),
    (lambda: audio.mfcc(ONE_SECOND, f_min=-1.0), ValueError, "f_min must be a finite number >= 0"),
    (lambda: audio.mfcc(ONE_SECOND, n_coefficients=41), ValueError,
     "n_coefficients must be an integer >= 1 and <= 40, got 41"),
    (lambda: audio.mfcc(ONE_SECOND, n_coefficients=10.0), TypeError,
     "n_coefficients must be an integer"),
    (lambda: audio.mfcc(ONE_SECOND, n_mels=40.0), TypeError, "n_mels must be an integer"),
    (lambda: audio.mfcc(ONE_SECOND, n_mels=0), ValueError, "n_mels must be an integer >= 1"),
    (lambda: audio.mfcc(ONE_SECOND, n_fft=512), ValueError, "n_fft must be an integer >= 640"),
    (lambda: audio.mfcc(ONE_SECOND, n_fft=1024.0), TypeError, "n_fft must be an integer"),
    (lambda: audio.mfcc(ONE_SECOND, window_ms="40"), TypeError, "window_ms must be a finite"),
    (lambda: audio.mfcc(ONE_SECOND, stride_ms=0), ValueError,
     "stride_ms must be a finite number > 0"),
    (lambda: audio.mfcc(ONE_SECOND, window_ms=0.01), ValueError,
     "window_ms and stride_ms must each span at least one sample"),
    (lambda: audio.mfcc(ONE_SECOND, floor=0.0), ValueError, "floor must be a finite number > 0"),
    (lambda: audio.mel_filterbank(n_fft=64), ValueError,
     "n_mels must leave every mel band at least one FFT bin"),
    (lambda: audio.frames(np.zeros(3), 4, 2), ValueError,
     "signal must have at least frame_length = 4 samples"),
    (lambda: audio.frames(np.zeros(8), 4, 0), ValueError, "frame_step must be an integer >= 1"),
    (lambda: audio.power_spectrum(np.ones((2, 8)), n_fft=4), ValueError,
     "frames must have a last axis of length <= n_fft = 4"),
    (lambda: audio.cepstrum(np.ones((2, 5)), np.ones((3, 4))), ValueError,
     r"power must have a last axis of length 4 \(the filterbank's columns\), got shape \(2, 5\)"),
    (lambda: audio.cepstrum(np.ones((2, 4)), np.ones((3, 4)), n_coefficients=4), ValueError,
     "n_coefficients must be an integer >= 1 and <= 3"),
    (lambda: audio.as_images(np.zeros((49, 10))), ValueError, "features must be 3-dimensional"),
    (lambda: audio.hz_to_mel(-1.0), ValueError, "f must be frequencies >= 0 Hz"),
    (lambda: audio.mel_to_hz(np.nan), ValueError, "mel must be finite"),
]


@pytest.mark.parametrize(("call", "error", "message"), REFUSALS)
def test_bad_input_is_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()
