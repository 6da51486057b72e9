r"""Chaperone channel ``mail``: each alert as one e-mail to all recipients, over SMTP.

Settings come from Laravel's customary variables (``MAIL_HOST``, ``MAIL_PORT``,
``MAIL_ENCRYPTION``, ``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_FROM_ADDRESS``,
``MAIL_FROM_NAME``), from ``CHAPERONE_MAIL_<KEY>``, or from ``[channels.mail]`` in
``chaperone.toml``; recipients from the route's or the table's ``recipients``, else
``CHAPERONE_ALERT_RECIPIENTS``. The subject reads
``[Chaperone Alert] Job Stuck: App\Jobs\ProcessLargeDataset``; the body is the seed's
"Example Email Alert" as text and HTML, with a "View Job Details" link when
``CHAPERONE_APP_URL`` is set.
"""

from __future__ import annotations

from chaperone.channels import RegisterChannel, hookimpl
from chaperone_mail._channel import Encryption, MailChannel
from chaperone_mail._render import MailContent, build_message, render

__all__ = [
    "Encryption",
    "MailChannel",
    "MailContent",
    "build_message",
    "chaperone_register_channels",
    "render",
]


@hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``mail`` channel."""
    register(MailChannel)
