"""CSV cells that a spreadsheet cannot run (CSV/formula injection, OWASP): a text cell starting
with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a leading `'`, which
spreadsheets show as text. Every CSV the service writes goes through `writer`, `SafeDictWriter`
or `safe_row`. A cell that is a plain number, signed or not (`-3`, `+33612345678`, a phone in
E.164 form), runs nothing and is left alone; so is every other text."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def safe_cell(value: Any) -> Any:
    """`value`, neutralised when it is text a spreadsheet would read as a formula."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in row]


def safe_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: safe_cell(v) for k, v in row.items()}


class SafeWriter:
    """`csv.writer` whose every cell (headers included) is neutralised."""

    def __init__(self, out: Any, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


if TYPE_CHECKING:
    _DictWriter = csv.DictWriter[str]
else:
    _DictWriter = csv.DictWriter  # not subscriptable at run time before Python 3.12


class SafeDictWriter(_DictWriter):
    """`csv.DictWriter` whose every value is neutralised."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow(safe_dict(rowdict))

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


def writer(out: Any, **options: Any) -> SafeWriter:
    return SafeWriter(out, **options)
