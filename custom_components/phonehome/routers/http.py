"""What HTTP-based router clients share: one mapping of transport failures to router errors."""

import aiohttp

from .base import RouterConnectionError, RouterTLSError


def transport_error(
    err: aiohttp.ClientError | TimeoutError,
    where: str,
    timeout: float,
    *,
    certificate_help: str,
    handshake_help: str = "",
) -> RouterConnectionError:
    """The router error for a request to ``where`` that failed below HTTP.

    ``certificate_help`` (and ``handshake_help``, when given) follow the cause after
    a colon: what the owner of this kind of router can do about it.
    """
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return RouterTLSError(
            f"the TLS certificate of {where} failed verification "
            f"({err.certificate_error}): {certificate_help}"
        )
    if isinstance(err, aiohttp.ClientSSLError):
        suffix = f": {handshake_help}" if handshake_help else ""
        return RouterTLSError(f"the TLS handshake with {where} failed ({err}){suffix}")
    if isinstance(err, aiohttp.ClientConnectorError):
        return RouterConnectionError(f"cannot connect to {where}: {err}")
    if isinstance(err, TimeoutError):
        return RouterConnectionError(f"{where} did not answer within {timeout:g} s")
    return RouterConnectionError(f"the connection to {where} failed: {err}")
