"""`flow.from_source(<fsspec URL>)` and the `pull_from_remote_storage` pull step on real fsspec
filesystems (memory://, file://): the flow loads, the copy is cached by the listing's fingerprint
and renewed when the code changes, and a protocol whose package is missing is named."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import fsspec
import pytest

from tideflow import flow
from tideflow.deployments._pull import PullError, run_pull_steps

FLOW = """
from tideflow import flow

@flow
def hello(name: str = "world"):
    return f"hello {name} v{VERSION}"

VERSION = 1
"""


def test_memory_source_loads_and_is_cached_until_the_code_changes(tmp_path: Path) -> None:
    root = f"memory://proj-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{root}/flows/hello.py", FLOW.encode())
    fs.pipe(f"{root}/flows/data/config.txt", b"x")
    loaded = flow.from_source(root, entrypoint="flows/hello.py:hello")
    assert loaded.name == "hello" and loaded.fn() == "hello world v1"
    steps = [{"pull_from_remote_storage": {"url": root}}]
    assert loaded._source.pull_steps == steps
    first = run_pull_steps(steps, tmp_path)
    assert first is not None and (first / "flows" / "data" / "config.txt").read_text() == "x"
    assert run_pull_steps(steps, tmp_path) == first  # unchanged: the same copy
    fs.pipe(f"{root}/flows/hello.py", FLOW.replace("VERSION = 1", "VERSION = 22").encode())
    second = run_pull_steps(steps, tmp_path)
    assert second != first and "VERSION = 22" in (second / "flows" / "hello.py").read_text()


def test_file_url_of_a_folder_is_storage_not_git(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "hello.py").write_text(FLOW)
    loaded = flow.from_source(f"file://{project}", entrypoint="hello.py:hello")
    assert loaded._source.pull_steps == [{"pull_from_remote_storage": {"url": f"file://{project}"}}]


def test_missing_packages_and_missing_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a folder"):
        flow.from_source(f"memory://nothing-{uuid.uuid4().hex[:6]}", entrypoint="a.py:f")
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(ValueError, match=r"s3:// needs the 's3fs' package"):
            flow.from_source("s3://bucket/project", entrypoint="flows/etl.py:etl")
    if importlib.util.find_spec("gcsfs") is None:
        with pytest.raises(PullError, match=r"needs the 'gcsfs' package"):
            run_pull_steps([{"pull_from_remote_storage": {"url": "gcs://b/p"}}], tmp_path)
