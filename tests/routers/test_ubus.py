"""The ubus JSON-RPC transport: sessions, batches and replies no real router should send."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from custom_components.phonehome.routers.base import (
    RouterConnectionError,
    RouterPermissionError,
    RouterResponseError,
)
from custom_components.phonehome.routers.ubus import UbusCall, UbusClient
from tests.emulators.ubus import UbusEmulator, dumps, fixture_body

Answer = Callable[[Any], object]


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[str, list[Answer]]]:
    """A /ubus whose answers a test scripts: each answer maps the request to a body."""
    answers: list[Answer] = []

    async def handle(request: web.Request) -> web.Response:
        answer = answers.pop(0)(await request.json())
        if isinstance(answer, web.Response):
            return answer
        return web.Response(text=answer if isinstance(answer, str) else dumps(answer))

    app = web.Application()
    app.router.add_post("/ubus", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/ubus", answers
    await runner.cleanup()


def login_ok(request: Any) -> object:
    body = fixture_body("login_ok")
    body["id"] = request["id"]
    return body


def client(
    http: aiohttp.ClientSession, url: str, user: str = "root", password: str = "secret"
) -> UbusClient:
    return UbusClient(http, url, user, password, timeout=2.0)


async def test_call_returns_the_payload(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    ubus = client(http, emulator.url)
    board = await ubus.call("system", "board")
    assert board["release"]["version"] == "24.10.8"
    assert ubus.logins == 1


async def test_call_with_no_payload_is_empty(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    ubus = client(http, emulator.url)
    await ubus.login()
    assert await ubus.call("session", "destroy") == {}


async def test_call_relogs_once_after_expiry(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    ubus = client(http, emulator.url)
    await ubus.call("system", "board")
    emulator.expire_sessions()
    await ubus.call("system", "board")
    assert emulator.calls["session.login"] == 2


async def test_call_denied_twice_names_the_call(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    ubus = client(http, emulator.url, "hass", "hasspw")
    with pytest.raises(
        RouterPermissionError, match=r"'hass' lacks the rpcd ACL for luci setLocaltime"
    ):
        await ubus.call("luci", "setLocaltime", {"localtime": 0})
    assert emulator.calls["session.login"] == 2
    assert emulator.calls["luci.setLocaltime"] == 2


async def test_call_raw_denied_twice(emulator: UbusEmulator, http: aiohttp.ClientSession) -> None:
    emulator.users["hass"].ubus = set()
    ubus = client(http, emulator.url, "hass", "hasspw")
    with pytest.raises(RouterPermissionError, match="luci getConntrackList"):
        await ubus.call_raw("luci", "getConntrackList")


async def test_concurrent_denials_log_in_once(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    ubus = client(http, emulator.url)
    await ubus.login()
    emulator.expire_sessions()
    await asyncio.gather(ubus.call("system", "board"), ubus.call("system", "board"))
    assert emulator.calls["session.login"] == 2


async def test_ubus_statuses(emulator: UbusEmulator, http: aiohttp.ClientSession) -> None:
    ubus = client(http, emulator.url)
    with pytest.raises(RouterResponseError, match=r"status 3 \(method not found\)"):
        await ubus.call("luci-rpc", "noSuchMethod")
    with pytest.raises(RouterResponseError, match=r"status 5 \(no data\)"):
        await ubus.call("luci", "getVersion")
    with pytest.raises(RouterResponseError, match=r"status 2 \(invalid argument\)"):
        await ubus.call("file", "read", {"path": 5})


async def test_object_not_found(emulator: UbusEmulator, http: aiohttp.ClientSession) -> None:
    ubus = client(http, emulator.url)
    with pytest.raises(RouterResponseError, match="no ubus object 'nosuchobject'"):
        await ubus.call("nosuchobject", "x")


async def test_batch_answers_in_order_with_errors_per_call(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    ubus = client(http, emulator.url)
    board, missing, hints = await ubus.batch(
        [
            UbusCall("system", "board"),
            UbusCall("luci-rpc", "nope"),
            UbusCall("luci-rpc", "getHostHints"),
        ]
    )
    assert board.unwrap()["hostname"] == "b6f391692652"
    assert isinstance(missing.error, RouterResponseError)
    with pytest.raises(RouterResponseError):
        missing.unwrap()
    assert "AA:BB:CC:00:11:22" in hints.unwrap()
    assert missing.call.name == "luci-rpc nope"


async def test_404_says_no_ubus_endpoint(
    emulator: UbusEmulator, http: aiohttp.ClientSession
) -> None:
    ubus = client(http, emulator.url.replace("/ubus", "/cgi-bin/luci"))
    with pytest.raises(RouterResponseError, match="no ubus endpoint"):
        await ubus.login()


async def test_logout_without_session_does_nothing(http: aiohttp.ClientSession) -> None:
    await client(http, "http://127.0.0.1:9/ubus").logout()


# ---------------------------------------------------------------- replies no real router sends


async def test_login_reply_without_session(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    answers.append(lambda r: {"jsonrpc": "2.0", "id": r["id"], "result": [0, {"timeout": 300}]})
    with pytest.raises(RouterResponseError, match="no ubus_rpc_session"):
        await client(http, url).login()


async def test_replies_of_the_wrong_shape(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    ubus = client(http, url)
    answers.append(login_ok)
    await ubus.login()
    for body, message in [
        ({"jsonrpc": "2.0", "id": 1}, "neither a result nor an error"),
        ({"jsonrpc": "2.0", "id": 1, "result": []}, "neither a result nor an error"),
        ({"jsonrpc": "2.0", "id": 1, "result": ["zero"]}, "does not start with a ubus status"),
        ({"jsonrpc": "2.0", "id": 1, "result": [0, [1, 2]]}, "is not an object"),
        (
            {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}},
            "JSON-RPC error -32601 Method not found",
        ),
        ({"jsonrpc": "2.0", "id": 1, "result": [99]}, r"status 99 \(unknown status\)"),
    ]:
        answers.append(lambda r, body=body: body)
        with pytest.raises(RouterResponseError, match=message):
            await ubus.call("system", "board")


DEEP = 100_000
"""Nesting deeper than msgspec's decoder goes (it raises RecursionError)."""


def raw(body: bytes) -> Answer:
    return lambda request: web.Response(body=body, content_type="application/json")


async def test_unreadable_replies_are_response_errors(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    """Nested too deep, or not UTF-8 in the envelope's own strings: a clear response error."""
    url, answers = scripted
    ubus = client(http, url)
    answers.append(login_ok)
    await ubus.login()
    one = "did not answer with a JSON-RPC response"
    for body, message in [
        (b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"\xff"}}', one),
        (b'{"jsonrpc":"2.0","id":1,"result":[0,' + b"[" * DEEP, one),
    ]:
        answers.append(raw(body))
        with pytest.raises(RouterResponseError, match=message):
            await ubus.call("system", "board")
    batch = "did not answer the batch with a JSON-RPC array"
    for body in (b'[{"jsonrpc":"2.0\xff","id":2,"result":[0]}]', b"[" * DEEP):
        answers.append(raw(body))
        with pytest.raises(RouterResponseError, match=batch):
            await ubus.batch([UbusCall("system", "board")])
    for body in (b'{"jsonrpc":"2.0","id":3,"result":{"\xff":{}}}', b'{"result":' + b"[" * DEEP):
        answers.append(raw(body))
        with pytest.raises(RouterResponseError, match="did not answer list"):
            await ubus.list_signatures("luci-rpc")


async def test_unreadable_login_reply_quotes_no_session(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    sid = b"5f0e5ea51a2c4f6b8d3c9a7e1b2d4c6f"
    answers.append(raw(b'{"jsonrpc":"2.0\xff","id":1,"result":[0,{"ubus_rpc_session":"' + sid))
    with pytest.raises(RouterResponseError, match="can't decode byte 0xff") as raised:
        await client(http, url).login()
    assert "<session>" in str(raised.value)
    assert sid.decode() not in str(raised.value)


async def test_ubus_timeout_status(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    answers += [login_ok, lambda r: {"jsonrpc": "2.0", "id": r["id"], "result": [7]}]
    with pytest.raises(RouterConnectionError, match="timed out on the router"):
        await client(http, url).call("system", "board")


async def test_batch_answered_without_ids_is_taken_in_order(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    answers += [
        login_ok,
        lambda r: [{"jsonrpc": "2.0", "id": None, "result": [0, {"n": n}]} for n in range(len(r))],
    ]
    results = await client(http, url).batch([UbusCall("a", "b"), UbusCall("c", "d")])
    assert [result.unwrap() for result in results] == [{"n": 0}, {"n": 1}]


async def test_batch_answered_short(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    answers += [login_ok, lambda r: [{"jsonrpc": "2.0", "id": r[0]["id"], "result": [0]}]]
    with pytest.raises(RouterResponseError, match="answered 1 responses to a batch of 2"):
        await client(http, url).batch([UbusCall("a", "b"), UbusCall("c", "d")])


async def test_request_is_a_json_rpc_call(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    seen: list[Any] = []

    def record(request: Any) -> object:
        seen.append(request)
        return login_ok(request)

    answers.append(record)
    await client(http, url, "hass", "pw").login()
    assert seen == [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "call",
            "params": ["0" * 32, "session", "login", {"username": "hass", "password": "pw"}],
        }
    ]


async def test_uhttpd_parse_error(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    answers.append(lambda r: json.loads(json.dumps(fixture_body("malformed_request_json"))))
    with pytest.raises(RouterResponseError, match="-32700 Parse error"):
        await client(http, url).login()


async def test_redirect_to_https_is_explained(
    scripted: tuple[str, list[Answer]], http: aiohttp.ClientSession
) -> None:
    url, answers = scripted
    answers.append(lambda r: web.Response(status=302, headers={"Location": "https://router/ubus"}))
    with pytest.raises(RouterResponseError, match=r"redirects to https://router/ubus.*turn SSL on"):
        await client(http, url).login()
    assert answers == []
