"""A check that raises, to prove a crash becomes an error finding."""

from auditor.model import CheckMeta, Severity

META = CheckMeta("crashing", "Crashes", Severity.HIGH, "d", "r", "fix", ())


def run(ctx):
    raise KeyError("status")
