"""The typer app, the shared ``--quiet`` flag and the one-line error handling."""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from fractions import Fraction
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from zoolens import __version__
from zoolens.errors import (
    TORCH_EXTRA_MODULES,
    ZoolensError,
    missing_extra_message,
    os_error_message,
)
from zoolens.progress import set_quiet, terminal_text

_display_type_rich = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx) -> str | None:
    """A flag takes no value: show nothing in --help's type column (typer shows ``<bool>``,
    which reads as if ``--quick true`` were expected)."""
    return None if self.is_flag else _display_type_rich(self, ctx)


TyperOption.display_type_rich = _flag_without_type  # type: ignore[method-assign]

app = typer.Typer(
    name="zoolens",
    help=(
        "How differently do your models behave, and which ones complement each other?\n\n"
        "Example:  zoolens demo --quick   (train a small zoo on Fashion-MNIST, analyse it, "
        "write an HTML report)"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        print(f"zoolens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or info lines.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    set_quiet(quiet)


MAX_ERROR_CHARS = 1_000  # an error line; longer ones (a huge value quoted) are cut


def fail(message: str, code: int = 1) -> None:
    """Print one error line to stderr and exit non-zero (no traceback); control characters
    are shown escaped and the line is cut at MAX_ERROR_CHARS."""
    text = terminal_text(" ".join(str(message).split()))
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    print(f"error: {text}", file=sys.stderr)
    raise typer.Exit(code)


def refuse_inside_zoo(path: Any, option: str = "--out") -> None:
    """ZoolensError when ``path`` is a zoo or lies inside one (a folder holding the zoo's
    manifest): writing there would overwrite or litter the zoo's own files."""
    from pathlib import Path

    from zoolens.zoo.store import MANIFEST

    if path is None:
        return
    target = Path(path).expanduser().resolve()
    for folder in (target, *target.parents):
        if (folder / MANIFEST).is_file():
            raise ZoolensError(
                f"{option} {path}: inside the zoo {folder}; write results outside the zoo"
            )


# What Ctrl-C leaves behind, by command function: said exactly, since only collect resumes.
INTERRUPTED = {
    "collect": "finished shards are kept; run the command again to resume",
    "demo": "trained models are cached; run the command again to continue",
    "import_": "the zoo is as it was before the command or as it is after it, never half "
    "written (see `zoolens info`)",
    "remove_cmd": "each model is either removed or still there, never half removed (see "
    "`zoolens info`)",
    "analyze": "the output folder is unchanged (results are written as a whole at the end)",
    "ensemble": "the output folder is unchanged (results are written as a whole at the end)",
    "report": "the report was not written (an earlier one is unchanged)",
}
INTERRUPTED_DEFAULT = "nothing half-written is left behind; run the command again"


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ZoolensError and every OSError (``zoolens.errors.os_error_message``: the path and
    what ENOSPC, EROFS, EACCES, EISDIR, EEXIST ... mean) into one line + exit 1; so is a
    missing torch / torchvision / timm / open_clip (the line names the extra to install)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ZoolensError as exc:
            fail(str(exc))
        except OSError as exc:  # disk full, read-only, permissions, a folder where a file goes
            fail(os_error_message(exc))
        except KeyboardInterrupt:
            fail(f"interrupted: {INTERRUPTED.get(func.__name__, INTERRUPTED_DEFAULT)}", 130)
        except ImportError as exc:  # a package only an extra installs (the light install)
            root = (exc.name or "").split(".")[0]
            if root not in TORCH_EXTRA_MODULES:
                raise
            fail(missing_extra_message(f"zoolens {func.__name__.rstrip('_')}", root))

    return wrapper


def gib_to_bytes(gib: float, option: str = "--memory-gb") -> int:
    """A memory size given in GiB as bytes; ZoolensError for inf, NaN or a non-positive
    value (the range itself is checked where the budget is used)."""
    if not math.isfinite(gib) or gib <= 0:
        raise ZoolensError(f"{option} {gib}: give a positive number of GiB, e.g. 4")
    return int(Fraction(gib) * 2**30)  # exact: 1e300 GiB stays a number the limit names


def main() -> None:
    app()


def parse_model_pairs(values: list[str] | None, option: str) -> list[tuple[str, str]] | None:
    """Repeated ``OPTION A,B`` values as ``[(A, B), …]`` (None when not given)."""
    if not values:
        return None
    pairs = []
    for value in values:
        parts = [part.strip() for part in value.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ZoolensError(f"{option} {value!r}: give two model names as A,B")
        pairs.append((parts[0], parts[1]))
    return pairs


def invocation(ctx: typer.Context | None = None) -> str:
    """The current command as a shell would re-run it, for provenance records.

    From a shell ``sys.argv`` is exact. When the app is called in-process (tests, notebooks,
    the demo), ``sys.argv`` belongs to the host program, so the command is rebuilt from the
    command's context (``ctx``: the ``typer.Context`` parameter of the command).
    """
    import shlex
    from pathlib import Path

    if ctx is None or Path(sys.argv[0]).name == "zoolens":
        return shlex.join(["zoolens", *sys.argv[1:]])
    parts = ["zoolens", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value is False or value == () or value == []:
            continue
        values = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        if param.param_type_name == "argument":
            parts.extend(values)
        elif value is True:
            parts.append(param.opts[0])
        else:
            for item in values:
                parts.extend([param.opts[0], item])
    return shlex.join(parts)
