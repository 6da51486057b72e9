"""Built-in filter plugin: escalation (being written)."""
