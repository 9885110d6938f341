"""HTTP client of a UniFi Network controller: UniFi OS consoles and legacy controllers.

What it knows of the controller comes from aiounifi (Home Assistant core's UniFi
library, interfaces/connectivity.py and models/api.py):

- ``GET /`` without redirects answers 200 on a UniFi OS console (UDM, UDR, UCG,
  Cloud Key Gen2+) and a redirect on a legacy controller;
- UniFi OS logs in at ``POST /api/auth/login`` (TOKEN cookie, ``x-csrf-token``
  header) and serves the Network application under ``/proxy/network``; a legacy
  controller logs in at ``POST /api/login`` (``unifises`` and ``csrf_token``
  cookies) and serves it at the root;
- v1 answers ``{"meta": {"rc": "ok" | "error", "msg": ...}, "data": [...]}``, v2
  (``/v2/api/site/<site>/...``) answers bare JSON or ``{"errorCode", "message"}``;
- ``api.err.Invalid`` (wrong credentials), ``api.err.LoginRequired`` (session
  gone), ``api.err.NoPermission`` (read-only account), ``api.err.Ubic2faTokenRequired``
  (local 2FA) and HTTP 499 (UniFi OS SSO MFA).

aiounifi itself is not used: it logs request bodies (the password) and replies at
debug level, has no timeout or reply cap, clears the host's cookies in the session's
jar, and the version Home Assistant 2025.4 pins (83) lacks the v2 endpoints.

The aiohttp session is the caller's (Home Assistant's shared one). Its cookie jar is
left alone: Home Assistant's shared jar drops cookies of IP-address hosts (aiohttp's
``unsafe=False``), which is how most consoles are reached, so the login's cookies are
kept here and sent explicitly with each request of this client only.
"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import msgspec
import yarl

from .base import (
    RouterAuthError,
    RouterConnectionError,
    RouterPermissionError,
    RouterResponseError,
)
from .http import transport_error

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024
CSRF_HEADER: Final = "x-csrf-token"
UPDATED_CSRF_HEADER: Final = "x-updated-csrf-token"
"""UniFi OS sends a renewed token in this header on some answers."""
LEGACY_CSRF_COOKIE: Final = "csrf_token"
HTTP_MFA_REQUIRED: Final = 499
NO_2FA_HELP: Final = (
    "use a local admin account without two-factor authentication "
    "(UniFi OS: Admins & Users, 'Restrict to local access only')"
)
ADMIN_HELP: Final = "the account needs the Network admin role for quarantine (Site Admin)"

_JSON: Final = msgspec.json.Decoder()


class EndpointMissingError(RouterResponseError):
    """The controller has no such endpoint (HTTP 404/405): an older Network version."""


class _SessionExpiredError(Exception):
    """401 or api.err.LoginRequired: log in once more and retry."""


class UniFiClient:
    """One controller, one site, one login; every failure becomes a router error."""

    def __init__(  # noqa: PLR0913
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        site: str = "default",
        verify_ssl: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._http = session
        self.base = yarl.URL.build(scheme="https", host=host.strip("[]"), port=port)
        self.site = site
        self._username = username
        self._password = password
        self._ssl = verify_ssl
        self._timeout = timeout
        self._max_bytes = max_bytes
        self.unifi_os: bool | None = None
        """None until detected: True for a UniFi OS console, False for a legacy controller."""
        self._cookies: dict[str, str] = {}
        self._csrf: str | None = None
        self._login_lock = asyncio.Lock()
        self._generation = 0
        self.logins = 0

    # ------------------------------------------------------------------ paths

    @property
    def prefix(self) -> str:
        """``/proxy/network`` on UniFi OS, nothing on a legacy controller."""
        return "/proxy/network" if self.unifi_os else ""

    def v1(self, path: str) -> str:
        """A site path of the classic API: ``stat/sta`` -> ``/proxy/network/api/s/default/stat/sta``."""
        return f"{self.prefix}/api/s/{self.site}/{path}"

    def v2(self, path: str) -> str:
        """A site path of the v2 API: ``traffic-flows`` -> ``.../v2/api/site/default/traffic-flows``."""
        return f"{self.prefix}/v2/api/site/{self.site}/{path}"

    # ------------------------------------------------------------------ session

    async def detect(self) -> bool:
        """UniFi OS (``GET /`` answers 200) or a legacy controller (a redirect)."""
        async with self._send("GET", self.base) as response:
            self.unifi_os = response.status == 200  # noqa: PLR2004
        return self.unifi_os

    async def login(self) -> None:
        """Log in; RouterAuthError for wrong credentials or 2FA, with what to do."""
        if self.unifi_os is None:
            await self.detect()
        url = self.base.with_path("/api/auth/login" if self.unifi_os else "/api/login")
        credentials = {"username": self._username, "password": self._password, "rememberMe": True}
        async with self._send("POST", url, json=credentials) as response:
            body = await self._read(response)
            document = _decode(body)
            if response.status != 200 or _v1_error(document):  # noqa: PLR2004
                raise self._login_error(response.status, document)
            csrf = response.headers.get(CSRF_HEADER)
            cookies = {name: morsel.value for name, morsel in response.cookies.items()}
        if not cookies:
            raise RouterResponseError(
                f"the login at {url} set no session cookie: is this a UniFi Network controller?"
            )
        self._cookies = cookies
        self._csrf = csrf or cookies.get(LEGACY_CSRF_COOKIE)
        self._generation += 1
        self.logins += 1
        _LOGGER.debug("Logged in to %s (UniFi OS: %s)", self.base, self.unifi_os)

    def _login_error(self, status: int, document: object) -> Exception:
        message = _error_message(document)
        if status == HTTP_MFA_REQUIRED or message == "api.err.Ubic2faTokenRequired":
            return RouterAuthError(
                f"the controller at {self.base} asks for a two-factor code for "
                f"{self._username!r}: {NO_2FA_HELP}"
            )
        if status == 429:  # noqa: PLR2004
            return RouterConnectionError(
                f"the controller at {self.base} refuses logins for now after too many "
                "attempts (HTTP 429): wait a few minutes, and check the password"
            )
        if status in {400, 401, 403} or message == "api.err.Invalid":
            return RouterAuthError(
                f"the controller at {self.base} rejected the login of {self._username!r}: "
                f"wrong username or password ({message or f'HTTP {status}'}); {NO_2FA_HELP}"
            )
        return RouterResponseError(
            f"the login at {self.base} answered HTTP {status}: is this a UniFi Network "
            "controller (and is it still starting up)?"
        )

    async def logout(self) -> None:
        """Forget the session, telling the controller (best effort)."""
        if not self._cookies:
            return
        path = "/api/auth/logout" if self.unifi_os else "/api/logout"
        try:
            async with self._send(
                "POST", self.base.with_path(path), headers=self._headers(write=True)
            ):
                pass
        except (RouterConnectionError, RouterResponseError) as err:
            _LOGGER.debug("Logout from %s failed (ignored): %s", self.base, err)
        self._cookies = {}
        self._csrf = None

    async def _relogin(self, generation: int) -> None:
        async with self._login_lock:
            if generation == self._generation:
                await self.login()

    # ------------------------------------------------------------------ calls

    async def request(
        self, method: str, path: str, json: object = None, *, right: str | None = None
    ) -> object:
        """The decoded JSON of one call (``data`` of a v1 answer).

        Logs in once more when the session is gone. ``right`` names what a
        permission error lacks.
        """
        for attempt in (1, 2):
            if not self._cookies:
                await self._relogin(self._generation)
            generation = self._generation
            try:
                return await self._call(method, path, json, right)
            except _SessionExpiredError:
                if attempt == 2:  # noqa: PLR2004
                    break
                await self._relogin(generation)
        raise RouterAuthError(
            f"the controller at {self.base} refused the session right after a fresh login "
            f"of {self._username!r}: {NO_2FA_HELP}"
        )

    async def _call(self, method: str, path: str, json: object, right: str | None) -> object:
        url = self.base.with_path(path)
        async with self._send(
            method, url, json=json, headers=self._headers(write=method != "GET")
        ) as response:
            body = await self._read(response)
            if updated := response.headers.get(UPDATED_CSRF_HEADER):
                self._csrf = updated
            status = response.status
        document = _decode(body) if body.strip() else None
        message = _error_message(document)
        if status == 401 or message == "api.err.LoginRequired":  # noqa: PLR2004
            raise _SessionExpiredError
        what = right or f"{method} {path}"
        if status == 403 or message == "api.err.NoPermission":  # noqa: PLR2004
            raise RouterPermissionError(
                f"the controller refused {what} to {self._username!r} "
                f"({message or 'HTTP 403'}): {ADMIN_HELP}",
                acl=right or "Network admin",
            )
        if status in {404, 405}:
            raise EndpointMissingError(f"the controller has no {path} (HTTP {status})")
        if status == 429:  # noqa: PLR2004
            raise RouterConnectionError(
                f"the controller at {self.base} is rate-limiting requests (HTTP 429): "
                "poll less often"
            )
        if status >= 300 or message:  # noqa: PLR2004
            raise RouterResponseError(
                f"the controller answered {method} {path} with HTTP {status} {message}".rstrip()
            )
        if isinstance(document, dict) and "meta" in document:
            data = document.get("data")
            if not isinstance(data, list):
                raise RouterResponseError(f"the answer to {path} holds no data list")
            return data
        return document

    def _headers(self, *, write: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if write and self._csrf:
            headers[CSRF_HEADER] = self._csrf
        return headers

    def _send(
        self,
        method: str,
        url: yarl.URL,
        *,
        json: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> "_Exchange":
        return _Exchange(self, method, url, json, headers)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, refused once it passes ``max_bytes`` (the rest left unread)."""
        cap = self._max_bytes
        too_big = RouterResponseError(
            f"the answer of {response.url.path} is over {cap // (1024 * 1024)} MiB; not read"
        )
        if response.content_length is not None and response.content_length > cap:
            raise too_big
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > cap:
                raise too_big
        return bytes(body)


class _Exchange:
    """One request as an async context manager; transport failures become router errors."""

    def __init__(
        self,
        client: UniFiClient,
        method: str,
        url: yarl.URL,
        json: object,
        headers: Mapping[str, str] | None,
    ) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._json = json
        self._headers = dict(headers or {})
        self._context: Any = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        client = self._client
        data = None if self._json is None else msgspec.json.encode(self._json)
        if data is not None:
            self._headers["Content-Type"] = "application/json"
        self._context = client._http.request(
            self._method,
            self._url,
            data=data,
            headers=self._headers,
            cookies=client._cookies,
            ssl=client._ssl,
            timeout=aiohttp.ClientTimeout(total=client._timeout),
            allow_redirects=False,
        )
        try:
            return await self._context.__aenter__()  # type: ignore[no-any-return]
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _transport_error(err, self._url, client._timeout) from err

    async def __aexit__(self, *exc_info: object) -> None:
        await self._context.__aexit__(*exc_info)
        error = exc_info[1]
        if isinstance(error, aiohttp.ClientError | TimeoutError):
            raise _transport_error(error, self._url, self._client._timeout) from error


def _transport_error(
    err: aiohttp.ClientError | TimeoutError, url: yarl.URL, timeout: float
) -> RouterConnectionError:
    return transport_error(
        err,
        f"{url.scheme}://{url.host}:{url.port}",
        timeout,
        certificate_help="UniFi consoles ship a self-signed certificate; turn certificate "
        "verification off for this controller, or install a trusted one",
    )


def _decode(body: bytes) -> object:
    """JSON, each byte that is not UTF-8 (in a client's name) read as U+FFFD."""
    try:
        return _JSON.decode(body)
    except UnicodeDecodeError:
        return _decode(body.decode(errors="replace").encode())
    except msgspec.DecodeError as err:
        raise RouterResponseError(
            f"the controller did not answer with JSON ({err}); it starts {body[:60]!r}"
        ) from err


def _v1_error(document: object) -> bool:
    if not isinstance(document, dict):
        return False
    meta = document.get("meta")
    return isinstance(meta, dict) and meta.get("rc") == "error"


def _error_message(document: object) -> str:
    """``api.err.*`` of a v1 (``meta.msg``) or v2 (``message`` with ``errorCode``) error."""
    if not isinstance(document, dict):
        return ""
    if _v1_error(document):
        return str(document["meta"].get("msg") or "error")
    if "errorCode" in document:
        return str(document.get("message") or document["errorCode"])
    return ""
