"""Helpers shared by the end-to-end tests: a recording HTTP server and CLI runners.

Test files import them as ``from chaperone.testing.servers import ...``, with ``tests/`` on
``sys.path`` (``pythonpath = ["tests"]`` in pytest's configuration, or the files' own
``sys.path`` insert until that line is there).
"""
