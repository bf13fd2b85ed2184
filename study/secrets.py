"""Credentials never leave the driver in text: ``redact`` is applied wherever a URI or a
command line is printed, tagged, logged or written into a report.

A tracking URI may carry credentials in its userinfo (``http://user:pw@host``,
``postgresql://user:pw@db/mlflow``) or, for some stores, in its query string
(``?password=...``).  ``redact`` replaces the whole userinfo with ``***`` (a user name alone
can be a token: ``https://TOKEN@host``) and the values of credential-like query parameters,
in any text: a bare URI, a command line, an error message.  Standard library only.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ : the userinfo runs to the last '@' before the authority ends ('/',
# '?', '#', whitespace or a quote), so an unescaped '@' in a password is masked too.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s'\"]*@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|token|secret|api_key|apikey|access_key|"
    r"secret_key|sas|sig|credential)=)[^&;#\s'\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URI's userinfo and credential-like query values masked."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)


def has_secret(text: str) -> bool:
    """Whether ``redact`` would change ``text``."""
    return redact(text) != text
