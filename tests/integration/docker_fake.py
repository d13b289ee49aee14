"""A recording fake of the Docker Engine HTTP API, for the docker worker's tests (there is no Docker
daemon on these machines).

A real HTTP server (``DOCKER_HOST=tcp://127.0.0.1:PORT``) speaking the endpoints the ``docker``
package calls for a worker: version, image inspect/pull, container create/inspect/start/wait/
logs/stop/kill/remove, network inspect/connect. Every request is recorded. A started "container"
runs its ``Cmd`` as a local process (this machine stands in for the image) with only the
container's ``Env`` (plus ``PATH``); ``host.docker.internal`` in that environment becomes
``127.0.0.1`` when the container maps it to ``host-gateway``, as Docker's DNS would. Its output is
what ``logs`` streams (Docker's multiplexed frames), its exit status what ``wait`` answers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeDocker"]

_VERSIONED = re.compile(r"^/v\d+\.\d+")


@dataclass
class _Container:
    id: str
    name: str
    config: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    output: bytearray = field(default_factory=bytearray)
    exit_code: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def state(self) -> dict[str, Any]:
        running = self.proc is not None and self.exit_code is None
        status = "running" if running else ("exited" if self.exit_code is not None else "created")
        return {"Status": status, "Running": running, "ExitCode": self.exit_code or 0,
                "OOMKilled": False}  # fmt: skip


class FakeDocker:
    """The fake engine; ``requests`` holds (method, path, query, body) of every call."""

    def __init__(self, workdir: Path, images: set[str] | None = None) -> None:
        self.workdir = workdir
        self.images = set(images or ())
        self.networks = {"bridge", "tideflow-net", "extra-net"}
        self.containers: dict[str, _Container] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"tcp://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeDocker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        for container in list(self.containers.values()):
            if container.proc is not None and container.exit_code is None:
                _killpg(container.proc.pid, signal.SIGKILL)
                container.done.wait(10)

    def calls(self, method: str, prefix: str) -> list[tuple[str, dict[str, list[str]], Any]]:
        with self._lock:
            return [
                (p, q, b) for m, p, q, b in self.requests if m == method and p.startswith(prefix)
            ]

    # --- HTTP -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        path = _VERSIONED.sub("", parts.path)
        query = parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw.strip() else None
        with self._lock:
            self.requests.append((method, path, query, body))
        try:
            self._route(h, method, path, query, body)
        except KeyError as exc:
            _send(h, 404, {"message": f"No such container: {exc.args[0]}"})

    def _route(
        self, h: BaseHTTPRequestHandler, method: str, path: str, query: dict[str, list[str]],
        body: Any,
    ) -> None:  # fmt: skip
        seg = path.strip("/").split("/")
        if path == "/version":
            _send(h, 200, {"ApiVersion": "1.45", "Version": "fake", "MinAPIVersion": "1.24"})
        elif seg[0] == "images" and seg[-1] == "json" and method == "GET":
            name = "/".join(seg[1:-1])
            if _full(name) in self.images:
                _send(h, 200, {"Id": f"sha256:{name}", "RepoTags": [_full(name)]})
            else:
                _send(h, 404, {"message": f"No such image: {name}"})
        elif path == "/images/create":
            image = f"{query['fromImage'][0]}:{query.get('tag', ['latest'])[0]}"
            if image.startswith("missing/"):
                _send(h, 404, {"message": f"pull access denied for {image}"})
                return
            self.images.add(image)
            _send(h, 200, {"status": f"Downloaded newer image for {image}"})
        elif path == "/containers/create":
            if _full(body["Image"]) not in self.images:
                _send(h, 404, {"message": f"No such image: {body['Image']}"})
                return
            cid = uuid.uuid4().hex * 2
            name = query.get("name", [cid[:12]])[0]
            self.containers[cid] = _Container(cid, name, body)
            _send(h, 201, {"Id": cid, "Warnings": []})
        elif seg[0] == "containers" and len(seg) >= 2:
            self._container(h, method, self._find(seg[1]), seg[2] if len(seg) > 2 else "", query)
        elif seg[0] == "networks" and len(seg) >= 2:
            if seg[1] not in self.networks:
                _send(h, 404, {"message": f"network {seg[1]} not found"})
            elif len(seg) == 2:
                _send(h, 200, {"Id": seg[1], "Name": seg[1]})
            else:
                _send(h, 200, None)
        else:
            _send(h, 404, {"message": f"page not found: {method} {path}"})

    def _find(self, ref: str) -> _Container:
        for container in self.containers.values():
            if container.id == ref or container.name == ref or container.id.startswith(ref):
                return container
        raise KeyError(ref)

    def _container(
        self, h: BaseHTTPRequestHandler, method: str, c: _Container, action: str,
        query: dict[str, list[str]],
    ) -> None:  # fmt: skip
        if method == "DELETE":
            if c.proc is not None and c.exit_code is None:
                _killpg(c.proc.pid, signal.SIGKILL)
                c.done.wait(10)
            del self.containers[c.id]
            _send(h, 204, None)
        elif action == "json":
            _send(h, 200, {"Id": c.id, "Name": f"/{c.name}", "State": c.state(),
                           "Config": {"Tty": False, **c.config}})  # fmt: skip
        elif action == "start":
            self._start(c)
            _send(h, 204, None)
        elif action == "wait":
            c.done.wait()
            _send(h, 200, {"StatusCode": c.exit_code, "Error": None})
        elif action == "stop":
            if c.exit_code is not None or c.proc is None:
                _send(h, 304, None)
                return
            _killpg(c.proc.pid, signal.SIGTERM)
            if not c.done.wait(float(query.get("t", ["10"])[0])):
                _killpg(c.proc.pid, signal.SIGKILL)
                c.done.wait(10)
            _send(h, 204, None)
        elif action == "kill":
            if c.exit_code is not None or c.proc is None:
                _send(h, 409, {"message": f"container {c.id} is not running"})
                return
            _killpg(c.proc.pid, signal.SIGKILL)
            _send(h, 204, None)
        elif action == "logs":
            self._logs(h, c)
        else:
            _send(h, 404, {"message": f"unknown container action {action}"})

    def _start(self, c: _Container) -> None:
        env = dict(item.split("=", 1) for item in c.config.get("Env") or [])
        hosts = (c.config.get("HostConfig") or {}).get("ExtraHosts") or []
        if "host.docker.internal:host-gateway" in hosts:
            env = {k: v.replace("host.docker.internal", "127.0.0.1") for k, v in env.items()}
        bindir = os.path.dirname(sys.executable)
        env.setdefault("PATH", f"{bindir}:/usr/local/bin:/usr/bin:/bin")
        env.setdefault("HOME", str(self.workdir))
        env.setdefault("TIDEFLOW_HOME", str(self.workdir / f"home-{c.name}"))
        c.proc = subprocess.Popen(
            c.config["Cmd"], env=env, cwd=c.config.get("WorkingDir") or self.workdir,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._reap, args=(c,), daemon=True).start()

    def _reap(self, c: _Container) -> None:
        assert c.proc is not None and c.proc.stdout is not None
        for chunk in iter(lambda: c.proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
            c.output.extend(chunk)
        c.proc.stdout.close()
        code = c.proc.wait()
        c.exit_code = 128 - code if code < 0 else code  # a signal, as Docker reports it
        c.done.set()

    def _logs(self, h: BaseHTTPRequestHandler, c: _Container) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/vnd.docker.raw-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        sent = 0
        while True:
            finished = c.done.is_set()
            chunk = bytes(c.output[sent:])
            if chunk:
                h.wfile.write(bytes([1, 0, 0, 0]) + len(chunk).to_bytes(4, "big") + chunk)
                h.wfile.flush()
                sent += len(chunk)
            if finished and sent >= len(c.output):
                break
            time.sleep(0.05)
        h.close_connection = True


def _full(image: str) -> str:
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


def _send(h: BaseHTTPRequestHandler, code: int, payload: Any) -> None:
    data = b"" if payload is None or code in (204, 304) else json.dumps(payload).encode()
    h.send_response(code)
    if data:
        h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if data:
        h.wfile.write(data)


def _killpg(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
