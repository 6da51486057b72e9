"""Built-in detector plugins, one module each, behind the ``chaperone_detect`` hook.

Detectors run in the monitor (``chaperone monitor``, or inline in ``chaperone run``),
never in the job they watch: a stuck job cannot report itself.
"""
