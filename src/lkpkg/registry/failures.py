"""What became of a request that got no complete answer, in a user's words.

`describe_transport_error` turns an httpx transport error into a short reason ("connection
refused", "TLS certificate verify failed: ..."); `NoAnswer` is what `Transport.exchange`
returns instead of a response, and knows whether a server took the connection and whether
TLS itself failed (the ping decides between https and plain http on that).
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass

import httpx

from lkpkg.errors import RegistryUnreachable


@dataclass(frozen=True)
class NoAnswer:
    """What happened to a request that got no complete answer, in a user's words.

    `connected` says a server took the connection (so it is there and speaks at least TCP);
    `tls` that the failure was TLS's own (only an https connection can have it).
    """

    what: str
    where: str
    reason: str
    connected: bool
    tls: bool

    @classmethod
    def of(
        cls, error: httpx.TransportError, what: str, where: str, elapsed: float, answered: bool
    ) -> NoAnswer:
        seconds = f"{max(1.0, elapsed):.0f} s"
        if isinstance(error, httpx.ReadTimeout):
            reason = (
                f"{what} {where} stopped sending its answer (nothing for {seconds})"
                if answered
                else f"no answer from {what} {where} in {seconds}"
            )
        elif isinstance(error, httpx.WriteTimeout):
            reason = f"{what} {where} stopped taking data (nothing for {seconds})"
        elif isinstance(error, httpx.ConnectTimeout):
            reason = f"{what} {where} unreachable: no connection in {seconds}"
        elif isinstance(error, httpx.PoolTimeout):
            reason = f"no free connection to {what} {where} in {seconds}"
        else:
            detail = describe_transport_error(error)
            if answered:
                detail = f"the answer was cut short ({detail})"
            reason = f"{what} {where} unreachable: {detail}"
        connected = answered or not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
        if isinstance(error, httpx.ConnectError) and is_tls_failure(error):
            connected = True  # a TLS handshake needs a connection
        return cls(what, where, reason, connected, is_tls_failure(error))

    def error(self) -> RegistryUnreachable:
        return RegistryUnreachable(self.reason)


def is_transient(error: httpx.TransportError) -> bool:
    """Resets, timeouts and a peer closing mid-answer may pass; a refused connection, a DNS
    failure or a TLS handshake failure will not within a retry's backoff."""
    if isinstance(error, httpx.TimeoutException):
        return True
    if isinstance(error, httpx.ConnectError):
        return isinstance(_root_cause(error), ConnectionResetError)
    return isinstance(error, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError)


def is_tls_failure(error: BaseException) -> bool:
    return isinstance(_root_cause(error), ssl.SSLError)


def _root_cause(error: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        nxt = error.__cause__ or error.__context__
        if nxt is None:
            break
        error = nxt
    return error


def describe_transport_error(error: BaseException) -> str:
    """A short reason: "connection refused", "TLS: certificate verify failed: ...", ..."""
    if isinstance(error, RegistryUnreachable):
        return error.message.partition(" unreachable: ")[2] or error.message
    if isinstance(error, httpx.TimeoutException):
        kind = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for an answer",
            httpx.WriteTimeout: "sending",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(error), "")
        return f"timed out {kind}".strip()
    cause = _root_cause(error)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate verify failed: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed: {getattr(cause, 'reason', None) or cause}"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, ConnectionResetError):
        return "connection reset"
    if isinstance(cause, socket.gaierror):
        return f"cannot resolve host ({cause.strerror})"
    if isinstance(cause, OSError) and cause.errno is not None:
        return (cause.strerror or errno.errorcode.get(cause.errno, str(cause.errno))).lower()
    if isinstance(error, httpx.RemoteProtocolError):
        return "the server closed the connection without a complete answer"
    text = str(error) or type(error).__name__
    return " ".join(text.splitlines())
