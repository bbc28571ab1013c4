"""Kubernetes resource quantities (resource.Quantity) as exact numbers.

Capacity arithmetic adds node allocatable ("31500m", "128483456Ki") to VM requests ("16Gi", 4): floats would
drift, so every value is a Decimal in base units (cores for CPU, bytes for memory), parsed by the grammar of
k8s.io/apimachinery/pkg/api/resource: a signed decimal number, then a binary suffix (Ki..Ei), a decimal suffix
(n, u, m, k, M, G, T, P, E) or a decimal exponent (e3, E-2).
"""

from __future__ import annotations

import re
from decimal import Decimal, Inexact, localcontext

_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_GIB = Decimal(1024) ** 3
_PRECISION = 80  # digits; far beyond any node or VM size


def parse_quantity(value: object) -> Decimal:
    """``value`` in base units; YAML may give plain numbers (``cpu: 2``), which are quantities too.

    Raises ValueError for anything the apiserver would refuse, so a malformed object is reported, not counted as 0.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        raise ValueError(f"not a quantity: {value!r}")
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = match.group(1), match.group(2) or ""
    base = Decimal(number)  # the pattern admits only numbers Decimal reads
    with localcontext(prec=_PRECISION) as context:  # exact: the default 28 digits would round 10^12 Ei
        context.traps[Inexact] = True
        try:
            if suffix in _BINARY:
                return base * Decimal(1024) ** _BINARY[suffix]
            if suffix in _DECIMAL:
                return base.scaleb(_DECIMAL[suffix])
            return base.scaleb(int(suffix[1:]))  # decimal exponent: e3, E-2
        except ArithmeticError as exc:  # an exponent or a precision beyond any real size
            raise ValueError(f"not a quantity: {value!r} is out of range") from exc


def cores(value: Decimal) -> str:
    """CPU for a message, in cores with at most three decimals (``12``, ``9.3``, ``0.25``)."""
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


def gib(value: Decimal) -> str:
    """Memory for a message, in GiB with at most one decimal (``16Gi``, ``12.5Gi``)."""
    amount = (value / _GIB).quantize(Decimal("0.1"))
    return f"{amount.normalize():f}Gi"
