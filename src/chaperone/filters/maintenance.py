"""Built-in filter plugin: maintenance (being written)."""
