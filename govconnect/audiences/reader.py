"""Rows of an audience file, streamed: CSV (UTF-8, UTF-8 with BOM, GB18030) or XLSX.

This is the one place uploads are read; it switches to the shared bounded tabular reader once
that lands, without its callers changing. Rows come out as (line, cells) where `line` is the
line in the file (the header is line 1), so refused rows can be reported as the user sees them.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO

XLSX_MAGIC = b"PK\x03\x04"
SNIFF_BYTES = 1 << 20
# Workbook limits checked in the zip directory before anything is decompressed.
XLSX_MAX_UNCOMPRESSED = 512 * 1024 * 1024
XLSX_MAX_ENTRIES = 10_000
XLSX_MAX_RATIO = 200  # a shared-strings bomb compresses far better than real data


class FileRefused(ValueError):
    """The file as a whole cannot be read; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def read_table(source: BinaryIO, filename: str = "") -> Iterator[tuple[int, list[str]]]:
    """(line, cells) for every row of a seekable binary file, the header first; XLSX by content, else CSV."""
    head = source.read(4)
    source.seek(0)
    if head == XLSX_MAGIC or filename.lower().endswith(".xlsx"):
        yield from _xlsx_rows(source)
    else:
        yield from _csv_rows(source)


def _encoding(raw: BinaryIO) -> str:
    """utf-8-sig when the first megabyte is UTF-8, else GB18030 (what Excel in China writes)."""
    sample = raw.read(SNIFF_BYTES)
    raw.seek(0)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _csv_rows(raw: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    text = io.TextIOWrapper(raw, encoding=_encoding(raw), newline="")
    reader = csv.reader(text)
    line = 1
    try:
        for cells in reader:
            yield line, cells
            line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise FileRefused("file_encoding", "文件编码无法识别（需 UTF-8 或 GB18030）/ not UTF-8 or GB18030") from exc
    except csv.Error as exc:
        raise FileRefused("file_invalid", f"第 {line} 行无法解析 / line {line} cannot be parsed") from exc


def _check_zip(source: BinaryIO) -> None:
    try:
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise FileRefused("file_invalid", "不是有效的 XLSX 文件 / not a valid XLSX file") from exc
    total = sum(e.file_size for e in entries)
    packed = max(1, sum(e.compress_size for e in entries))
    if len(entries) > XLSX_MAX_ENTRIES or total > XLSX_MAX_UNCOMPRESSED or total / packed > XLSX_MAX_RATIO:
        raise FileRefused("file_too_large", "XLSX 解压后过大 / the workbook expands too far")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed into Excel: 13800001111.0
    return str(value)


def _xlsx_rows(source: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    import openpyxl

    _check_zip(source)
    source.seek(0)
    try:
        book = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise FileRefused("file_invalid", "不是有效的 XLSX 文件 / not a valid XLSX file") from exc
    try:
        sheet = book.worksheets[0]
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, [_cell(v) for v in values]
    finally:
        book.close()
