"""The optional API key: ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``.

The key is compared in constant time. Declared through FastAPI's security classes, so
``/docs`` shows an "Authorize" button.

Example:
    >>> from fastapi import Depends, FastAPI
    >>> app = FastAPI()
    >>> check = api_key_checker("s3cret")
    >>> app.get("/private", dependencies=[Depends(check)])(lambda: {"ok": True})  # doctest: +ELLIPSIS
    <function <lambda> at ...>
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tfpilot.serving.errors import Unauthorized

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The server's --api-key.")
_bearer = HTTPBearer(auto_error=False, description="The server's --api-key as a bearer token.")


def api_key_checker(expected: str) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that answers 401 unless the request carries ``expected``."""
    want = expected.encode()

    async def check(
        key: str | None = Security(_header),
        bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
    ) -> None:
        given = key if key is not None else (bearer.credentials if bearer is not None else None)
        if given is None:
            raise Unauthorized("this server needs an API key: send the header 'X-API-Key: KEY' "
                               "or 'Authorization: Bearer KEY'")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), want):
            raise Unauthorized("wrong API key")

    return check
