"""The docs site (docs/, mkdocs.yml) holds: it builds with ``mkdocs build --strict``; every Python
block of every page runs as written against a real server (each in a fresh interpreter; the blocks
assert what the text claims) or is an include of an example file that a test runs; every
``tideflow ...`` command a shell block shows exists; the CLI reference lists every command group.
The migration guide's blocks are run by test_migration_guide.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tideflow.cli.main import GROUPS
from tideflow.testing import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SKIP = {DOCS / "migrate-from-prefect.md"}
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_INCLUDE = re.compile(r'^--8<-- "([^"]+)"$')


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if p not in SKIP and "hooks" not in p.parts)


def _blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in _pages():
        for lang, body in _BLOCK.findall(page.read_text()):
            if lang == language:
                found.append((str(page.relative_to(DOCS)), body))
    return found


PYTHON = [(page, body) for page, body in _blocks("python") if not _INCLUDE.match(body.strip())]
INCLUDES = sorted(
    {m.group(1) for _, body in _blocks("python") + _blocks("yaml")
     if (m := _INCLUDE.match(body.strip()))}
)  # fmt: skip


def test_the_site_builds_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    for group in GROUPS:
        assert f"tideflow {group}" in cli, group
    api = (tmp_path / "site" / "reference" / "python" / "index.html").read_text()
    for name in ("tideflow.flows.flow", "tideflow.tasks.task", "tideflow.events.emit_event",
                 "tideflow.deployments.run_deployment", "tideflow.variables.Variable"):  # fmt: skip
        assert f'id="{name}"' in api, name


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in _pages():
        assert str(page.relative_to(DOCS)) in nav, page


def test_there_are_runnable_blocks_and_includes() -> None:
    assert len(PYTHON) >= 12
    assert "examples/event_driven_deployments.py" in INCLUDES


@pytest.mark.parametrize("page,code", PYTHON, ids=[f"{p}#{i}" for i, (p, _) in enumerate(PYTHON)])
def test_python_block_runs(page: str, code: str, sdk_server: ServerProcess, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["TIDEFLOW_API_URL"] = sdk_server.api_url
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, f"{page}\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("path", INCLUDES)
def test_included_files_exist_and_are_run_by_a_test(path: str) -> None:
    assert (ROOT / path).is_file(), path
    name = Path(path).name
    tests = (p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name)
    assert any(name in text for text in tests), f"no test runs {path}"


def _commands() -> list[tuple[str, ...]]:
    found: dict[tuple[str, ...], None] = {}
    for _, block in _blocks("bash"):
        for line in block.splitlines():
            for part in line.split("#")[0].split(";"):
                words = part.split()
                if len(words) >= 2 and words[0] == "tideflow":
                    path = []
                    for word in words[1:4]:
                        if not re.fullmatch(r"[a-z][a-z-]*", word):
                            break
                        path.append(word)
                    found[tuple(path)] = None
    return list(found)


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_shell_commands_exist(command: tuple[str, ...]) -> None:
    # Words after the command path (arguments such as a pool name) are refused by --help as extra
    # arguments only when the path is wrong; try the longest prefix that is a command.
    for end in range(len(command), 0, -1):
        result = subprocess.run(
            [sys.executable, "-m", "tideflow", *command[:end], "--help"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if result.returncode == 0:
            assert end >= min(len(command), 2) or command[0] in ("deploy", "init", "version"), (
                f"only 'tideflow {' '.join(command[:end])}' exists"
            )
            return
    pytest.fail(f"'tideflow {' '.join(command)}' is not a command: {result.stderr[-500:]}")


DATA = [(page, lang, body) for lang in ("json", "yaml") for page, body in _blocks(lang)
        if not _INCLUDE.match(body.strip())]  # fmt: skip


@pytest.mark.parametrize(
    "page,lang,body", DATA, ids=[f"{p}#{i}" for i, (p, _, _) in enumerate(DATA)]
)
def test_data_blocks_parse_and_automations_validate(page: str, lang: str, body: str) -> None:
    """JSON and YAML blocks parse; one that is an automation (trigger + actions) is a valid one."""
    import json

    import yaml

    from tideflow.schemas.automations import parse_automation

    document = json.loads(body) if lang == "json" else yaml.safe_load(body)
    assert document, page
    if isinstance(document, dict) and {"trigger", "actions"} <= document.keys():
        parse_automation(document)
