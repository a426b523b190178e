"""Class names and abstentions in imported files: text -> class ids.

Published predictions often name classes instead of numbering them (``boat``, ``airplane``,
ImageNet's ``n01440764``) and psychophysics tables record a non-answer (``na``, an empty
cell). :class:`ClassIndex` maps such text to the zoo's class ids through its class names
and their aliases (ImageNet wnids); :func:`read_class_names` reads class-name files in the
usual forms. An abstention becomes the class id :data:`ABSTAIN` (-1), stored as such in a
decision-only model (``store`` module docstring): never right, never in agreement.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError

ABSTAIN = -1
"""Class id of an abstention ("no answer") in stored decisions."""

ABSTAIN_TEXT = ("", "na", "NA", "n/a", "N/A", "NaN", "nan", "null", "None")
"""Text read as an abstention in a decisions column (besides ``--abstain VALUE``)."""

MAX_CLASS_NAME_CHARS = 256
"""A class name or alias is at most this long (a longer one is refused, one line)."""
MAX_TEXT_CHARS = 1024
"""An example id, a label or any other text cell is at most this long: text becomes
fixed-width numpy arrays (4 bytes per character times the longest entry), so one huge cell
among many rows would allocate gigabytes. Checked on the Python strings, before any array."""
MAX_CLASS_LIST_BYTES = 64 << 20

_WNID = re.compile(r"n\d{8}")
_INTEGER = re.compile(r"[+-]?\d+")


class ClassIndex:
    """Class names (index = class id) and aliases (alias -> class id) for lookups."""

    def __init__(self, names: Sequence[str], aliases: Mapping[str, int] | None = None):
        self.names = [str(n) for n in names]
        self.aliases = {str(k): int(v) for k, v in (aliases or {}).items()}
        self._lookup: dict[str, int] = {}
        repeated: set[str] = set()
        for i, name in enumerate(self.names):
            if name in self._lookup:
                repeated.add(name)
            self._lookup[name] = i
        for name in repeated:  # an ambiguous name matches nothing
            del self._lookup[name]
        self._repeated = repeated
        self._lookup.update(self.aliases)

    def ids(
        self,
        values: np.ndarray,
        where: str,
        what: str,
        *,
        offset: int = 0,
        abstain: Iterable[str] = (),
    ) -> np.ndarray:
        """(n,) int64 class ids of text ``values``: a decimal integer is a class id (minus
        ``offset``), any other text a class name or alias; text in ``abstain`` is
        :data:`ABSTAIN`. ZoolensError naming ``where``/``what`` and the closest known names
        for an unknown name."""
        return text_to_class_ids(values, where, what, self, offset=offset, abstain=abstain)

    def id_of(self, text: str, where: str, what: str) -> int:
        if text in self._lookup:
            return self._lookup[text]
        same = normal_name(text)  # "café" in NFD, "cat  dog": the name as --create stores it
        if same != text and same in self._lookup:
            return self._lookup[same]
        if text in self._repeated:
            raise ZoolensError(
                f"{where}: {what}: class name {text!r} names several classes; use class ids"
            )
        close = difflib.get_close_matches(text, list(self._lookup), n=3, cutoff=0.6)
        hint = (
            f"closest: {', '.join(map(repr, close))}"
            if close
            else f"known: {', '.join(map(repr, self.names[:5]))}{', ...' if len(self.names) > 5 else ''}"
        )
        raise ZoolensError(f"{where}: {what}: unknown class name {text!r} ({hint})")


def text_to_class_ids(
    values: Any,
    where: str,
    what: str,
    classes: ClassIndex | None,
    *,
    offset: int = 0,
    abstain: Iterable[str] = (),
) -> np.ndarray:
    """See :meth:`ClassIndex.ids`; without ``classes`` only integers (and abstentions)."""
    text = np.char.strip(np.asarray(values).astype(str))
    uniq, inverse = np.unique(text, return_inverse=True)  # few distinct values: map those
    abstain = set(abstain)
    mapped = np.empty(len(uniq), dtype=np.int64)
    for k, value in enumerate(uniq.tolist()):
        if value in abstain:
            mapped[k] = ABSTAIN
        elif _INTEGER.fullmatch(value):
            mapped[k] = int(value) - int(offset)
        elif _is_float_integer(value):
            mapped[k] = int(float(value)) - int(offset)
        elif is_number(value):
            raise ZoolensError(f"{where}: {what} must be integer class ids (found {value!r})")
        elif classes is None:
            raise ZoolensError(
                f"{where}: {what}: {value!r} is neither a class id nor a known "
                "class name (the zoo has no class names; give --class-names "
                "when creating it)"
            )
        else:
            mapped[k] = classes.id_of(value, where, what)
    return mapped[inverse.reshape(-1)]


def is_number(value: str) -> bool:
    """Whether ``value`` parses as a float (importers use it for table cells too)."""
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_float_integer(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number) and number == round(number) and abs(number) < 2**53


def is_text(values: Any) -> bool:
    """Whether some entry of ``values`` is neither a number nor blank."""
    text = np.char.strip(np.asarray(values).astype(str))
    return any(value and not is_number(value) for value in np.unique(text).tolist())


def normal_name(text: str) -> str:
    """A class name as stored: Unicode NFC, surrounding whitespace stripped and inner runs
    of whitespace made one space (so "cat", "cat " and "café" in NFD or NFC are one name)."""
    return unicodedata.normalize("NFC", " ".join(str(text).split()))


# Cyrillic and Greek letters drawn like Latin ones (after case folding), from Unicode's
# confusables list (UTS #39): a name spelled with them reads as the Latin name.
_HOMOGLYPHS = str.maketrans(
    "асеіјкорѕхуԁһԛԝαβεικνορτυχ",
    "aceijkopsxydhqwabeikvoptux",
)


def confusable_key(text: str) -> str:
    """What a reader sees of a name: NFKC (full-width and compatibility forms folded), case
    folded, invisible format characters (zero-width spaces, bidi controls) dropped, and
    Cyrillic or Greek look-alikes of Latin letters read as the Latin letter ("сat" with a
    Cyrillic с is "cat")."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold().translate(_HOMOGLYPHS)
    return " ".join("".join(c for c in folded if unicodedata.category(c) != "Cf").split())


def check_confusable(names: Sequence[str], where: str) -> None:
    """ZoolensError when two different names look the same to a reader (same
    :func:`confusable_key`): "cat" and "Cat", "cat" and "cat" with a right-to-left override
    or a zero-width space. Exact repeats (ImageNet's two "crane"s) are left to the lookup,
    which treats a repeated name as ambiguous."""
    seen: dict[str, str] = {}
    for name in names:
        key = confusable_key(name)
        other = seen.setdefault(key, name)
        if other != name:
            raise ZoolensError(
                f"{where}: class names {ascii(other)} and {ascii(name)} differ only in case, "
                f"width, look-alike letters or invisible characters; rename one (they would become two classes "
                f"that look the same)"
            )


def check_text(values: Iterable[Any], where: str, what: str, cap: int = MAX_TEXT_CHARS) -> None:
    """ZoolensError naming the first entry of ``values`` (strings) longer than ``cap``."""
    for i, value in enumerate(values):
        if isinstance(value, str) and len(value) > cap:
            raise ZoolensError(
                f"{where}: {what} {i + 1} has {len(value):,} characters; at most {cap:,} "
                f"are allowed"
            )


def read_class_names(value: str) -> tuple[list[str], dict[str, int]]:
    """See :func:`_read_class_names`; every name and alias is at most
    ``MAX_CLASS_NAME_CHARS`` long, names are normalised (:func:`normal_name`) and two that
    look the same are refused (:func:`check_confusable`)."""
    names, aliases = _read_class_names(value)
    where = value if len(value) <= 200 else "--class-names"
    check_text(names, where, "class name", MAX_CLASS_NAME_CHARS)
    check_text(aliases, where, "class alias", MAX_CLASS_NAME_CHARS)
    names = [normal_name(name) for name in names]
    check_confusable(names, where)
    return names, aliases


def _read_class_names(value: str) -> tuple[list[str], dict[str, int]]:
    """(names, aliases) from ``--class-names``: a comma-separated list, or a file holding
    one name per line; ``wnid,name`` or ``wnid name`` lines (ImageNet's synset mapping: the
    readable name is kept, the wnid becomes an alias); a JSON list of names; or a JSON
    object ``{"0": ["n01440764", "tench"], ...}`` (Keras' class index) or ``{"0": "tench"}``.
    """
    path = Path(value)
    if not path.is_file():
        return [v.strip() for v in value.split(",")], {}
    if path.stat().st_size > MAX_CLASS_LIST_BYTES:
        raise ZoolensError(
            f"{path}: larger than {MAX_CLASS_LIST_BYTES >> 20} MiB; not a class list"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ZoolensError(f"{path}: class names must be UTF-8 text") from None
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        return _json_class_names(path, text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ZoolensError(f"{path}: no class names")
    split = [re.split(r"[,\s]", line, maxsplit=1) for line in lines]
    if all(len(parts) == 2 and _WNID.fullmatch(parts[0]) for parts in split):
        names = [parts[1].strip().strip(",").strip() for parts in split]
        return names, {parts[0]: i for i, parts in enumerate(split)}
    return lines, {}


def parse_json(text: str, where: Any, **options: Any) -> Any:
    """``json.loads(text, **options)`` of a file from someone else: a one-line ZoolensError
    naming ``where`` for invalid JSON, JSON nested too deeply or an absurd integer."""
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError as exc:
        raise ZoolensError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ZoolensError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ZoolensError(f"{where}: not valid JSON ({str(exc)[:120]})") from None


def _json_class_names(path: Path, text: str) -> tuple[list[str], dict[str, int]]:
    data = parse_json(text, path)
    if isinstance(data, list) and data and all(isinstance(v, str) for v in data):
        return [v.strip() for v in data], {}
    if isinstance(data, dict) and data:
        try:
            keys = sorted(data, key=int)
        except ValueError:
            keys = None
        if keys is not None and [int(k) for k in keys] == list(range(len(keys))):
            names, aliases = [], {}
            for i, key in enumerate(keys):
                entry = data[key]
                if isinstance(entry, str):
                    names.append(entry.strip())
                elif (
                    isinstance(entry, list)
                    and len(entry) == 2
                    and all(isinstance(v, str) for v in entry)
                ):
                    aliases[entry[0].strip()] = i
                    names.append(entry[1].strip())
                else:
                    raise ZoolensError(f"{path}: entry {key!r} must be a name or [wnid, name]")
            return names, aliases
    raise ZoolensError(
        f"{path}: expected a JSON list of class names or an object "
        '{"0": [wnid, name], ...} with keys 0..C-1'
    )
