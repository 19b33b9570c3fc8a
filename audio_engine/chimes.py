"""The chimes' specifications and their lengths, in plain Python (no numpy).

- `CHIME_NAMES`, `CHIME_VERSION`, `CHIME_MAX_SAMPLES`, `CHIME_FADE_SAMPLES`.
- `samples(name)`: the length in samples of the chime `synth.chime(name)` makes. The timeline
  places chimes by this length alone, so that a timeline (`relax list`, `relax info`) needs no
  numpy; `synth` makes the sound to the same length (`length_after_peak`).

A chime lasts until its partials' envelopes, which only fall, are 60 dB under its peak. The peak
is found here by following the partials sample by sample only as long as the envelopes still
reach above the highest sample so far (a few thousand samples), not over the whole chime.
"""

from __future__ import annotations

import cmath
import functools
import itertools
import math
import operator
from dataclasses import dataclass

from audio_engine.model import SAMPLE_RATE

CHIME_MAX_SAMPLES = 6 * SAMPLE_RATE
CHIME_FADE_SAMPLES = round(0.05 * SAMPLE_RATE)
CHIME_VERSION = 2  # bump when anything changes what a chime contains
_CHIME_FLOOR = 1e-3  # -60 dB of peak: the chime has rung out
_LN1000 = math.log(1000.0)
_BLOCK = 256  # samples between exact exponentials (and looks at the envelopes) in `_peak`


@dataclass(frozen=True)
class _Partial:
    ratio: float  # frequency / the chime's fundamental
    amplitude: float
    t60_s: float  # time to decay by 60 dB
    beat_hz: float = 0.0  # a slightly detuned twin (real bells and bowls are not symmetric)


@dataclass(frozen=True)
class _Bell:
    fundamental_hz: float
    attack_s: float
    partials: tuple[_Partial, ...]


# Partial ratios: `bell` a small tuned church/temple bell (hum, prime, minor-third tierce, quint,
# nominal and a quiet upper cluster); `bowl` a Himalayan singing bowl (1 : 2.76 : 5.2 : 8.3, with
# the beating doublets bowls are known for); `soft` a felt-mallet bar (1 : 2 : 3.93), short.
# High partials are quiet and die fast so nothing is harsh.
_CHIMES: dict[str, _Bell] = {
    "bell": _Bell(
        fundamental_hz=440.0,
        attack_s=0.004,
        partials=(
            _Partial(0.5, 0.30, 5.5, 0.4),
            _Partial(1.0, 1.00, 4.5, 0.7),
            _Partial(1.19, 0.40, 3.5),
            _Partial(1.5, 0.16, 2.5),
            _Partial(2.0, 0.40, 3.0, 1.1),
            _Partial(2.51, 0.10, 1.6),
            _Partial(2.66, 0.08, 1.4),
            _Partial(3.01, 0.05, 1.0),
        ),
    ),
    "bowl": _Bell(
        fundamental_hz=196.0,
        attack_s=0.012,
        partials=(
            _Partial(1.0, 1.00, 7.5, 0.9),
            _Partial(2.76, 0.45, 5.5, 1.6),
            _Partial(5.2, 0.14, 3.0, 2.3),
            _Partial(8.3, 0.04, 1.6),
        ),
    ),
    "soft": _Bell(
        fundamental_hz=659.26,
        attack_s=0.006,
        partials=(
            _Partial(1.0, 1.00, 1.3),
            _Partial(2.0, 0.12, 0.8),
            _Partial(3.93, 0.05, 0.35),
        ),
    ),
}

CHIME_NAMES = tuple(sorted(_CHIMES))


def _bound(spec: _Bell, i: int) -> float:
    """An upper bound of |x| from sample i on: the sum of the partials' envelopes."""
    return sum(
        p.amplitude * math.exp(-_LN1000 * i / (p.t60_s * SAMPLE_RATE)) for p in spec.partials
    )


def length_after_peak(spec: _Bell, peak: float) -> int:
    """The chime's length: one past the first sample where the envelopes are under the floor."""
    lo, hi = 0, CHIME_MAX_SAMPLES
    while lo < hi:  # the envelopes only fall: by bisection
        mid = (lo + hi) // 2
        if _bound(spec, mid) < _CHIME_FLOOR * peak:
            hi = mid
        else:
            lo = mid + 1
    return min(lo + 1, CHIME_MAX_SAMPLES)


def _peak(spec: _Bell) -> float:
    """max |x| of the chime before its fade and normalisation (as `synth` makes it)."""
    components = []  # (amplitude, complex rate per sample)
    for p in spec.partials:
        f_hz = spec.fundamental_hz * p.ratio
        decay = -_LN1000 / (p.t60_s * SAMPLE_RATE)
        if p.beat_hz:
            components.append((0.8 * p.amplitude, complex(decay, 2 * math.pi * f_hz / SAMPLE_RATE)))
            f2 = f_hz + p.beat_hz
            components.append((0.2 * p.amplitude, complex(decay, 2 * math.pi * f2 / SAMPLE_RATE)))
        else:
            components.append((p.amplitude, complex(decay, 2 * math.pi * f_hz / SAMPLE_RATE)))
    attack = round(spec.attack_s * SAMPLE_RATE)
    steps = [cmath.exp(rate) for _, rate in components]
    peak = 0.0
    i = 0
    while i < CHIME_MAX_SAMPLES and _bound(spec, i) >= peak:
        n = min(_BLOCK, CHIME_MAX_SAMPLES - i)
        # Each component from an exact start, times its step per sample; x is the imaginary part
        # of their sum (the sum of their imaginary parts).
        rows = [
            itertools.accumulate(
                itertools.repeat(step, n - 1), operator.mul, initial=a * cmath.exp(rate * i)
            )
            for (a, rate), step in zip(components, steps, strict=True)
        ]
        x = [z.imag for z in map(sum, zip(*rows, strict=True))]
        for j in range(max(0, min(attack - i, n))):  # the strike's sin^2 rise
            x[j] *= math.sin(0.5 * math.pi * (i + j) / attack) ** 2
        peak = max(peak, max(map(abs, x)))
        i += n
    return peak


@functools.lru_cache(maxsize=len(_CHIMES))
def samples(name: str) -> int:
    """The length of the chime `name` in samples (`ValueError` for an unknown name)."""
    try:
        spec = _CHIMES[name]
    except KeyError:
        raise ValueError(f"unknown chime {name!r}; expected one of {list(CHIME_NAMES)}") from None
    return length_after_peak(spec, _peak(spec))
