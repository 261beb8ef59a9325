"""One default TLS context for every httpx client of a test process.

httpx builds a new default SSL context for each client it makes, loading certifi's CA bundle: about
25 ms of CPU every time. A test process makes thousands of short-lived clients (each ``httpx.get``;
the official SDK's ten transports per account; every ``sim_get``), all to loopback http where TLS
never happens, and those loads were a large share of the suite's CPU. :func:`share_default_ssl_context`
builds the default context once and hands the same one to every client asking for the default.
Service processes are left as they are: they build their few clients once. (httpcore sets a
context's ALPN protocols before each TLS handshake; clients sharing one would only disagree on that
with http2 on some and off on others, and these clients speak plain http to loopback.)
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx
import httpx._transports.default as _transports  # where httpx's transports call create_ssl_context

_ORIGINAL = httpx.create_ssl_context  # the function the transports imported by name


@functools.cache
def _default_context(trust_env: bool) -> ssl.SSLContext:
    return _ORIGINAL(verify=True, cert=None, trust_env=trust_env)


def _create(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
    if verify is True and cert is None:
        return _default_context(trust_env)
    return _ORIGINAL(verify=verify, cert=cert, trust_env=trust_env)


def share_default_ssl_context() -> None:
    """From now on, every httpx client of this process that asks for the default TLS settings gets
    one shared context (the same settings: certifi's bundle, or SSL_CERT_FILE/SSL_CERT_DIR as they
    were at the first such client)."""
    setattr(_transports, "create_ssl_context", _create)  # noqa: B010 - a name the module only imported
