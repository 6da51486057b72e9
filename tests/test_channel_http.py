"""chaperone.channels.http and .text: the helpers every channel plugin builds on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import ManualClock, OutcomeKind, Secret
from chaperone.channels import SendContext
from chaperone.channels.http import classify_response, post_json, retry_after_seconds
from chaperone.channels.text import ELLIPSIS, truncate

NOW = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def response(status: int, body: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, text=body, headers=headers or {})


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("header", "seconds"), [("2", 2.0), ("1.5", 1.5), (" 3 ", 3.0), ("0", 0.0), ("-5", 0.0)]
    )
    def test_seconds(self, header: str, seconds: float) -> None:
        """A number of seconds is read as such, never negative."""
        assert retry_after_seconds(header, NOW) == seconds

    def test_http_date(self) -> None:
        """An HTTP date is read as the time left until it."""
        header = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
        assert retry_after_seconds(header, NOW) == pytest.approx(30.0)

    @pytest.mark.parametrize("header", [None, "", "soon", "nan"])
    def test_unreadable_is_none(self, header: str | None) -> None:
        """Nothing usable gives None (the core's own backoff applies)."""
        assert retry_after_seconds(header, NOW) is None

    def test_capped_at_an_hour(self) -> None:
        """A day-long Retry-After is read as an hour."""
        assert retry_after_seconds("86400", NOW) == 3600.0


class TestClassify:
    @pytest.mark.parametrize("status", [200, 201, 202, 204])
    def test_success(self, status: int) -> None:
        """2xx is delivered."""
        assert classify_response(response(status)).kind is OutcomeKind.DELIVERED

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
    def test_transient(self, status: int) -> None:
        """429, 408 and 5xx are worth retrying."""
        assert classify_response(response(status)).kind is OutcomeKind.TRANSIENT

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
    def test_permanent(self, status: int) -> None:
        """Other 4xx are not retried; the detail quotes the status and the body."""
        outcome = classify_response(response(status, "invalid_payload"))
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.detail == f"HTTP {status}: invalid_payload"
        assert outcome.status_code == status

    def test_retry_after_header(self) -> None:
        """A 429's Retry-After becomes the outcome's wait."""
        outcome = classify_response(response(429, headers={"Retry-After": "2"}))
        assert outcome.retry_after == 2.0

    def test_explicit_retry_after_wins(self) -> None:
        """A wait read from the body (Discord) overrides the header."""
        outcome = classify_response(response(429, headers={"Retry-After": "2"}), retry_after=5.0)
        assert outcome.retry_after == 5.0

    def test_body_excerpt_is_masked(self) -> None:
        """A known secret quoted back by the service is masked in the detail."""
        secret = Secret("quoted-back-routing-key-0123456789")
        outcome = classify_response(response(400, f"bad key {secret.reveal()}"))
        assert secret.reveal() not in outcome.detail


def context(handler: httpx.MockTransport) -> SendContext:
    return SendContext(http=httpx.AsyncClient(transport=handler), clock=ManualClock(), timeout=1.0)


def send(handler: object, url: str | Secret, **kwargs: object) -> object:
    async def run() -> object:
        ctx = context(httpx.MockTransport(handler))  # type: ignore[arg-type]
        try:
            return await post_json(ctx, url, {"text": "hi"}, **kwargs)  # type: ignore[arg-type]
        finally:
            await ctx.http.aclose()

    return asyncio.run(run())


class TestPostJson:
    def test_posts_json_and_classifies(self) -> None:
        """The payload goes as JSON; the answer is classified."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, text="ok")

        outcome, answer = send(handler, Secret("http://127.0.0.1/hook/abcdef"))  # type: ignore[misc]
        assert outcome.kind is OutcomeKind.DELIVERED
        assert answer is not None
        assert seen[0].method == "POST"
        assert seen[0].read() == b'{"text":"hi"}'

    def test_query_of_the_url_is_kept_and_merged(self) -> None:
        """Extra params merge with the URL's own query instead of replacing it."""
        seen: list[httpx.URL] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.url)
            return httpx.Response(204)

        send(handler, "http://127.0.0.1/hook?thread_id=7", params={"wait": "true"})
        assert dict(seen[0].params) == {"thread_id": "7", "wait": "true"}

    def test_timeout_is_transient(self) -> None:
        """No answer in time is transient, and the detail names no URL."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("slow", request=request)

        outcome, answer = send(handler, Secret("http://127.0.0.1/hook/secret-path"))  # type: ignore[misc]
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert answer is None
        assert "secret-path" not in outcome.detail

    def test_connection_error_is_transient(self) -> None:
        """A refused connection is transient."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        outcome, _ = send(handler, "http://127.0.0.1:9/")  # type: ignore[misc]
        assert outcome.kind is OutcomeKind.TRANSIENT


class TestTruncate:
    @given(text=st.text(max_size=300), limit=st.integers(min_value=1, max_value=200))
    def test_fits_and_keeps_the_start(self, text: str, limit: int) -> None:
        """The result fits, is the text itself when it fits, else its start and an ellipsis."""
        cut = truncate(text, limit)
        assert len(cut) <= limit
        if len(text) <= limit:
            assert cut == text
        else:
            assert cut.endswith(ELLIPSIS)
            assert text.startswith(cut.removesuffix(ELLIPSIS))

    def test_limit_shorter_than_the_ellipsis(self) -> None:
        """A limit that cannot hold the ellipsis is a programming error."""
        with pytest.raises(ValueError, match="shorter than the ellipsis"):
            truncate("abc", 0)
