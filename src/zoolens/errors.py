"""The one exception type users see.

Every problem caused by the user's input (a file, a model, an option) is raised as a
``ZoolensError`` whose message is one line naming the file, the model and the problem. The CLI
prints that line and exits non-zero without a traceback; anything else is a bug and keeps its
traceback.

``ZoolensError`` is a ``ValueError`` (bad input is a bad value), so code that calls zoolens
the way it calls numpy or scikit-learn can catch ``ValueError``.
"""

from __future__ import annotations


class ZoolensError(ValueError):
    """A clear, one-line error about the user's input."""

    def __init__(self, message: str):
        # Keep it one line: multi-line messages break the "one clear line" contract.
        super().__init__(" ".join(str(message).split()))


class ZooCorruptedError(ZoolensError):
    """A file in the zoo does not match its recorded hash, size or format."""
