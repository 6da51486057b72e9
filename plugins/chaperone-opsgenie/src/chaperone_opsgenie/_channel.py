"""The ``opsgenie`` channel: create an Opsgenie alert per incident, close it on resolve,
acknowledge it (and undo that) when a person does so in Chaperone.

Settings (``[channels.opsgenie]`` in TOML, or ``CHAPERONE_OPSGENIE_<KEY>``):

- ``api_key`` (required, secret): the key of an Opsgenie API integration. Sent only in
  the ``Authorization: GenieKey <key>`` header; never logged, never in an outcome.
- ``region``: ``us`` (the default, ``https://api.opsgenie.com``) or ``eu``
  (``https://api.eu.opsgenie.com``).
- ``api_url``: the API's base URL, overriding ``region`` (a Jira Service Management
  integration, a proxy, a test server). ``https://`` unless the host is this machine.
- ``tags``: extra tags for every alert, comma-separated (a list in TOML), at most 16.

Outcomes: any 2xx is delivered (Opsgenie answers ``202``: it processes requests
asynchronously); ``429``, ``408``, ``5xx``, timeouts and refused connections are
transient (retried after ``Retry-After``, else after the ``X-RateLimit-Period-In-Sec``
Opsgenie sends with a 429); other 4xx are permanent. A ``404`` from Opsgenie when
closing (or acknowledging) means no open alert has the alias: there is nothing left to
do, so it counts as delivered ("nothing open to close"); a 404 that is not Opsgenie's
JSON answer (a wrong ``api_url``) stays permanent.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final, Self, TypeVar

import httpx

from chaperone.channels import (
    Alert,
    AlertStatus,
    Channel,
    ChannelSettings,
    ConfigError,
    ConfigProblem,
    Outcome,
    OutcomeKind,
    Secret,
    SendContext,
    classify_response,
    retry_after_seconds,
)
from chaperone.channels.text import fit, one_line, utf16_length
from chaperone_opsgenie._render import (
    TAG_COUNT_LIMIT,
    TAG_LENGTH_LIMIT,
    acknowledge_payload,
    alias_for,
    close_payload,
    create_payload,
)

__all__ = ["DEFAULT_REGION", "REGIONS", "OpsgenieChannel"]

REGIONS: Final = {
    "us": "https://api.opsgenie.com",
    "eu": "https://api.eu.opsgenie.com",
}
"""Opsgenie's API base URL for each region (``us`` is what Opsgenie calls global)."""
DEFAULT_REGION: Final = "us"

_MIN_KEY_LENGTH: Final = 20
_MAX_KEY_LENGTH: Final = 512
_KEY_CHARACTERS: Final = re.compile(r"[!-~]+")
"""Printable ASCII, no space: what can travel in an HTTP header unaltered."""
_MAX_EXTRA_TAGS: Final = TAG_COUNT_LIMIT - 4
"""Room left by the four tags every alert gets (chaperone, queue-jobs, type, severity)."""
_ENDPOINT: Final = "/v2/alerts"
_REQUEST_ID_LENGTH: Final = 64

_T = TypeVar("_T")

_ACTIONS: Final[Mapping[AlertStatus, tuple[str, Callable[[Alert], dict[str, str]]]]] = {
    AlertStatus.RESOLVED: ("close", close_payload),
    AlertStatus.ACKNOWLEDGED: ("acknowledge", acknowledge_payload),
    AlertStatus.UNACKNOWLEDGED: ("unacknowledge", acknowledge_payload),
}
"""What each status other than firing does to the Opsgenie alert, by alias."""


class OpsgenieChannel(Channel):
    """Creates an Opsgenie alert for a firing alert and closes it, by alias, when the
    alert's incident resolves.
    """

    name = "opsgenie"
    secret_keys = frozenset({"api_key"})
    setting_keys = frozenset({"api_key", "api_url", "region", "tags"})
    accepts_acknowledgements = True
    accepts_unacknowledgements = True

    def __init__(self, *, api_key: Secret, api_url: str, tags: tuple[str, ...] = ()) -> None:
        self._api_key = api_key
        self._api_url = api_url.rstrip("/")
        self._tags = tags

    @property
    def api_url(self) -> str:
        """The API's base URL, without ``/v2/alerts``."""
        return self._api_url

    @property
    def tags(self) -> tuple[str, ...]:
        """The extra tags every alert gets."""
        return self._tags

    def __repr__(self) -> str:
        return f"<OpsgenieChannel api_url={self._api_url!r} tags={list(self._tags)!r}>"

    # -- settings ------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel; raise one ConfigError naming every bad setting."""
        problems: list[ConfigProblem] = []
        api_key = _collect(problems, _api_key, settings)
        api_url = _collect(problems, _api_url, settings)
        tags = _collect(problems, _tags, settings)
        if api_key is None or api_url is None or tags is None:
            raise ConfigError(problems)
        return cls(api_key=api_key, api_url=api_url, tags=tags)

    # -- sending -------------------------------------------------------------------------

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Create the Opsgenie alert (firing), close it by alias (resolved), or
        acknowledge or unacknowledge it by alias.
        """
        if alert.is_firing:
            outcome, _ = await self._post(
                context, self._api_url + _ENDPOINT, create_payload(alert, extra_tags=self._tags)
            )
            return outcome
        action, payload = _ACTIONS.get(alert.status, ("close", close_payload))
        alias = urllib.parse.quote(alias_for(alert), safe="")
        outcome, response = await self._post(
            context,
            f"{self._api_url}{_ENDPOINT}/{alias}/{action}",
            payload(alert),
            params={"identifierType": "alias"},
        )
        if response is not None and response.status_code == 404 and _from_opsgenie(response):
            return Outcome.delivered(f"HTTP 404: nothing open to {action}", status_code=404)
        return outcome

    async def _post(
        self,
        context: SendContext,
        url: str,
        payload: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
    ) -> tuple[Outcome, httpx.Response | None]:
        try:
            response = await context.http.post(
                url,
                json=dict(payload),
                headers={"Authorization": f"GenieKey {self._api_key.reveal()}"},
                params=dict(params or {}),
                timeout=context.timeout,
            )
        except httpx.TimeoutException as exc:
            detail = f"{type(exc).__name__}: no answer in {context.timeout:g}s"
            return Outcome.transient(detail), None
        except httpx.TransportError as exc:
            return Outcome.transient(f"{type(exc).__name__}: connection failed"), None
        return self._classify(response), response

    def _classify(self, response: httpx.Response) -> Outcome:
        code = response.status_code
        headers = response.headers
        wait = retry_after_seconds(headers.get("Retry-After"))
        if wait is None and code == 429:
            wait = retry_after_seconds(headers.get("X-RateLimit-Period-In-Sec"))
        outcome = classify_response(response, retry_after=wait)
        detail = outcome.detail
        if outcome.kind is OutcomeKind.DELIVERED:
            request_id = _json_field(response, "requestId")
            detail += f", request {request_id}" if request_id else ""
        elif code == 429 and headers.get("X-RateLimit-Reason"):
            detail += f" (throttled: {fit(one_line(headers['X-RateLimit-Reason']), 50)})"
        return Outcome(
            kind=outcome.kind,
            detail=self._scrub(detail),
            retry_after=outcome.retry_after,
            status_code=outcome.status_code,
        )

    def _scrub(self, text: str) -> str:
        """``text`` without the API key, should a service ever quote it back."""
        return text.replace(self._api_key.reveal(), str(self._api_key))


# -- validation ------------------------------------------------------------------------------


def _collect(
    problems: list[ConfigProblem], check: Callable[[ChannelSettings], _T], settings: ChannelSettings
) -> _T | None:
    """``check(settings)``, or None with its problems added to ``problems``."""
    try:
        return check(settings)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _api_key(settings: ChannelSettings) -> Secret:
    raw = settings.require_text("api_key")
    if raw.lower().startswith("geniekey"):
        raise settings.problem("api_key", "must be the key alone, without 'GenieKey'")
    if any(char.isspace() for char in raw):
        raise settings.problem("api_key", "must not contain white space")
    if not _KEY_CHARACTERS.fullmatch(raw):
        raise settings.problem("api_key", "must be printable ASCII (an Opsgenie key is a UUID)")
    if not _MIN_KEY_LENGTH <= len(raw) <= _MAX_KEY_LENGTH:
        raise settings.problem(
            "api_key",
            "does not have the length of an Opsgenie API key "
            "(36 characters, like 00000000-0000-0000-0000-000000000000)",
        )
    return Secret(raw)


def _api_url(settings: ChannelSettings) -> str:
    raw = settings.text("api_url")
    if raw is None:
        region = settings.text("region", DEFAULT_REGION).strip().lower()
        if region not in REGIONS:
            raise settings.problem(
                "region", "must be 'us' (api.opsgenie.com) or 'eu' (api.eu.opsgenie.com)"
            )
        return REGIONS[region]
    text = raw.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise settings.problem("api_url", "is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise settings.problem("api_url", "must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise settings.problem(
            "api_url", "must not hold credentials: the key goes in CHAPERONE_OPSGENIE_API_KEY"
        )
    if parts.query or parts.fragment:
        raise settings.problem("api_url", "must be a base URL, without a query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise settings.problem(
            "api_url", "must use https:// (the API key would travel in clear text)"
        )
    path = parts.path.rstrip("/").removesuffix(_ENDPOINT)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tags(settings: ChannelSettings) -> tuple[str, ...]:
    raw = settings.get("tags")
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise settings.problem("tags", "must be comma-separated text or a list of tags")
    tags = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    if len(tags) > _MAX_EXTRA_TAGS:
        raise settings.problem(
            "tags", f"holds {len(tags)} tags; at most {_MAX_EXTRA_TAGS} fit beside Chaperone's"
        )
    for tag in tags:
        if len(tag) > TAG_LENGTH_LIMIT or one_line(tag) != tag or " " in tag:
            raise settings.problem(
                "tags",
                f"each tag must be at most {TAG_LENGTH_LIMIT} characters, without spaces",
            )
    return tags


def _json_field(response: httpx.Response, name: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return (
        fit(one_line(value), _REQUEST_ID_LENGTH, measure=utf16_length)
        if isinstance(value, str) and value
        else None
    )


def _from_opsgenie(response: httpx.Response) -> bool:
    """Whether the answer is Opsgenie's JSON (a ``requestId`` or ``message``), not the
    404 page of some other server at a wrong ``api_url``.
    """
    return bool(_json_field(response, "requestId") or _json_field(response, "message"))
