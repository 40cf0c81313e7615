"""sqlsage.agents."""
