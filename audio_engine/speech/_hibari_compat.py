"""Where relax reaches inside hibari-tts (its private parts), all in one place.

hibari's public interface loads everything in `Hibari.__init__` and its pronunciation tables from
JSON each time; relax needs four things it does not offer, each relying on a private detail:

- `import_hibari`: hibari imported without `scipy.fft`'s public layer (0.2 s of every cold
  start), handing its vocoder (`hibari.dsp`, which calls `scipy.fft.rfft(x, axis=, overwrite_x=)`
  and `scipy.fft.irfft(x, n=, axis=)`) a stand-in module on the same pocketfft kernels;
- `tables_loaded_by`: `hibari.g2p._load_json`, the function `G2P.__init__` reads its tables
  with, swapped for relax's own (the tables kept packed in the cache folder) while a `G2P` is made;
- `forget_caches`: the vocoder's cache of window sums (`hibari.dsp._ola_norm`) emptied when
  the voice is let go;
- `assemble`: a `hibari.Hibari` made with `Hibari.__new__` and the attributes its `__init__` sets
  (`voice`, `model_path`, `sess`, `vocab`, `_g2p`), on a session and a pronunciation stage loaded
  apart, on two threads.

`check(hibari)` says what of this no longer holds for the installed hibari (a test runs it, so an
upgrade that changes any of it fails loudly instead of speaking differently).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import sys
import threading
import types
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy where a clip is made: choosing a voice needs none
    import numpy as np


_IMPORT_LOCK = threading.Lock()
_TABLES_LOCK = threading.Lock()
# What `assemble` sets, as hibari's `Hibari.__init__` does (checked by `check`).
HIBARI_ATTRIBUTES = frozenset({"voice", "model_path", "sess", "vocab", "_g2p"})


def import_hibari():
    """The `hibari` package, imported without `scipy.fft`'s public layer.

    hibari's vocoder (`hibari.dsp`) calls `scipy.fft.rfft` and `scipy.fft.irfft`, and importing
    `scipy.fft` costs about 0.2 s of every cold start (its array-API layer imports numpy.f2py,
    numpy.testing and scipy.special). Both calls end in pocketfft's kernels
    (`scipy.fft._pocketfft.pypocketfft.r2c` and `c2r`) with the arguments `_PocketFFT` passes,
    so hibari is handed that instead: the same kernels, the same samples (tested against the
    public `scipy.fft`). Where anything of that is missing, hibari imports `scipy.fft` itself.
    """
    with _IMPORT_LOCK:
        if "hibari.tts" in sys.modules or "scipy.fft" in sys.modules:
            import hibari

            return hibari
        fft = _pocketfft()
        if fft is None:
            import hibari

            return hibari
        sys.modules["scipy.fft"] = fft
        try:
            import hibari
        finally:
            if sys.modules.get("scipy.fft") is fft:
                del sys.modules["scipy.fft"]
            scipy = sys.modules.get("scipy")
            if scipy is not None and getattr(scipy, "__dict__", {}).get("fft") is fft:
                del scipy.fft
        return hibari


def _pocketfft():
    """A stand-in `scipy.fft` module with `rfft` and `irfft` on pocketfft's kernels (loaded on
    their own, like `loudness` loads its filter kernel, where `scipy.fft` is not imported yet),
    or None."""
    try:
        if "scipy.fft" in sys.modules:
            kernels = importlib.import_module("scipy.fft._pocketfft.pypocketfft")
        else:
            kernels = _kernels_alone()
        fft = types.ModuleType("scipy.fft")
        fft.__doc__ = "rfft and irfft on pocketfft's kernels (see _hibari_compat.import_hibari)"
        fft.rfft, fft.irfft = _PocketFFT(kernels).rfft, _PocketFFT(kernels).irfft
        return fft
    except (ImportError, AttributeError, OSError, TypeError):
        return None


def _kernels_alone():
    """scipy's pocketfft extension module, without running `scipy.fft`'s package code."""
    import scipy

    folder = Path(scipy.__file__).parent / "fft"
    stubs = {}
    for name, path in (("scipy.fft", folder), ("scipy.fft._pocketfft", folder / "_pocketfft")):
        stub = types.ModuleType(name)
        stub.__path__ = [str(path)]
        stubs[name] = stub
    sys.modules.update(stubs)
    try:
        return importlib.import_module("scipy.fft._pocketfft.pypocketfft")
    finally:
        for name in stubs:
            sys.modules.pop(name, None)
        sys.modules.pop("scipy.fft._pocketfft.pypocketfft", None)


class _PocketFFT:
    """What `scipy.fft.rfft(x, axis=a)` and `scipy.fft.irfft(x, n=n, axis=a)` do for a float32 or
    complex64 numpy array (scipy's `_pocketfft.basic.r2c` and `c2r`, without their checks for
    other input): native byte order and aligned data, the default "backward" norm, one worker."""

    def __init__(self, kernels):
        self._kernels = kernels

    @staticmethod
    def _aligned(x: np.ndarray) -> np.ndarray:
        import numpy as np

        if x.dtype.kind not in "fc" or x.dtype == np.float16:
            raise TypeError(f"unexpected FFT input {x.dtype}")
        dtype = x.dtype.newbyteorder("=")
        return np.array(x, dtype=dtype, copy=True if not x.flags["ALIGNED"] else None)

    def rfft(self, x, n=None, axis=-1, norm=None, overwrite_x=False, workers=None):
        import numpy as np

        if n is not None or norm is not None or workers is not None:
            raise TypeError("only the calls hibari makes")
        tmp = self._aligned(np.asarray(x))
        if not np.isrealobj(tmp) or tmp.shape[axis] < 1:
            raise TypeError("x must be a real sequence")
        return self._kernels.r2c(tmp, (axis,), True, 0, None, 1)

    def irfft(self, x, n=None, axis=-1, norm=None, overwrite_x=False, workers=None):
        import numpy as np

        if n is None or norm is not None or workers is not None:
            raise TypeError("only the calls hibari makes")
        tmp = self._aligned(np.asarray(x))
        if np.isrealobj(tmp):
            tmp = tmp + 0.0j
        keep = n // 2 + 1
        if tmp.shape[axis] < keep:
            raise TypeError("only the calls hibari makes")
        index = [slice(None)] * tmp.ndim
        index[axis] = slice(0, keep)
        return self._kernels.c2r(tmp[tuple(index)], (axis,), n, False, 2, None, 1)


@contextlib.contextmanager
def tables_loaded_by(g2p_module, load_json):
    """While inside, `hibari.g2p` reads its tables with `load_json(name)` (one at a time)."""
    with _TABLES_LOCK:  # (the stand-in loader is the module's for this moment)
        original = g2p_module._load_json
        g2p_module._load_json = load_json
        try:
            yield original
        finally:
            g2p_module._load_json = original


def assemble(*, voice: str, model_path: str, session, vocab: dict, g2p):
    """A `hibari.Hibari` on this session and pronunciation stage (what its `__init__` makes)."""
    hibari = import_hibari()
    engine = hibari.Hibari.__new__(hibari.Hibari)
    engine.voice = voice
    engine.model_path = model_path
    engine.sess = session
    engine.vocab = vocab
    engine._g2p = g2p
    return engine


# hibari's vocoder as `synth` mirrors it (`check` compares the code, a test the samples).
DSP_SYNTH = """def synth(lh, th, ln, lr, phi, f0, rng):
    spec = stft(pulses(f0), lh.shape[1])
    rot = np.empty(lh.shape, np.complex64)
    c = np.tanh(th); c *= np.pi
    np.cos(c, out=rot.real); np.sin(c, out=rot.imag); rot *= ex(lh)
    spec *= rot
    z = rng.standard_normal((lh.shape[0], 2 * lh.shape[1]), dtype=np.float32).view(np.complex64)
    z *= ex(ln); spec += z
    np.cos(phi, out=rot.real); np.sin(phi, out=rot.imag); rot *= ex(lr); spec += rot
    return ola(spec)
"""
DSP_EX = """def ex(x):
    return np.exp(np.minimum(x, 7.0), dtype=np.float32)
"""


def synth(outputs: list, f0: np.ndarray, rng) -> np.ndarray:
    """`hibari.dsp.synth(lh, th, ln, lr, phi, f0, rng)` (`DSP_SYNTH`): the same operations in the
    same order, so the same samples (tested), but on the network's outputs `outputs` ([lh, th,
    ln, lr, phi], float32 [601, F] each; the list is emptied) in place, each let go once used:
    the vocoder of a long sentence took 25 MiB at its peak, now 17."""
    import numpy as np

    dsp = import_hibari().dsp

    def ex(x):  # `dsp.ex`, in place
        np.minimum(x, 7.0, out=x)
        return np.exp(x, out=x, dtype=np.float32)

    lh, th, ln, lr, phi = outputs
    outputs.clear()
    shape = lh.shape
    spec = dsp.stft(dsp.pulses(f0), shape[1])
    rot = np.empty(shape, np.complex64)
    c = np.tanh(th, out=th)
    del th
    c *= np.pi
    np.cos(c, out=rot.real)
    np.sin(c, out=rot.imag)
    del c
    rot *= ex(lh)
    del lh
    spec *= rot
    z = rng.standard_normal((shape[0], 2 * shape[1]), dtype=np.float32).view(np.complex64)
    z *= ex(ln)
    del ln
    spec += z
    del z
    np.cos(phi, out=rot.real)
    np.sin(phi, out=rot.imag)
    del phi
    rot *= ex(lr)
    del lr
    spec += rot
    del rot
    return dsp.ola(spec)


def forget_caches() -> None:
    """Empty what hibari's vocoder keeps between clips (`hibari.dsp._ola_norm`'s cache of window
    sums, a few MiB), where it is loaded."""
    dsp = sys.modules.get("hibari.dsp")
    clear = getattr(getattr(dsp, "_ola_norm", None), "cache_clear", None)
    if clear is not None:
        clear()


def check(hibari) -> list[str]:
    """What of relax's reliance on hibari's private parts does not hold (empty: all holds)."""
    problems = []
    init = inspect.getsource(hibari.tts.Hibari.__init__)
    sets = set(re.findall(r"self\.(\w+)\s*=", init))
    if sets != HIBARI_ATTRIBUTES:
        problems.append(
            f"Hibari.__init__ sets {sorted(sets)}, relax's assemble sets "
            f"{sorted(HIBARI_ATTRIBUTES)}"
        )
    g2p = importlib.import_module("hibari.g2p")
    if not callable(getattr(g2p, "_load_json", None)):
        problems.append("hibari.g2p._load_json is gone")
    elif "_load_json(" not in inspect.getsource(g2p.G2P.__init__):
        problems.append("hibari.g2p.G2P no longer reads its tables with _load_json")
    if not callable(getattr(importlib.import_module("hibari.dsp")._ola_norm, "cache_clear", None)):
        problems.append("hibari.dsp._ola_norm keeps no cache that can be emptied")
    dsp_module = importlib.import_module("hibari.dsp")
    for function, expected in ((dsp_module.synth, DSP_SYNTH), (dsp_module.ex, DSP_EX)):
        if _code_lines(inspect.getsource(function)) != _code_lines(expected):
            problems.append(f"hibari.dsp.{function.__name__} is no longer what synth mirrors")
    dsp = inspect.getsource(dsp_module)
    calls = set(re.findall(r"_sf\.(\w+)\(([^)]*)\)", dsp))
    expected = {("rfft", "x, axis=axis, overwrite_x=True"), ("irfft", "x, n=n, axis=axis")}
    if "import scipy.fft as _sf" not in dsp or calls != expected:
        problems.append(f"hibari.dsp calls scipy.fft as {sorted(calls)}, not {sorted(expected)}")
    return problems


def _code_lines(source: str) -> list[str]:
    """The lines of a function's code: its docstring, comments and blank lines left out."""
    lines = []
    for line in source.splitlines():
        code = line.split("#", 1)[0].rstrip()
        if code.strip() and not code.strip().startswith('"""'):
            lines.append(code)
    return lines
