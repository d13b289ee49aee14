"""A recording fake of the Kubernetes API server, for the kubernetes worker's tests (there is no
cluster on these machines).

A real HTTP server the ``kubernetes`` package reaches through a kubeconfig (``write_kubeconfig``),
speaking the calls a worker makes: create, read status and delete a batch/v1 Job, list pods by
``job-name``. Every request is recorded. A created Job gets one pod whose container runs its
``command`` as a local process (this machine stands in for the image) with only the container's
``env`` (plus ``PATH``); an image named ``missing/...`` never pulls (``ImagePullBackOff``). Deleting
a Job SIGTERMs its pod's process, SIGKILLs it after the grace period, and forgets the Job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeKube"]


@dataclass
class _Job:
    manifest: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    waiting: str | None = None


class FakeKube:
    """The fake API server; ``requests`` holds (method, path, query, body) of every call."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.jobs: dict[tuple[str, str], _Job] = {}
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
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "worker", "user": {"token": "fake-token"}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {
                                "cluster": "fake",
                                "user": "worker",
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    def __enter__(self) -> FakeKube:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        for job in self.jobs.values():
            if job.proc is not None and job.proc.poll() is None:
                _killpg(job.proc.pid, signal.SIGKILL)
                job.proc.wait(10)

    def calls(self, method: str, prefix: str) -> list[tuple[str, dict[str, list[str]], Any]]:
        with self._lock:
            found = [(p, q, b) for m, p, q, b in self.requests if m == method]
        return [(p, q, b) for p, q, b in found if p.startswith(prefix)]

    # --- HTTP -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw.strip() else None
        with self._lock:
            self.requests.append((method, parts.path, query, body))
        if h.headers.get("Authorization") != "Bearer fake-token":
            _send(h, 401, _status(401, "Unauthorized", "no credentials"))
            return
        seg = parts.path.strip("/").split("/")
        if seg[:4] == ["apis", "batch", "v1", "namespaces"] and len(seg) >= 6 and seg[5] == "jobs":
            options = {k: v[0] for k, v in query.items()} | (body or {})  # query or DeleteOptions
            self._jobs(h, method, seg[4], seg[6] if len(seg) > 6 else None, body, options)
        elif seg[:3] == ["api", "v1", "namespaces"] and len(seg) == 5 and seg[4] == "pods":
            selector = query.get("labelSelector", [""])[0]
            name = selector.removeprefix("job-name=")
            job = self.jobs.get((seg[3], name))
            items = [self._pod(seg[3], name, job)] if job is not None else []
            _send(h, 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        else:
            _send(h, 404, _status(404, "NotFound", f"the server could not find {parts.path}"))

    def _jobs(
        self,
        h: BaseHTTPRequestHandler,
        method: str,
        ns: str,
        name: str | None,
        body: Any,
        options: dict[str, Any],
    ) -> None:
        if method == "POST" and name is None:
            name = body["metadata"]["name"]
            if (ns, name) in self.jobs:
                _send(h, 409, _status(409, "AlreadyExists", f'jobs.batch "{name}" already exists'))
                return
            job = self.jobs[(ns, name)] = _Job(body)
            self._run(job)
            _send(h, 201, self._job(ns, name, job))
            return
        job = self.jobs.get((ns, name or ""))
        if job is None:
            _send(h, 404, _status(404, "NotFound", f'jobs.batch "{name}" not found'))
        elif method == "DELETE":
            grace = float(options.get("gracePeriodSeconds", 30))
            if job.proc is not None and job.proc.poll() is None:
                _killpg(job.proc.pid, signal.SIGTERM)
                try:
                    job.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    _killpg(job.proc.pid, signal.SIGKILL)
                    job.proc.wait(10)
            del self.jobs[(ns, name or "")]
            _send(h, 200, _status(200, "Success", "deleted"))
        else:
            _send(h, 200, self._job(ns, name or "", job))

    def _run(self, job: _Job) -> None:
        (container,) = job.manifest["spec"]["template"]["spec"]["containers"]
        if container["image"].startswith("missing/"):
            job.waiting = "ImagePullBackOff"
            return
        env = {item["name"]: item["value"] for item in container.get("env") or []}
        env.setdefault("PATH", f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin")
        env.setdefault("HOME", str(self.workdir))
        env.setdefault(
            "TIDEFLOW_HOME", str(self.workdir / f"home-{job.manifest['metadata']['name']}")
        )
        job.proc = subprocess.Popen(
            [*container.get("command", []), *container.get("args", [])], env=env, cwd=self.workdir,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def _exit(self, job: _Job) -> int | None:
        if job.proc is None:
            return None
        code = job.proc.poll()
        return None if code is None else (128 - code if code < 0 else code)

    def _job(self, ns: str, name: str, job: _Job) -> dict[str, Any]:
        code = self._exit(job)
        status: dict[str, Any] = {"active": 1} if code is None else {}
        if code == 0:
            status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        elif code is not None:
            status = {
                "failed": 1,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                "message": "Job has reached the specified backoff limit"}],
            }  # fmt: skip
        meta = {**job.manifest["metadata"], "namespace": ns, "uid": f"uid-{name}"}
        return {**job.manifest, "metadata": meta, "status": status}

    def _pod(self, ns: str, name: str, job: _Job) -> dict[str, Any]:
        code = self._exit(job)
        if job.waiting is not None:
            state: dict[str, Any] = {"waiting": {"reason": job.waiting,
                                                 "message": "Back-off pulling image"}}  # fmt: skip
            phase = "Pending"
        elif code is None:
            state, phase = {"running": {}}, "Running"
        else:
            reason = "Completed" if code == 0 else ("OOMKilled" if code == 137 else "Error")
            state = {"terminated": {"exitCode": code, "reason": reason}}
            phase = "Succeeded" if code == 0 else "Failed"
        status = {"name": "flow-run", "image": "x", "imageID": "", "ready": code is None,
                  "restartCount": 0, "state": state}  # fmt: skip
        return {
            "metadata": {"name": f"{name}-pod", "namespace": ns, "labels": {"job-name": name}},
            "status": {"phase": phase, "containerStatuses": [status]},
        }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure" if code >= 400 else "Success",
            "code": code, "reason": reason, "message": message}  # fmt: skip


def _send(h: BaseHTTPRequestHandler, code: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    h.send_response(code)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def _killpg(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
