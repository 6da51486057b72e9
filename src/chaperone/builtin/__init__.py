"""The built-in plugins: every module of this package is one, and nothing else is.

The plugin host lists this package (no hand-kept list), imports each module and registers
it as an outside plugin is registered, under its dotted name (``chaperone.builtin.routing``),
so no third-party entry point can take a built-in's name.

Each module declares ``ORDER``, its place among the built-ins: where several built-ins
implement one hook, the lowest ``ORDER`` is called first. The orders that matter:

- the detectors: jobs (10), schedules (15), queued events (20), thresholds (30), then
  the maintenance windows that ended (60) and the groups due (90);
- the filters: open incidents (55, also ``tryfirst``: it counts every alert before any
  filter can suppress it, and holds back those of an acknowledged incident), maintenance
  (60), escalation (70), rate limit (80), grouping (90), so an alert a window suppresses
  uses up no rate-limit window or group slot;
- the alert builder (40), the priority rules (50) and the routing (100) are also marked
  ``trylast``, so a plugin's answer to those hooks comes first.

Outside plugins are registered after the built-ins, so pluggy calls their hooks before
the built-ins' unless they are marked ``trylast``.

A module may declare ``REQUIRED``, the reason it cannot be disabled: naming it in
``plugins.disable`` (``CHAPERONE_DISABLE_PLUGINS``) is refused at start-up with a
ConfigError saying so. Every other built-in, disabled, is not registered at all.
"""
