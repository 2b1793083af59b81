"""MFCC features in NumPy/SciPy, with Hello Edge's keyword-spotting recipe as the default.

The pipeline (every formula, with the step before it, in docs/audio.md):

    signal (n_samples,)
      -> frames          x_t[n] = signal[t S + n],  n < L, t < T = 1 + (n_samples - L) // S
      -> power_spectrum  P_t[k] = |sum_n w[n] x_t[n] exp(-2 pi i k n / n_fft)|^2,  k <= n_fft/2
                         w[n] = 0.5 - 0.5 cos(2 pi n / L)   (periodic Hann)
      -> mel_filterbank  E_t[m] = sum_k H[m, k] P_t[k]      (triangles on the HTK mel scale)
      -> cepstrum        c_t = DCT-II_ortho(log(max(E_t, floor)))[:n_coefficients]

Defaults (Zhang et al., "Hello Edge", 2017): 16 kHz, L = 640 samples (40 ms), S = 320 (20 ms),
n_fft = 1024, 40 mel bands from 20 to 4000 Hz, 10 coefficients: a one-second clip gives
(49, 10). No pre-emphasis, no liftering, no padding (the last partial frame is dropped).

Names: ``L`` frame length, ``S`` frame step, ``T`` number of frames, ``M`` number of mel bands,
``P`` power spectrum, ``H`` filterbank (M, n_fft // 2 + 1), ``E`` mel energies, ``C`` cepstra.
``mfcc`` takes one mono clip (1-D); ``mfcc_batch`` takes clips as rows (2-D); a 2-D array is
never guessed to be stereo or a batch. ``as_images`` adds the channel axis a network reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from minisplit._checks import check_array, check_int, check_real

#: Clips per chunk in ``mfcc_batch``: the complex spectra of a chunk stay near 50 MB.
_CHUNK = 128


def hz_to_mel(f):
    """The HTK mel scale: mel(f) = 2595 log10(1 + f / 700), f in Hz (>= 0).

    As TensorFlow's mfcc op and python_speech_features; mel(1000 Hz) is 1000 to 0.02.

    Parameters
    ----------
    f : float or array_like
        Frequencies in Hz, >= 0.

    Returns
    -------
    float or ndarray
        Mels, a float for a scalar input, else an array of f's shape.

    Examples
    --------
    >>> round(hz_to_mel(700.0), 3)  # 2595 log10(2)
    781.173
    """
    f = check_array(f, "f")
    if np.any(f < 0):
        raise ValueError(f"f must be frequencies >= 0 Hz, got minimum {f.min()!r}")
    mel = 2595.0 * np.log10(1.0 + f / 700.0)
    return float(mel) if mel.ndim == 0 else mel


def mel_to_hz(mel):
    """The inverse of :func:`hz_to_mel`: f(mel) = 700 (10^(mel / 2595) - 1).

    Examples
    --------
    >>> round(mel_to_hz(hz_to_mel(440.0)), 9)
    440.0
    """
    mel = check_array(mel, "mel")
    if np.any(mel < 0):
        raise ValueError(f"mel must be >= 0, got minimum {mel.min()!r}")
    f = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return float(f) if f.ndim == 0 else f


def frames(signal, frame_length: int = 640, frame_step: int = 320) -> np.ndarray:
    """Cut the last axis into overlapping frames: x_t[n] = signal[..., t S + n].

    T = 1 + (n_samples - L) // S frames; no padding, the samples after the last whole frame are
    dropped.

    Parameters
    ----------
    signal : array_like (..., n_samples)
        Real samples, n_samples >= frame_length.
    frame_length, frame_step : int
        L and S in samples, >= 1.

    Returns
    -------
    ndarray (..., T, L)
        A new float64 array.

    Examples
    --------
    >>> frames(np.arange(7.0), frame_length=4, frame_step=2)
    array([[0., 1., 2., 3.],
           [2., 3., 4., 5.]])
    """
    signal = check_array(signal, "signal")
    frame_length = check_int(frame_length, "frame_length", low=1)
    frame_step = check_int(frame_step, "frame_step", low=1)
    if signal.ndim == 0 or signal.shape[-1] < frame_length:
        raise ValueError(f"signal must have at least frame_length = {frame_length} samples on "
                         f"its last axis, got shape {signal.shape}")
    return _frames(signal, frame_length, frame_step)


def _frames(signal, L, S):
    T = 1 + (signal.shape[-1] - L) // S
    index = S * np.arange(T)[:, None] + np.arange(L)  # (T, L)
    return signal[..., index]  # (..., T, L)


def _hann(L):
    """Periodic Hann window w[n] = 0.5 - 0.5 cos(2 pi n / L), as TensorFlow's spectrogram op."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(L) / L)  # (L,)


def power_spectrum(frames, n_fft: int = 1024) -> np.ndarray:
    """Hann-windowed power spectrum P[k] = |DFT_{n_fft}(w x)[k]|^2 of each frame, k <= n_fft/2.

    The frame is windowed by the periodic Hann window of its own length L, zero-padded to
    n_fft >= L and transformed; no 1/n_fft or 1/L scaling (as TensorFlow's ``magnitude_squared``
    spectrogram, where python_speech_features divides by n_fft). Parseval:
    P[0] + P[n_fft/2] + 2 sum_{0<k<n_fft/2} P[k] = n_fft sum_n (w[n] x[n])^2 (n_fft even).

    Parameters
    ----------
    frames : array_like (..., T, L)
        Frames as :func:`frames` returns them.
    n_fft : int
        The FFT size, >= L.

    Returns
    -------
    ndarray (..., T, n_fft // 2 + 1)

    Examples
    --------
    >>> P = power_spectrum(np.ones((1, 4)), n_fft=4)  # w = [0, .5, 1, .5]: sum 2, P[0] = 4
    >>> P
    array([[4., 1., 0.]])
    """
    frames = check_array(frames, "frames")
    n_fft = check_int(n_fft, "n_fft", low=1)
    if frames.ndim < 1 or frames.shape[-1] > n_fft:
        raise ValueError(f"frames must have a last axis of length <= n_fft = {n_fft}, "
                         f"got shape {frames.shape}")
    return _power_spectrum(frames, n_fft)


def _power_spectrum(x, n_fft):
    X = scipy.fft.rfft(x * _hann(x.shape[-1]), n=n_fft, axis=-1)  # (..., T, n_fft // 2 + 1)
    return X.real**2 + X.imag**2


def mel_filterbank(
    n_fft: int = 1024,
    sample_rate: int = 16000,
    n_mels: int = 40,
    f_min: float = 20.0,
    f_max: float = 4000.0,
) -> np.ndarray:
    """Triangular mel filters H (n_mels, n_fft // 2 + 1) on the FFT bin frequencies.

    Band edges equally spaced in mel: f_j = mel_to_hz(mel(f_min) + j (mel(f_max) - mel(f_min))
    / (M + 1)), j = 0 .. M + 1. Filter m rises linearly in Hz from f_m to its centre f_{m+1},
    where it is 1, and falls to f_{m+2}; it is evaluated at the exact bin frequencies
    f_k = k sample_rate / n_fft (no rounding of edges to bins), unnormalised (peak 1):

        H[m, k] = max(0, min((f_k - f_m) / (f_{m+1} - f_m), (f_{m+2} - f_k) / (f_{m+2} - f_{m+1})))

    Between the first and the last centre the filters sum to 1 at every bin.

    Raises
    ------
    ValueError
        If f_max exceeds the Nyquist frequency sample_rate / 2, f_min >= f_max, or a band is
        so narrow that it holds no FFT bin (its energy would always be the floor).

    Examples
    --------
    >>> H = mel_filterbank()
    >>> H.shape, bool(H.min() >= 0)
    ((40, 513), True)
    """
    n_fft = check_int(n_fft, "n_fft", low=2)
    sample_rate = check_int(sample_rate, "sample_rate", low=1)
    n_mels = check_int(n_mels, "n_mels", low=1)
    f_min, f_max = _check_band(f_min, f_max, sample_rate)
    H = _filterbank(n_fft, sample_rate, n_mels, f_min, f_max)
    empty = np.flatnonzero(~np.any(H > 0, axis=1))
    if empty.size:
        raise ValueError(
            f"n_mels must leave every mel band at least one FFT bin, got n_mels = {n_mels} "
            f"with bins {sample_rate / n_fft:g} Hz apart (band {empty[0]} is empty): use fewer "
            f"bands or a larger n_fft")
    return H


def _check_band(f_min, f_max, sample_rate):
    f_min = check_real(f_min, "f_min", low=0)
    f_max = check_real(f_max, "f_max", low=f_min, low_open=True)
    if f_max > sample_rate / 2:
        raise ValueError(f"f_max must be <= the Nyquist frequency sample_rate / 2 = "
                         f"{sample_rate / 2:g} Hz, got {f_max:g}")
    return f_min, f_max


def _filterbank(n_fft, sample_rate, n_mels, f_min, f_max):
    mel_edges = np.linspace(2595.0 * np.log10(1.0 + f_min / 700.0),
                            2595.0 * np.log10(1.0 + f_max / 700.0), n_mels + 2)  # (M + 2,)
    edges = 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)  # (M + 2,) Hz
    f = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # (n_fft // 2 + 1,) bin frequencies
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    rising = (f - lo) / (centre - lo)  # (M, n_fft // 2 + 1)
    falling = (hi - f) / (hi - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def cepstrum(power, filterbank, n_coefficients: int = 10, floor: float = 1e-12) -> np.ndarray:
    """C = DCT-II_ortho(log(max(power @ filterbank.T, floor)))[..., :n_coefficients].

    The orthonormal DCT-II of the M log mel energies l[m]:
    c[j] = s_j sum_m l[m] cos(pi j (m + 1/2) / M), s_0 = sqrt(1/M), s_j = sqrt(2/M) for j > 0
    (``scipy.fft.dct(type=2, norm="ortho")``). A silent band is clamped at ``floor`` before the
    log, so digital silence gives log(floor) in every band.

    Parameters
    ----------
    power : array_like (..., T, K)
        Power spectra, e.g. from :func:`power_spectrum`.
    filterbank : array_like (M, K)
        E.g. from :func:`mel_filterbank`.
    n_coefficients : int
        How many coefficients to keep, 1 <= n_coefficients <= M.
    floor : float
        The smallest energy the log sees, > 0.

    Returns
    -------
    ndarray (..., T, n_coefficients)

    Examples
    --------
    >>> C = cepstrum(np.zeros((1, 3)), np.ones((4, 3)), n_coefficients=2, floor=np.exp(-1))
    >>> C  # l = [-1, -1, -1, -1]: c[0] = sqrt(1/4) * (-4) = -2, c[1] = 0
    array([[-2.,  0.]])
    """
    power = check_array(power, "power")
    filterbank = check_array(filterbank, "filterbank", ndim=2)
    if power.ndim < 1 or power.shape[-1] != filterbank.shape[1]:
        raise ValueError(f"power must have a last axis of length {filterbank.shape[1]} (the "
                         f"filterbank's columns), got shape {power.shape}")
    n_coefficients = check_int(n_coefficients, "n_coefficients", low=1,
                               high=filterbank.shape[0])
    floor = check_real(floor, "floor", low=0, low_open=True)
    return _cepstrum(power, filterbank, n_coefficients, floor)


def _cepstrum(P, H, n_coefficients, floor):
    E = P @ H.T  # (..., T, M)
    C = scipy.fft.dct(np.log(np.maximum(E, floor)), type=2, norm="ortho", axis=-1)  # (..., T, M)
    return C[..., :n_coefficients]


@dataclass(frozen=True)
class _Recipe:
    """Checked settings of one MFCC computation."""

    sample_rate: int
    frame_length: int
    frame_step: int
    n_fft: int
    filterbank: np.ndarray
    n_coefficients: int
    floor: float

    def __call__(self, x):
        """(..., n_samples) -> (..., T, n_coefficients), unchecked."""
        P = _power_spectrum(_frames(x, self.frame_length, self.frame_step), self.n_fft)
        return _cepstrum(P, self.filterbank, self.n_coefficients, self.floor)

    def check_length(self, n_samples, name, shape):
        if n_samples < self.frame_length:
            hint = ("; a stereo array (n_samples, 2) is not a batch: average its channels"
                    if len(shape) == 2 and shape[1] <= 2 < shape[0] else "")
            raise ValueError(
                f"{name} must have at least {self.frame_length} samples per clip (one window at "
                f"{self.sample_rate} Hz), got shape {shape}{hint}")


def _recipe(sample_rate, window_ms, stride_ms, n_fft, n_mels, f_min, f_max, n_coefficients,
            floor):
    sample_rate = check_int(sample_rate, "sample_rate", low=1)
    window_ms = check_real(window_ms, "window_ms", low=0, low_open=True)
    stride_ms = check_real(stride_ms, "stride_ms", low=0, low_open=True)
    L = round(sample_rate * window_ms / 1000)
    S = round(sample_rate * stride_ms / 1000)
    if L < 1 or S < 1:
        raise ValueError(f"window_ms and stride_ms must each span at least one sample at "
                         f"{sample_rate} Hz, got {window_ms:g} ms and {stride_ms:g} ms")
    # the next power of two >= L, as TensorFlow's spectrogram op (1024 for L = 640)
    n_fft = 1 << (L - 1).bit_length() if n_fft is None else check_int(n_fft, "n_fft", low=L)
    n_mels = check_int(n_mels, "n_mels", low=1)
    n_coefficients = check_int(n_coefficients, "n_coefficients", low=1, high=n_mels)
    floor = check_real(floor, "floor", low=0, low_open=True)
    H = mel_filterbank(n_fft, sample_rate, n_mels, f_min, f_max)
    return _Recipe(sample_rate, L, S, n_fft, H, n_coefficients, floor)


def mfcc(
    signal,
    sample_rate: int = 16000,
    *,
    window_ms: float = 40.0,
    stride_ms: float = 20.0,
    n_fft: int | None = None,
    n_mels: int = 40,
    f_min: float = 20.0,
    f_max: float = 4000.0,
    n_coefficients: int = 10,
    floor: float = 1e-12,
) -> np.ndarray:
    """MFCCs of one mono clip: frames -> Hann power spectrum -> mel energies -> log -> DCT-II.

    frame_length L = round(sample_rate window_ms / 1000), frame_step S likewise from stride_ms;
    T = 1 + (n_samples - L) // S frames. The samples are used as given (an int16 recording
    scaled by 32768 only shifts c[0], by 2 sqrt(M) log(32768)).

    Parameters
    ----------
    signal : array_like (n_samples,)
        One mono clip, n_samples >= L. 2-D input is refused: stereo must be mixed down first
        (``signal.mean(axis=1)``), a batch of clips goes to :func:`mfcc_batch`.
    sample_rate : int
        Samples per second.
    window_ms, stride_ms : float
        Frame length and step in milliseconds (40 and 20: 640 and 320 samples at 16 kHz).
    n_fft : int or None
        FFT size >= L; None: the next power of two >= L (1024 at 16 kHz).
    n_mels, f_min, f_max : int, float, float
        The mel filterbank (:func:`mel_filterbank`); f_max <= sample_rate / 2.
    n_coefficients : int
        Cepstral coefficients kept, 1 <= n_coefficients <= n_mels.
    floor : float
        Mel energies are clamped at floor > 0 before the log.

    Returns
    -------
    ndarray (T, n_coefficients)

    References
    ----------
    Zhang, Suda, Lai, Chandra, "Hello Edge: Keyword Spotting on Microcontrollers", 2017.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> mfcc(np.sin(2 * np.pi * 440 * t)).shape  # 1 + (16000 - 640) // 320 = 49 frames
    (49, 10)
    """
    recipe = _recipe(sample_rate, window_ms, stride_ms, n_fft, n_mels, f_min, f_max,
                     n_coefficients, floor)
    signal = check_array(signal, "signal")
    if signal.ndim != 1:
        raise ValueError(
            f"signal must be 1-dimensional (n_samples,) mono audio, got shape {signal.shape}; "
            f"mix stereo down first (signal.mean(axis=1)), pass a batch of clips to mfcc_batch")
    recipe.check_length(signal.shape[0], "signal", signal.shape)
    return recipe(signal)


def mfcc_batch(
    signals,
    sample_rate: int = 16000,
    *,
    window_ms: float = 40.0,
    stride_ms: float = 20.0,
    n_fft: int | None = None,
    n_mels: int = 40,
    f_min: float = 20.0,
    f_max: float = 4000.0,
    n_coefficients: int = 10,
    floor: float = 1e-12,
) -> np.ndarray:
    """MFCCs of equally long mono clips, one per row: (n_clips, n_samples) -> (n_clips, T, C).

    Row i of the result is ``mfcc(signals[i], sample_rate, ...)`` with the same keywords as
    :func:`mfcc`. The clips are processed in chunks of 128 to bound memory.

    Examples
    --------
    >>> mfcc_batch(np.zeros((3, 16000))).shape
    (3, 49, 10)
    """
    recipe = _recipe(sample_rate, window_ms, stride_ms, n_fft, n_mels, f_min, f_max,
                     n_coefficients, floor)
    signals = check_array(signals, "signals")
    if signals.ndim != 2:
        raise ValueError(f"signals must be 2-dimensional (n_clips, n_samples), "
                         f"got shape {signals.shape}")
    recipe.check_length(signals.shape[1], "signals", signals.shape)
    T = 1 + (signals.shape[1] - recipe.frame_length) // recipe.frame_step
    C = np.empty((signals.shape[0], T, recipe.n_coefficients))  # (n_clips, T, C)
    for i in range(0, signals.shape[0], _CHUNK):
        C[i:i + _CHUNK] = recipe(signals[i:i + _CHUNK])
    return C


def as_images(features) -> np.ndarray:
    """MFCCs (n_clips, T, C) as one-channel images (n_clips, 1, T, C), NCHW for Conv2d.

    Examples
    --------
    >>> as_images(np.zeros((2, 49, 10))).shape
    (2, 1, 49, 10)
    """
    features = check_array(features, "features", ndim=3)
    return features[:, np.newaxis].copy()  # (n_clips, 1, T, C)
