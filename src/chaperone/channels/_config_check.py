"""The start-up check of the configuration: every configured channel is built once, so a
bad setting fails at start-up, not at 3 a.m.

:func:`check` raises one :class:`~chaperone.ConfigError` naming every problem: unknown
settings, no channel at all, a channel no installed plugin provides (then
:class:`~chaperone.UnknownChannelError`), a channel whose settings do not validate, and a
chain of fallbacks that names a missing channel, the channel itself, or a cycle.
"""

from __future__ import annotations

from chaperone._exceptions import ConfigError, ConfigProblem, UnknownChannelError
from chaperone._verdicts import Destination
from chaperone.channels._configure import channel_settings
from chaperone.channels._registry import ChannelRegistry
from chaperone.config._unknown import unknown_names

__all__ = ["check"]


def check(registry: ChannelRegistry) -> None:
    """Build every configured channel; raise one ConfigError naming every problem."""
    settings, plugins = registry.settings, registry.plugins
    problems: list[ConfigProblem] = unknown_names(settings, plugins)
    unknown: list[ConfigProblem] = []
    if settings.enabled and not settings.channels:
        problems.append(
            ConfigProblem(
                key="CHAPERONE_ALERT_CHANNELS",
                source=settings.source_of("alerting.channels"),
                message="no channel configured: every alert would be lost",
            )
        )
    destinations = [Destination(channel=name) for name in settings.channels]
    for index, route in enumerate(settings.routes):
        destinations.extend(
            Destination(
                channel=name,
                route=route.name,
                settings=route.channel_settings.get(name, {}),
            )
            for name in route.channels
        )
        for name in route.channels:
            if name not in plugins.channel_classes:
                unknown.append(registry.unknown_channel(name, f"alerting.routes[{index}]"))
    for destination in destinations:
        if destination.channel not in plugins.channel_classes:
            if destination.route == "default":
                unknown.append(registry.unknown_channel(destination.channel))
            continue
        try:
            registry.channel_for(destination)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(fallback_problems(registry, destination))
    problems = list(dict.fromkeys(problems))  # a channel on several routes: once
    if unknown:
        raise UnknownChannelError([*unknown, *problems])
    if problems:
        raise ConfigError(problems)


def fallback_problems(registry: ChannelRegistry, destination: Destination) -> list[ConfigProblem]:
    """What is wrong with the chain of fallbacks from ``destination``: a fallback that is
    not an installed channel, the channel itself, or a cycle.
    """
    channel_classes = registry.plugins.channel_classes
    seen = [destination.channel]
    current = destination
    while True:
        policy = registry.policy_for(current)
        if policy.fallback is None:
            return []
        settings = channel_settings(
            channel_classes[current.channel],
            app=registry.settings,
            store=registry.store,
            clock=registry.clock,
            route=current.route,
            overrides=current.settings,
        )
        name, source = settings.origins.get(
            "fallback", (settings.setting_name("fallback"), "not set")
        )
        if policy.fallback == current.channel:
            message = "names the channel itself"
        elif policy.fallback in seen:
            chain = " → ".join([*seen, policy.fallback])
            message = f"makes a cycle of fallbacks: {chain}"
        elif policy.fallback not in channel_classes:
            installed = ", ".join(sorted(channel_classes)) or "none"
            message = (
                f"names {policy.fallback!r}, which no installed plugin provides "
                f"(installed channels: {installed})"
            )
        else:
            current = Destination(
                channel=policy.fallback,
                route=current.route,
                settings=registry.route_settings(current.route, policy.fallback),
            )
            seen.append(policy.fallback)
            try:
                registry.channel_for(current)
            except ConfigError as exc:
                return list(exc.problems)
            continue
        return [ConfigProblem(key=name, source=source, message=message)]
