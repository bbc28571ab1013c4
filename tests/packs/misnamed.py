"""A check whose META.id disagrees with its entry-point name."""

from auditor.model import CheckMeta, Severity, Status

META = CheckMeta("other_name", "Misnamed", Severity.LOW, "d", "r", "fix", ())


def run(ctx):
    return [META.finding(Status.PASS, "fine")]
