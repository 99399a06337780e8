"""Command-line tools over the suite (``python -m conformance matrix``): never imported by a
pytest run of the suite."""
