"""Sorted columns answer exactly what a scan over the whole column would."""

from __future__ import annotations

import random

import numpy as np

from search.sorted_columns import PhoneTails, SortedColumn


def test_sorted_column_equal_and_any_of_match_a_scan() -> None:
    rng = np.random.default_rng(15)
    values = rng.integers(0, 50, size=5000)
    column = SortedColumn(values)
    for value in (0, 7, 49, 50, -1):
        assert sorted(column.equal(value).tolist()) == np.flatnonzero(values == value).tolist()
    wanted = np.array([3, 9, 11, 60])
    assert sorted(column.any_of(wanted).tolist()) == np.flatnonzero(np.isin(values, wanted)).tolist()
    assert column.any_of(np.array([], dtype=np.int64)).size == 0


def test_phone_tails_match_a_scan_for_every_tail_length() -> None:
    rnd = random.Random(15)
    numbers = [int("0570" + "".join(rnd.choice("0123456789") for _ in range(7))) for _ in range(3000)]
    numbers += [int("1" + "".join(rnd.choice("3456789") for _ in range(10))) for _ in range(3000)]
    numbers += [661234, 1234, 900, -1, -1, 5703012345]
    column = np.array(numbers, dtype=np.int64)
    tails = PhoneTails(column)
    probes = ["1234", "0570", "234", "900", "00", "0661234", "05703012345", "5703012345", "13912346688"]
    probes += [str(n)[-k:] for n in rnd.sample([n for n in numbers if n > 0], 40) for k in (3, 4, 6, 8, 9, 10, 11)]
    for digits in probes:
        modulus, value = 10 ** len(digits), int(digits)
        expected = np.flatnonzero((column >= 0) & (column % modulus == value)).tolist()
        assert sorted(tails.ending_with(digits).tolist()) == expected, digits
