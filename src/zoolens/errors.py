"""The one exception type users see.

Every problem caused by the user's input (a file, a model, an option) is raised as a
``ZoolensError`` whose message is one line naming the file, the model and the problem. The CLI
prints that line and exits non-zero without a traceback; anything else is a bug and keeps its
traceback.

``ZoolensError`` is a ``ValueError`` (bad input is a bad value), so code that calls zoolens
the way it calls numpy or scikit-learn can catch ``ValueError``.
"""

from __future__ import annotations

import errno
from typing import Any


class ZoolensError(ValueError):
    """A clear, one-line error about the user's input."""

    def __init__(self, message: str):
        # Keep it one line: multi-line messages break the "one clear line" contract.
        super().__init__(" ".join(str(message).split()))


class ZooCorruptedError(ZoolensError):
    """A file in the zoo does not match its recorded hash, size or format."""


# What each OS error family means to a user, by errno (the rest use the OS's own words).
_OS_REASONS = {
    errno.ENOSPC: "no space left on the device (free some space and run the command again)",
    errno.EDQUOT: "disk quota exceeded (free some space and run the command again)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EEXIST: "already exists (a file where a folder is needed?)",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EMFILE: "too many open files",
    errno.EIO: "input/output error (failing disk or network file system?)",
}


def os_error_message(exc: OSError, path: object = None) -> str:
    """One line for an OSError: the path (``exc.filename``, else ``path``) and what the error
    means (ENOSPC, EROFS, EACCES, EISDIR, EEXIST, ... in plain words). Libraries that lose
    ``errno`` on the way (pyarrow says "[errno 28] ... No space left on device") are
    recognised by their message."""
    code = exc.errno
    text = " ".join(str(exc).split())
    if code is None:
        for candidate, words in (
            (errno.ENOSPC, "no space left"),
            (errno.EROFS, "read-only file system"),
            (errno.EACCES, "permission denied"),
        ):
            if words in text.lower():
                code = candidate
                break
    where = exc.filename if exc.filename is not None else path
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    reason = _OS_REASONS.get(code) if code is not None else None
    if reason is None:
        reason = exc.strerror or text or type(exc).__name__
    return f"{where}: {reason}" if where is not None else f"{reason} ({text[:200]})"


def naming_path(exc: OSError, path: object) -> OSError:
    """``exc`` itself when it names a file, else an equal OSError naming ``path`` (writes
    through an open handle, and pyarrow's, do not say which file they were writing)."""
    if exc.filename is not None:
        return exc
    return OSError(exc.errno, exc.strerror or " ".join(str(exc).split()), str(path))


# The packages only the ``torch`` extra installs (``pip install 'zoolens[torch]'``; the
# ``models`` extra adds timm and open_clip on top of it).
TORCH_EXTRA_MODULES = ("torch", "torchvision", "timm", "open_clip", "triton")


def missing_extra_message(what: str, module: str = "torch") -> str:
    """The one line for a feature that needs a package the light install leaves out."""
    extra = "models" if module in ("timm", "open_clip") else "torch"
    return (
        f"{what} needs {module}, which `pip install zoolens` leaves out: "
        f"pip install 'zoolens[{extra}]' (or 'zoolens[all]')"
    )


def require_torch(what: str) -> Any:
    """``torch``, or a ZoolensError naming the extra that installs it (``what``: the
    feature, e.g. "collect"). For the features that run models: collect, predict, probes
    and feature combination, soups, the demo, the model adapters."""
    try:
        import torch
    except ImportError:
        raise ZoolensError(missing_extra_message(what)) from None
    return torch


def optional_torch() -> Any:
    """``torch`` when installed, else None: the analysis of saved outputs runs on numpy
    kernels without it (``measure.fused``, ``measure.calibration``) and on torch's CPU
    kernels with it (their exp and row sums are faster where numpy's are not vectorised)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def one_line(exc: BaseException, limit: int = 300, more: str = "...") -> str:
    """An exception's message folded onto one line (every run of white space one space),
    cut at ``limit`` characters with ``more`` appended where it was cut: the form in which
    a library's message goes into a ``ZoolensError`` or a report note."""
    text = " ".join(str(exc).split())
    return text[:limit] + (more if len(text) > limit else "")


#: Words of torch's messages when an allocation fails (CPU allocator, CUDA, MPS).
_ALLOCATION_FAILURES = ("can't allocate memory", "out of memory", "not enough memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Did ``exc`` come from a failed allocation: a MemoryError, or torch's RuntimeError
    ("DefaultCPUAllocator: can't allocate memory", "CUDA out of memory", ...)?"""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(
        words in str(exc).lower() for words in _ALLOCATION_FAILURES
    )


def out_of_memory_error(who: str, exc: BaseException) -> ZoolensError:
    """The one line for a failed allocation while ``who`` (a model or member) was built or
    run: what ran out, and what to try."""
    # torch's own line ("DefaultCPUAllocator: can't allocate memory: you tried to allocate
    # N bytes"), not the TorchScript interpreter's traceback that may wrap it
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    found = [ln for ln in lines if any(w in ln.lower() for w in _ALLOCATION_FAILURES)]
    detail = one_line(RuntimeError((found or lines or [type(exc).__name__])[0]), 160)
    return ZoolensError(
        f"{who}: out of memory while building or running it ({detail}); a smaller "
        f"--batch-size, input size or network may fit"
    )
