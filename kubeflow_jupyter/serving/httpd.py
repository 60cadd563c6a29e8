"""The REST API's HTTP/1.1 front end: one event loop holds the connections, a bounded pool does the work.

``http.server.ThreadingHTTPServer`` gives every connection a thread for as long as
the connection lasts, and waits for a request's bytes without end: 300 clients
that each send half a request hold 300 threads. Here one asyncio loop reads every
connection's request (request line, headers, a ``Content-Length`` body) within a
deadline, and only a complete request goes to a pool of ``threads`` workers (TF
Serving's ``--rest_api_num_threads``), which run the API. So:

- threads: the loop's one plus at most ``threads``, whatever the clients do;
- a request must arrive whole within ``timeout`` seconds of its first byte (TF
  Serving's ``--rest_api_timeout_in_ms``), else 408 and the connection is closed;
  an idle keep-alive connection is closed after ``timeout`` too;
- at most ``max_connections`` connections are open; one more is answered 503
  (with ``Retry-After``) and closed;
- a body over ``max_body_bytes`` is refused with 413 before it is read; a
  ``Content-Length`` that is not a number is a 400; a header block over 64 KiB a 431.

Every refusal is JSON ``{"error": "..."}``, like the API's own errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Callable

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0  # TF Serving's --rest_api_timeout_in_ms default
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_MAX_BODY_BYTES = 64 << 20
MAX_HEADER_BYTES = 64 << 10
MAX_HEADERS = 100
LINGER_SECONDS = 1.0

# (method, target, body) -> (status, extra headers, JSON payload)
App = Callable[[str, str, bytes], "tuple[int, list[tuple[str, str]], bytes]"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def default_threads() -> int:
    """TF Serving's default for --rest_api_num_threads: four per CPU."""
    return 4 * (os.cpu_count() or 1)


def json_payload(doc: dict) -> bytes:
    return json.dumps(doc, indent=4).encode()


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or []


class HttpServer:
    """Serve ``app`` on ``host:port`` (0: a free port, known as ``port`` once constructed)."""

    def __init__(self, host: str, port: int, app: App, *, threads: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.threads = threads or default_threads()
        self.timeout = timeout
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=1024)
        self.port = self._sock.getsockname()[1]
        self.open_connections = 0
        self.refused = 0  # connections answered 503 because max_connections were open
        self.timed_out = 0  # requests that did not arrive within the timeout
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="rest")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "HttpServer":
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._server = loop.run_until_complete(asyncio.start_server(
                    self._connection, sock=self._sock, limit=MAX_HEADER_BYTES, backlog=1024))
            except BaseException as e:  # pragma: no cover - the socket was bound already
                failed.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="rest", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            self._sock.close()
            return

        def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            loop.stop()

        if not loop.is_closed():
            loop.call_soon_threadsafe(close)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- one connection -----------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self.open_connections >= self.max_connections:
            self.refused += 1
            await self._refuse(reader, writer, HttpError(
                503, f"too many connections: the server takes at most {self.max_connections} at once "
                     "(--rest-max-connections); retry later", [("Retry-After", "1")]))
            return
        self.open_connections += 1
        self._tasks.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping
        finally:
            self.open_connections -= 1
            self._tasks.discard(task)
            _close(writer)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request, answer it; whether the connection stays open for another."""
        try:
            async with asyncio.timeout(self.timeout):  # an idle connection is closed quietly
                first = await reader.read(1)
        except TimeoutError:
            return False
        if not first:
            return False
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    head = first + await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    raise HttpError(431, f"the request's header block is over {MAX_HEADER_BYTES} bytes") from None
                except asyncio.IncompleteReadError:
                    return False  # the client went away mid-request
                method, target, keep_alive, length, expect = self._parse_head(head)
                if expect and length:
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await reader.readexactly(length) if length else b""
        except TimeoutError:
            self.timed_out += 1
            await self._refuse(reader, writer, HttpError(
                408, f"the request did not arrive whole within {self.timeout:g}s (--rest-api-timeout-in-ms)"))
            return False
        except HttpError as e:
            await self._refuse(reader, writer, e)
            return False
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self._pool, self._call_app, method, target, body)
        del body
        await self._send(writer, status, headers, payload, keep_alive, head_only=method == "HEAD")
        return keep_alive

    def _call_app(self, method: str, target: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            return self.app(method, target, body)
        except Exception as e:  # the app answers errors itself; this is the last line
            log.exception("REST request failed")
            return 500, [], json_payload({"error": f"{type(e).__name__}: {e}"})

    def _parse_head(self, head: bytes) -> tuple[str, str, bool, int, bool]:
        """(method, target, keep-alive, body length, expects 100-continue); HttpError if unacceptable."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
            raise HttpError(400, f"Malformed request line: {lines[0][:200]!r}")
        method, target, version = parts
        if not re.fullmatch(r"HTTP/1\.[0-9]", version):
            raise HttpError(505, f"HTTP version {version[:20]!r} is not supported: speak HTTP/1.1")
        headers: dict[str, list[str]] = {}
        count = 0
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not _TOKEN.fullmatch(name):
                raise HttpError(400, f"Malformed header line: {line[:200]!r}")
            count += 1
            if count > MAX_HEADERS:
                raise HttpError(431, f"more than {MAX_HEADERS} header fields")
            headers.setdefault(name.lower(), []).append(value.strip())
        if "transfer-encoding" in headers:
            raise HttpError(411, "a request body with Transfer-Encoding is not supported: send it with a "
                                 "Content-Length")
        values = [v.strip() for value in headers.get("content-length", []) for v in value.split(",")]
        length = 0
        if values:
            if len(set(values)) > 1:
                raise HttpError(400, f"Content-Length: conflicting values {', '.join(sorted(set(values)))[:80]}")
            text = values[0]
            if not (text.isascii() and text.isdigit()):
                raise HttpError(400, f"Content-Length: {text[:40]!r} is not a number of bytes")
            if len(text) > 19 or int(text) > self.max_body_bytes:
                raise HttpError(413, f"the request body of {text[:40]} bytes is over the server's limit of "
                                     f"{self.max_body_bytes} bytes (--rest-max-body-bytes)")
            length = int(text)
        connection = ",".join(headers.get("connection", [])).lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        expect = ",".join(headers.get("expect", [])).lower() == "100-continue"
        return method, target, keep_alive, length, expect

    # -- answers -----------------------------------------------------------------------
    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, error: HttpError) -> None:
        """Answer an error and end the connection, reading (and dropping) what the client still sends for a
        moment: closing with unread bytes would reset the connection, and the client might miss the answer."""
        try:
            await self._send(writer, error.status, error.headers, json_payload({"error": error.message}), False)
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(LINGER_SECONDS):
                while await reader.read(1 << 16):
                    pass
        except (ConnectionError, TimeoutError, OSError):
            pass
        _close(writer)

    async def _send(self, writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], payload: bytes,
                    keep_alive: bool, head_only: bool = False) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {email.utils.formatdate(usegmt=True)}",
                 "Content-Type: application/json", f"Content-Length: {len(payload)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(payload)
        async with asyncio.timeout(self.timeout):  # a client that does not read its answer is dropped
            await writer.drain()


def _close(writer: asyncio.StreamWriter) -> None:
    """Close once the answer is out; drop at once what a client that does not read would leave queued."""
    transport = writer.transport
    if transport.is_closing():
        return
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()
