"""sqlsage.server."""
