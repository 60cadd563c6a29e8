"""The REST API's HTTP/1.1 front end: tornado holds the connections, a bounded pool does the work.

``http.server.ThreadingHTTPServer`` gives every connection a thread for as long as
the connection lasts, and waits for a request's bytes without end: 300 clients
that each send half a request hold 300 threads. Here a ``tornado`` HTTP server on
its own event loop (one background thread) reads every connection's requests
(HTTP/1.1 parsing, keep-alive, pipelining, ``Expect: 100-continue``), and only a
complete request goes to a pool of ``threads`` workers (TF Serving's
``--rest_api_num_threads``), which run the API. So:

- threads: the loop's one plus at most ``threads``, whatever the clients do;
- a request's body must arrive within ``timeout`` seconds of its headers (TF
  Serving's ``--rest_api_timeout_in_ms``), else 408 and the connection is closed;
  headers that do not arrive within ``timeout``, and an idle keep-alive
  connection, are closed after ``timeout`` too (tornado's idle timeout);
- at most ``max_connections`` connections are open; one more is answered 503
  (with ``Retry-After``) and closed;
- a body over ``max_body_bytes`` is refused with 413 before it is read; a
  ``Content-Length`` that is not a number is a 400; a header block over 64 KiB a
  431 (over 128 KiB tornado stops reading it and closes the connection); a body
  sent with ``Transfer-Encoding`` is a 411.

Every refusal made here is JSON ``{"error": "..."}``, like the API's own errors;
a request tornado cannot parse at all (a malformed request line or header) gets
tornado's bare ``400 Bad Request``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0  # TF Serving's --rest_api_timeout_in_ms default
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_MAX_BODY_BYTES = 64 << 20
MAX_HEADER_BYTES = 64 << 10
MAX_HEADERS = 100
LINGER_SECONDS = 1.0

# (method, target, body) -> (status, extra headers, JSON payload)
App = Callable[[str, str, bytes], "tuple[int, list[tuple[str, str]], bytes]"]


def default_threads() -> int:
    """TF Serving's default for --rest_api_num_threads: four per CPU."""
    return 4 * (os.cpu_count() or 1)


def json_payload(doc: dict) -> bytes:
    return json.dumps(doc, indent=4).encode()


class HttpServer:
    """Serve ``app`` on ``host:port`` (0: a free port, known as ``port`` once constructed)."""

    def __init__(
        self,
        host: str,
        port: int,
        app: App,
        *,
        threads: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        self.app = app
        self.threads = threads or default_threads()
        self.timeout = timeout
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=1024)
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        self.open_connections = 0
        self.refused = 0  # connections answered 503 because max_connections were open
        self.timed_out = 0  # requests that did not arrive within the timeout
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="rest")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> HttpServer:
        ready = threading.Event()
        failed: list[BaseException] = []

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            try:
                server = _tornado_server(self)
                server.add_sockets([self._sock])
            except BaseException as e:  # pragma: no cover - the socket was bound already
                failed.append(e)
                return
            finally:
                ready.set()
            await self._stopping.wait()
            server.stop()
            try:
                await asyncio.wait_for(server.close_all_connections(), 5)
            except TimeoutError:  # pragma: no cover - stopping anyway
                log.warning("REST connections did not close within 5s; stopping anyway")

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), name="rest", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]
        return self

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is None or self._thread is None or stopping is None:
            self._sock.close()
            return
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the app ------------------------------------------------------------------
    def _call_app(self, method: str, target: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            return self.app(method, target, body)
        except Exception as e:  # the app answers errors itself; this is the last line
            log.exception("REST request failed")
            return 500, [], json_payload({"error": f"{type(e).__name__}: {e}"})

    def _check_head(self, method: str, uri: str, version: str, headers: Any) -> tuple[int, str] | None:
        """(status, message) when a request's headers are refused before its body is read."""
        fields = list(headers.get_all())
        if len(fields) > MAX_HEADERS:
            return 431, f"more than {MAX_HEADERS} header fields"
        size = len(method) + len(uri) + len(version) + 4 + sum(len(n) + len(v) + 4 for n, v in fields)
        if size > MAX_HEADER_BYTES:
            return 431, f"the request's header block is over {MAX_HEADER_BYTES} bytes"
        if "Transfer-Encoding" in headers:
            return 411, "a request body with Transfer-Encoding is not supported: send it with a Content-Length"
        values = {v.strip() for value in headers.get_list("Content-Length") for v in value.split(",")}
        if len(values) > 1:
            return 400, f"Content-Length: conflicting values {', '.join(sorted(values))[:80]}"
        if values:
            text = values.pop()
            if not (text.isascii() and text.isdigit()):
                return 400, f"Content-Length: {text[:40]!r} is not a number of bytes"
            if len(text) > 19 or int(text) > self.max_body_bytes:
                return 413, (
                    f"the request body of {text[:40]} bytes is over the server's limit of "
                    f"{self.max_body_bytes} bytes (--rest-max-body-bytes)"
                )
        return None


def _response(status: int, message: str, headers: list[tuple[str, str]]) -> bytes:
    """A whole JSON error answer, for a connection refused before tornado parses anything on it."""
    payload = json_payload({"error": message})
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{n}: {v}" for n, v in headers),
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _tornado_server(front: HttpServer):
    """The tornado HTTPServer for ``front``, on the running loop (tornado is imported here, not at import)."""
    from tornado import gen, iostream, web
    from tornado.httpserver import HTTPServer
    from tornado.ioloop import IOLoop

    methods = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    @web.stream_request_body
    class Handler(web.RequestHandler):
        SUPPORTED_METHODS = methods

        def initialize(self) -> None:
            self._chunks: list[bytes] = []
            self._deadline = None

        def set_default_headers(self) -> None:
            self.clear_header("Server")
            self.set_header("Content-Type", "application/json")

        def compute_etag(self) -> None:
            return None

        def prepare(self) -> None:
            request = self.request
            refusal = front._check_head(request.method, request.uri, request.version, request.headers)
            if refusal is not None:
                raise web.HTTPError(refusal[0], refusal[1])
            self._deadline = IOLoop.current().call_later(front.timeout, self._too_slow)

        def _too_slow(self) -> None:
            self._deadline = None
            if not self._finished:
                front.timed_out += 1
                self.send_error(
                    408,
                    message=f"the request did not arrive whole within {front.timeout:g}s (--rest-api-timeout-in-ms)",
                )

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                IOLoop.current().remove_timeout(self._deadline)
                self._deadline = None

        def data_received(self, chunk: bytes) -> None:
            self._chunks.append(chunk)

        async def _serve(self, *args: str) -> None:
            self._cancel_deadline()
            body = b"".join(self._chunks)
            self._chunks = []
            status, headers, payload = await IOLoop.current().run_in_executor(
                front._pool, front._call_app, self.request.method, self.request.uri, body
            )
            del body
            self.set_status(status)
            for name, value in headers:
                self.add_header(name, value)
            self.finish(payload)

        get = head = post = delete = patch = put = options = _serve

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            error = kwargs.get("exc_info", (None, None, None))[1]
            message = kwargs.get("message") or (error.log_message if isinstance(error, web.HTTPError) else None)
            self.set_header("Content-Type", "application/json")
            if status_code < 500:  # refused before its body was read: tornado closes the connection after this
                self.set_header("Connection", "close")
            self.finish(json_payload({"error": message or self._reason}))

        def log_exception(self, typ, value, tb) -> None:  # refusals are answers, not errors to log
            if not isinstance(value, web.HTTPError):
                super().log_exception(typ, value, tb)

        def on_connection_close(self) -> None:
            self._cancel_deadline()
            super().on_connection_close()

        def on_finish(self) -> None:
            self._cancel_deadline()

    class Server(HTTPServer):
        def handle_stream(self, stream: iostream.IOStream, address: tuple):
            if front.open_connections >= front.max_connections:
                front.refused += 1
                return self._refuse(
                    stream,
                    503,
                    (
                        f"too many connections: the server takes at most {front.max_connections} at once "
                        "(--rest-max-connections); retry later"
                    ),
                    [("Retry-After", "1")],
                )
            front.open_connections += 1
            super().handle_stream(stream, address)

        def on_close(self, server_conn: object) -> None:
            front.open_connections -= 1
            super().on_close(server_conn)

        async def _refuse(
            self, stream: iostream.IOStream, status: int, message: str, headers: list[tuple[str, str]]
        ) -> None:
            """Answer and close, reading (and dropping) what the client still sends for a moment: closing
            with unread bytes would reset the connection, and the client might miss the answer."""
            try:
                await stream.write(_response(status, message, headers))
                stream.socket.shutdown(socket.SHUT_WR)
                deadline = IOLoop.current().time() + LINGER_SECONDS
                while True:
                    await gen.with_timeout(
                        deadline, stream.read_bytes(1 << 16, partial=True), quiet_exceptions=iostream.StreamClosedError
                    )
            except (iostream.StreamClosedError, gen.TimeoutError, OSError):
                pass
            finally:
                stream.close()

    application = web.Application([(r".*", Handler)], log_function=lambda handler: None)
    return Server(
        application,
        max_body_size=front.max_body_bytes,
        max_header_size=2 * MAX_HEADER_BYTES,
        idle_connection_timeout=front.timeout,
        body_timeout=front.timeout,
        decompress_request=False,
        xheaders=False,
    )
