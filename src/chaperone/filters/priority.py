"""Built-in filter plugin: priority (being written)."""
