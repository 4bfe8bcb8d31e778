"""``python -m bench.proxy --cert C --key K --upstream HOST:PORT``: Stripe's host on loopback.

A peer connector that can only reach ``https://api.stripe.com`` is pointed at the
simulator through this proxy, as its ``HTTPS_PROXY``: it accepts ``CONNECT
api.stripe.com:443`` (and nothing else), answers the TLS handshake with the run's
certificate for that host (``bench.tls``; the peer trusts the run's CA), and relays the
decrypted HTTP/1.1 to the simulator's plain port, unchanged but for one request the
simulator does not serve: ``GET /v1/accounts/{own id}`` (``--own-account``), which Stripe
answers with the caller's own account, goes on as ``GET /v1/account``.

Prints ``listening on http://127.0.0.1:PORT`` on stdout once ready; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys

from bench.tls import STRIPE_HOST

HEAD_END = b"\r\n\r\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.add_argument("--cert", required=True, help="the server certificate (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--upstream", required=True, help="the simulator's HOST:PORT")
    parser.add_argument("--host", default=STRIPE_HOST, help="the one host CONNECT may name")
    parser.add_argument("--own-account", default=None, help="the simulator's main account id")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    host, _, port = args.upstream.rpartition(":")
    relay = Relay(context, args.host, (host, int(port)), args.own_account)
    asyncio.run(relay.serve(args.port))
    return 0


class Relay:
    """Accepts CONNECTs to ``host``, terminates TLS and relays to ``upstream``."""

    def __init__(
        self,
        context: ssl.SSLContext,
        host: str,
        upstream: tuple[str, int],
        own_account: str | None,
    ) -> None:
        self.context = context
        self.authority = f"{host}:443".encode()
        self.upstream = upstream
        self.own_path = f"/v1/accounts/{own_account}".encode() if own_account else None

    async def serve(self, port: int) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on http://127.0.0.1:{bound}", flush=True)
        async with server:
            await stop.wait()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(HEAD_END)
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            if method != b"CONNECT" or target != self.authority:
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self.context)
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except (OSError, ValueError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            print(f"bench.proxy: connection refused: {exc!r}", file=sys.stderr, flush=True)
            writer.close()
            return
        try:
            await asyncio.gather(
                self._requests(reader, up_writer), self._responses(up_reader, writer)
            )
        except (OSError, ssl.SSLError) as exc:
            print(f"bench.proxy: connection lost: {exc!r}", file=sys.stderr, flush=True)
        finally:
            for end in (writer, up_writer):
                end.close()

    async def _requests(self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
        """Forward each request (head and ``Content-Length`` body), the path rewritten if
        it retrieves the own account; a chunked body is relayed as it comes."""
        try:
            while True:
                head = await reader.readuntil(HEAD_END)
                length, chunked = _body_framing(head)
                upstream.write(self._rewritten(head))
                if chunked:
                    while chunk := await reader.read(65536):
                        upstream.write(chunk)
                        await upstream.drain()
                    break
                if length:
                    upstream.write(await reader.readexactly(length))
                await upstream.drain()
        except asyncio.IncompleteReadError:
            pass  # the peer closed its connection
        upstream.close()

    async def _responses(
        self, upstream: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while chunk := await upstream.read(65536):
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError, ssl.SSLError):
            writer.close()

    def _rewritten(self, head: bytes) -> bytes:
        line, _, rest = head.partition(b"\r\n")
        method, target, version = line.split(b" ", 2)
        path, question, query = target.partition(b"?")
        if method == b"GET" and self.own_path is not None and path == self.own_path:
            return b" ".join((method, b"/v1/account" + question + query, version)) + b"\r\n" + rest
        return head


def _body_framing(head: bytes) -> tuple[int, bool]:
    """``(Content-Length, chunked)`` of a request head."""
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return length, chunked


if __name__ == "__main__":
    raise SystemExit(main())
