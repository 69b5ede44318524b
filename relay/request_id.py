from __future__ import annotations

import secrets
import time


def new_request_id() -> str:
    """`YYYYMMDDhhmmss` + 16 random hex digits, like the original: sortable, unique, <= 32 chars."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(8)
