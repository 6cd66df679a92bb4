"""The bounded table reader: bombs and oversized fields are refused cleanly, before anything is loaded."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from contacts.tabular import TableLimits, TabularError, iter_records, iter_rows

SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = "</sheetData></worksheet>"


def small_workbook(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["phone", "name"])
    sheet.append([13800000001, "张三"])
    book.save(path)


def rewrite_workbook(source: Path, target: Path, replace: dict[str, bytes | list[bytes]]) -> None:
    """Copy a workbook, replacing or adding parts (a list is written chunk by chunk, so it can be huge)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        names = old.namelist() + [name for name in replace if name not in old.namelist()]
        for name in names:
            content = replace[name] if name in replace else old.read(name)
            if isinstance(content, list):
                with new.open(name, "w", force_zip64=True) as handle:
                    for chunk in content:
                        handle.write(chunk)
            else:
                new.writestr(name, content)


def test_shared_string_bomb_is_refused_before_the_workbook_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain.xlsx"
    small_workbook(plain)
    with zipfile.ZipFile(plain) as book:
        types = book.read("[Content_Types].xml").decode()
        rels = book.read("xl/_rels/workbook.xml.rels").decode()
    types = types.replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdBomb" Target="sharedStrings.xml" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/sharedStrings"/></Relationships>',
    )
    # 48 MiB of shared strings that deflate to well under a megabyte.
    chunk = b"<si><t>" + b"A" * 1000 + b"</t></si>"
    head = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    bomb = tmp_path / "bomb.xlsx"
    parts: dict[str, bytes | list[bytes]] = {
        "[Content_Types].xml": types.encode(),
        "xl/_rels/workbook.xml.rels": rels.encode(),
        "xl/sharedStrings.xml": [head, *[chunk * 1000] * 48, b"</sst>"],
    }
    rewrite_workbook(plain, bomb, parts)
    assert bomb.stat().st_size < 1 << 20

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the workbook was parsed")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    with pytest.raises(TabularError) as caught:
        list(iter_rows(bomb))
    assert caught.value.code == "xlsx_too_large"
    assert "XLSX" in caught.value.message and "MB" in caught.value.message


def test_xlsx_entry_count_total_size_and_ratio_are_bounded(tmp_path: Path) -> None:
    plain = tmp_path / "plain.xlsx"
    small_workbook(plain)
    assert [row for _line, row in iter_rows(plain)] == [["phone", "name"], ["13800000001", "张三"]]
    many = tmp_path / "many.xlsx"
    with zipfile.ZipFile(plain) as old, zipfile.ZipFile(many, "w") as new:
        for item in old.infolist():
            new.writestr(item, old.read(item.filename))
        for number in range(20):
            new.writestr(f"xl/media/extra{number}.bin", b"x")
    with pytest.raises(TabularError) as caught:
        list(iter_rows(many, limits=TableLimits(xlsx_max_entries=20)))
    assert caught.value.code == "xlsx_too_many_entries"
    with pytest.raises(TabularError) as caught:
        list(iter_rows(plain, limits=TableLimits(xlsx_max_uncompressed_bytes=1000)))
    assert caught.value.code == "xlsx_too_large"
    dense = tmp_path / "dense.xlsx"
    rewrite_workbook(plain, dense, {"docProps/app.xml": [b" " * (1 << 20)] * 3})
    with pytest.raises(TabularError) as caught:
        list(iter_rows(dense))
    assert caught.value.code == "xlsx_too_large"


def test_sheet_rows_far_away_and_cells_far_right_are_bounded(tmp_path: Path) -> None:
    plain = tmp_path / "plain.xlsx"
    small_workbook(plain)
    far_down = tmp_path / "down.xlsx"
    sheet = SHEET_HEAD + '<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>'
    sheet += '<row r="2000000000"><c r="A2000000000"><v>1</v></c></row>' + SHEET_TAIL
    rewrite_workbook(plain, far_down, {"xl/worksheets/sheet1.xml": sheet.encode()})
    with pytest.raises(TabularError) as caught:
        list(iter_rows(far_down, limits=TableLimits(max_rows=1000)))
    assert caught.value.code == "too_many_rows"
    far_right = tmp_path / "right.xlsx"
    sheet = SHEET_HEAD + '<row r="1"><c r="XFD1"><v>1</v></c></row>' + SHEET_TAIL
    rewrite_workbook(plain, far_right, {"xl/worksheets/sheet1.xml": sheet.encode()})
    with pytest.raises(TabularError) as caught:
        list(iter_rows(far_right))
    assert caught.value.code == "too_many_columns"
    broken = tmp_path / "broken.xlsx"
    rewrite_workbook(plain, broken, {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row"})
    with pytest.raises(TabularError) as caught:
        list(iter_rows(broken))
    assert caught.value.code == "xlsx_invalid"


@pytest.mark.parametrize("as_path", [True, False])
def test_a_csv_field_beyond_csv_field_size_limit_is_a_clean_error(tmp_path: Path, as_path: bool) -> None:
    content = b"phone,name\n13800000001," + b"x" * 200_000 + b"\n"
    path = tmp_path / "wide.csv"
    path.write_bytes(content)
    with pytest.raises(TabularError) as caught:
        list(iter_rows(path if as_path else content))
    assert caught.value.code in ("cell_too_large", "line_too_long")
    assert caught.value.line == 2 or caught.value.code == "line_too_long"
    quoted = b'phone,name\n13800000001,"' + b"y\n" * 100_000 + b'"\n'
    path.write_bytes(quoted)
    with pytest.raises(TabularError) as caught:
        list(iter_rows(path if as_path else quoted))
    assert caught.value.code == "cell_too_large"


def test_csv_encodings_stream_and_limits(tmp_path: Path) -> None:
    rows = "phone,name\n" + "".join(f"1380000{n:04d},用户{n}\n" for n in range(3000)) + "13900000000,曾单解\n"
    for encoding, prefix in (("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gb18030", b"")):
        path = tmp_path / f"{encoding}-{len(prefix)}.csv"
        path.write_bytes(prefix + rows.encode(encoding))
        columns, records = iter_records(path)
        got = list(records)
        assert columns == ["phone", "name"] and len(got) == 3001
        assert got[-1] == (3002, {"phone": "13900000000", "name": "曾单解"})
    with pytest.raises(TabularError) as caught:
        list(iter_rows(rows.encode(), limits=TableLimits(max_rows=10)))
    assert caught.value.code == "too_many_rows"
    with pytest.raises(TabularError) as caught:
        list(iter_rows(b"\xff\xfe\x00garbage\x81", limits=TableLimits()))
    assert caught.value.code == "unknown_encoding"
    with pytest.raises(TabularError) as caught:
        list(iter_rows(rows.encode(), limits=TableLimits(max_file_bytes=100)))
    assert caught.value.code == "file_too_large"
    with pytest.raises(TabularError) as caught:
        iter_records("\n\n")
    assert caught.value.code == "empty_file"
