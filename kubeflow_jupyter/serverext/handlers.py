"""REST handlers under ``<base_url>/kubeflow-jupyter/api/``: every verb authenticated and authorized.

    GET    jobs                          every job of the namespace
    POST   jobs                          submit (YAML body, or JSON {spec|path, name, command, validate, dry_run})
    GET    jobs/<name>                   one job with its replicas
    DELETE jobs/<name>                   delete it and stop its replicas
    GET    jobs/<name>/logs              ?replica=&tail=  → {"lines": [...]}
    GET    jobs/<name>/logs/stream       ?replica=&tail=  → server-sent events, live
    GET    jobs/<name>/metrics           ?replica=&since=&wait=  → {series: {metric: {replica: [[step, value]]}}, cursor}
    GET    events                        server-sent events: "jobs" (all), then "job" / "deleted" / "error"

Errors are JSON ``{"message": str(error)}`` with a status that says what kind
(400 bad spec with ``problems`` = [{path, message}] or a bad field/parameter, 404,
409, 413 body over MAX_BODY_BYTES, 429 too many open log streams); no input is a
500. The handlers check the types and ranges of the request's fields and parameters and
hold no job logic: they call :class:`TFJobClient` through :class:`JobService`, which
owns the rules shared with the CLI and the magics (``--command`` must split like a
shell command line, the manifest limit, the ``tail`` range).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.iostream import StreamClosedError

from ..client import MAX_TAIL
from ..errors import KubeflowJupyterError, SpecError, http_status
from ..tfjob.load import LIMIT_TEXT, MAX_BYTES, check_structure
from . import submit
from .service import JobService
from .wire import job_json

API_PREFIX = ("kubeflow-jupyter", "api")
AUTH_RESOURCE = "kubeflow-jupyter"
JOB_NAME = r"(?P<name>[^/]+)"
KEEPALIVE_SECONDS = 15.0
LOG_BATCH_LINES = 500
#: A POST body: the manifest limit twice over (a YAML string inside JSON is escaped: "\n", "\""),
#: buffered up to this + 1 byte; the rest of a bigger body is read and dropped, then 413.
MAX_BODY_BYTES = 2 * MAX_BYTES
#: A body announced bigger than this is refused before reading it (the connection is closed).
MAX_DRAIN_BYTES = 64 * 1024 * 1024
SUBMIT_FIELDS = ("spec", "path", "name", "command", "validate", "dry_run")


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages echo user input, never all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def text_field(name: str, value: Any) -> str | None:
    """A string field of the request (``path``, ``name``, ``command``): None when absent or empty."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise tornado.web.HTTPError(400, f"{name} must be a string, got {json_type(value)}")
    if "\0" in value:
        raise tornado.web.HTTPError(400, f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise tornado.web.HTTPError(400, f"{name} is not valid Unicode text (it holds a lone surrogate)") from None
    return value or None


def error_status(error: KubeflowJupyterError) -> int:
    """The HTTP status of a domain error: errors.ERROR_CODES, the table the CLI's exit codes share."""
    return http_status(error)


@tornado.web.stream_request_body
class BaseHandler(APIHandler):
    """Bodies are streamed: at most MAX_BODY_BYTES + 1 bytes are kept (only ``POST jobs`` reads
    them), whatever is sent; more is read and dropped, and ``POST jobs`` answers 413."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, service: JobService) -> None:
        self.service = service
        self.body = bytearray()
        self.body_size = 0

    async def prepare(self) -> None:
        result = super().prepare()  # authentication and XSRF first: nobody else's body is read
        if result is not None:
            await result
        if self._finished:
            return
        declared = (self.request.headers.get("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > MAX_DRAIN_BYTES:
            raise tornado.web.HTTPError(413, self.body_too_large_message(int(declared)))
        # A chunked body of no announced size: tornado hangs up past this many bytes.
        connection = self.request.connection
        if hasattr(connection, "set_max_body_size"):
            connection.set_max_body_size(MAX_DRAIN_BYTES)

    def data_received(self, chunk: bytes) -> None:
        self.body_size += len(chunk)
        room = MAX_BODY_BYTES + 1 - len(self.body)
        if room > 0:
            self.body += chunk[:room]

    @staticmethod
    def body_too_large_message(size: int) -> str:
        return (
            f"the request body is {size // 1024} KiB; it must be under {MAX_BODY_BYTES // 1024} KiB "
            f"(a TFJob manifest must be under {LIMIT_TEXT})"
        )

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, KubeflowJupyterError):
            reply: dict[str, Any] = {"message": str(exc)}
            if isinstance(exc, SpecError):
                reply["problems"] = [{"path": p.path, "message": p.message} for p in exc.problems]
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(reply))
            return
        super().write_error(status_code, **kwargs)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        # Domain errors are the user's to fix: answer with their status, not 500.
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, KubeflowJupyterError):
            status_code = error_status(exc)
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:
        # The user's mistake (404, 409, bad spec) is one log line, not a server traceback.
        if isinstance(value, KubeflowJupyterError):
            self.log.warning("%s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def int_argument(self, name: str, maximum: int) -> int | None:
        """A query parameter that must be an integer from 0 to ``maximum`` (absent or empty: None)."""
        raw = self.get_query_argument(name, None)
        if raw in (None, ""):
            return None
        digits = raw.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(maximum)) or int(digits) > maximum:
            raise tornado.web.HTTPError(400, f"{name} must be an integer from 0 to {maximum:,}, got {short(raw)}")
        return int(digits)


class EventStreamMixin:
    """Server-sent events over a plain authenticated GET (read by ``fetch`` in the lab)."""

    def initialize(self, service: JobService) -> None:
        self.closed = asyncio.Event()  # before any await: the client may hang up at any time
        super().initialize(service)

    def start_event_stream(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # proxies (JupyterHub's included) must not buffer

    def on_connection_close(self) -> None:
        self.closed.set()

    async def send_event(self, event: str, data: Any) -> bool:
        """Write one event; False once the client has gone."""
        return await self._send(f"event: {event}\ndata: {json.dumps(data)}\n\n")

    async def keepalive(self) -> bool:
        """A comment line: keeps proxies from closing an idle stream, and finds a vanished client."""
        return await self._send(": keepalive\n\n")

    async def _send(self, text: str) -> bool:
        if self.closed.is_set():
            return False
        self.write(text)
        try:
            await self.flush()
        except StreamClosedError:
            self.closed.set()
            return False
        return True

    async def next_item(self, queue: asyncio.Queue) -> tuple[bool, Any]:
        """(True, item) from the queue, or (False, None) on keepalive timeout or close."""
        getter = asyncio.ensure_future(queue.get())
        closer = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait({getter, closer}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        closer.cancel()
        if getter in done:
            return True, getter.result()
        getter.cancel()
        return False, None


class JobsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        jobs = await self.service.call("list")
        client = await self.service.run(self.service.client)
        self.write_json(
            {
                "backend": client.backend_name,
                "namespace": client.namespace,
                "jobs": [job_json(s) for s in jobs],
            }
        )

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        options = self.submit_options()
        client = await self.service.run(self.service.client)
        if options.pop("dry_run"):
            yaml = options.pop("yaml", None)
            self.write_json(await self.service.run(submit.plan, client, options, yaml))
            return
        options.pop("yaml", None)
        submission = await self.service.call("submit", **options)
        self.service.feed.created(submission.snapshot)  # every sidebar shows it now, unless the watch was faster
        self.write_json(
            {"job": job_json(submission.snapshot), "notices": submission.notices, "warnings": submission.warnings},
            status=201,
        )

    def submit_options(self) -> dict[str, Any]:
        """``submit`` keyword arguments from a JSON body {spec|path, name, command, validate, dry_run}
        or a YAML body + the same as query parameters.

        Every field is checked for its type here (400 naming it); what the values mean
        (the spec, ``--command``'s shell syntax, the manifest limit) the client checks.
        The job's working directory is the server's root, wherever the YAML file lies."""
        if self.body_size > MAX_BODY_BYTES:
            raise tornado.web.HTTPError(413, self.body_too_large_message(self.body_size))
        raw = bytes(self.body)
        content_type = (self.request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            try:
                body = json.loads(raw or b"{}")
            except RecursionError:
                raise tornado.web.HTTPError(400, "request body is nested too deeply to be a TFJob request") from None
            except ValueError as e:
                raise tornado.web.HTTPError(400, f"request body is not valid JSON: {str(e)[:200]}") from None
            # Whether json.loads itself hits the recursion limit depends on the stack it runs on:
            # the same depth rule as for manifests makes the answer the same every time.
            try:
                check_structure(body, "the request body")
            except SpecError as e:
                raise tornado.web.HTTPError(400, str(e.problems[0])) from None
            if not isinstance(body, dict):
                raise tornado.web.HTTPError(400, "request body must be a JSON object {spec|path, name, command}")
            unknown = [key for key in body if key not in SUBMIT_FIELDS]
            if unknown:
                raise tornado.web.HTTPError(
                    400,
                    f"unknown field {short(unknown[0])} in the request body: "
                    "send spec or path, and optionally name, command, validate and dry_run",
                )
        else:
            body = {
                "spec": raw.decode("utf-8", errors="replace"),
                "name": self.get_query_argument("name", None),
                "command": self.get_query_argument("command", None),
                "path": self.get_query_argument("path", None),
                "validate": self.get_query_argument("validate", None),
                "dry_run": self.get_query_argument("dry_run", None) in ("1", "true", "yes"),
            }
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise tornado.web.HTTPError(400, f"dry_run must be true or false, got {json_type(dry_run)}")
        try:
            validate = submit.check_validate(text_field("validate", body.get("validate")))
        except ValueError as e:
            raise tornado.web.HTTPError(400, str(e)) from None
        root = submit.server_root(self.settings, getattr(self, "contents_manager", None))
        options: dict[str, Any] = {
            "name": text_field("name", body.get("name")),
            "command": text_field("command", body.get("command")),
            "validate": validate,
            "dry_run": dry_run,
            "workdir": str(root),
        }
        path = text_field("path", body.get("path"))
        spec = body.get("spec")
        if spec is not None and not isinstance(spec, (str, dict)):
            raise tornado.web.HTTPError(
                400, f"spec must be the TFJob as YAML text or as a JSON object, got {json_type(spec)}"
            )
        if isinstance(spec, str):
            spec = spec if spec.strip() else None
        if path is not None:
            file = self.file_in_root(path, root)
            options["yaml"] = str(file)
            options["source"] = spec if spec is not None else file
        elif spec is not None:
            options["source"] = spec
        else:
            raise tornado.web.HTTPError(
                400, 'nothing to submit: send the TFJob YAML as the body, or JSON {"path": "<file>.yaml"}'
            )
        return options

    def file_in_root(self, path: str, root: Path) -> Path:
        """A Lab path (relative to the server root) as a real file inside the root, or 400."""
        try:
            file = (root / path.lstrip("/")).resolve()
            inside = file.is_relative_to(root)
            exists = inside and file.is_file()
        except (OSError, ValueError, RuntimeError) as e:  # name too long, symlink loop, unencodable name
            raise tornado.web.HTTPError(400, f"path {short(path)}: {str(e)[:200]}") from None
        if not inside:
            raise tornado.web.HTTPError(400, f"path {short(path)} is outside the server's root directory")
        if not exists:
            raise tornado.web.HTTPError(400, f"path {short(path)}: no such file under the server's root directory")
        return file


class JobHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.write_json(job_json(await self.service.call("get", name)))

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.service.call("delete", name)
        self.service.feed.forget(name)
        self.service.forget_metrics(name)
        self.set_status(204)
        self.finish()


class LogsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        replica = self.get_query_argument("replica", None) or None
        tail = self.int_argument("tail", MAX_TAIL)

        def read() -> list[str]:
            return list(self.service.client().logs(name, replica, tail=tail))

        lines = await self.service.run(read)
        self.write_json({"name": name, "replica": replica, "lines": lines})


class MetricsHandler(BaseHandler):
    """The job's metrics (kubeflow_jupyter.metrics): points newer than ``since`` (a cursor from the
    last reply; absent: every point), waiting up to ``wait`` seconds for one when there is none.

    ``replica``: empty for the result replica, ``all``, or a replica id. The reply:
    ``{name, replicas, series: {metric: {replica: [[step, value], ...]}}, goals: {metric:
    "min"|"max"}, cursor, reset, live, errors}``; ``reset`` says the points replace what the
    caller holds (a first reply, or a cursor of a follow that was replaced); ``live``: false
    once every followed log has ended (no need to ask again)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        from ..metrics.live import MAX_WAIT_SECONDS

        replica = self.get_query_argument("replica", None) or None
        since = self.get_query_argument("since", None) or None
        if since is not None and len(since) > 64:
            raise tornado.web.HTTPError(400, f"since must be a cursor from an earlier reply, got {short(since)}")
        wait = self.int_argument("wait", int(MAX_WAIT_SECONDS)) or 0
        live = await self.service.run(self.service.metrics.get, name, replica)
        await live.wait(live.parse_cursor(since), wait)
        self.write_json({"name": name, **live.answer(since)})


class LogStreamHandler(EventStreamMixin, BaseHandler):
    """Live log lines as events ``lines`` ([...] per batch), then ``end``; ``error`` if it fails."""

    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        replica = self.get_query_argument("replica", None) or None
        tail = self.int_argument("tail", MAX_TAIL)
        # Each open stream holds a thread: a bounded number per server (else 429).
        slots = self.service.log_streams
        refusal = slots.acquire()
        if refusal is not None:
            raise tornado.web.HTTPError(429, refusal)
        try:
            await self.stream(name, replica, tail)
        finally:
            slots.release()

    async def stream(self, name: str, replica: str | None, tail: int | None) -> None:
        # Set when the client hangs up: the backend then ends the follow, even on a silent replica.
        stop = threading.Event()
        # Resolve the job and replica first, so a wrong name is a plain 404, not an event.
        lines = await self.service.call("logs", name, replica, follow=True, tail=tail, stop=stop)
        self.start_event_stream()
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        # Its own thread, not the pool: a followed log can stay open for hours.
        threading.Thread(
            target=pump_lines, args=(lines, queue, loop, stop), name="kubeflow-jupyter-logs", daemon=True
        ).start()
        try:
            await self.relay(queue)
        finally:
            stop.set()
        if not self.closed.is_set():
            self.finish()

    async def relay(self, queue: asyncio.Queue) -> None:
        while True:
            got, item = await self.next_item(queue)
            if not got:
                if not await self.keepalive():
                    return
                continue
            batch: list[str] = []
            while True:
                kind, value = item
                if kind != "line":  # "end" or "error": flush what came before, then say so
                    if batch:
                        await self.send_event("lines", batch)
                    await self.send_event(kind, value)
                    return
                batch.append(value)
                if len(batch) >= LOG_BATCH_LINES or queue.empty():
                    break
                item = queue.get_nowait()
            if not await self.send_event("lines", batch):
                return


def pump_lines(
    lines: Iterator[str], queue: asyncio.Queue, loop: asyncio.AbstractEventLoop, stop: threading.Event
) -> None:
    """Thread: hand each log line to the loop; ends with ("end"|"error", data)."""

    def put(item: tuple[str, Any]) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
            return True
        except RuntimeError:  # loop closed
            return False

    try:
        for line in lines:
            if stop.is_set() or not put(("line", line)):
                break
        else:
            put(("end", {}))
    except Exception as e:
        put(("error", {"message": str(e)}))
    finally:
        close = getattr(lines, "close", None)
        if close:
            close()


class EventsHandler(EventStreamMixin, BaseHandler):
    """The push channel: ``jobs`` with every job, then ``job``/``deleted`` per change, ``error`` on trouble."""

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.start_event_stream()
        feed = self.service.feed
        sub = feed.subscribe()
        try:
            while True:
                got, item = await self.next_item(sub.queue)
                ok = await (self.send_event(*item) if got else self.keepalive())
                if not ok:
                    return
        finally:
            feed.unsubscribe(sub)


def setup_handlers(web_app: tornado.web.Application, service: JobService) -> None:
    base = url_path_join(web_app.settings["base_url"], *API_PREFIX)
    args = {"service": service}
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "jobs"), JobsHandler, args),
            (url_path_join(base, "jobs", JOB_NAME), JobHandler, args),
            (url_path_join(base, "jobs", JOB_NAME, "logs"), LogsHandler, args),
            (url_path_join(base, "jobs", JOB_NAME, "logs", "stream"), LogStreamHandler, args),
            (url_path_join(base, "jobs", JOB_NAME, "metrics"), MetricsHandler, args),
            (url_path_join(base, "events"), EventsHandler, args),
        ],
    )
