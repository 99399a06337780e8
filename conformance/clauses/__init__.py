"""The contract's clause tests, one module per group (``contract.Clause.group``)."""
