"""Built-in filter plugins, one module each, behind the ``chaperone_filter_alert`` hook."""
