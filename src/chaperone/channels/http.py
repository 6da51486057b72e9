"""What every HTTP channel needs: post JSON with the shared client, and classify the
answer as delivered, transient (5xx, 429, 408, timeouts, connection errors: retried,
after ``Retry-After`` when given) or permanent (other 4xx: not retried).

Nothing here puts the URL in an outcome: the URL of a webhook is its secret.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from chaperone._secrets import MASKER, Secret
from chaperone._verdicts import Outcome
from chaperone.channels._base import SendContext

__all__ = ["classify_response", "post_json", "retry_after_seconds"]

_BODY_EXCERPT: Final = 200
_MAX_RETRY_AFTER: Final = 3600.0
"""A Retry-After longer than an hour is read as an hour: past that, it is a failure."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header: seconds (``"2"``, ``"1.5"``) or an HTTP date.

    Returns None when absent or unreadable; never negative; at most an hour.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def classify_response(response: httpx.Response, *, retry_after: float | None = None) -> Outcome:
    """Turn a service's answer into an Outcome. ``retry_after`` overrides the header (for
    services that say it in the body, as Discord does).
    """
    code = response.status_code
    # A service may quote the request back, credential included: mask what is known.
    excerpt = MASKER.mask(response.text[:_BODY_EXCERPT].strip())
    detail = f"HTTP {code}" + (f": {excerpt}" if excerpt else "")
    if 200 <= code < 300:
        return Outcome.delivered(f"HTTP {code}", status_code=code)
    if code == 429 or code == 408 or code >= 500:
        wait = retry_after
        if wait is None:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
        return Outcome.transient(detail, retry_after=wait, status_code=code)
    return Outcome.permanent(detail, status_code=code)


async def post_json(
    context: SendContext,
    url: str | Secret,
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> tuple[Outcome, httpx.Response | None]:
    """POST ``payload`` as JSON to ``url`` with the shared client; return the outcome and
    the response (None when none came). Timeouts and connection errors are transient.

    Pass a webhook URL (whose path is its credential) as a :class:`Secret`; a plain
    ``str`` for an API URL whose credential travels in ``headers``.
    """
    try:
        target = httpx.URL(url.reveal() if isinstance(url, Secret) else url)
        if params:
            # Merged, so that a query the URL already carries (a thread id) is kept.
            target = target.copy_merge_params(dict(params))
        response = await context.http.post(
            target, json=dict(payload), headers=dict(headers or {}), timeout=context.timeout
        )
    except httpx.TimeoutException as exc:
        return Outcome.transient(f"{type(exc).__name__}: no answer in {context.timeout:g}s"), None
    except httpx.TransportError as exc:
        return Outcome.transient(f"{type(exc).__name__}: connection failed"), None
    return classify_response(response), response
