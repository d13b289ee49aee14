"""A corpus of 79 template-injection payloads against automation action templates, through the real
API and a real firing: sandbox escapes (``__class__``/``__mro__``/``__subclasses__``/``__globals__``,
``cycler``/``lipsum``/``joiner``/``namespace``/``self``/``config``/``request``), ``|attr`` and the
attribute filters (``map``, ``selectattr``, ``sort``...), format-string attacks, mutation of the
input, forbidden statements, and resource bombs (huge ``range``, string and list multiplication,
powers, deep nesting, padding). Each is refused when the automation is saved (a 422 naming the field
and the problem, nothing stored) or, when only the firing can tell, fails its action with the reason
recorded and sends nothing; the few that render (bounded output) carry no Python object. The server
answers its health check promptly throughout. Before, the attribute escapes, format-string attacks
and mutating calls were only caught when the automation fired; now they are refused at save time
when the template spells them out. The test prints how many were refused at save and at fire time."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tideflow.testing import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CORPUS = [
    # attribute walks to Python internals
    ("class", "{{ event.__class__ }}"),
    ("mro", "{{ event.__class__.__mro__ }}"),
    ("subclasses", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
    ("base-subclasses", "{{ ().__class__.__base__.__subclasses__() }}"),
    ("globals-of-method", "{{ event.payload.s.upper.__globals__ }}"),
    ("init-globals", "{{ event.__init__.__globals__ }}"),
    ("builtins", "{{ event.get.__self__.__builtins__ }}"),
    ("dict-dunder", "{{ event.__dict__ }}"),
    ("getitem-dunder", "{{ event['__class__'] }}"),
    ("subscript-class", "{{ ''['__class__'] }}"),
    ("func-code", "{{ event.get.__func__.__code__ }}"),
    ("private-attr", "{{ automation._sa_instance_state }}"),
    ("self-self", "{{ event.items.__self__ }}"),
    ("format-class", "{{ '{0.__class__}'.format(event) }}"),
    ("format-globals", "{{ '{0.__init__.__globals__}'.format(event) }}"),
    ("format-map", "{{ '{x.__class__}'.format_map({'x': event}) }}"),
    ("format-indirect", "{% set f = '{0.__class__.__mro__}'.format %}{{ f(event) }}"),
    ("format-filter-attr", "{{ '%s'|format(event.__class__) }}"),
    ("printf-class", "{{ '%s' % event.__class__ }}"),
    # Jinja globals that leak the environment in a default sandbox
    ("cycler", "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
    ("lipsum", "{{ lipsum.__globals__['os'].popen('id').read() }}"),
    ("joiner", "{{ joiner.__init__.__globals__ }}"),
    ("namespace", "{{ namespace.__init__.__globals__ }}"),
    ("namespace-set", "{% set ns = namespace(x=1) %}{{ ns.x }}"),
    ("self", "{{ self._TemplateReference__context }}"),
    ("self-plain", "{{ self }}"),
    ("config", "{{ config.items() }}"),
    ("request", "{{ request.application.__globals__.__builtins__ }}"),
    ("url-for", "{{ url_for.__globals__ }}"),
    ("get-flashed", "{{ get_flashed_messages.__globals__ }}"),
    ("dict-global", "{{ dict(a=1) }}"),
    ("range-globals", "{{ range.__self__ }}"),
    ("range-class", "{{ range(1).__class__.__mro__ }}"),
    # attr() and attribute filters
    ("attr-class", "{{ event|attr('__class__') }}"),
    ("attr-chain", "{{ event|attr('__class__')|attr('__mro__') }}"),
    ("attr-escaped", "{{ event|attr('\\x5f\\x5fclass\\x5f\\x5f') }}"),
    ("attr-concat", "{{ event|attr('_' ~ '_class_' ~ '_') }}"),
    ("attr-format-cve", "{{ event|attr('format')('{0.__class__}') }}"),
    ("map-attribute", "{{ [event]|map(attribute='__class__')|list }}"),
    ("map-attr", "{{ [event]|map('attr', '__class__')|list }}"),
    ("selectattr", "{{ [event]|selectattr('__class__')|list }}"),
    ("sort-attribute", "{{ [event, event]|sort(attribute='__class__')|list }}"),
    ("groupby", "{{ [event]|groupby('__class__')|list }}"),
    ("sum-attribute", "{{ [event]|sum(attribute='__class__') }}"),
    ("unique-attribute", "{{ [event]|unique(attribute='__class__')|list }}"),
    ("join-attribute", "{{ [event]|join(attribute='__class__') }}"),
    # mutation of the context
    ("dict-update", "{{ event.payload.update({'x': 1}) }}"),
    ("list-append", "{{ events.append(1) }}"),
    ("setdefault", "{{ labels.setdefault('a', 'b') }}"),
    ("set-clear", "{% set _ = event.clear() %}{{ event }}"),
    # statements the sandbox must not allow
    ("import", "{% import 'os' as os %}{{ os }}"),
    ("from-import", "{% from 'x' import y %}{{ y }}"),
    ("include", "{% include '/etc/passwd' %}"),
    ("extends", "{% extends '/etc/passwd' %}"),
    ("macro", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"),
    ("call-block", "{% call x() %}{% endcall %}"),
    # resource exhaustion
    ("huge-range", "{{ range(10**9)|list|length }}"),
    ("huge-range-loop", "{% for i in range(10**9) %}{% endfor %}"),
    ("range-step", "{{ range(0, 10**18, 1)|length }}"),
    ("string-mult", "{{ 'a' * 10**8 }}"),
    ("string-mult-var", "{{ event.payload.s * 100000 }}"),
    ("list-mult", "{{ [1] * 10**8 }}"),
    ("list-mult-nested", "{{ [[1] * 10**4] * 10**4 }}"),
    ("power", "{{ 10 ** 10 ** 8 }}"),
    ("power-big", "{{ 9 ** 999999 }}"),
    (
        "nested-loops",
        "{% for a in range(100) %}{% for b in range(100) %}{% for c in range(100) %}x{% endfor %}{% endfor %}{% endfor %}",
    ),
    ("deep-parens", "{{ " + "(" * 500 + "1" + ")" * 500 + " }}"),
    ("deep-ifs", "{% if 1 %}" * 200 + "x" + "{% endif %}" * 200),
    ("recursive-loop", "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}"),
    ("format-width", "{{ '{:>1000000000}'.format(1) }}"),
    ("printf-width", "{{ '%0999999999d' % 1 }}"),
    ("center", "{{ event.payload.s.center(10**9) }}"),
    ("wordwrap", "{{ event.payload.s|wordwrap(1) }}"),
    ("indent", "{{ event.payload.s|indent(10**8) }}"),
    ("replace-bomb", "{{ event.payload.s|replace('', event.payload.s) }}"),
    ("join-bomb", "{{ (event.payload.s * 1000)|join(event.payload.s * 1000) }}"),
    ("tojson-shared", "{% set a = [event.payload.s * 1000] * 100 %}{{ [a, a, a, a, a]|tojson }}"),
    ("int-str", "{{ (10 ** 5000)|string }}"),
    ("filesizeformat", "{{ (10 ** 400)|filesizeformat }}"),
]

# Refused at save time, with the reason the 422 names.
AT_SAVE = {
    "unknown variable": [
        "config", "dict-global",
    ],
    "is not available in action templates (names starting with '__' reach Python internals)": [
        "class", "mro", "subclasses", "base-subclasses", "globals-of-method", "init-globals",
        "builtins", "dict-dunder", "getitem-dunder", "subscript-class", "func-code", "self-self",
        "format-class", "format-globals", "format-map", "format-filter-attr", "printf-class",
        "cycler", "lipsum", "joiner", "namespace", "request", "url-for", "get-flashed",
        "range-globals", "range-class", "attr-class", "attr-chain", "attr-escaped",
        "map-attribute", "map-attr", "selectattr", "sort-attribute", "groupby", "sum-attribute",
        "unique-attribute", "join-attribute",
    ],
    "which would change the template's input; action templates are read-only": [
        "dict-update", "list-append", "setdefault", "set-clear",
    ],
    "'self' is not available in action templates": ["self", "self-plain"],
    "unknown variable 'namespace'": ["namespace-set"],
    "is not allowed in action templates": [
        "import", "from-import", "include", "extends", "macro", "call-block",
    ],
    "loops nest deeper than 2": ["nested-loops"],
    "brackets nest more than 30 deep": ["deep-parens"],
    "expressions and blocks nest more than 64 deep": ["deep-ifs"],
    "unknown filter 'indent'": ["indent"],
}  # fmt: skip
# Only the firing can tell (the value is computed): the action fails with this reason.
CAP = "above the limit of 1048576 (TIDEFLOW_TEMPLATES_MAX_OUTPUT)"
AT_FIRE = {
    "private-attr": "has no attribute '_sa_instance_state'",
    "format-indirect": "access to attribute '__class__' of 'EventView' object is unsafe",
    "attr-concat": "access to attribute '__class__' of 'EventView' object is unsafe",
    "attr-format-cve": "EventView object' has no attribute 'format'",
    "huge-range": "range() of 1000000000 items is above the limit of 1000",
    "huge-range-loop": "range() of 1000000000 items is above the limit of 1000",
    "range-step": "range() of 1000000000000000000 items is above the limit of 1000",
    "string-mult": "'*' would build 100000000 items, above 100000",
    "string-mult-var": "'*' would build 100000000 items, above 100000",
    "list-mult": "'*' would build 100000000 items, above 100000",
    "list-mult-nested": f"'*' would build 400020000 characters, {CAP}",
    "power-big": "'**' result would exceed 4096 bits",
    "recursive-loop": "a recursive loop may nest at most 10 deep",
    "format-width": f"format() would build 1000000016 characters, {CAP}",
    "printf-width": f"'%' would build 1000000013 characters, {CAP}",
    "center": f"center() would build 1000000000 characters, {CAP}",
    "join-bomb": "'*' would build 1000000 items, above 100000",
    "tojson-shared": "'*' would build 1000000 items, above 100000",
    "int-str": "'**' result would exceed 4096 bits",
    "filesizeformat": "int too large to convert to float",
}
# Render, bounded, to plain data.
RENDERS = {"power", "wordwrap", "replace-bomb"}
# Text that would show a Python object reached the output.
LEAKS = ("<class", "<function", "<module", "<built-in", "<bound", "__globals__", "object at 0x")

PAYLOAD = {"s": "x" * 1000, "n": 7}


class _Receiver(ThreadingHTTPServer):
    bodies: queue.Queue[tuple[str, bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.server.bodies.put((self.path, self.rfile.read(length)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[_Receiver]:
    httpd = _Receiver(("127.0.0.1", 0), _Handler)
    httpd.bodies = queue.Queue()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    env = {"TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8"}  # the receiver is on loopback
    with (
        ServerProcess(env=env, startup_timeout=120) as server,
        httpx.Client(base_url=server.api_url, timeout=60) as client,
    ):
        yield client


def _automation(name: str, url: str, template: str) -> dict[str, Any]:
    return {
        "name": f"ssti {name}",
        "trigger": {"type": "event", "expect": [f"ssti.{name}"]},
        "actions": [{"type": "call-webhook", "url": f"{url}/{name}", "body": {"text": template}}],
    }


def _healthy(api: httpx.Client) -> None:
    started = time.monotonic()
    assert api.get("/health").status_code == 200
    assert time.monotonic() - started < 5


def test_the_corpus_is_complete() -> None:
    names = [name for name, _ in CORPUS]
    assert len(names) == len(set(names)) >= 50
    at_save = [n for group in AT_SAVE.values() for n in group]
    assert sorted([*at_save, *AT_FIRE, *RENDERS]) == sorted(names)


def test_every_payload_is_refused_at_save_or_fails_its_firing_or_renders_inert(
    api: httpx.Client, receiver: _Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    templates = dict(CORPUS)
    before = len(api.post("/automations/filter", json={"limit": 1000}).json())

    # Save time: a 422 naming the field and the problem, nothing stored.
    for reason, names in AT_SAVE.items():
        for name in names:
            answer = api.post("/automations/", json=_automation(name, url, templates[name]))
            assert answer.status_code == 422, (name, answer.text)
            detail = answer.json()["detail"]
            assert detail.startswith("actions[0].body.text: "), (name, detail)
            assert reason in detail, (name, detail)
            assert "\n" not in detail and "Traceback" not in detail
    assert len(api.post("/automations/filter", json={"limit": 1000}).json()) == before
    _healthy(api)

    # Fire time: saved, fired by one event each, then the action's outcome.
    saved = {}
    for name in [*AT_FIRE, *RENDERS]:
        answer = api.post("/automations/", json=_automation(name, url, templates[name]))
        assert answer.status_code == 201, (name, answer.text)
        saved[name] = answer.json()["id"]
    now = dt.datetime.now(dt.UTC).isoformat()
    batch = [{"id": str(uuid.uuid4()), "occurred": now, "event": f"ssti.{name}",
              "resource": {"tideflow.resource.id": "ssti.r"}, "payload": PAYLOAD}
             for name in saved]  # fmt: skip
    assert api.post("/events", json=batch).json()["refused"] == []
    outcomes: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 240
    while len(outcomes) < len(saved) and time.monotonic() < deadline:
        _healthy(api)
        for name, automation_id in saved.items():
            if name in outcomes:
                continue
            history = api.get(f"/automations/{automation_id}/history").json()
            actions = history[0]["actions"] if history else []
            if actions and actions[0]["status"] in ("executed", "failed"):
                outcomes[name] = actions[0]
        time.sleep(0.2)
    assert set(outcomes) == set(saved), sorted(set(saved) - set(outcomes))

    for name, reason in AT_FIRE.items():
        action = outcomes[name]
        assert action["status"] == "failed", (name, action)
        assert action["detail"].startswith("template body.text ("), (name, action["detail"])
        assert reason in action["detail"], (name, action["detail"])
    sent: dict[str, bytes] = {}
    while not receiver.bodies.empty():
        path, body = receiver.bodies.get_nowait()
        sent[path.strip("/")] = body
    assert set(sent) == RENDERS  # nothing was sent for a failed action
    for name in RENDERS:
        assert outcomes[name]["status"] == "executed", outcomes[name]
        text = sent[name].decode()
        assert len(text) <= 1_048_576 + 100
        assert not any(leak in text for leak in LEAKS), (name, text[:300])
        json.loads(text)
    print(
        f"\n{len(CORPUS)} template-injection payloads: "
        f"{sum(len(v) for v in AT_SAVE.values())} refused at save time (422), "
        f"{len(AT_FIRE)} failed their firing with the reason recorded, "
        f"{len(RENDERS)} rendered bounded plain data, 0 Python objects reached any output"
    )
