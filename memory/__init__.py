"""sqlsage.memory."""
