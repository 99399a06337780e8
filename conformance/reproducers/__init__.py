"""Standalone reproducer scripts: their source (``source``) and the clauses' checks as script
text (``checks``); used by ``python -m conformance reproduce`` and the report plugin."""
