"""Pull steps: how a worker gets a deployment's code before each run (``Deployment.pull_steps``).

``set_working_directory`` names a folder already on the worker's machine (a local source).
``git_clone`` checks a repository out with the ``git`` command (no Python git library): into a
cache folder per (repository, commit), so each commit is fetched once and every later run of it
reuses the checkout; a branch (or the default branch) is resolved to its commit first with
``git ls-remote``. ``run_shell_script`` runs its ``script`` one command per line (split as a shell
would, run without one) in ``directory`` or the current step's, before every run (e.g. installing
requirements); it names no directory. ``pull_from_remote_storage`` copies the folder at an fsspec
``url`` (``file://``, ``memory://``, ``s3://`` with s3fs installed, ``gcs://`` with gcsfs…) into a
cache folder keyed by the URL and a fingerprint of its listing (names, sizes, modification times or
etags): unchanged code is copied once, changed code into a new folder. Steps run in order; the last directory they name is where the
run starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PullError", "git_cache_dir", "open_storage", "run_pull_steps"]

_GIT_TIMEOUT = 300.0  # seconds for one git command (a clone of a large repository)


class PullError(RuntimeError):
    """A pull step failed; the message names the step and the cause."""


def git_cache_dir(home: Path) -> Path:
    return home / "git-cache"


def _git(args: Sequence[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=_GIT_TIMEOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )  # fmt: skip
    except FileNotFoundError:
        raise PullError("git_clone: the git command is not installed on this worker") from None
    except subprocess.TimeoutExpired:
        raise PullError(f"git {args[0]} took longer than {_GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise PullError(f"git {args[0]} failed: {lines[-1] if lines else done.returncode}")
    return done.stdout


def _resolve_commit(repository: str, branch: str | None) -> str:
    ref = f"refs/heads/{branch}" if branch else "HEAD"
    out = _git(["ls-remote", repository, ref])
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    raise PullError(f"git_clone: {repository} has no branch {branch!r}" if branch else
                    f"git_clone: {repository} has no HEAD")  # fmt: skip


def _clone(args: Mapping[str, Any], cache: Path) -> Path:
    repository = str(args["repository"])
    commit = args.get("commit") or _resolve_commit(repository, args.get("branch"))
    key = hashlib.sha256(f"{repository}\0{commit}".encode()).hexdigest()[:24]
    target = cache / key
    if not (target / ".git").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        # Cloned next to the target then renamed: a concurrent or interrupted clone never leaves a
        # half checkout where a later run would use it.
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
        try:
            _git(["init", "-q", str(work)])
            _git(["fetch", "-q", "--depth", "1", repository, commit], cwd=work)
            _git(["checkout", "-q", "FETCH_HEAD"], cwd=work)
            with contextlib.suppress(OSError):  # another run got there first: use its checkout
                work.rename(target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    sub = args.get("subdirectory")
    return (target / sub) if sub else target


_MAX_REMOTE_FILES = 10_000  # a code folder, not a data lake: bound what one pull copies


def open_storage(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path) for ``url``; PullError naming the package a protocol needs."""
    import fsspec  # a core dependency, but only this step needs it loaded
    from fsspec.registry import known_implementations

    protocol = url.split("://", 1)[0] if "://" in url else "file"
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError:
        known = known_implementations.get(protocol, {})
        package = str(known.get("class", protocol)).split(".", 1)[0]
        raise PullError(
            f"pull_from_remote_storage: {protocol}:// needs the {package!r} package on this "
            f"machine (pip install {package})"
        ) from None
    except ValueError as exc:
        raise PullError(f"pull_from_remote_storage: {url!r}: {exc}") from None
    return fs, path


def _fingerprint(entries: Mapping[str, Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(entries):
        info = entries[name]
        stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("created")
        digest.update(f"{name}\0{info.get('size')}\0{stamp}\n".encode())
    return digest.hexdigest()[:24]


def _pull_remote(url: str, cache: Path) -> Path:
    fs, root = open_storage(url)
    try:
        if not fs.isdir(root):
            raise PullError(f"pull_from_remote_storage: {url} is not a folder")
        entries = fs.find(root, detail=True, maxdepth=None)
    except PullError:
        raise
    except Exception as exc:  # any backend's own errors (network, permissions)
        raise PullError(f"pull_from_remote_storage: {url}: {exc}") from None
    files = {k: v for k, v in entries.items() if v.get("type") != "directory"}
    if len(files) > _MAX_REMOTE_FILES:
        raise PullError(
            f"pull_from_remote_storage: {url} holds more than {_MAX_REMOTE_FILES} files"
        )
    key = hashlib.sha256(f"{url}\0{_fingerprint(files)}".encode()).hexdigest()[:24]
    target = cache / key
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
    prefix = root.rstrip("/") + "/"
    try:
        for name in files:
            relative = name.removeprefix(prefix) if name.startswith(prefix) else name.lstrip("/")
            destination = (work / relative).resolve()
            if not destination.is_relative_to(work.resolve()):
                raise PullError(f"pull_from_remote_storage: {name!r} lies outside {url}")
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                fs.get_file(name, str(destination))
            except Exception as exc:
                raise PullError(f"pull_from_remote_storage: copying {name}: {exc}") from None
        with contextlib.suppress(OSError):  # another run got there first: use its copy
            work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


_SCRIPT_TIMEOUT = 600.0  # seconds for one command of a run_shell_script step


def _run_script(args: Mapping[str, Any], directory: Path | None, index: int) -> None:
    where = Path(str(args["directory"])).expanduser() if args.get("directory") else directory
    if where is not None and not where.is_dir():
        raise PullError(f"pull step {index} (run_shell_script): {where} is not a directory")
    for line in str(args["script"]).splitlines():
        try:
            command = shlex.split(line, comments=True)
        except ValueError as exc:
            raise PullError(f"pull step {index} (run_shell_script): {line!r}: {exc}") from None
        if not command:
            continue
        try:
            done = subprocess.run(
                command, cwd=where, capture_output=True, text=True, timeout=_SCRIPT_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PullError(f"pull step {index} (run_shell_script): {line!r}: {exc}") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            tail = f": {lines[-1]}" if lines else ""
            raise PullError(
                f"pull step {index} (run_shell_script): {line!r} exited with "
                f"{done.returncode}{tail}"
            )


def run_pull_steps(steps: Sequence[Mapping[str, Any]] | None, home: Path) -> Path | None:
    """Run the steps in order; the directory the run starts in (None: no step named one).

    Blocking (git runs as a subprocess): call it off the event loop.
    """
    directory: Path | None = None
    for index, step in enumerate(steps or []):
        ((name, args),) = step.items()
        if name == "set_working_directory":
            directory = Path(str(args["directory"])).expanduser()
        elif name == "git_clone":
            directory = _clone(args, git_cache_dir(home))
        elif name == "pull_from_remote_storage":
            directory = _pull_remote(str(args["url"]), home / "storage-cache")
        elif name == "run_shell_script":
            _run_script(args, directory, index)
            continue
        else:
            raise PullError(f"pull step {index}: unknown step {name!r}")
        if not directory.is_dir():
            raise PullError(f"pull step {index} ({name}): {directory} is not a directory")
    return directory
