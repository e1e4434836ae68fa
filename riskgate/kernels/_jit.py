"""The one switch between numba-compiled kernels and plain Python.

Set ``RISKGATE_NO_JIT=1`` to run every kernel as ordinary Python (debugging, coverage).
Compiled kernels are cached on disk (numba ``cache=True``) so a restart does not recompile.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numba

JIT_ENABLED = os.environ.get("RISKGATE_NO_JIT", "").strip() not in ("1", "true", "yes")


def kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit(cache=True)`` unless JIT is switched off.

    The GIL is kept: order-path kernels run for about a microsecond, and releasing the GIL
    around them only invites another thread to take it mid-decision."""
    if not JIT_ENABLED:
        return fn
    return numba.njit(cache=True, nogil=False, fastmath=False)(fn)


def kernel_nogil(fn: Callable[..., Any]) -> Callable[..., Any]:
    """As :func:`kernel`, releasing the GIL: for the long whole-book kernels of a market
    update, which read only arrays no other thread writes while they run, so that order
    checks keep flowing."""
    if not JIT_ENABLED:
        return fn
    return numba.njit(cache=True, nogil=True, fastmath=False)(fn)
