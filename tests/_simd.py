"""numpy's SIMD settings to run the tests under, read from this machine's numpy.

numpy picks a SIMD path per function at import (its "dispatched" targets, e.g.
``X86_V3 X86_V4 AVX512_ICL AVX512_SPR`` in numpy 2.4; ``AVX2``, ``AVX512F``, ... in older
releases), and ``NPY_DISABLE_CPU_FEATURES`` switches targets off. float32 sums differ in their
last bits between those paths, as they do between a user's CPU and CI's, so CI runs the
reference tests under each setting (``.ci/run``) and ``tests/test_portable.py`` compares the
Quick start's tables across them.

The names come from ``numpy.show_runtime()``'s ``simd_extensions`` (the dispatched targets
this CPU has: ``found``): only those, since numpy refuses to disable a baseline feature and
ignores, with a warning, one it does not dispatch.

    python tests/_simd.py            # one line per setting: name, then the variable's value
    python tests/_simd.py no-avx512  # that setting's NPY_DISABLE_CPU_FEATURES value
"""

from __future__ import annotations

import sys


def dispatched_found() -> list[str]:
    """The dispatched SIMD targets this CPU has: ``numpy.show_runtime()``'s
    ``simd_extensions["found"]``, computed as it computes it (it prints, returning nothing).
    Call it with ``NPY_DISABLE_CPU_FEATURES`` unset: a disabled target reads as not found."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def settings() -> dict[str, str]:
    """Setting name -> ``NPY_DISABLE_CPU_FEATURES`` value: ``"default"`` (every path on),
    ``"no-avx512"`` (the AVX-512 targets off) and ``"no-avx2"`` (every dispatched target off:
    the baseline alone, as on a CPU without AVX2). A setting this CPU cannot differ in
    (it lacks those targets) is left out."""
    found = dispatched_found()
    avx512 = [n for n in found if n.startswith("AVX512") or n == "X86_V4"]
    out = {"default": ""}
    if avx512:
        out["no-avx512"] = " ".join(avx512)
    if [n for n in found if n not in avx512]:
        out["no-avx2"] = " ".join(found)
    return out


if __name__ == "__main__":
    table = settings()
    if len(sys.argv) > 1:
        print(table.get(sys.argv[1], ""))
    else:
        for name, value in table.items():
            print(name, value)
