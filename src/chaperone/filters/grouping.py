"""Built-in filter plugin: grouping (being written)."""
