"""Read rows of an uploaded table (CSV or XLSX) within limits, streaming, never holding the whole file.

Every importer reads files through `iter_rows` (or `iter_records`): CSV in UTF-8 (with or without
BOM) or GB18030, and XLSX, whose zip is inspected *before* any XML is parsed: entry count,
declared uncompressed sizes (which `zipfile` enforces while reading) and compression ratio are
bounded, so a small workbook that inflates to gigabytes (a shared-string bomb) is refused in
milliseconds. While rows stream, row, column, cell and cell-length limits apply to both formats.
A file that breaks a limit raises `TabularError` with a code and a bilingual message.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

XLSX_SUFFIXES = (".xlsx", ".xlsm")
CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class TableLimits:
    """How large a table may be; the defaults fit a city's directory or subscriber list."""

    max_file_bytes: int = 256 << 20
    max_rows: int = 1_000_000
    max_columns: int = 256
    max_cells: int = 20_000_000
    max_cell_chars: int = 4096
    xlsx_max_entries: int = 512
    xlsx_max_uncompressed_bytes: int = 256 << 20
    xlsx_max_entry_bytes: int = 128 << 20
    xlsx_max_shared_strings_bytes: int = 32 << 20
    xlsx_max_ratio: int = 200  # uncompressed / compressed, per entry larger than 1 MiB


DEFAULT_LIMITS = TableLimits()


class TabularError(ValueError):
    """The file as a whole cannot be read within limits; `code` is machine-readable, `message` bilingual."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f"第 {self.line} 行 / line {self.line}: " if self.line else ""
        return f"{where}{self.message}"


def is_xlsx(name: str | Path) -> bool:
    """True when the file name says XLSX."""
    return Path(str(name)).suffix.lower() in XLSX_SUFFIXES


def iter_rows(
    source: Path | bytes | str, *, xlsx: bool | None = None, limits: TableLimits = DEFAULT_LIMITS
) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each row of a CSV or XLSX file, path or content, within `limits`.

    A `str` is CSV text already decoded; `bytes` and paths are CSV unless `xlsx` (or the path's
    suffix) says XLSX. Cells are strings ('' for empty); line numbers count physical lines (CSV)
    or sheet rows (XLSX).
    """
    if isinstance(source, Path):
        if xlsx is None:
            xlsx = is_xlsx(source)
        size = source.stat().st_size
        _check_file_size(size, limits)
        if xlsx:
            with source.open("rb") as handle:
                yield from _limited(_xlsx_rows(handle, limits), limits)
            return
        encoding = _sniff_encoding_file(source)
        with source.open("rb") as handle:
            yield from _limited(_csv_rows(io.TextIOWrapper(handle, encoding=encoding, newline=""), limits), limits)
        return
    if isinstance(source, bytes):
        _check_file_size(len(source), limits)
        if xlsx:
            yield from _limited(_xlsx_rows(io.BytesIO(source), limits), limits)
            return
        text = _decode(source)
        yield from _limited(_csv_rows(io.StringIO(text, newline=""), limits), limits)
        return
    _check_file_size(len(source), limits)
    yield from _limited(_csv_rows(io.StringIO(source.lstrip("\ufeff"), newline=""), limits), limits)


def iter_records(
    source: Path | bytes | str,
    header_map: dict[str, str] | None = None,
    *,
    xlsx: bool | None = None,
    limits: TableLimits = DEFAULT_LIMITS,
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """(columns, rows as {column: stripped value}) using the first non-empty row as the header.

    `header_map` renames header cells (e.g. Chinese names to field names); unknown headers are
    dropped when a map is given and kept as written otherwise. Empty rows are skipped.
    """
    rows = iter_rows(source, xlsx=xlsx, limits=limits)
    header: list[str] | None = None
    for _line, cells in rows:
        if any(cell.strip() for cell in cells):
            header = [_header_name(cell, header_map) for cell in cells]
            break
    if header is None:
        raise TabularError("empty_file", "文件为空 / the file is empty")
    columns = header

    def records() -> Iterator[tuple[int, dict[str, str]]]:
        for line, cells in rows:
            if not any(cell.strip() for cell in cells):
                continue
            yield line, {name: cells[i].strip() for i, name in enumerate(columns) if name and i < len(cells)}

    return [c for c in columns if c], records()


def _header_name(cell: str, header_map: dict[str, str] | None) -> str:
    name = cell.strip().lstrip("\ufeff").strip()
    if header_map is None:
        return name
    return header_map.get(name, "")


def _check_file_size(size: int, limits: TableLimits) -> None:
    if size > limits.max_file_bytes:
        raise TabularError(
            "file_too_large",
            f"文件过大（上限 {limits.max_file_bytes // (1 << 20)} MB）/ file too large "
            f"(at most {limits.max_file_bytes // (1 << 20)} MB)",
        )


def _unknown_encoding() -> TabularError:
    return TabularError(
        "unknown_encoding", "无法识别文件编码（支持 UTF-8、GB18030）/ unknown encoding (UTF-8 or GB18030)"
    )


def _decode(raw: bytes) -> str:
    """UTF-8 (BOM or not), else GB18030 (which covers GBK and GB2312)."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _unknown_encoding()


def _sniff_encoding_file(path: Path) -> str:
    """'utf-8-sig' when the whole file is valid UTF-8 (checked in chunks), else 'gb18030'."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _bounded_lines(stream: IO[str], limits: TableLimits) -> Iterator[str]:
    """Lines of a text stream, refusing any physical line longer than a whole row may be."""
    longest = limits.max_cell_chars * limits.max_columns + limits.max_columns + 2
    while True:
        line = stream.readline(longest + 1)
        if not line:
            return
        if len(line) > longest and not line.endswith(("\n", "\r")):
            raise TabularError("line_too_long", "行过长 / a line is too long")
        yield line


def _csv_rows(stream: IO[str], limits: TableLimits) -> Iterator[tuple[int, list[str]]]:
    # csv.field_size_limit is process-wide; ours is checked per cell below, and csv's own limit
    # (131,072 by default, above ours) only ever reports as a clean error.
    reader = csv.reader(_bounded_lines(stream, limits))
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise _cell_too_large(limits, reader.line_num) from exc
        raise TabularError("csv_invalid", f"CSV 格式错误 / malformed CSV: {exc}", reader.line_num) from exc
    except UnicodeDecodeError as exc:
        raise _unknown_encoding() from exc


def _cell_too_large(limits: TableLimits, line: int | None) -> TabularError:
    return TabularError(
        "cell_too_large",
        f"单元格过长（上限 {limits.max_cell_chars} 字符）/ a cell is longer than {limits.max_cell_chars} characters",
        line,
    )


def _limited(rows: Iterable[tuple[int, list[str]]], limits: TableLimits) -> Iterator[tuple[int, list[str]]]:
    """Apply row, column, cell and cell-length limits to a row stream."""
    cells_seen = 0
    for count, (line, row) in enumerate(rows, start=1):
        if count > limits.max_rows:
            raise TabularError("too_many_rows", f"行数超过 {limits.max_rows} / more than {limits.max_rows} rows", line)
        if len(row) > limits.max_columns:
            raise TabularError(
                "too_many_columns", f"列数超过 {limits.max_columns} / more than {limits.max_columns} columns", line
            )
        cells_seen += len(row)
        if cells_seen > limits.max_cells:
            raise TabularError(
                "too_many_cells", f"单元格数超过 {limits.max_cells} / more than {limits.max_cells} cells", line
            )
        if any(len(cell) > limits.max_cell_chars for cell in row):
            raise _cell_too_large(limits, line)
        yield line, row


def check_xlsx_archive(archive: zipfile.ZipFile, limits: TableLimits = DEFAULT_LIMITS) -> None:
    """Refuse a workbook whose zip could inflate beyond the limits, before any of it is parsed."""
    entries = archive.infolist()
    if len(entries) > limits.xlsx_max_entries:
        raise TabularError(
            "xlsx_too_many_entries", f"XLSX 内部文件过多 / the workbook holds more than {limits.xlsx_max_entries} parts"
        )
    total = 0
    for entry in entries:
        total += entry.file_size
        shared_strings = entry.filename.lower() == "xl/sharedstrings.xml"
        bound = limits.xlsx_max_shared_strings_bytes if shared_strings else limits.xlsx_max_entry_bytes
        if entry.file_size > bound:
            raise _xlsx_too_large(bound)
        if entry.file_size > (1 << 20) and entry.file_size > limits.xlsx_max_ratio * max(entry.compress_size, 1):
            raise _xlsx_too_large(limits.xlsx_max_ratio * max(entry.compress_size, 1))
    if total > limits.xlsx_max_uncompressed_bytes:
        raise _xlsx_too_large(limits.xlsx_max_uncompressed_bytes)


def _xlsx_too_large(bound: int) -> TabularError:
    mib = max(1, round(bound / (1 << 20)))
    return TabularError(
        "xlsx_too_large", f"XLSX 解压后过大（上限约 {mib} MB）/ the workbook inflates beyond about {mib} MB"
    )


def _xlsx_invalid(exc: BaseException) -> TabularError:
    return TabularError("xlsx_invalid", f"无法读取 XLSX 文件 / cannot read XLSX: {type(exc).__name__}")


def _xlsx_rows(handle: IO[bytes], limits: TableLimits) -> Iterator[tuple[int, list[str]]]:
    import openpyxl

    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _xlsx_invalid(exc) from exc
    with archive:
        check_xlsx_archive(archive, limits)
        handle.seek(0)
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is a file error
            raise _xlsx_invalid(exc) from exc
    try:
        if not book.worksheets:
            raise TabularError("xlsx_invalid", "XLSX 没有工作表 / the workbook has no sheet")
        sheet = book.worksheets[0]
        # The declared dimension may claim XFD1048576: ignore it, so rows are as wide as their cells.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        number = 0
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except TabularError:
                raise
            except Exception as exc:  # noqa: BLE001 - malformed sheet XML is a file error
                raise _xlsx_invalid(exc) from exc
            number += 1
            yield number, ["" if value is None else _cell_text(value) for value in row]
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores phone-looking numbers as floats
    return str(value)
