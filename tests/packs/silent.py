"""A check that returns nothing, to prove silence becomes an error finding."""

from auditor.model import CheckMeta, Severity

META = CheckMeta("silent", "Says nothing", Severity.LOW, "d", "r", "fix", ())


def run(ctx):
    return []
