"""A local stand-in for the Hugging Face hub: model metadata, files with Range support, and
switches to break things (drop the connection mid-file, ignore Range, serve wrong bytes).

Test modules import the ``make_hub`` fixture from here (``tests/`` is on sys.path because of
``tests/conftest.py``)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub:
    repo: str
    files: dict[str, bytes]
    lfs: set[str] = field(default_factory=set)  # paths published as LFS (with sha256)
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes, once
    ignore_range: bool = False
    served_bytes: dict[str, bytes] = field(default_factory=dict)  # what is sent instead
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> HTTP status, once
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def metadata(self) -> dict:
        siblings = []
        for path, data in self.files.items():
            entry = {"rfilename": path, "size": len(data), "blobId": "b" * 40}
            if path in self.lfs:
                entry["lfs"] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "pointerSize": 134,
                }
            siblings.append(entry)
        return {
            "id": self.repo,
            "modelId": self.repo,
            "sha": COMMIT,
            "siblings": siblings,
            "private": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
        }

    def file_requests(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/" + path)]


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):  # noqa: N802 - http.server's naming
            path = unquote(urlparse(self.path).path)
            hub.requests.append(
                {
                    "path": path,
                    "range": self.headers.get("Range"),
                    "auth": self.headers.get("Authorization"),
                }
            )
            if path.startswith(f"/api/models/{hub.repo}"):
                return self._send(
                    200, json.dumps(hub.metadata()).encode(), {"Content-Type": "application/json"}
                )
            prefix = f"/{hub.repo}/resolve/"
            if not path.startswith(prefix):
                return self._send(404, b"not found")
            _revision, _, repo_path = path[len(prefix) :].partition("/")
            if repo_path not in hub.files:
                return self._send(404, b"no such file")
            status = hub.fail_first.pop(repo_path, None)
            if status is not None:
                return self._send(status, b"try again later")
            data = hub.served_bytes.get(repo_path, hub.files[repo_path])
            start = 0
            rng = self.headers.get("Range")
            status, headers = 200, {}
            if rng and not hub.ignore_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            drop = hub.drop_after.pop(repo_path, None)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if drop is not None:
                self.wfile.write(body[:drop])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _send(self, status, body, headers=None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class FakeHubServer:
    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
        self.server.daemon_threads = True
        hub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self.hub

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_hub():
    """Start fake hubs for one test: ``make_hub(repo, files, **switches) -> FakeHub``."""
    servers: list[FakeHubServer] = []

    def start(repo: str, files: dict[str, bytes], **kwargs) -> FakeHub:
        server = FakeHubServer(FakeHub(repo, files, **kwargs))
        servers.append(server)
        return server.__enter__()

    yield start
    for server in servers:
        server.__exit__(None, None, None)
