"""Bundled sample estates (installed as the ``drauditor_samples`` package for `drauditor demo`)."""
