"""E-mails to the operator about channels (Django's e-mail: the console unless SMTP is set up).

Recipients: every root user with an e-mail address, plus OPERATOR_EMAILS.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from accounts.models import Role, User

from .models import Channel, ChannelStatus


def operator_emails() -> list[str]:
    roots = User.objects.filter(role__gte=Role.ROOT).exclude(email="").values_list("email", flat=True)
    return sorted({*roots, *settings.OPERATOR_EMAILS})


def channel_status_notify(*, channel_id: int, status: int, reason: str) -> int:
    """Tell the operator a channel was disabled or enabled automatically; returns mails sent."""
    recipients = operator_emails()
    if not recipients:
        return 0
    channel = Channel.objects.filter(pk=channel_id).first()
    name = f"#{channel_id} {channel.name}" if channel else f"#{channel_id}"
    if status == ChannelStatus.AUTO_DISABLED:
        subject = f"Channel {name} was disabled"
        body = (
            f"Channel {name} was disabled automatically.\n\nReason: {reason}\n\n"
            "It is enabled again by the next passing channel test when AutomaticEnableChannelEnabled is on,"
            " or by hand in the admin."
        )
    else:
        subject = f"Channel {name} was enabled again"
        body = f"Channel {name} passed its test and was enabled again.\n\n{reason}"
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
