"""The result tables of ``zoolens analyze`` and their atomic writing (docs/design.md sec. 5).

Column names are a contract with the report, spelled once in :mod:`zoolens.contracts`;
:func:`write_results` refuses a table whose columns differ from it. Each table is written as CSV (no comment lines) and Parquet; every
file goes to a temporary file in the output folder, is fsynced and then renamed into place,
and ``summary.json`` is written last, so a crash never leaves a half-written table behind a
summary that describes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens.contracts import ANALYZE_TABLES, TABLE_VERSION, columns, version_record
from zoolens.errors import ZoolensError, naming_path
from zoolens.atomic import atomic_write_with, fsync_dir
from zoolens.zoo.scratch import STAGE_PREFIX, owned_name, sweep_dead

# The columns are spelled once, in zoolens.contracts; the writers index this by table name.
TABLE_COLUMNS: dict[str, list[str]] = {name: columns(name) for name in ANALYZE_TABLES}


def empty_table(name: str) -> pd.DataFrame:
    """A table with the contracted columns and no rows."""
    return pd.DataFrame({column: [] for column in columns(name)})


def check_columns(name: str, frame: pd.DataFrame) -> None:
    """Raise AssertionError (a bug, not user error) when ``frame`` breaks the column contract."""
    expected = columns(name)
    if list(frame.columns) != expected:
        raise AssertionError(f"table {name}: columns {list(frame.columns)} != {expected}")


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, NaN and inf written as null."""
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(item) for item in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int)):
        return value
    return str(value)


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically write ``payload`` as indented JSON (NaN -> null)."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    atomic_write_with(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


#: Rows per block where a table's CSV text is made in blocks (:func:`write_csv` with a
#: runner: ``analyze --ray`` formats pairs.csv's 499,500 rows at 1,000 models as Ray tasks).
CSV_BLOCK_ROWS = 50_000

#: ``run_blocks(task, frame, bounds)``: ``task(frame, start, stop)`` for each ``(start,
#: stop)`` of ``bounds``, yielded in that order (``study.distributed.run_chunks_ray``).
BlockRunner = Callable[
    [Callable[[pd.DataFrame, int, int], str], pd.DataFrame, Sequence[tuple[int, int]]],
    Iterable[str],
]


def csv_rows(frame: pd.DataFrame, start: int, stop: int) -> str:
    """The CSV text of ``frame``'s rows ``start``..``stop - 1`` (the header row first when
    ``start`` is 0). The blocks of a frame without date or time columns, joined in order,
    are the bytes of ``frame.to_csv(index=False)``: pandas formats every number and text on
    its own (no column-wide widths or precision) and itself writes in row chunks. (A
    datetime column's format depends on the whole column: :func:`write_csv` writes such a
    frame whole.)"""
    return frame.iloc[start:stop].to_csv(index=False, header=start == 0)


def write_csv(path: Path, frame: pd.DataFrame, run_blocks: BlockRunner | None = None) -> None:
    """Atomically write ``frame`` as CSV: header row, no index, no comment lines, pandas'
    default number formatting (floats round-trip), text cells that would start a
    spreadsheet formula escaped (``contracts.csv_safe``; numbers untouched). Every study
    table (analyze's and probe's) is written through here. With ``run_blocks`` a table of
    more than :data:`CSV_BLOCK_ROWS` rows is formatted by it, a block of rows at a time
    (:func:`csv_rows`), the same bytes."""
    frame = csv_safe_frame(frame)
    # pandas writes a datetime column as dates alone when every value in it is a date:
    # a column-wide choice that blocks could make differently
    timed = any(kind in "mM" for kind in (dtype.kind for dtype in frame.dtypes))
    if run_blocks is None or len(frame) <= CSV_BLOCK_ROWS or timed:
        atomic_write_with(Path(path), lambda tmp: frame.to_csv(tmp, index=False))
        return
    bounds = [
        (start, min(start + CSV_BLOCK_ROWS, len(frame)))
        for start in range(0, len(frame), CSV_BLOCK_ROWS)
    ]

    def write(tmp: Path) -> None:
        # newline="": the text already holds pandas' line terminators (os.linesep).
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            try:
                for text in run_blocks(csv_rows, frame, bounds):
                    handle.write(text)
            except ZoolensError as exc:  # a block's task failed: say which table
                raise ZoolensError(f"{Path(path).name}: {exc}") from None

    atomic_write_with(Path(path), write)


def csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell passed through ``contracts.csv_safe`` (a copy only
    when some cell changes; numeric columns are never touched)."""
    from zoolens.contracts import csv_safe

    changed = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            safe = column.map(csv_safe)
            if not safe.equals(column):
                changed[name] = safe
    return frame.assign(**changed) if changed else frame


def output_folder(out_dir: str | os.PathLike) -> Path:
    """Create the results folder (and its parents) if needed; ZoolensError naming it when it
    cannot be created or is not a folder."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZoolensError(f"{out}: cannot create the output folder ({exc.strerror})") from exc
    if not out.is_dir():
        raise ZoolensError(f"{out}: exists and is not a folder")
    return out


def write_table(
    out_dir: Path,
    name: str,
    frame: pd.DataFrame,
    *,
    parquet: bool = True,
    meta: Mapping[str, Any] | None = None,
    csv_blocks: BlockRunner | None = None,
) -> None:
    """Atomically write ``frame`` as ``name.csv`` (and ``name.parquet``) into ``out_dir``, with
    its version record ``name.json`` (``zoolens.contracts.version_record`` plus ``meta`` and
    ``csv_bytes``, the CSV's size, by which a reader tells a truncated or changed table).
    ``csv_blocks``: see :func:`write_csv`."""
    check_columns(name, frame)
    out_dir = Path(out_dir)
    write_csv(out_dir / f"{name}.csv", frame, csv_blocks)
    if parquet:
        atomic_write_with(
            out_dir / f"{name}.parquet", lambda tmp: frame.to_parquet(tmp, index=False)
        )
    size = (out_dir / f"{name}.csv").stat().st_size
    write_json(
        out_dir / f"{name}.json", {**version_record(name), **(meta or {}), "csv_bytes": size}
    )


def write_results(
    out_dir: str | os.PathLike,
    tables: Mapping[str, pd.DataFrame],
    summary: dict[str, Any],
    *,
    parquet: bool = True,
    cards: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write every table, then ``summary.json`` last, as one run (:class:`StagedOutput`);
    returns the output folder.

    ``cards`` (model name -> ``ModelCard.model_dump(mode="json")``, zoo order) is written as
    ``cards.json``: ``{"table_version": 1, "cards": {...}}`` (the report's model cards).
    """
    staged = StagedOutput(out_dir)
    staged.write_tables(tables, parquet=parquet, cards=cards)
    staged.commit(summary)
    return staged.out


class StagedOutput:
    """A results folder written as a whole, so no failure leaves a folder that mixes runs.

    Every file is first written into a hidden staging folder inside the output folder
    (``.tmp-run-<pid>-<run id>``). ``commit`` moves the files into place, ``summary.json``
    last (renames within one folder: no space needed, nothing half-written). Any failure
    before that (a full disk, Ctrl-C) removes the staging folder, and the output folder too
    when this run created it, so earlier results stay exactly as they were. The run id is
    recorded in ``summary.json`` and in every table's version record (``<table>.json``), so a
    reader can tell one run's folder from a mix (a kill during the renames). Staging folders
    of processes that no longer run are swept when the next run starts.
    """

    def __init__(self, out_dir: str | os.PathLike):
        out = Path(out_dir)
        self.created = not out.exists()
        self.out = output_folder(out)
        sweep_dead(self.out, STAGE_PREFIX)
        self.run_id = uuid.uuid4().hex[:16]
        self.stage = self.out / owned_name(STAGE_PREFIX, self.run_id)
        with self._discard_on_failure():
            self.stage.mkdir()

    @contextlib.contextmanager
    def _discard_on_failure(self):
        try:
            yield
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError) and exc.filename is None:
                raise naming_path(exc, self.out) from None
            raise

    def write_tables(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        parquet: bool = True,
        cards: Mapping[str, Mapping[str, Any]] | None = None,
        csv_blocks: BlockRunner | None = None,
    ) -> None:
        """Stage every table (with this run's id in its version record) and cards.json."""
        with self._discard_on_failure():
            write_tables(
                self.stage,
                tables,
                parquet=parquet,
                cards=cards,
                meta={"run_id": self.run_id},
                csv_blocks=csv_blocks,
            )

    def commit(self, summary: dict[str, Any] | None) -> None:
        """Stage ``summary`` (its ``run_id`` set) and move every staged file into place,
        summary.json last."""
        with self._discard_on_failure():
            if summary is not None:
                summary["run_id"] = self.run_id
                write_json(self.stage / "summary.json", summary)
            names = sorted(os.listdir(self.stage), key=lambda n: (n == "summary.json", n))
            for name in names:
                os.replace(self.stage / name, self.out / name)
            self.stage.rmdir()
            fsync_dir(self.out)

    def discard(self) -> None:
        """Remove what this run staged (and the output folder if this run made it and it is
        empty)."""
        shutil.rmtree(self.stage, ignore_errors=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.out.rmdir()


def write_tables(
    out: Path,
    tables: Mapping[str, pd.DataFrame],
    *,
    parquet: bool = True,
    cards: Mapping[str, Mapping[str, Any]] | None = None,
    meta: Mapping[str, Any] | None = None,
    csv_blocks: BlockRunner | None = None,
) -> None:
    """Every table (``meta`` added to each version record) and cards.json into the existing
    folder ``out`` (summary.json is the caller's, written after: :func:`write_results`).
    ``csv_blocks``: see :func:`write_csv`."""
    for name, frame in tables.items():
        write_table(out, name, frame, parquet=parquet, meta=meta, csv_blocks=csv_blocks)
    if cards is not None:
        write_json(out / "cards.json", {"table_version": TABLE_VERSION, "cards": dict(cards)})
