"""sqlsage.graphs."""
