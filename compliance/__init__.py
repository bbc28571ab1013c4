"""Compliance framework files: which drauditor checks give evidence for which requirement of a framework.

A package (not a loose folder), like ``report_templates``, so ``importlib.resources`` finds the YAML files in an
installed wheel; ``auditor.compliance`` loads and validates them and computes each requirement's status.
"""
