"""The analyzer: normalisation, pinyin keys (polyphonic surnames), query tokens, derived aliases."""

from __future__ import annotations

import pytest

from search.analyzer import (
    QueryError,
    derived_aliases,
    given_name_keys,
    normalize,
    query_chunks,
    stable_hash,
    surname_keys,
)


def test_normalize_traditional_fullwidth_and_case() -> None:
    assert normalize("張偉") == "张伟"
    assert normalize("ＺＨＡＮＧ　Ｗｅｉ") == "zhang wei"
    assert normalize("應急管理局") == "应急管理局"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("曾小明", {"zeng", "z"}), ("单丽", {"shan", "s"}), ("解放", {"xie", "x"}), ("欧阳娜娜", {"ouyang", "oy"})],
)
def test_polyphonic_and_compound_surnames(name: str, expected: set[str]) -> None:
    assert expected <= surname_keys(name)


def test_given_name_keys_have_prefixes_and_initials() -> None:
    assert {"w", "we", "wei"} <= given_name_keys("张伟")
    assert {"xm", "xiaom", "xiaoming", "xming"} <= given_name_keys("曾小明")
    assert "ouyang" not in given_name_keys("欧阳娜娜") and "nn" in given_name_keys("欧阳娜娜")


def test_query_chunks() -> None:
    kinds = [(t.text, t.kind) for t in query_chunks("zhang wei")]
    assert kinds == [("zhangwei", "latin")]
    assert [(t.text, t.kind) for t in query_chunks("张w")] == [("张w", "mixed")]
    assert [(t.text, t.kind) for t in query_chunks("0570-3012345")] == [("05703012345", "digits")]
    assert [t.text for t in query_chunks("江山 应急　局长")] == ["江山", "应急", "局长"]
    assert query_chunks("AND ( * )") == [type(query_chunks("and")[0])("and", "latin")]
    assert query_chunks("！？。*") == []
    with pytest.raises(QueryError) as empty:
        query_chunks("   ")
    assert empty.value.code == "query_empty"
    with pytest.raises(QueryError) as long:
        query_chunks("张" * 500)
    assert long.value.code == "query_too_long"


def test_derived_aliases_for_departments_without_short_names() -> None:
    assert {"应急局", "江山应急局"} <= derived_aliases("江山市应急管理局", "江山市")
    assert {"市府办", "政府办"} <= derived_aliases("衢州市人民政府办公室", "市级")
    assert "卫生健康委" in derived_aliases("衢州市卫生健康委员会", "市级")


def test_stable_hash_is_positive_and_stable() -> None:
    assert stable_hash("张伟") == stable_hash("张伟") > 0
    assert stable_hash("") == 0
