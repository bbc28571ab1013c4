"""Errors that end a run with exit code 2 (usage or input error, contract section 3)."""


class InputError(Exception):
    """Bad input the user must fix: the message names the file (and line) or the flag at fault."""
