"""Jinja2 templates and CSS of the HTML and PDF reports.

A package (not a loose folder) so ``importlib.resources`` finds the files in an installed wheel; the
PDF renderer's URL fetcher serves files from this directory and nothing else.
"""
