"""A real HTTP archive on 127.0.0.1 serving a synthetic archive, with faults on request.

It behaves like the data services the download code talks to: files at their archive paths
(``GET /aia/lev1_euv_12s/...``), byte ranges for resuming (``Range: bytes=N-``, answered 206),
``HEAD``, the catalog at ``/catalog.csv`` (and ``/catalog.csv.sha256``) and a search endpoint
``/search?instrument=aia&channel=171&start=ISO&end=ISO`` answering catalog rows as CSV. A bad
request (a ``%00`` in the path, a search time that is not a time) is answered 400 with the
reason, never with a dropped connection.

Faults (``inject_fault(pattern, kind, count)``, pattern an fnmatch glob on the archive path):
``'503'`` answers 503 Service Unavailable with ``Retry-After``; ``'429'`` answers 429 Too Many
Requests with ``Retry-After``; ``'drop'`` sends the headers and half the body, then closes the
connection; ``'truncate'`` sends half the file with a matching Content-Length, so only checksum
or FITS verification reveals it; ``'trickle'`` sends the body one byte every
``trickle_interval`` seconds (never tripping a per-read timeout); ``'html'`` answers 200 with
an HTML error page instead of the file (as a proxy or a server in maintenance does). Every
request is logged in
``requests`` (method, path, range, status, fault).

:class:`FaultyServer` is the shared machinery (faults, request log, lifecycle) of this archive
and of the JSOC export service in :mod:`farside_gan.testing.fake_jsoc`.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from farside_gan.core.errors import InputDataError
from farside_gan.core.instruments import CATALOG_COLUMNS, CATALOG_NAME
from farside_gan.testing.bad_files import HTML_ANSWER

FAULT_KINDS = ("503", "429", "drop", "truncate", "trickle", "html")


class BadRequest(Exception):
    """A request the server answers 400 (with this message)."""


class FaultyHandler(BaseHTTPRequestHandler):
    """Shared request handling: plain/JSON answers, files with ranges and faults, 400/500s."""
    server_version = "farside-gan-archive/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # requests are recorded in the server's ``requests`` instead of stderr

    def do_HEAD(self):
        self._guarded(head=True)

    def do_GET(self):
        self._guarded(head=False)

    def _guarded(self, head: bool):
        try:
            self.handle_request(head)
        except BadRequest as exc:
            self.record(400)
            self.send_plain(400, f"bad request: {exc}\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake must not look like a network failure
            self.record(500)
            self.send_plain(500, f"internal error: {type(exc).__name__}: {exc}\n")

    def handle_request(self, head: bool):
        raise NotImplementedError

    def record(self, status, fault=None, rng=None, **extra):
        self.server.owner._record(self.command, self.path, rng, status, fault, **extra)

    def send_plain(self, status: int, text: str, extra: dict | None = None):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, obj, status: int = 200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_fault_status(self, fault: str, range_header=None) -> bool:
        """Answer a status fault ('503', '429'); False if ``fault`` is not one."""
        owner = self.server.owner
        if fault == "503":
            self.record(503, fault, range_header)
            self.send_plain(503, "service unavailable (injected fault)\n",
                            {"Retry-After": str(owner.retry_after), "Connection": "close"})
            return True
        if fault == "429":
            self.record(429, fault, range_header)
            self.send_plain(429, "too many requests (injected fault)\n",
                            {"Retry-After": str(owner.retry_after), "Connection": "close"})
            return True
        return False

    def send_file(self, target: Path, fault, head: bool):
        range_header = self.headers.get("Range")
        if fault == "html":
            self.record(200, fault, range_header)
            body = HTML_ANSWER
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return None
        size = target.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        if range_header:
            parsed = _parse_range(range_header, size)
            if parsed is None:
                self.record(416, None, range_header)
                return self.send_plain(416, "range not satisfiable\n", {"Content-Range": f"bytes */{size}"})
            start, end = parsed
            status = HTTPStatus.PARTIAL_CONTENT
        length = end - start + 1
        sent = length // 2 if fault in ("drop", "truncate") else length
        announced = sent if fault == "truncate" else length
        self.send_response(status)
        self.send_header("Content-Type", "text/csv" if target.suffix == ".csv" else "application/octet-stream")
        self.send_header("Content-Length", str(announced))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{start + announced - 1}/{size}")
        self.end_headers()
        self.record(int(status), fault, range_header)
        if head:
            return
        with open(target, "rb") as f:
            f.seek(start)
            body = f.read(sent)
        if fault == "trickle":
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(self.server.owner.trickle_interval)
            return
        self.wfile.write(body)
        if fault == "drop":
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True


class _ArchiveHandler(FaultyHandler):
    def handle_request(self, head: bool):
        archive = self.server.owner
        url = urlsplit(self.path)
        relpath = unquote(url.path).lstrip("/")
        if "\x00" in relpath:
            raise BadRequest("NUL character in the path")
        range_header = self.headers.get("Range")
        if relpath == "search":
            return self._search(parse_qs(url.query))
        fault = archive._take_fault(relpath)
        if self.send_fault_status(fault, range_header):
            return
        try:
            target = (archive.root / relpath).resolve()
        except (OSError, ValueError) as exc:
            raise BadRequest(f"unusable path ({exc})") from exc
        if archive.root not in target.parents or not target.is_file():
            self.record(404, None, range_header)
            return self.send_plain(404, f"not found: /{relpath}\n")
        self.send_file(target, fault, head)

    def _search(self, query: dict):
        rows = self.server.owner.search(instrument=_first(query, "instrument"),
                                        channel=_first(query, "channel"),
                                        start=_first(query, "start"), end=_first(query, "end"))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CATALOG_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        body = out.getvalue().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.record(200)
        if self.command != "HEAD":
            self.wfile.write(body)


def _first(query: dict, key: str):
    values = query.get(key)
    return values[0] if values else None


def _parse_range(header: str, size: int):
    """(start, end) inclusive for 'bytes=a-b', 'bytes=a-', 'bytes=-n'; None if unsatisfiable."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(size - n, 0), size - 1) if n > 0 else None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


class FaultyServer:
    """A threaded HTTP server on ``host:port`` (0: a free port) with injectable faults and a
    request log. ``retry_after``: the Retry-After (s) of injected 503/429s;
    ``trickle_interval``: seconds between the bytes of a 'trickle' fault."""

    handler = FaultyHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, retry_after: int = 0,
                 trickle_interval: float = 20.0):
        self.host = host
        self.retry_after = retry_after
        self.trickle_interval = trickle_interval
        self._lock = threading.Lock()
        self._faults: list[list] = []
        self.requests: list[dict] = []
        self._httpd = ThreadingHTTPServer((host, port), self.handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without a trailing slash: ``server.url + '/' + relpath``."""
        return f"http://{self.host}:{self.port}"

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__,
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's ``serve-archive``)."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    # -- faults and the request log
    fault_kinds = FAULT_KINDS

    def inject_fault(self, path_or_glob: str, kind: str, count: int = 1) -> None:
        """Make the next ``count`` requests whose path matches fail with ``kind``."""
        if kind not in self.fault_kinds:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {self.fault_kinds}")
        with self._lock:
            self._faults.append([str(path_or_glob).lstrip("/"), kind, int(count)])

    def pending_faults(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return [tuple(f) for f in self._faults if f[2] > 0]

    def reset(self) -> None:
        """Forget pending faults and the request log."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def _take_fault(self, relpath: str, kinds=None):
        with self._lock:
            for fault in self._faults:
                pattern, kind, remaining = fault
                if remaining > 0 and (kinds is None or kind in kinds) and (
                        fnmatch.fnmatch(relpath, pattern) or fnmatch.fnmatch(Path(relpath).name, pattern)):
                    fault[2] -= 1
                    return kind
        return None

    def _record(self, method, path, rng, status, fault, **extra):
        with self._lock:
            self.requests.append({"method": method, "path": path, "range": rng, "status": status,
                                  "fault": fault, **extra})


class ArchiveServer(FaultyServer):
    """``with ArchiveServer(root) as server: urlopen(server.url + '/catalog.csv')``."""

    handler = _ArchiveHandler

    def __init__(self, root, host: str = "127.0.0.1", port: int = 0, retry_after: int = 0,
                 trickle_interval: float = 20.0):
        self.root = Path(root).resolve()
        if not (self.root / CATALOG_NAME).is_file():
            raise InputDataError(root, f"not an archive: it has no {CATALOG_NAME} (farside-gan "
                                 "synth-archive writes one)", reason="missing_file")
        super().__init__(host, port, retry_after, trickle_interval)

    def search(self, instrument=None, channel=None, start=None, end=None) -> list[dict]:
        """Catalog rows matching the query; times compare as ISO strings (all UTC, same format).
        A start or end that is not a time is a :class:`BadRequest`."""
        start, end = (None if v is None else _iso_key(v) for v in (start, end))
        with open(self.root / CATALOG_NAME, newline="") as f:
            rows = list(csv.DictReader(f))
        return [r for r in rows
                if (instrument is None or r["instrument"] == instrument)
                and (channel is None or r["channel"] == str(channel))
                and (start is None or r["time"] >= start)
                and (end is None or r["time"] <= end)]


def _iso_key(value: str) -> str:
    from astropy.time import Time
    try:
        return Time(value).utc.isot
    except ValueError as exc:
        raise BadRequest(f"{value!r} is not a time") from exc
