"""Kubernetes quantities parse exactly as k8s.io/apimachinery's resource.Quantity reads them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.quantity import cores, gib, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("31500m", Decimal("31.5")),
        ("16Gi", Decimal(16 * 1024**3)),
        ("64385024Ki", Decimal(64385024 * 1024)),
        ("1G", Decimal(10**9)),
        ("1k", Decimal(1000)),
        ("1M", Decimal(10**6)),
        ("1E", Decimal(10**18)),  # exa, not an exponent
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("2.5e-3", Decimal("0.0025")),
        ("1.5Gi", Decimal(3 * 1024**3 // 2)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("100n", Decimal("0.0000001")),
        ("250u", Decimal("0.00025")),
        ("1Ti", Decimal(1024**4)),
        ("+3", Decimal(3)),
        ("-1Ki", Decimal(-1024)),
        ("429904502374", Decimal(429904502374)),  # kubelet's allocatable ephemeral-storage, in bytes
        (" 8Gi ", Decimal(8 * 1024**3)),
    ],
)
def test_parses_what_the_apiserver_accepts(text: str, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(("value", "expected"), [(2, Decimal(2)), (0.5, Decimal("0.5")), (0, Decimal(0))])
def test_yaml_numbers_are_quantities(value: float, expected: Decimal) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "Gi", "16GB", "1K", "1gi", "1e", "1.2.3", "16 Gi", "ten", "1Mi1", "1e99999999", None, True, ["1"], {"cpu": 1}],
)
def test_refuses_what_the_apiserver_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(bad)


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]))
def test_binary_suffixes_are_powers_of_1024(number: int, suffix: str) -> None:
    power = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].index(suffix) + 1
    assert parse_quantity(f"{number}{suffix}") == number * 1024**power


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=-9, max_value=18))
def test_decimal_exponents_and_suffixes_agree(number: int, exponent: int) -> None:
    suffixes = {-9: "n", -6: "u", -3: "m", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
    scaled = parse_quantity(f"{number}e{exponent}")
    assert scaled == Decimal(number).scaleb(exponent)
    if exponent in suffixes:
        assert parse_quantity(f"{number}{suffixes[exponent]}") == scaled


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Decimal(12), "12"), (Decimal("9.3"), "9.3"), (Decimal("0.25"), "0.25"), (Decimal("31.5004"), "31.5")],
)
def test_cores_are_printed_as_an_operator_reads_them(value: Decimal, expected: str) -> None:
    assert cores(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (parse_quantity("16Gi"), "16Gi"),
        (parse_quantity("64385024Ki"), "61.4Gi"),
        (Decimal(0), "0Gi"),
        (parse_quantity("120Gi"), "120Gi"),
        (parse_quantity("-3Gi"), "-3Gi"),
    ],
)
def test_memory_is_printed_in_gib(value: Decimal, expected: str) -> None:
    assert gib(value) == expected
