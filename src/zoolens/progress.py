"""Progress bars that respect ``--quiet`` (rich on a terminal, silent otherwise)."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_quiet = False


# Characters that act on a terminal instead of showing: C0/C1 controls (escape sequences,
# carriage return, backspace) and the invisible or reordering format characters (zero-width
# spaces and joiners, bidirectional overrides). Newline and tab are layout, so they stay.
_ACTING = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def terminal_text(text: str) -> str:
    """``text`` safe to print: every character that would act on the terminal (an escape
    sequence in a model name, a bidi override) is shown as its Python escape (``\\x1b``)."""
    return _ACTING.sub(lambda m: ascii(m.group())[1:-1], str(text))


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar and info message in this process."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    return _quiet


def info(message: str) -> None:
    """Print a short status line to stderr unless quiet."""
    if not _quiet:
        print(terminal_text(message), file=sys.stderr, flush=True)


def track(
    iterable: Iterable[T], *, total: int | None = None, description: str = "", unit: str = "it"
) -> Iterator[T]:
    """Iterate with a rich progress bar (items/s shown) unless quiet."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with progress_bar(total or 0, description, unit) as advance:
        try:
            for item in iterable:
                yield item
                advance(1)
        except GeneratorExit:
            # The consumer stopped asking after taking an item (zip with a shorter sequence,
            # a comprehension that ends, a break): that item was handled, so it counts, and
            # the bar ends as finished instead of one short ("2/3").
            advance(1)


@contextlib.contextmanager
def progress_bar(total: int, description: str = "", unit: str = "it"):
    """Context manager yielding ``advance(n)``; for loops that advance by batch sizes.

    A bar whose work is done shows it done: on leaving the block without an error it is
    filled to its total (a total estimated up front, e.g. soup evaluations that stop early,
    never leaves "15/17" behind), and a bar with no known total (0 or None: work that cannot
    count its steps) runs indeterminate and ends at 1/1, never "0/0". After the block,
    ``advance.bar`` and ``advance.task`` are the rich Progress and task (for tests)."""
    if _quiet:
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        # a file or model name in the description is shown, never acted on: terminal
        # escapes and bidi controls escaped, rich markup ("[bold]") shown as typed
        task = bar.add_task(escape(terminal_text(description)), total=total or None, rate="")

        def advance(n: int = 1) -> None:
            bar.update(task, advance=n)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.1f} {unit}/s" if speed else "")

        advance.bar, advance.task = bar, task  # type: ignore[attr-defined]
        yield advance
        done = bar.tasks[0].completed
        final = total if total else max(done, 1)
        bar.update(task, total=final, completed=final)
