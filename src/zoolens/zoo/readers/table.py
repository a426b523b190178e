"""Text tables: ``.csv``, ``.tsv`` (tab-separated) and ``.txt`` (as CSV). A header row is
detected (every field of the first row non-numeric) unless ``header`` is given; columns are
0-based or header names. Tables are sized in one pass over their bytes before parsing."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoolens.errors import ZoolensError, one_line
from zoolens.progress import info
from zoolens.zoo.classes import MAX_TEXT_CHARS, is_number, is_text, text_to_class_ids
from zoolens.zoo.readers.base import Loaded, Reader, Request
from zoolens.zoo.readers.kinds import resolve_kind

TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


class TableReader(Reader):
    """A CSV / TSV table of text cells."""

    def outputs(self, path: Path, request: Request) -> Loaded:
        return _load_table_outputs(path, request)

    def label_values(
        self, path: Path, *, key: str | None, column: str | int | None, header: bool | None
    ) -> np.ndarray:
        table = read_table(path, header)
        if column is None:
            if table.cells.shape[1] != 1:
                raise ZoolensError(
                    f"{path}: {table.cells.shape[1]} columns; choose the label "
                    "column (--labels-column)"
                )
            column = 0
        col = table.column_index(column, "labels column")
        if is_text(table.cells[:, col]):
            return np.char.strip(table.cells[:, col])
        return table.numeric([col], "labels")[:, 0]

    def ids(self, path: Path, id_column: str | int, header: bool | None) -> np.ndarray:
        table = read_table(path, header)
        col = table.column_index(id_column, "--id-column")
        return np.char.strip(table.cells[:, col])

    def has_column(self, path: Path, column: str | int, header: bool | None) -> bool:
        names = read_table(path, header).names
        return names is not None and str(column) in names

    def id_column_holding(
        self, path: Path, zoo_ids: np.ndarray, header: bool | None, cols: slice | None
    ) -> int | None:
        table = read_table(path, header)
        n_rows, n_cols = table.cells.shape
        if n_rows != len(zoo_ids):
            return None
        selected = set(range(n_cols)[cols]) if cols is not None else set()
        wanted = np.sort(np.asarray(zoo_ids).astype(str))
        for col in range(n_cols):
            if col in selected:
                continue
            if np.array_equal(np.sort(np.char.strip(table.cells[:, col])), wanted):
                shown = repr(table.names[col]) if table.names else str(col)
                info(
                    f"{path}: column {shown} holds the zoo's example ids: rows joined by it "
                    "(--id-column)"
                )
                return col
        return None


@dataclass
class Table:
    path: Path
    cells: np.ndarray  # (rows, cols) str
    names: list[str] | None  # header
    first_line: int  # 1-based line number of the first data row

    def column_index(self, ref: str | int, what: str) -> int:
        n_cols = self.cells.shape[1]
        if isinstance(ref, str) and self.names is not None and ref in self.names:
            return self.names.index(ref)
        try:
            col = int(ref)
        except (TypeError, ValueError):
            known = f"; header: {', '.join(self.names[:30])}" if self.names else ""
            raise ZoolensError(
                f"{self.path}: {what} {ref!r} is neither a 0-based column "
                f"number nor a header name{known}"
            ) from None
        if not 0 <= col < n_cols:
            raise ZoolensError(
                f"{self.path}: {what} {col} out of range (the file has {n_cols} "
                "columns, numbered from 0)"
            )
        return col

    def numeric(self, cols: list[int], what: str) -> np.ndarray:
        block = self.cells[:, cols]
        try:
            return block.astype(np.float64)
        except ValueError:
            pass
        for i, row in enumerate(block):  # find the first bad cell for the message
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    line, col = self.first_line + i, cols[j]
                    if cell.strip() == "":
                        raise ZoolensError(
                            f"{self.path}: line {line}, column {col}: empty value in the {what}"
                        ) from None
                    hint = ""
                    if col == 0 and what == "model outputs":
                        name = f" (or {self.names[0]!r})" if self.names else ""
                        hint = (
                            f"; if column 0 holds example ids or file names, join the rows "
                            f"by them with --id-column 0{name}"
                        )
                    raise ZoolensError(
                        f"{self.path}: line {line}, column {col}: {str(cell)!r} is "
                        f"not a number ({what}){hint}"
                    ) from None
        raise ZoolensError(f"{self.path}: the {what} are not numbers")


# Tables are parsed as text cells (about 60 bytes each in memory): beyond these limits an
# array file (.npy, .npz, .safetensors) is the format that fits. Documented in README.md.
MAX_TABLE_COLUMNS = 100_000
MAX_TABLE_CELLS = 100_000_000
MAX_TABLE_TEXT_BYTES = 2 << 30  # the parsed cells as one fixed-width text array
_SNIFF_BLOCK = 1 << 24


def sniff_table_size(path: Path, sep: str) -> tuple[int, int]:
    """(rows, widest row's fields) of a text table, counted in one pass over its bytes in
    16 MiB blocks (separators inside quotes count too: an upper bound), before any parsing;
    ZoolensError naming the line when a row is wider than ``MAX_TABLE_COLUMNS`` or the table
    holds more than ``MAX_TABLE_CELLS`` cells."""
    sep_byte, newline = ord(sep), ord("\n")
    rows, widest, widest_line = 0, 0, 0
    carry, last = 0, newline  # separators of the unfinished line; the last byte read
    with open(path, "rb") as fh:
        while widest <= MAX_TABLE_COLUMNS and (block := fh.read(_SNIFF_BLOCK)):
            arr = np.frombuffer(block, dtype=np.uint8)
            last = int(arr[-1])
            ends = np.flatnonzero(arr == newline)
            seps = np.cumsum(arr == sep_byte, dtype=np.int64)
            if not len(ends):
                carry += int(seps[-1])
                continue
            per_line = np.diff(np.concatenate(([0], seps[ends])))  # separators per line
            per_line[0] += carry
            carry = int(seps[-1] - seps[ends[-1]])
            k = int(np.argmax(per_line))
            if per_line[k] + 1 > widest:
                widest, widest_line = int(per_line[k]) + 1, rows + k + 1
            rows += len(ends)
    if last != newline:  # a last line without a newline
        rows += 1
        if carry + 1 > widest:
            widest, widest_line = carry + 1, rows
    if widest > MAX_TABLE_COLUMNS:
        raise ZoolensError(
            f"{path}: line {widest_line} has {widest:,} fields; tables of at "
            f"most {MAX_TABLE_COLUMNS:,} columns are read (save wide outputs "
            "as .npy, .npz or .safetensors)"
        )
    if rows * widest > MAX_TABLE_CELLS:
        raise ZoolensError(
            f"{path}: {rows:,} rows of up to {widest:,} fields is more than the "
            f"{MAX_TABLE_CELLS:,} cells a text table may hold (save the outputs "
            "as .npy, .npz or .safetensors)"
        )
    return rows, widest


def read_table(path: Path, header: bool | None) -> Table:
    import pandas as pd

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    sniff_table_size(path, sep)
    try:
        df = pd.read_csv(
            path,
            header=None,
            dtype=str,
            sep=sep,
            na_filter=False,
            keep_default_na=False,
            skipinitialspace=True,
            comment=None,
        )
    except pd.errors.EmptyDataError:
        raise ZoolensError(f"{path}: file is empty") from None
    except pd.errors.ParserError as exc:
        msg = one_line(exc).replace("Error tokenizing data. C error: ", "")
        raise ZoolensError(
            f"{path}: ragged rows ({msg}); every row needs the same number of fields"
        ) from None
    except UnicodeDecodeError:
        raise ZoolensError(f"{path}: not a text (CSV) file") from None
    # cells are Python strings here: measure them before they become a fixed-width array
    # (its width is the longest cell, for every cell)
    widest = 0
    for col, values in enumerate(df.columns):
        lengths = df[values].str.len().to_numpy()
        if len(lengths) and lengths.max() > MAX_TEXT_CHARS:
            row = int(lengths.argmax())
            raise ZoolensError(
                f"{path}: line {row + 1}, column {col + 1}: a cell of {int(lengths.max()):,} "
                f"characters; a table cell (an id, a label, a class name) is at most "
                f"{MAX_TEXT_CHARS:,}"
            )
        widest = max(widest, int(lengths.max()) if len(lengths) else 0)
    if df.size * widest * 4 > MAX_TABLE_TEXT_BYTES:
        raise ZoolensError(
            f"{path}: {df.size:,} cells with one of {widest:,} characters would take "
            f"{df.size * widest * 4 / 2**30:.1f} GiB as text; shorten the long cells or save "
            f"the outputs as .npy, .npz or .safetensors"
        )
    cells = df.to_numpy(dtype=str)
    if cells.size and (cells == "").any():
        _check_ragged(path, sep, cells.shape[1])
    if header is None:
        header = bool(cells.shape[0]) and not any(is_number(c) for c in cells[0] if c != "")
    names = [c.strip() for c in cells[0]] if header else None
    data = cells[1:] if header else cells
    if data.shape[0] == 0:
        raise ZoolensError(f"{path}: no data rows")
    return Table(path, data, names, first_line=2 if header else 1)


def _check_ragged(path: Path, sep: str, n_fields: int) -> None:
    """pandas pads short rows with empty fields; find them with the csv module."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for line, row in enumerate(csv.reader(fh, delimiter=sep), start=1):
            if row and len(row) != n_fields:
                raise ZoolensError(
                    f"{path}: ragged rows (line {line} has {len(row)} fields, "
                    f"expected {n_fields}); every row needs the same number of "
                    "fields"
                )


def _load_table_outputs(path: Path, request: Request) -> Loaded:
    """The outputs (and id and label columns) of a table."""
    kind, cols, classes, abstain = request.kind, request.cols, request.classes, request.abstain
    label_column, label_offset = request.label_column, request.label_offset
    id_column, header = request.id_column, request.header
    num_classes, topk_layout = request.num_classes, request.topk_layout
    table = read_table(path, header)
    n_cols = table.cells.shape[1]
    special = set()
    ids = labels = None
    if id_column is not None:
        id_col = table.column_index(id_column, "--id-column")
        special.add(id_col)
        ids = np.char.strip(table.cells[:, id_col])
    if label_column is not None:
        lab_col = table.column_index(label_column, "--label-column")
        special.add(lab_col)
        if is_text(table.cells[:, lab_col]):  # class names
            labels = text_to_class_ids(
                table.cells[:, lab_col], str(path), "labels", classes, offset=label_offset
            ).astype(np.float64)
        else:
            raw = table.numeric([lab_col], "labels")[:, 0]
            if (raw != np.round(raw)).any():
                raise ZoolensError(f"{path}: the label column {label_column} holds non-integers")
            labels = raw - int(label_offset)
    if cols is not None:
        selected = list(range(n_cols))[cols]
        if not selected:
            raise ZoolensError(
                f"{path}: --columns {cols.start}:{cols.stop} selects no columns "
                f"(the file has {n_cols}, numbered from 0)"
            )
        overlap = special & set(selected)
        if overlap:
            raise ZoolensError(
                f"{path}: --columns overlaps the id/label column {sorted(overlap)[0]}"
            )
    else:
        selected = [c for c in range(n_cols) if c not in special]
    if not selected:
        raise ZoolensError(f"{path}: no output columns left")
    names = [table.names[c] for c in selected] if table.names else None
    if (
        len(selected) == 1
        and kind in (None, "decisions")
        and (
            kind == "decisions"
            or is_text(table.cells[:, selected[0]])
            or np.isin(np.char.strip(table.cells[:, selected[0]]), abstain).any()
        )
    ):
        # one column of class ids, class names or abstentions
        decisions = text_to_class_ids(
            table.cells[:, selected[0]], str(path), "decisions", classes, abstain=abstain
        )
        return Loaded(path, "decisions", {"decisions": decisions}, ids=ids, labels=labels)
    arr = table.numeric(selected, "model outputs")
    loaded = resolve_kind(path, arr, kind, num_classes, topk_layout, names=names)
    loaded.ids, loaded.labels = ids, labels
    return loaded


# ---------------------------------------------------------------------------------------------
