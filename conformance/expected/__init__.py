"""What saved files are compared against: the original model, the contract's names, the
tolerances, and the fixed models some clauses save."""
