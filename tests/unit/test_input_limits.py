"""The pure input checks: JSON depth without parsing, lone surrogates, the body check of the
request-limits middleware, the /events/in frame check, and emit_event's local refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tideflow.events import emit_event
from tideflow.schemas.events import Event, event_limits_problem, event_problem
from tideflow.schemas.limits import (
    MAX_NESTING,
    escape_lone_surrogates,
    has_lone_surrogate,
    json_text_depth,
    lone_surrogate_path,
    replace_lone_surrogates,
)
from tideflow.server.api.limits import body_problem
from tideflow.server.events.ingest import check_frame

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.characters(codec="utf-8")),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='ab"\\[]{}', max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(json_values)
def test_text_depth_is_the_depth_of_the_parsed_value(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert json_text_depth(text) == _depth(value)
    assert json_text_depth(json.dumps(value).encode()) == _depth(value)
    # With a limit, the answer is exact or an upper bound that stays within the limit.
    bounded = json_text_depth(text, 3)
    assert (bounded > 3) == (_depth(value) > 3)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('{"a": "[[[["}', 1),
        ('["\\\\", [[1]]]', 3),
        ('["\\"[", [1]]', 2),
        ('{"k\\"{": {"x": "}}}"}}', 2),
        ("[" * 100_000, 100_000),
        ('"unterminated [[[', 0),
    ],
)
def test_text_depth_ignores_brackets_in_strings(text: str, depth: int) -> None:
    assert json_text_depth(text) == depth


def test_text_depth_stops_early_on_a_run_of_openers() -> None:
    assert json_text_depth("[" * 10_000 + "]" * 10_000, 64) == 65


def test_lone_surrogates_are_found_by_path_and_pairs_are_not() -> None:
    assert lone_surrogate_path({"a": [1, {"b": "x\udc80"}]}) == ("a", 1, "b")
    assert lone_surrogate_path({"k\ud800": 1}, ("body",)) == ("body", "k\ud800")
    assert lone_surrogate_path(json.loads('{"a": "\\ud83d\\ude00"}')) is None
    assert has_lone_surrogate("\udfff") and not has_lone_surrogate("\U0001f600 é")
    assert escape_lone_surrogates("a\udc80") == "a\\udc80"
    assert replace_lone_surrogates({"k\udc80": ["v\ud800"]}) == {"k\ufffd": ["v\ufffd"]}
    deep: Any = "\udc80"
    for _ in range(5_000):  # past the recursion limit: the search is iterative
        deep = [deep]
    assert lone_surrogate_path(deep) == (0,) * 5_000


def test_body_problem_names_the_field_or_passes() -> None:
    refused = body_problem(b'{"a": {"b": "x\\udc80"}}', max_depth=100)
    assert refused is not None and refused.status == 422
    assert refused.detail.startswith("body.a.b: contains a lone surrogate (\\udc80)")
    raw = '["\udc80"]'.encode("utf-8", "surrogatepass")  # json.loads decodes these bytes too
    assert body_problem(raw, max_depth=100) is not None
    assert body_problem(b'["\\ud83d\\ude00", "\\\\udc80"]', max_depth=100) is None
    assert body_problem(b"not json \\udc80", max_depth=100) is None  # the route refuses it
    deep = body_problem(b"[" * 101 + b"]" * 101, max_depth=100)
    assert deep is not None and deep.detail.startswith("body: JSON nested deeper than")
    cleaned = body_problem(b'[{"message": "a\\udc80"}]', max_depth=100, lenient_text=True)
    assert cleaned is not None and json.loads(cleaned.body or b"") == [{"message": "a\ufffd"}]


def _event(**extra: Any) -> dict[str, Any]:
    return {"event": "a.b", "resource": {"tideflow.resource.id": "r"}, **extra}


def test_check_frame_answers_every_frame() -> None:
    deep = json.dumps([_event(payload={"x": json.loads("[" * 900 + "]" * 900)})])
    checked = check_frame(deep, 10**6, 10**7)
    assert checked.events == [] and "nested deeper" in checked.refused[0]["reason"]
    hopeless = "[" * 100_000 + "]" * 100_000
    assert (
        check_frame(hopeless, 10**6, 10**7)
        .refused[0]["reason"]
        .startswith("frame is nested too deeply")
    )
    assert check_frame("{", 10**6, 10**7).refused[0]["reason"].startswith("frame is not JSON")
    big = json.dumps([_event(payload={"b": "x" * 2000}), _event()])
    refused = check_frame(big, 10**6, 1000).refused
    assert [r["index"] for r in refused] == [0, 1]
    assert "above the limit of 1000 bytes" in refused[0]["reason"]


def test_event_checks_name_surrogates_depth_and_lengths() -> None:
    assert event_problem(_event(payload={"k": ["\udc80"]}), 10**6) == (
        "payload.k[0] contains a lone surrogate (\\udc80), which is not valid Unicode text; "
        "send text as UTF-8 (a surrogate pair is fine)"
    )
    problem = event_problem(_event(event="a.\udc80"), 10**6)
    assert problem is not None and problem.startswith("event: event name contains a lone")
    nested: Any = 1
    for _ in range(MAX_NESTING):
        nested = [nested]
    assert event_problem(_event(payload={"x": nested[0]}), 10**6) is None
    assert event_problem(_event(payload={"x": nested}), 10**6) == (
        f"payload is nested deeper than the limit of {MAX_NESTING} levels"
    )
    long_id = Event.model_validate(_event(resource={"tideflow.resource.id": "r" * 1025}))
    assert event_limits_problem(long_id) == (
        "resource: label 'tideflow.resource.id' is 1025 characters, above the limit of 1024"
    )


def test_emit_event_refuses_locally_what_the_server_would_refuse() -> None:
    nested: Any = 1
    for _ in range(900):
        nested = [nested]
    with pytest.raises(ValueError, match="nested deeper than the limit of 64 levels"):
        emit_event("a.b", {"tideflow.resource.id": "r"}, payload={"x": nested})
    with pytest.raises(ValueError, match="lone surrogate"):
        emit_event("a.b", {"tideflow.resource.id": "r"}, payload={"x": "\udc80"})
    with pytest.raises(ValueError, match="above the limit of 1024"):
        emit_event("a.b", {"tideflow.resource.id": "r" * 2000})
