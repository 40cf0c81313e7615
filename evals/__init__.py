"""sqlsage.evals."""
