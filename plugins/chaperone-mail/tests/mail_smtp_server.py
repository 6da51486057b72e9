"""A real SMTP server on 127.0.0.1 for the mail channel's tests (aiosmtpd in a thread).

It records every transaction (MAIL FROM ... DATA), answers as scripted (``451`` once
per subject, ``550`` always, ...), and can speak STARTTLS, implicit TLS and AUTH with a
certificate from a throwaway CA made by ``trustme``.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import attrs
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Certificates", "Received", "SmtpServer", "first_try_fails", "make_certificates"]

# aiosmtpd logs every session at INFO and a client's failed handshake with a traceback:
# the tests judge outcomes, not that noise.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)

OK = "250 2.0.0 Message accepted for delivery"
Reply = Callable[["Received", int], str]
"""Chooses the DATA reply for a message, given how many earlier tries had its subject."""


@attrs.frozen
class Received:
    """One transaction that reached DATA, accepted or not."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    subject: str
    """The decoded Subject header."""
    reply: str
    secure: bool
    """Whether the session was under TLS."""
    login: str | None
    """The user the session authenticated as."""
    at: float
    """time.monotonic() when DATA arrived."""

    @property
    def message(self) -> EmailMessage:
        """The e-mail, parsed."""
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def accepted(self) -> bool:
        """Whether the server answered 250."""
        return self.reply.startswith("250")

    def text(self) -> str:
        """The plain-text part, lines ending in a line feed."""
        return _part(self.message, "plain")

    def html(self) -> str:
        """The HTML part, lines ending in a line feed."""
        return _part(self.message, "html")


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None, f"no text/{subtype} part"
    assert isinstance(body, EmailMessage)
    content = body.get_content()
    assert isinstance(content, str)
    # Lines end in CRLF on the wire; read them as Python text.
    return content.replace("\r\n", "\n")


def always(reply: str) -> Reply:
    """Answer every DATA with ``reply``."""
    return lambda _received, _earlier: reply


def first_try_fails(reply: str = "451 4.3.0 Try again later") -> Reply:
    """Answer ``reply`` to the first try of each subject, 250 to the next."""
    return lambda _received, earlier: reply if earlier == 0 else OK


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self._server.count_transaction()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refusal = self._server.refused.get(address, self._server.rcpt_reply)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        secure = server.transport is not None and (
            server.transport.get_extra_info("ssl_object") is not None
        )
        return self._server.record(envelope, session, secure=secure or session.ssl is not None)


@attrs.frozen
class Certificates:
    """A throwaway CA, and the server certificate it issued for 127.0.0.1."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_certificates(folder: Path) -> Certificates:
    """Make a CA and a certificate for ``127.0.0.1``/``localhost``; write the CA to
    ``folder/ca.pem`` (what the channel's ``ca_file`` points at).
    """
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issued.configure_cert(context)
    ca_file = folder / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return Certificates(ca_file=ca_file, server_context=context)


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket already bound to a free port."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class SmtpServer:
    """An SMTP server on ``127.0.0.1:<port>`` recording what it receives.

    ``starttls``/``implicit_tls`` take the server's SSL context; ``users`` maps user
    names to passwords and turns AUTH on (over TLS only, unless ``auth_over_plain``).
    ``reply`` chooses each DATA answer; ``rcpt_reply``, when set, refuses every RCPT, and
    :attr:`refused` refuses the addresses it names.
    """

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        auth_over_plain: bool = False,
        reply: Reply | None = None,
        rcpt_reply: str | None = None,
    ) -> None:
        self.received: list[Received] = []
        self.reply: Reply = reply or always(OK)
        self.rcpt_reply = rcpt_reply
        self.refused: dict[str, str] = {}
        """Replies to RCPT for the addresses refused one by one."""
        self._users = dict(users or {})
        self._lock = threading.Lock()
        self._transactions = 0
        self._tries: Counter[str] = Counter()
        # IPPROTO_TCP: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP;
        # without it every multi-line reply waits 40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        self.port: int = sock.getsockname()[1]
        kwargs: dict[str, Any] = {"ssl_context": implicit_tls, "enable_SMTPUTF8": True}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if users is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=not auth_over_plain)
        self._controller = _Controller(_Handler(self), sock, **kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        ok = self._users.get(login) == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    def record(self, envelope: Envelope, session: Session, *, secure: bool) -> str:
        """Record a transaction at DATA; return the scripted answer."""
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        draft = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=content,
            subject=str(parsed["Subject"]),
            reply="",
            secure=secure,
            login=session.auth_data if isinstance(session.auth_data, str) else None,
            at=time.monotonic(),
        )
        with self._lock:
            earlier = self._tries[draft.subject]
            self._tries[draft.subject] += 1
            reply = self.reply(draft, earlier)
            self.received.append(attrs.evolve(draft, reply=reply))
        return reply

    def clear(self) -> None:
        """Forget what was received (the transaction count goes on)."""
        with self._lock:
            self.received.clear()
            self._tries.clear()

    @property
    def accepted(self) -> list[Received]:
        """The messages answered 250, oldest first."""
        with self._lock:
            return [item for item in self.received if item.accepted]

    def count_transaction(self) -> None:
        """Count a MAIL FROM: a transaction begun, whatever becomes of it."""
        with self._lock:
            self._transactions += 1

    @property
    def transactions(self) -> int:
        """How many transactions began (MAIL FROM commands), refused ones included."""
        with self._lock:
            return self._transactions

    def start(self) -> SmtpServer:
        """Start serving (in a thread of its own)."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._controller.stop()

    @contextmanager
    def running(self) -> Iterator[SmtpServer]:
        """Serve for the ``with`` block."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
