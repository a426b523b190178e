"""Choosing the candidate pool of a greedy ensemble search (paper Sec. 4.5, Fig. 5).

A pool is given either as a filter on the columns of ``models.csv`` —
``"accuracy<0.78"``, ``"accuracy_all >= 0.7 and framework == 'jax'"``, ``"category!=Reinit"`` —
or as a comma-separated list of model names (``"resnet50,vit-b16"``). The filter language
is deliberately tiny: comparisons ``<, <=, >, >=, ==, !=`` between one column and one value,
joined by ``and``. Numbers compare as numbers, everything else as text (quotes optional).
Rows whose value is missing (NaN) never match a comparison (NaN semantics), so a
decision-only model (no temperature) drops out of ``"temperature<2"``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

import pandas as pd

from zoolens.errors import ZoolensError

_OPERATORS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
# Longest operators first so "<=" is not read as "<" followed by "=value".
_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(.*?)\s*$")
_AND = re.compile(r"\s+and\s+", flags=re.IGNORECASE)


def looks_like_filter(spec: str, names: Sequence[str] = ()) -> bool:
    """True when ``spec`` is a filter expression rather than a list of model names.

    A spec whose comma-separated parts are all model names is a list even when a name holds
    an operator character (``"lr<0.1"`` may be a model's name).
    """
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    if parts and all(part in set(names) for part in parts):
        return False
    return any(symbol in spec for symbol in _OPERATORS)


def _parse_value(text: str) -> float | str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return float(text)
    except ValueError:
        return text


def _clause_mask(
    models: pd.DataFrame, clause: str, spec: str, defer: frozenset[str] = frozenset()
) -> pd.Series:
    match = _CLAUSE.match(clause)
    if match is None or not match.group(3):
        raise ZoolensError(
            f"--pool {spec!r}: cannot read {clause.strip()!r}; write COLUMN OP VALUE "
            "(OP one of <, <=, >, >=, ==, !=) joined by 'and', or a comma list of model names"
        )
    column, op, raw = match.groups()
    if re.search(r"[<>=!]|\s+or\s+", raw, flags=re.IGNORECASE):
        raise ZoolensError(
            f"--pool {spec!r}: cannot read {clause.strip()!r}; one comparison per clause, "
            "clauses joined by 'and' ('or' is not supported)"
        )
    if column not in models.columns:
        raise ZoolensError(
            f"--pool {spec!r}: unknown column {column!r}; columns of models.csv are "
            + ", ".join(models.columns)
        )
    value = _parse_value(raw)
    series = models[column]
    compare = _OPERATORS[op]
    if column in defer:
        return pd.Series(True, index=models.index)
    if series.isna().all():
        raise ZoolensError(
            f"--pool {spec!r}: column {column!r} has no value for any model "
            "here (NLL, ECE and intervals come from `zoolens analyze`)"
        )
    if isinstance(value, float):
        numeric = pd.to_numeric(series, errors="coerce")
        if numeric.isna().all() and series.notna().any():
            raise ZoolensError(
                f"--pool {spec!r}: column {column!r} holds text, compare it with a text value"
            )
        # NaN != x is True in numpy: mask missing values out so "!=" keeps NaN rows out too.
        return compare(numeric, value).fillna(False).astype(bool) & numeric.notna()
    if op not in ("==", "!="):
        raise ZoolensError(
            f"--pool {spec!r}: {op} needs a number, got {raw.strip()!r} for column {column!r}"
        )
    text = series.astype("string")
    mask = compare(text, value)
    # Missing values never match, "!=" included (SQL-like), so NaN rows stay out of pools.
    return mask.fillna(False).astype(bool) & series.notna()


def select_pool(
    models: pd.DataFrame, spec: str | Sequence[str], *, defer: Sequence[str] = ()
) -> list[str]:
    """Model names of the pool ``spec`` selects from the models table, in table order.

    ``models`` is the models table (one row per model, column ``model`` plus the measured
    columns of ``models.csv``). ``spec`` is a filter expression, a comma-separated list of
    names, or a sequence of names. Raises ZoolensError for unknown names or columns, an
    unreadable expression, or a pool that comes out empty. Clauses on the ``defer`` columns
    are checked but not applied (all rows pass them): an early check, before those columns
    are measured, that can only be stricter-or-equal to the final selection.
    """
    defer_set = frozenset(defer)
    names = list(models["model"])
    if not isinstance(spec, str):
        chosen = [str(name) for name in spec]
        label = ",".join(chosen)
    elif looks_like_filter(spec, names):
        mask = pd.Series(True, index=models.index)
        for clause in _AND.split(spec.strip()):
            mask &= _clause_mask(models, clause, spec, defer_set)
        chosen = [name for name, keep in zip(names, mask) if keep]
        if not chosen:
            raise ZoolensError(f"--pool {spec!r}: no model matches, the pool is empty")
        return chosen
    else:
        chosen = [part.strip() for part in spec.split(",") if part.strip()]
        label = spec
    if not chosen:
        raise ZoolensError(f"--pool {label!r}: the pool is empty")
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise ZoolensError(
            f"--pool {label!r}: model {unknown[0]!r} is not in the zoo (models: "
            + ", ".join(names[:20])
            + (" …" if len(names) > 20 else "")
            + ")"
        )
    # Keep table order and drop repeats: the pool is a set of candidates.
    wanted = set(chosen)
    return [name for name in names if name in wanted]
