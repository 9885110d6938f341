"""Fixtures: a running ubus emulator, an aiohttp session, routers pointed at it."""

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from custom_components.phonehome.routers.openwrt import OpenWrtRouter
from tests.emulators.ubus import UbusEmulator

RouterFactory = Callable[..., OpenWrtRouter]


@pytest.fixture
async def emulator() -> AsyncIterator[UbusEmulator]:
    emu = UbusEmulator()
    await emu.start()
    yield emu
    await emu.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_router(
    http: aiohttp.ClientSession, emulator: UbusEmulator, **kwargs: Any
) -> OpenWrtRouter:
    options: dict[str, Any] = {
        "username": "root",
        "password": "secret",
        "timeout": 2.0,
        "conntrack_timeout": 2.0,
    }
    options.update(kwargs)
    username = options.pop("username")
    password = options.pop("password")
    return OpenWrtRouter(http, "127.0.0.1", emulator.port, username, password, **options)


@pytest.fixture
def router_for(http: aiohttp.ClientSession, emulator: UbusEmulator) -> RouterFactory:
    def factory(**kwargs: Any) -> OpenWrtRouter:
        return make_router(http, emulator, **kwargs)

    return factory


def self_signed(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenWrt")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
async def tls_emulator(tmp_path: Path) -> AsyncIterator[UbusEmulator]:
    emu = UbusEmulator()
    await emu.start(self_signed(tmp_path))
    yield emu
    await emu.close()
