"""Tables as files: CSV (UTF-8 with a BOM, so spreadsheet software reads Chinese) and XLSX.

Every cell is written as text or a number, never as a formula: a string that begins with
= + - or @ would be run by a spreadsheet (CSV injection), so CSV prefixes it with an
apostrophe and XLSX stores it as an explicit string cell. Long digit strings (ID numbers)
stay strings, so no spreadsheet turns them into 1.2E+17.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import TYPE_STRING

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel's limit on a sheet's name.
SHEET_TITLE_MAX = 31


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def csv_cell(value: Any) -> Any:
    """A value as CSV holds it: numbers as they are, text neutralised."""
    if value is None:
        return ""
    if _is_number(value):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like object that hands back what csv.writer wrote."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


def stream_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """The CSV a line at a time (the BOM first), for a response or a file of any size."""
    line = _Line()
    writer = csv.writer(line)
    writer.writerow([csv_cell(c) for c in columns])
    yield (BOM + line.text).encode()
    for row in rows:
        line.text = ""
        writer.writerow([csv_cell(v) for v in row])
        yield line.text.encode()


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    return b"".join(stream_csv(columns, rows))


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in str(title)).strip()
    return (cleaned or "Sheet")[:SHEET_TITLE_MAX]


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    if value is None:
        return None
    if _is_number(value):
        return float(value) if isinstance(value, Decimal) else value
    cell = WriteOnlyCell(sheet, value=str(value))
    # A string cell, explicitly: openpyxl takes a value starting with "=" for a formula.
    cell.data_type = TYPE_STRING
    return cell


def write_xlsx_file(
    target: str | os.PathLike[str] | io.BytesIO,
    sheet_title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Write the table to `target` in openpyxl's write-only mode: rows go to disk as they come,
    so memory stays flat however many there are."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_sheet_title(sheet_title))
    sheet.append([_xlsx_cell(sheet, c) for c in columns])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, v) for v in row])
    book.save(target if not isinstance(target, Path) else str(target))


def xlsx_bytes(sheet_title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.BytesIO()
    write_xlsx_file(buffer, sheet_title, columns, rows)
    return buffer.getvalue()
