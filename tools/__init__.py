"""sqlsage.tools."""
