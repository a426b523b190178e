"""Read and check the result tables of a results folder (docs/design.md sec. 5, ``zoolens.contracts``).

The report is rebuilt from a results folder alone: the CSV tables written by ``zoolens analyze``
and ``zoolens probe`` and ``summary.json``. This module reads them with the model, class and
group names kept as text exactly as written (a model named ``NA`` or ``null`` stays a name),
converts the numeric columns, and checks each table against its contract:

- a missing table, a table missing a column the report needs, a numeric column with text in it,
  or an unsupported ``table_version`` leave that table out, with a one-line note naming the
  file and the problem;
- agreed columns the report does not draw may be absent; columns nobody agreed on are noted
  and ignored, and the table is kept.

Versions, the same way for every table: ``X.csv``'s version is in its sibling ``X.json``
(``{"table_version": 1, ...}``); an analyze table without a sibling (a folder written before
they had one) takes ``summary.json``'s ``table_version``.
Parquet (``X.parquet``) is read where the CSV is absent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from zoolens.contracts import (
    FINDING_FIELDS,
    FINDING_OPTIONAL_FIELDS,
    RESULT_TABLES,
    SOUP_COLUMNS,
    SUPPORTED_TABLE_VERSIONS,
    TableContract,
)
from zoolens.errors import ZoolensError, one_line
from zoolens.measure.agreement import pairs_with

# The tables' columns, types and versions are spelled once, in zoolens.contracts.
TABLE_SPECS: dict[str, TableContract] = RESULT_TABLES


_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


@dataclass
class Results:
    """What a results folder holds, after checking: usable tables, summary, and the notes."""

    path: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    base: str | None = None
    # optional extras (no note when absent; one note when malformed): see load_extras
    soup: pd.DataFrame | None = None  # soup.csv (zoolens soup / zoolens demo)
    findings: list[dict] | None = None  # findings.json (zoolens demo)
    cards: dict[str, dict] | None = None  # cards.json (zoolens analyze)

    def has(self, *names: str) -> bool:
        return all(n in self.tables and len(self.tables[n]) > 0 for n in names)

    def get(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)


def _read_summary(path: Path, notes: list[str]) -> tuple[dict, bool]:
    """summary.json as a dict (empty with a note when absent or broken); second: found at all."""
    file = path / "summary.json"
    if not file.exists():
        notes.append("summary.json: not found; no headline findings, the base model is inferred")
        return {}, False
    try:
        summary = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"summary.json: not readable as JSON ({exc}); ignored")
        return {}, True
    if not isinstance(summary, dict):
        notes.append("summary.json: not a JSON object; ignored")
        return {}, True
    return summary, True


def _version_problem(version, where: str) -> str | None:
    if version is None:
        return None
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or version not in SUPPORTED_TABLE_VERSIONS
    ):
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_TABLE_VERSIONS))
        return (
            f"{where}: table_version {version!r} is not one this zoolens reads "
            f"(supported: {supported}); upgrade zoolens or re-run the analysis"
        )
    return None


def _table_version_problem(
    path: Path, spec: TableContract, summary_problem: str | None
) -> str | None:
    """Why table ``spec`` cannot be read at its version, or None: the version in its sibling
    ``<name>.json``; without one, an analyze table falls back on summary.json's."""
    sibling = path / f"{spec.name}.json"
    if not sibling.exists():
        return summary_problem if spec.producer == "analyze" else None
    try:
        meta = json.loads(sibling.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{sibling.name}: not readable as JSON ({exc})"
    version = meta.get("table_version") if isinstance(meta, dict) else None
    return _version_problem(version, sibling.name)


def _table_run_problem(path: Path, spec: TableContract, summary: dict) -> str | None:
    """Why table ``spec`` is not this folder's run, or None: its version record names another
    run than summary.json (a run killed while moving its files in, or an old run's table), or
    its CSV has another size than when written (truncated or changed since)."""
    sibling = path / f"{spec.name}.json"
    try:
        meta = json.loads(sibling.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # no record: the version check above already spoke
    if not isinstance(meta, dict):
        return None
    run, own = summary.get("run_id"), meta.get("run_id")
    if spec.producer == "analyze" and run is not None and own is not None and run != own:
        return (
            f"{spec.filename}: from another run than summary.json (run {own}, summary "
            f"{run}: the folder mixes runs; run analyze again)"
        )
    written, csv = meta.get("csv_bytes"), path / spec.filename
    if isinstance(written, int) and csv.exists() and csv.stat().st_size != written:
        return (
            f"{spec.filename}: {csv.stat().st_size:,} bytes, {written:,} when written "
            "(truncated or changed since)"
        )
    return None


def _read_raw(path: Path, spec: TableContract) -> pd.DataFrame:
    """Every column as text, nothing turned into NaN but empty cells and nan literals later."""
    csv = path / spec.filename
    if csv.exists():
        raw = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8")
        return restore_text(raw)
    return pd.read_parquet(path / f"{spec.name}.parquet").astype(object)


def restore_text(raw: pd.DataFrame) -> pd.DataFrame:
    """Text cells as analyze had them: the spreadsheet-formula escape of the writer
    (``contracts.csv_safe``) undone."""
    from zoolens.contracts import csv_restore

    for name in raw.columns:
        column = raw[name]
        text = column.dtype == object or pd.api.types.is_string_dtype(column.dtype)
        if text and column.astype(str).str.startswith("'").any():
            raw[name] = column.map(csv_restore)
    return raw


def _to_numeric(series: pd.Series) -> tuple[pd.Series, int | None]:
    """Numbers from text; '' / nan / NaN / NA / None are missing. Returns (values, first bad row)."""
    text = series.astype(str).str.strip()
    missing = text.isin(["", "nan", "NaN", "NA", "N/A", "None", "null", "<NA>"])
    values = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = values.isna() & ~missing
    return values.astype(float), (int(bad.idxmax()) if bad.any() else None)


def _to_bool(series: pd.Series) -> tuple[pd.Series, int | None]:
    text = series.astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE)
    return text.isin(_TRUE), (int(bad.idxmax()) if bad.any() else None)


def _bad_value_note(
    name: str, column: str, kind: str, series: pd.Series, row: int, left_out: str
) -> str:
    return (
        f"{name}: column {column} has a non-{kind} value {str(series.iloc[row])[:40]!r} "
        f"in data row {row + 1}; {left_out} left out"
    )


def _check_table(raw: pd.DataFrame, spec: TableContract, notes: list[str]) -> pd.DataFrame | None:
    """The table with typed columns, or None (with a note) when the report cannot use it."""
    name = spec.filename
    columns = list(raw.columns)
    missing = [c for c in spec.needed if c not in columns]
    if missing:
        notes.append(f"{name}: missing column(s) {', '.join(missing)}; table left out")
        return None
    agreed = set(spec.needed) | set(spec.optional)
    unknown = [
        c
        for c in columns
        if c not in agreed
        and not (
            spec.bounds_suffixes
            and c.rsplit("_", 1)[-1] in ("lo", "hi")
            and c.rsplit("_", 1)[0] in agreed
        )
    ]
    if unknown:
        notes.append(f"{name}: unknown column(s) {', '.join(unknown)} ignored")
    table = raw[[c for c in columns if c not in unknown]].copy()
    for column in table.columns:
        if column in spec.text:
            table[column] = table[column].astype(str)
            continue
        convert = _to_bool if column in spec.boolean else _to_numeric
        values, bad_row = convert(table[column])
        if bad_row is not None:
            kind = "boolean" if column in spec.boolean else "numeric"
            notes.append(_bad_value_note(name, column, kind, table[column], bad_row, "table"))
            return None
        table[column] = values
    if spec.name == "specialization":
        table = _specialization_as_fractions(table)
    if spec.name == "pairs" and "gain_over_best" not in table.columns:
        # tables from before gain_over_best: the same definition, from the table's own columns
        table["gain_over_best"] = table.ensemble_acc - np.fmax(table.acc_a, table.acc_b)
    return table.reset_index(drop=True)


def _specialization_as_fractions(table: pd.DataFrame) -> pd.DataFrame:
    """only_a_right / only_b_right as fractions of the group's n (they are fractions by contract,
    like pairs.csv's rates; a table that wrote counts is recognised by counts summing to
    EI * n and converted, so the report draws the same thing either way)."""
    total = table.only_a_right + table.only_b_right
    as_counts = (total - table.error_inconsistency * table.n).abs() < 1e-6
    as_fractions = (total - table.error_inconsistency).abs() < 1e-9
    if bool((as_counts & ~as_fractions & (table.n > 1)).any()) and not bool(
        (as_fractions & ~as_counts).any()
    ):
        table = table.copy()
        table["only_a_right"] = table.only_a_right / table.n
        table["only_b_right"] = table.only_b_right / table.n
    return table


def infer_base(results: Results) -> str | None:
    """summary.json's base; else the one model whose category is "Same"; else the model most often
    in model_a of the pair tables."""
    base = results.summary.get("base")
    if isinstance(base, str) and base:
        return base
    models = results.get("models")
    if models is not None:
        same = models.loc[models.category == "Same", "model"]
        if len(same) == 1:
            return str(same.iloc[0])
    for name in ("specialization", "theta", "pairs"):
        table = results.get(name)
        if table is not None and len(table):
            return str(table.model_a.value_counts().idxmax())
    return None


def load_results(results_dir) -> Results:
    """Read and check every table of a results folder.

    Never raises for one bad table (it becomes a note); raises ZoolensError when the folder does
    not exist or holds none of the tables (nothing to report).
    """
    path = Path(results_dir)
    if not path.is_dir():
        what = "a file, not a folder" if path.exists() else "no such directory"
        raise ZoolensError(
            f"{path}: not a results folder ({what}); "
            f"run `zoolens analyze ZOO --base NAME --out {path}` first"
        )
    results = Results(path=path)
    notes = results.notes
    summary, summary_found = _read_summary(path, notes)
    results.summary = summary
    analyze_problem = _version_problem(summary.get("table_version"), "summary.json")
    if summary and "table_version" not in summary:
        notes.append("summary.json: no table_version; read as version 1")
    found_any = summary_found
    not_found = []
    for spec in TABLE_SPECS.values():
        csv, parquet = path / spec.filename, path / f"{spec.name}.parquet"
        if not csv.exists() and not parquet.exists():
            if spec.always:
                not_found.append(spec.filename)
            continue
        found_any = True
        problem = _table_version_problem(path, spec, analyze_problem)
        if problem:
            notes.append(f"{problem}; {spec.filename} left out")
            continue
        try:
            raw = _read_raw(path, spec)
        except Exception as exc:  # a broken file is the user's input: one line, keep going
            notes.append(
                f"{spec.filename}: not readable ({type(exc).__name__}: "
                f"{one_line(exc, 120, more='')}); table left out"
            )
            continue
        table = _check_table(raw, spec, notes)
        stale = _table_run_problem(path, spec, summary)
        if stale:  # after the table's own checks, so their notes are said too
            notes.append(f"{stale}; {spec.filename} left out")
            continue
        if table is not None:
            if len(table) == 0 and spec.always:  # an optional table is empty when not used
                notes.append(f"{spec.filename}: no rows")
            results.tables[spec.name] = table
    if not_found and found_any:
        notes.insert(
            0, f"not found in {path}: {', '.join(not_found)} (what needs them is left out)"
        )
    if not found_any:
        wanted = ", ".join(s.filename for s in TABLE_SPECS.values())
        raise ZoolensError(
            f"{path}: no result tables found (expected summary.json and some of "
            f"{wanted}); run `zoolens analyze ZOO --base NAME --out {path}` first"
        )
    results.base = infer_base(results)
    if results.base is None:
        notes.append("no base model found (summary.json has no base and no table names one)")
    elif "base" not in summary:
        notes.append(f"base model inferred from the tables: {results.base}")
    models = results.get("models")
    if results.base is not None and models is not None and results.base not in set(models.model):
        notes.append(f"models.csv: base model {results.base!r} not listed")
    load_extras(results)
    return results


# ---------------------------------------------------------------- optional extras


def _read_json_object(file: Path, notes: list[str]):
    """Parsed JSON, or None with a one-line note naming the file."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{file.name}: not readable as JSON ({one_line(exc, 120, more='')}); left out")
        return None


def _read_soup(path: Path, notes: list[str]) -> pd.DataFrame | None:
    """soup.csv (``zoolens.study.soup.write_soup_table``): method, members, heldout_acc,
    test_acc; the accuracies numeric (empty/NaN test_acc allowed)."""
    file = path / "soup.csv"
    try:
        raw = restore_text(pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8"))
    except Exception as exc:  # user input: one line, keep going
        notes.append(
            f"soup.csv: not readable ({type(exc).__name__}: {one_line(exc, 120, more='')}); "
            "soup table left out"
        )
        return None
    missing = [c for c in SOUP_COLUMNS if c not in raw.columns]
    if missing:
        notes.append(f"soup.csv: missing column(s) {', '.join(missing)}; soup table left out")
        return None
    table = raw[list(SOUP_COLUMNS)].copy()
    for column in ("heldout_acc", "test_acc"):
        values, bad_row = _to_numeric(table[column])
        if bad_row is not None:
            notes.append(
                _bad_value_note("soup.csv", column, "numeric", table[column], bad_row, "soup table")
            )
            return None
        table[column] = values
    return table.reset_index(drop=True)


def _read_findings(path: Path, notes: list[str]) -> list[dict] | None:
    """findings.json (``zoolens demo``): {"table_version": 1, "findings": [{key, claim,
    measured, verdict, decided_by}, ...], ...} (decided_by optional); a bare list of findings
    is accepted too."""
    data = _read_json_object(path / "findings.json", notes)
    if data is None:
        return None
    if isinstance(data, dict):
        problem = _version_problem(data.get("table_version"), "findings.json")
        if problem:
            notes.append(f"{problem}; findings left out")
            return None
        data = data.get("findings")
    if not isinstance(data, list) or not all(
        isinstance(f, dict) and all(k in f for k in FINDING_FIELDS) for f in data
    ):
        notes.append(
            "findings.json: not a list of {claim, measured, verdict} objects; findings left out"
        )
        return None
    fields = ("key",) + FINDING_FIELDS + FINDING_OPTIONAL_FIELDS
    return [{k: ("" if f.get(k) is None else str(f.get(k))) for k in fields} for f in data]


def _read_cards(path: Path, notes: list[str]) -> dict[str, dict] | None:
    """cards.json (``zoolens analyze``): {"table_version": 1, "cards": {model: {arch, ...}}}."""
    data = _read_json_object(path / "cards.json", notes)
    if data is None:
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("cards"), dict)
        or not all(isinstance(c, dict) for c in data["cards"].values())
    ):
        notes.append('cards.json: not {"cards": {model: {field: value}}}; model cards left out')
        return None
    problem = _version_problem(data.get("table_version"), "cards.json")
    if problem:
        notes.append(f"{problem}; model cards left out")
        return None
    return {str(name): dict(card) for name, card in data["cards"].items()}


def load_extras(results: Results) -> None:
    """The optional extras of a results folder: soup.csv, findings.json, cards.json.

    Absent: nothing (they are optional). Malformed: one note naming the file, the rest of the
    report renders."""
    path = results.path
    if (path / "soup.csv").exists():
        results.soup = _read_soup(path, results.notes)
    if (path / "findings.json").exists():
        results.findings = _read_findings(path, results.notes)
    if (path / "cards.json").exists():
        results.cards = _read_cards(path, results.notes)


def pairs_with_base(pairs: pd.DataFrame, base: str | None) -> pd.DataFrame:
    """Pairs (base, other) oriented so that ``other`` is the non-base model (docs/design.md: pairs.csv
    holds each unordered pair once, in zoo order, so the base may be on either side). Adds
    columns ``other``, ``acc_base`` and ``acc_other``; symmetric rates are unchanged."""
    if base is None:
        return pairs.iloc[0:0].assign(other=pd.Series(dtype=str))
    rows, flipped, _ = pairs_with(pairs.model_a, pairs.model_b, base)
    sel = pairs.iloc[rows].copy()
    flip = pd.Series(flipped, index=sel.index)
    sel["other"] = sel.model_b.where(~flip, sel.model_a)
    sel["acc_base"] = sel.acc_a.where(~flip, sel.acc_b)
    sel["acc_other"] = sel.acc_b.where(~flip, sel.acc_a)
    if "gain_over_base" not in sel.columns and "ensemble_acc" in sel.columns:
        sel["gain_over_base"] = sel.ensemble_acc - sel.acc_base
    return sel.reset_index(drop=True)


def finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
