"""When a node's TLS server certificate is renewed: well before it expires, so that a missed
check or a busy addon still leaves days to try again."""

from __future__ import annotations

from datetime import datetime, timedelta

RENEW_BEFORE = timedelta(days=30)


def certificate_due(not_after: datetime, now: datetime) -> bool:
    return not_after - now <= RENEW_BEFORE
