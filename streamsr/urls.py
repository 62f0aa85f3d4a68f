"""One rule for showing a source URL to a person: never with its credentials.

Network sources are often given as rtsp://user:password@camera/stream or srt://host:port?passphrase=...;
every log line, status line and error message shows them through `redact_url` instead.
"""

from __future__ import annotations

import re

SECRET_PARAMS = ("passphrase", "password", "passwd", "pwd", "token", "secret")
"""Query parameters whose values are secrets (SRT's `passphrase`, tokens of HTTP streams): shown as ***."""

_SECRET_QUERY = re.compile(r"([?&](?:%s)=)[^&#]*" % "|".join(SECRET_PARAMS), re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` without the user[:password]@ part of its authority and with the values of SECRET_PARAMS
    query parameters replaced by ***; anything else unchanged.

    The authority is what follows "scheme://" up to the first "/", "?" or "#"; its userinfo ends at the
    last "@" in it (a password may itself hold an unescaped "@"). An "@" in the path or query is kept.
    Strings that are not URLs (file paths, device names, "synthetic:...") come back as they are.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end].rpartition("@")[2]
    tail = _SECRET_QUERY.sub(r"\1***", rest[end:])
    return f"{scheme}://{authority}{tail}"
