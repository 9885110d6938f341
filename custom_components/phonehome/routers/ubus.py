"""A client for OpenWrt's ubus over HTTP(S): uhttpd-mod-ubus's JSON-RPC endpoint ``/ubus``.

Every request is ``{"jsonrpc": "2.0", "id": N, "method": "call",
"params": [session, object, method, args]}``; uhttpd answers
``{"result": [status, payload?]}`` (``status`` is ubus's: 0 ok, 2 invalid argument,
3 method not found, 4 not found, 5 no data, 6 permission denied, 7 timeout) or
``{"error": {"code": ..., "message": ...}}`` for what uhttpd itself refuses
(-32002 access denied: expired session or missing ACL; -32000 object not found;
-32003 ubus timeout; -32700 parse error).

A JSON array of requests is a batch: uhttpd-mod-ubus (``uh_ubus_data_done`` ->
``uh_ubus_init_batch`` / ``__uh_ubus_next_batched_request`` in openwrt/uhttpd
ubus.c) runs the calls one after another and streams back a JSON array with one
response per request, in request order, each with the request's ``id``.

Every failure becomes one of the four router errors with a message a person can
act on. The aiohttp session is the caller's (Home Assistant's shared one).
"""

import asyncio
import itertools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import msgspec

from .base import (
    RouterAuthError,
    RouterConnectionError,
    RouterError,
    RouterPermissionError,
    RouterResponseError,
)
from .http import transport_error

_LOGGER = logging.getLogger(__name__)

NULL_SESSION: Final = "00000000000000000000000000000000"
DEFAULT_TIMEOUT: Final = 10.0
"""Seconds for one request, connect to last byte."""
DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024
"""Largest reply read; a larger one is refused unread."""
ACCESS_HELP: Final = "see README#openwrt-access"

UBUS_OK: Final = 0
UBUS_STATUS: Final = {
    1: "invalid command",
    2: "invalid argument",
    3: "method not found",
    4: "not found",
    5: "no data",
    6: "permission denied",
    7: "timeout",
    8: "not supported",
    9: "unknown error",
    10: "connection failed",
}
UBUS_PERMISSION_DENIED: Final = 6
UBUS_TIMEOUT: Final = 7

RPC_OBJECT_NOT_FOUND: Final = -32000
RPCD_OBJECTS: Final = frozenset({"session", "file", "uci", "rpc-sys"})
"""rpcd's built-in objects: when they are missing, rpcd itself is not running."""
RPC_ACCESS_DENIED: Final = -32002
RPC_TIMEOUT: Final = -32003


class _RpcError(msgspec.Struct):
    code: int
    message: str = ""


class _Envelope(msgspec.Struct):
    """One JSON-RPC response; the result's parts stay undecoded until asked for."""

    jsonrpc: str | None = None
    id: int | str | None = None
    result: list[msgspec.Raw] | None = None
    error: _RpcError | None = None


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_BATCH: Final = msgspec.json.Decoder(list[_Envelope])
_STATUS: Final = msgspec.json.Decoder(int)
_PAYLOAD: Final = msgspec.json.Decoder(dict[str, Any])
_UNREADABLE: Final = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)
"""What decoding a reply raises when it is no JSON-RPC response: not JSON, not its
shape, nested too deep for the decoder, or its own strings not UTF-8 (a payload,
decoded later, reads such bytes as U+FFFD). A payload is never nested deeper than
the envelope that holds it, so only the envelope can be too deep."""
_SESSION_VALUE: Final = re.compile(rb'("ubus_rpc_session"\s*:\s*")[^"]*')
"""A session id in a reply (the login's): masked before a reply is quoted in an error."""


@dataclass(frozen=True, slots=True)
class UbusCall:
    """One ubus call: object, method and its arguments."""

    obj: str
    method: str
    args: Mapping[str, object] = field(default_factory=dict)
    raw: bool = False
    """In a batch, answer the payload's bytes (``UbusResult.raw``), not the decoded
    object: for a large payload that a typed decoder reads."""

    @property
    def name(self) -> str:
        """How people write it: ``luci getConntrackList``."""
        return f"{self.obj} {self.method}"


@dataclass(frozen=True, slots=True)
class UbusResult:
    """The outcome of one call of a batch: its payload, or the error it raised."""

    call: UbusCall
    payload: dict[str, Any] | None = None
    error: RouterError | None = None
    raw: bytes | None = None
    """The payload's bytes, for a call with ``raw`` set."""

    def unwrap(self) -> dict[str, Any]:
        """The payload ({} when the call returns none); raises the call's error."""
        if self.error is not None:
            raise self.error
        return self.payload or {}

    def unwrap_raw(self) -> bytes:
        """The payload's bytes of a call with ``raw`` set; raises the call's error."""
        if self.error is not None:
            raise self.error
        assert self.raw is not None, f"{self.call.name} was not a raw call"
        return self.raw


@dataclass(frozen=True, slots=True)
class Right:
    """One rpcd ACL entry: scope "ubus" (object, method), "file" (path, read/write/exec), "uci" (config, read/write)."""

    scope: str
    obj: str
    function: str

    @property
    def name(self) -> str:
        """How errors and the README write it: ``luci getConntrackList``, ``file read /path``."""
        if self.scope == "ubus":
            return f"{self.obj} {self.function}"
        return f"{self.scope} {self.function} {self.obj}"


class UbusStatusError(RouterResponseError):
    """The call answered a ubus status other than ok, permission denied or timeout."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _AccessDeniedError(Exception):
    """-32002: the session expired, or the user lacks the ACL. Re-login decides which."""


class UbusClient:
    """JSON-RPC over HTTP(S) to ``{base_url}``, with one session that is renewed on demand.

    ``base_url`` is the full endpoint, e.g. ``https://192.168.1.1:443/ubus``.
    ``verify_ssl=False`` turns certificate checking off for this client's requests only.
    """

    def __init__(  # noqa: PLR0913
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        username: str,
        password: str,
        *,
        verify_ssl: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._http = session
        self.url = base_url
        self._username = username
        self._password = password
        self._ssl: bool = verify_ssl
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._ids = itertools.count(1)
        self._sid: str | None = None
        self._login_lock = asyncio.Lock()
        self.logins = 0
        """Logins done so far (tests and diagnostics)."""

    @property
    def session_id(self) -> str | None:
        """The current ubus session, None before login and after logout."""
        return self._sid

    # ------------------------------------------------------------------ session

    async def login(self) -> None:
        """Open a session; RouterAuthError when the router rejects the user or password."""
        call = UbusCall(
            "session", "login", {"username": self._username, "password": self._password}
        )
        body = await self._post(self._request(NULL_SESSION, call), self._timeout)
        envelope = self._decode_one(body)
        try:
            payload = self._payload(envelope, call)
        except _AccessDeniedError as err:
            raise RouterAuthError(
                f"the router refused to let anyone log in at {self.url} (session login "
                "is missing from rpcd's 'unauthenticated' ACL)"
            ) from err
        except RouterPermissionError as err:
            raise RouterAuthError(
                f"the router rejected the login of user {self._username!r}: "
                "wrong password or unknown user (rpcd login in /etc/config/rpcd)"
            ) from err
        sid = payload.get("ubus_rpc_session")
        if not isinstance(sid, str) or not sid:
            raise RouterResponseError(
                f"the login reply of {self.url} holds no ubus_rpc_session: "
                "is this an OpenWrt router with uhttpd-mod-ubus?"
            )
        self._sid = sid
        self.logins += 1

    async def logout(self) -> None:
        """Destroy the session, best effort: never raises."""
        sid, self._sid = self._sid, None
        if sid is None:
            return
        try:
            body = await self._post(
                self._request(sid, UbusCall("session", "destroy")), self._timeout
            )
            self._decode_one(body)
        except RouterError as err:
            _LOGGER.debug("Logout from %s failed (ignored): %s", self.url, err)

    async def _relogin(self, stale: str | None) -> None:
        """Log in again, unless another task already replaced the stale session."""
        async with self._login_lock:
            if self._sid == stale or self._sid is None:
                await self.login()

    async def _ensure_session(self) -> str:
        if self._sid is None:
            await self._relogin(None)
        assert self._sid is not None
        return self._sid

    # ------------------------------------------------------------------ calls

    async def call(
        self,
        obj: str,
        method: str,
        args: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Call ``obj method`` and return its payload ({} when it returns none)."""
        call = UbusCall(obj, method, args or {})
        for attempt in (1, 2):
            sid = await self._ensure_session()
            body = await self._post(self._request(sid, call), timeout or self._timeout)
            envelope = self._decode_one(body)
            try:
                return self._payload(envelope, call)
            except _AccessDeniedError:
                if attempt == 1:
                    await self._relogin(sid)
        raise self._denied(call)

    async def call_raw(
        self,
        obj: str,
        method: str,
        args: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bytes:
        """Call ``obj method``; return the reply's bytes once it is known to be a success.

        For large replies that a typed decoder reads straight from the bytes.
        """
        call = UbusCall(obj, method, args or {})
        for attempt in (1, 2):
            sid = await self._ensure_session()
            body = await self._post(self._request(sid, call), timeout or self._timeout)
            envelope = self._decode_one(body)
            try:
                self._status(envelope, call)
            except _AccessDeniedError:
                if attempt == 1:
                    await self._relogin(sid)
                continue
            return body
        raise self._denied(call)

    async def batch(
        self,
        calls: Sequence[UbusCall],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[UbusResult]:
        """Run the calls in one HTTP request (a JSON-RPC batch); one result per call, in order.

        A call refused with -32002 makes the whole batch run once more after a fresh
        login; a call refused again carries RouterPermissionError. Errors of single
        calls are returned, not raised; transport errors are raised.
        """
        results: list[UbusResult] = []
        for attempt in (1, 2):
            sid = await self._ensure_session()
            first_id = next(self._ids)
            requests = [self._request(sid, call, first_id + n) for n, call in enumerate(calls)]
            self._ids = itertools.count(first_id + len(calls))
            body = await self._post(requests, timeout or self._timeout)
            envelopes = self._decode_batch(body, first_id, len(calls))
            results = []
            denied = False
            for call, envelope in zip(calls, envelopes, strict=True):
                try:
                    if call.raw:
                        raw = _raw_payload(self._status(envelope, call))
                        results.append(UbusResult(call, raw=raw))
                    else:
                        results.append(UbusResult(call, payload=self._payload(envelope, call)))
                except _AccessDeniedError:
                    denied = True
                    results.append(UbusResult(call, error=self._denied(call)))
                except RouterError as err:
                    results.append(UbusResult(call, error=err))
            if not denied:
                break
            if attempt == 1:
                await self._relogin(sid)
        return results

    async def batch_raw(
        self,
        calls: Sequence[UbusCall],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[bytes]:
        """Run the calls in one batch; the payload bytes of each, in order.

        For large payloads that a typed decoder reads straight from the bytes. Every
        call must succeed: the first failure is raised (after one fresh login when a
        call was refused with -32002).
        """
        for attempt in (1, 2):
            sid = await self._ensure_session()
            first_id = next(self._ids)
            requests = [self._request(sid, call, first_id + n) for n, call in enumerate(calls)]
            self._ids = itertools.count(first_id + len(calls))
            body = await self._post(requests, timeout or self._timeout)
            envelopes = self._decode_batch(body, first_id, len(calls))
            payloads: list[bytes] = []
            try:
                for call, envelope in zip(calls, envelopes, strict=True):
                    payloads.append(_raw_payload(self._status(envelope, call)))
            except _AccessDeniedError:
                if attempt == 1:
                    await self._relogin(sid)
                    continue
                raise self._denied(call) from None
            return payloads
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_signatures(self, pattern: str) -> dict[str, Any]:
        """``ubus list PATTERN`` (JSON-RPC method "list"): object -> method signatures.

        uhttpd answers it without a session or ACL check (uh_ubus_send_list); an
        object that does not exist is simply absent from the result.
        """
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": "list", "params": [pattern]}
        body = await self._post(request, self._timeout)
        try:
            document = _PAYLOAD.decode(body)
        except _UNREADABLE as err:
            raise RouterResponseError(
                f"{self.url} did not answer list with a JSON-RPC response ({err})"
            ) from err
        result = document.get("result")
        return result if isinstance(result, dict) else {}

    # ------------------------------------------------------------------ internals

    def _request(
        self, sid: str, call: UbusCall, request_id: int | None = None
    ) -> dict[str, object]:
        return {
            "jsonrpc": "2.0",
            "id": next(self._ids) if request_id is None else request_id,
            "method": "call",
            "params": [sid, call.obj, call.method, dict(call.args)],
        }

    def _denied(self, call: UbusCall) -> RouterPermissionError:
        return RouterPermissionError(
            f"the router user {self._username!r} lacks the rpcd ACL for {call.name} "
            f"(access denied after a fresh login): {ACCESS_HELP}",
            acl=call.name,
        )

    async def _post(self, payload: object, timeout: float) -> bytes:  # noqa: ASYNC109
        """POST JSON, return the body; transport problems become router errors."""
        try:
            async with self._http.post(
                self.url,
                data=msgspec.json.encode(payload),
                headers={"Content-Type": "application/json"},
                ssl=self._ssl,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                if response.status in {301, 302, 303, 307, 308}:
                    location = response.headers.get("Location", "elsewhere")
                    raise RouterResponseError(
                        f"{self.url} redirects to {location}: the router wants HTTPS "
                        "(uhttpd redirect_https); turn SSL on for this router"
                    )
                if response.status == 404:  # noqa: PLR2004
                    raise RouterResponseError(
                        f"{self.url} answered HTTP 404: the router has no ubus endpoint "
                        "(install uhttpd-mod-ubus, or check the port)"
                    )
                if response.status != 200:  # noqa: PLR2004
                    raise RouterResponseError(
                        f"{self.url} answered HTTP {response.status} {response.reason or ''}".rstrip()
                    )
                return await self._read(response)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise transport_error(
                err,
                self.url,
                timeout,
                certificate_help="install a certificate the system trusts, or turn "
                "certificate verification off for this router",
                handshake_help="does the router serve HTTPS on this port?",
            ) from err

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, refused once it passes ``max_bytes`` (without reading the rest)."""
        cap = self._max_bytes
        if response.content_length is not None and response.content_length > cap:
            raise self._too_big()
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > cap:
                raise self._too_big()
        return bytes(body)

    def _too_big(self) -> RouterResponseError:
        size = self._max_bytes
        text = f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size} bytes"
        return RouterResponseError(f"the reply of {self.url} is over {text}; not read")

    def _decode_one(self, body: bytes) -> _Envelope:
        try:
            return _ENVELOPE.decode(body)
        except _UNREADABLE as err:
            raise RouterResponseError(
                f"{self.url} did not answer with a JSON-RPC response ({err}); "
                f"it starts {_excerpt(body)!r}"
            ) from err

    def _decode_batch(self, body: bytes, first_id: int, count: int) -> list[_Envelope]:
        try:
            envelopes = _BATCH.decode(body)
        except _UNREADABLE as err:
            raise RouterResponseError(
                f"{self.url} did not answer the batch with a JSON-RPC array ({err}); "
                f"it starts {_excerpt(body)!r}"
            ) from err
        by_id = {envelope.id: envelope for envelope in envelopes}
        try:
            return [by_id[first_id + n] for n in range(count)]
        except KeyError:
            if len(envelopes) == count:  # ids not echoed: uhttpd keeps request order
                return envelopes
            raise RouterResponseError(
                f"{self.url} answered {len(envelopes)} responses to a batch of {count}"
            ) from None

    def _status(self, envelope: _Envelope, call: UbusCall) -> list[msgspec.Raw]:
        """The result list of a successful call; raises for every kind of failure."""
        if envelope.error is not None:
            self._raise_rpc_error(envelope.error, call)
        result = envelope.result
        if not result:
            raise RouterResponseError(f"the reply to {call.name} has neither a result nor an error")
        try:
            status = _STATUS.decode(result[0])
        except msgspec.DecodeError as err:
            raise RouterResponseError(
                f"the reply to {call.name} does not start with a ubus status: {err}"
            ) from err
        if status != UBUS_OK:
            self._raise_status(status, call)
        return result

    def _payload(self, envelope: _Envelope, call: UbusCall) -> dict[str, Any]:
        result = self._status(envelope, call)
        if len(result) < 2:  # noqa: PLR2004
            return {}
        try:
            return _decode_payload(result[1])
        except msgspec.DecodeError as err:
            raise RouterResponseError(f"the reply to {call.name} is not an object: {err}") from err

    def _raise_rpc_error(self, error: _RpcError, call: UbusCall) -> None:
        code = error.code
        if code == RPC_ACCESS_DENIED:
            raise _AccessDeniedError
        if code == RPC_OBJECT_NOT_FOUND and call.obj in RPCD_OBJECTS:
            raise RouterConnectionError(
                f"rpcd on the router does not answer (ubus object {call.obj!r} not found): "
                "restart it with `/etc/init.d/rpcd restart` or reboot the router"
            )
        if code == RPC_OBJECT_NOT_FOUND:
            raise RouterResponseError(
                f"the router has no ubus object {call.obj!r} for {call.name} "
                "(package missing, or rpcd stopped: `/etc/init.d/rpcd restart`)"
            )
        if code == RPC_TIMEOUT:
            raise RouterConnectionError(
                f"the router's ubus timed out on {call.name} (-32003 {error.message})"
            )
        raise RouterResponseError(
            f"the router refused {call.name}: JSON-RPC error {code} {error.message}"
        )

    def _raise_status(self, status: int, call: UbusCall) -> None:
        text = UBUS_STATUS.get(status, "unknown status")
        if status == UBUS_PERMISSION_DENIED:
            raise RouterPermissionError(
                f"the router user {self._username!r} may not do {call.name} "
                f"{_describe(call.args)}(ubus status 6, permission denied): {ACCESS_HELP}",
                acl=_acl_name(call),
            )
        if status == UBUS_TIMEOUT:
            raise RouterConnectionError(f"{call.name} timed out on the router (ubus status 7)")
        raise UbusStatusError(
            f"{call.name} {_describe(call.args)}failed on the router: ubus status {status} ({text})",
            status,
        )

    async def access(self, rights: Sequence[Right]) -> list[bool]:
        """Ask rpcd (``session access``, one batch) whether this session holds each right.

        Raises RouterPermissionError when the user may not ask, RouterResponseError
        when an answer holds no access flag.
        """
        sid = await self._ensure_session()
        results = await self.batch(
            [
                UbusCall(
                    "session",
                    "access",
                    {
                        "ubus_rpc_session": sid,
                        "scope": right.scope,
                        "object": right.obj,
                        "function": right.function,
                    },
                )
                for right in rights
            ]
        )
        flags: list[bool] = []
        for right, result in zip(rights, results, strict=True):
            access = result.unwrap().get("access")
            if not isinstance(access, bool):
                raise RouterResponseError(
                    f"session access for {right.name} answered no access flag: "
                    f"{result.payload!r:.80}"
                )
            flags.append(access)
        return flags


def _decode_payload(data: msgspec.Raw) -> dict[str, Any]:
    """A payload, each byte that is not UTF-8 (in a device's name) read as U+FFFD."""
    try:
        return _PAYLOAD.decode(data)
    except UnicodeDecodeError:
        return _PAYLOAD.decode(bytes(data).decode(errors="replace").encode())


def _raw_payload(result: list[msgspec.Raw]) -> bytes:
    """The payload's bytes of a successful call's result (``{}`` when it returns none)."""
    return bytes(result[1]) if len(result) > 1 else b"{}"


def _excerpt(body: bytes) -> bytes:
    """The start of a reply, to quote in an error: any session id in it masked."""
    return _SESSION_VALUE.sub(rb"\1<session>", body[:200])[:80]


def _describe(args: Mapping[str, object]) -> str:
    """The argument worth naming in an error (a path, a config), with a trailing space."""
    for key in ("path", "config", "command"):
        if key in args:
            return f"{key} {args[key]} "
    return ""


def _acl_name(call: UbusCall) -> str:
    """The right a refused call needed: ``file read /path`` for a file, else ``obj method``."""
    path = call.args.get("path")
    if call.obj == "file" and isinstance(path, str):
        return f"{call.name} {path}"
    return call.name
