"""Fixtures for the lab tests: a Jupyter server with the extension (pytest-jupyter), TFJob YAML files."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

# pytest-jupyter's fixtures (jp_serverapp, jp_fetch, ...) and its async test hooks, for this directory only.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from support.manifests import HELLO, tfjob_yaml


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {
            "jpserver_extensions": {"kubeflow_jupyter": True},
            # As the extension template does: a server that refuses unauthenticated access everywhere.
            "allow_unauthenticated_access": False,
        }
    }


@pytest.fixture
def write_job(jp_root_dir):
    """Write a TFJob YAML (``replicas`` Workers running ``python -c CODE``) under the server root;
    returns its path relative to the root."""

    def write(relpath: str, name: str, code: str = HELLO, replicas: int = 1) -> str:
        path = Path(jp_root_dir) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tfjob_yaml(name, {"Worker": (replicas, "Never", code)}))
        return relpath

    return write


class EventStream:
    """A server-sent-event response read over a raw connection (so the test can hang up).

    Events land in ``queue`` as (event, data); ``status`` is the HTTP status.
    """

    def __init__(self, port: int, path: str, headers: dict[str, str]):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.status: int | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.task = asyncio.ensure_future(self._read(port, path, headers))

    async def _read(self, port: int, path: str, headers: dict[str, str]) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        head = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        self.status = int((await reader.readline()).split()[1])
        while (await reader.readline()).strip():  # response headers: chunked, as tornado sends a flushed body
            pass
        buffer = ""
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                self.queue.put_nowait(("<closed>", None))
                return
            buffer += (await reader.readexactly(size + 2))[:-2].decode()
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
                if "data" in fields:
                    self.queue.put_nowait((fields.get("event", "message"), json.loads(fields["data"])))

    async def next(self, timeout: float = 60) -> tuple[str, Any]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def until(self, predicate, timeout: float = 60) -> tuple[str, Any]:
        """Skip events until one matches ``predicate(event, data)``; return it."""
        while True:
            event, data = await self.next(timeout)
            if predicate(event, data):
                return event, data

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


@pytest.fixture
def open_stream(jp_http_port, jp_base_url, jp_auth_header):
    """Open an event stream on an API path; every stream is closed at teardown."""
    streams: list[EventStream] = []

    def open_(*parts: str, query: str = "", headers: dict[str, str] | None = None) -> EventStream:
        path = f"{jp_base_url}kubeflow-jupyter/api/" + "/".join(parts) + query
        stream = EventStream(jp_http_port, path, dict(jp_auth_header) if headers is None else headers)
        streams.append(stream)
        return stream

    yield open_
    loop = asyncio.get_event_loop()
    for stream in streams:
        loop.run_until_complete(stream.close())
