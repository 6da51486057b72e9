r"""``chaperone route``: where an alert would go, and why; a dry run that sends nothing.

The command builds a representative alert from its options, gives it its priority as the
pipeline does (plugins first, then the ``[alerting.priority]`` rules), then routes it as
the pipeline does (plugins first, then the ``[[alerting.routes]]``, else the default
route), and says who decided each step. The built-in steps are explained by the same
functions the pipeline runs, so the explanation is what would happen.

The dry run needs no working channel: a channel that is not installed, or whose settings
would not validate, is shown with a warning (``chaperone config check`` is where such a
configuration fails), and the command still exits 0. It opens no store (plugins asked
see an empty memory store) and sends nothing. Values of a route's channel settings are
shown only when the channel's plugin says they are not secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import click
import pluggy

from chaperone._alerts import Alert, Priority, Severity
from chaperone._clock import SystemClock
from chaperone._exceptions import ConfigError
from chaperone._secrets import MASK, describe
from chaperone._verdicts import Destination
from chaperone.builtin import priority_rules as builtin_priority
from chaperone.builtin import routing as builtin_routing
from chaperone.builtin.priority_rules import explain_priority
from chaperone.builtin.routing import RouteDecision, explain_route
from chaperone.channels._configure import package_for_channel
from chaperone.cli._context import runtime_or_exit
from chaperone.cli._output import echo, print_json
from chaperone.config._unknown import disable_problems
from chaperone.store import MemoryStore

if TYPE_CHECKING:
    from chaperone._chaperone import Chaperone

__all__ = ["route"]

_USUAL_SEVERITY: Mapping[str, Severity] = {
    "job_stuck": Severity.ERROR,
    "job_timeout": Severity.ERROR,
    "circuit_breaker": Severity.CRITICAL,
    "resource_violation": Severity.WARNING,
    "threshold": Severity.WARNING,
    "maintenance": Severity.INFO,
}
"""The severity the built-in alerts of each type have; --severity overrides it."""
_LABEL = re.compile(r"\s*([^=\s][^=]*?)\s*=(.*)", re.DOTALL)


def _labels(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        found = _LABEL.fullmatch(value)
        if not found:
            raise click.BadParameter(f"expected KEY=VALUE (like team=payments), got {value!r}")
        labels[found.group(1)] = found.group(2).strip()
    return labels


@attrs.frozen(kw_only=True)
class _Answer:
    """Which implementation of a firstresult hook answered first, and with what."""

    plugin: str | None = None
    module: object = None
    result: Any = None
    error: str | None = None


def _first_answer(caller: pluggy.HookCaller, **kwargs: Any) -> _Answer:
    """Ask each implementation of a firstresult hook in pluggy's order, as pluggy does."""
    for impl in reversed(caller.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        accepted = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        try:
            result = impl.function(**accepted)
        except Exception as exc:
            return _Answer(
                plugin=impl.plugin_name,
                module=impl.plugin,
                error=describe(exc),
            )
        if result is not None:
            return _Answer(plugin=impl.plugin_name, module=impl.plugin, result=result)
    return _Answer()


def _is(answer: _Answer, module: ModuleType) -> bool:
    return answer.module is module


def _priority_report(runtime: Chaperone, built: Alert, alert: Alert) -> dict[str, Any]:
    answer = _first_answer(
        runtime.plugins.hook.chaperone_alert_priority, alert=built, runtime=runtime.runtime
    )
    rules_on = runtime.plugins.manager.is_registered(builtin_priority)
    builtin = _is(answer, builtin_priority) or (answer.plugin is None and rules_on)
    stays = f"it stays {built.priority.value}"
    if answer.error is not None:
        reason = f"the plugin raised {answer.error}; {stays}"
    elif builtin:
        reason = explain_priority(built, runtime.settings.priority).reason
    elif answer.plugin is None:
        reason = f"no plugin answered and the built-in rules are disabled; {stays}"
    elif alert.priority is built.priority and answer.result != built.priority:
        reason = f"the plugin returned {answer.result!r}, not a priority; {stays}"
    else:
        reason = f"the plugin says {alert.priority.value}"
    return {
        "priority": alert.priority.value,
        "built_with": built.priority.value,
        "decided_by": builtin_priority.__name__ if builtin else answer.plugin,
        "builtin": builtin,
        "reason": reason,
    }


def _shown_settings(runtime: Chaperone, channel: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A route's settings for ``channel``: secret values masked (every value when no
    installed plugin says which keys are secret).
    """
    channel_class = runtime.plugins.channel_classes.get(channel)
    secret = None if channel_class is None else channel_class.secret_keys
    return {
        key: MASK if secret is None or key in secret else value for key, value in values.items()
    }


def _destination(runtime: Chaperone, destination: Destination) -> dict[str, Any]:
    return {
        "channel": destination.channel,
        "route": destination.route,
        "settings": _shown_settings(runtime, destination.channel, destination.settings),
        "runbook_url": destination.runbook_url,
    }


def _routes(runtime: Chaperone, decision: RouteDecision) -> list[dict[str, Any]]:
    return [
        {
            "name": check.route.name,
            "status": check.status.value,
            "why": list(check.why),
            "match": check.route.match.to_dict(),
            "channels": list(check.route.channels),
            "settings": {
                channel: _shown_settings(runtime, channel, values)
                for channel, values in check.route.channel_settings.items()
            },
            "runbook_url": check.route.runbook_url,
            "continue": check.route.continue_matching,
        }
        for check in decision.checks
    ]


def _routing_report(runtime: Chaperone, alert: Alert) -> dict[str, Any]:
    answer = _first_answer(
        runtime.plugins.hook.chaperone_route, alert=alert, runtime=runtime.runtime
    )
    if answer.plugin is not None and answer.error is None and not _is(answer, builtin_routing):
        return {
            "decided_by": answer.plugin,
            "builtin": False,
            "reason": "the plugin chose the destinations; the built-in routes were not asked",
        }
    reason = ""
    if answer.error is not None:
        reason = f"plugin {answer.plugin!r} raised {answer.error}; the built-in routes decide"
    decision = explain_route(alert, runtime.settings)
    return {
        "decided_by": builtin_routing.__name__,
        "builtin": True,
        "reason": reason,
        "routes": _routes(runtime, decision),
        "default_route": decision.default_route,
    }


def _missing(runtime: Chaperone, name: str) -> str:
    """Why no channel ``name`` is available, and what to do about it."""
    info = runtime.plugins.owner_of(name)
    if info is not None and info.disabled:
        return f"the plugin {info.name!r} is disabled (CHAPERONE_DISABLE_PLUGINS)"
    if info is not None and info.error:
        return f"the plugin {info.name!r} is installed but broken ({info.error})"
    return (
        f"no installed plugin provides channel {name!r}; "
        f"install it with: pip install {package_for_channel(name)}"
    )


def _warnings(runtime: Chaperone, destinations: list[Destination]) -> list[str]:
    """What would stop delivery to each destination (and the monitor from starting)."""
    warnings: list[str] = []
    for destination in destinations:
        where = f"{destination.channel} (route {destination.route!r})"
        if destination.channel not in runtime.plugins.channel_classes:
            warnings.append(f"{where}: {_missing(runtime, destination.channel)}")
            continue
        try:
            runtime.channels.channel_for(destination)
        except ConfigError as exc:
            warnings.extend(f"{where}: {problem}" for problem in exc.problems)
        except Exception as exc:
            warnings.append(f"{where}: {describe(exc)}")
    warnings.extend(str(problem) for problem in disable_problems(runtime.settings, runtime.plugins))
    return warnings


def _settings_text(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items())


def _print_text(report: dict[str, Any]) -> None:
    alert, priority, routing = report["alert"], report["priority"], report["routing"]
    echo("Dry run: nothing is sent.")
    subject = [f"job class {alert['job_class']}"] if alert["job_class"] else []
    subject += [f"service {alert['service']}"] if alert["service"] else []
    subject += [f"label {name}={value}" for name, value in alert["labels"].items()]
    echo(
        f"Alert: {alert['type']}, "
        + ", ".join([*subject, f"severity {alert['severity']}", f"key {alert['key']}"])
    )
    changed = "" if priority["priority"] == priority["built_with"] else " (built as "
    changed += f"{priority['built_with']})" if changed else ""
    echo(f"Priority: {priority['priority']}{changed}")
    who = (
        "the built-in priority rules"
        if priority["builtin"]
        else f"plugin {priority['decided_by']!r}"
        if priority["decided_by"]
        else "nothing"
    )
    echo(f"  decided by {who}: {priority['reason']}")
    if routing["builtin"]:
        echo("Routing: decided by the built-in routes ([[alerting.routes]])")
        if routing["reason"]:
            echo(f"  {routing['reason']}")
        _print_routes(routing)
    else:
        echo(f"Routing: decided by plugin {routing['decided_by']!r}")
        echo(f"  {routing['reason']}")
    echo("Destinations:" if report["destinations"] else "Destinations: none")
    for item in report["destinations"]:
        extra = f" with {_settings_text(item['settings'])}" if item["settings"] else ""
        runbook = f", runbook {item['runbook_url']}" if item["runbook_url"] else ""
        echo(f"  {item['channel']} (route {item['route']}){extra}{runbook}")
    if report["warnings"]:
        echo("Warnings (`chaperone config check` fails until these are fixed):")
        for warning in report["warnings"]:
            echo(f"  {warning}")


def _print_routes(routing: dict[str, Any]) -> None:
    for item in routing["routes"]:
        name = item["name"]
        if item["status"] == "not considered":
            echo(f"  - route {name!r} not considered: {item['why'][0]}")
            continue
        matched = item["status"] == "matched"
        echo(f"  {'✓' if matched else '✗'} route {name!r} {item['status']}:")
        for line in item["why"]:
            echo(f"      {line}")
        if not matched:
            continue
        channels = [
            f"{channel} ({_settings_text(item['settings'][channel])})"
            if item["settings"].get(channel)
            else channel
            for channel in item["channels"]
        ]
        echo(f"      channels: {', '.join(channels)}")
        if item["runbook_url"]:
            echo(f"      runbook: {item['runbook_url']}")
        echo(
            "      continues: the routes after it are tried too"
            if item["continue"]
            else "      does not continue: the routes after it are not considered"
        )
    if routing["default_route"]:
        echo("  no route matched: the default route applies (CHAPERONE_ALERT_CHANNELS)")


def _alert(
    alert_type: str,
    key: str | None,
    job_class: str | None,
    service: str | None,
    severity: str | None,
    priority: str,
    labels: dict[str, str],
) -> Alert:
    headline = alert_type.replace("_", " ").title()
    usual = _USUAL_SEVERITY.get(alert_type, Severity.ERROR)
    subject = job_class or service or key or "dry run"
    try:
        return Alert(
            type=alert_type,
            key=key or "dry-run",
            headline=headline,
            title=f"{headline}: {subject}",
            summary="A representative alert for `chaperone route`; nothing is sent.",
            occurred_at=SystemClock().now(),
            severity=Severity(severity) if severity else usual,
            priority=Priority(priority),
            job_class=job_class,
            service=service,
            labels=labels,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--type'") from None


@click.command("route")
@click.option(
    "--type", "alert_type", required=True, metavar="TYPE", help="Alert type, e.g. job_stuck."
)
@click.option("--job-class", metavar="CLASS", help=r"Job class, e.g. 'App\Jobs\PaymentSync'.")
@click.option(
    "--severity",
    type=click.Choice([level.value for level in Severity], case_sensitive=False),
    help="Severity (default: the usual one of the type, else error).",
)
@click.option(
    "--priority",
    type=click.Choice([level.value for level in Priority], case_sensitive=False),
    default=Priority.NORMAL.value,
    show_default=True,
    help="Priority the alert is built with; the priority rules and plugins may change it.",
)
@click.option("--service", metavar="NAME", help="Service, e.g. payment-gateway.")
@click.option(
    "--label", "labels", multiple=True, metavar="KEY=VALUE", callback=_labels, help="A label."
)
@click.option("--key", metavar="KEY", help="Alert key (default: dry-run).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def route(
    alert_type: str,
    job_class: str | None,
    severity: str | None,
    priority: str,
    service: str | None,
    labels: dict[str, str],
    key: str | None,
    as_json: bool,
) -> None:
    r"""Show where an alert would go and why, sending nothing.

    Gives the alert its priority and routes it as the pipeline would, then prints the
    priority and who set it, each route tried (matched or not, field by field), the
    channels with their route settings (secrets masked) and runbook links. A channel
    that is not installed or whose settings are invalid is a warning, not an error.

    Example: chaperone route --type job_stuck --job-class 'App\Jobs\PaymentSync'
    """
    built = _alert(alert_type, key, job_class, service, severity, priority, labels)
    clock = SystemClock()
    with runtime_or_exit(clock=clock, store=MemoryStore(clock), validate=False) as runtime:
        alert = runtime.dispatcher.prioritise(built)
        destinations = runtime.dispatcher.destinations_for(alert)
        report = {
            "dry_run": True,
            "alert": {
                "type": alert.type,
                "key": alert.key,
                "job_class": alert.job_class,
                "service": alert.service,
                "severity": alert.severity.value,
                "labels": dict(alert.labels),
            },
            "priority": _priority_report(runtime, built, alert),
            "routing": _routing_report(runtime, alert),
            "destinations": [_destination(runtime, item) for item in destinations],
            "warnings": _warnings(runtime, destinations),
        }
    if as_json:
        print_json(report)
    else:
        _print_text(report)
