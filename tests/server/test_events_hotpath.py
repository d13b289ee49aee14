"""Ingest's hot-path helpers: ``json_text``/``compact_json`` give exactly ``json.dumps``'s text
(hypothesis over JSON values) and its TypeError; ``gc_paused`` turns the collector off for the block
only and leaves it as it found it, also on an exception or when it was already off."""

from __future__ import annotations

import gc
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tideflow.server.events.hotpath import compact_json, gc_paused, json_text

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert json_text(value) == json.dumps(value)
    assert compact_json(value) == json.dumps(value, separators=(",", ":"))


def test_special_floats_and_what_json_cannot_hold() -> None:
    value = {"nan": math.nan, "inf": [math.inf, -math.inf], "é": "ü\n"}
    assert json_text(value) == json.dumps(value)
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        json_text({"x": object()})
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        compact_json([{1, 2}])


def test_gc_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off: stays off
    finally:
        gc.enable()
