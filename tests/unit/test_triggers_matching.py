"""Label matching (wildcards, lists, negation) against a simple reference, and trigger qualification."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tideflow.schemas.automations import EventTrigger, ResourceSpecification
from tideflow.schemas.events import Event, label_value_matches, labels_match, name_matches
from tideflow.server.triggers.evaluate import qualify

ALPHABET = "ab.*-"
LABELS = ["l1", "l2", "l3"]


def ref_name(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def ref_value(expected: str | list[str], value: str | None) -> bool:
    entries = [expected] if isinstance(expected, str) else expected
    pos = [e for e in entries if not e.startswith("!")]
    neg = [e[1:] for e in entries if e.startswith("!")]
    ok_pos = (value is not None and any(ref_name(p, value) for p in pos)) if pos else True
    ok_neg = value is None or not any(ref_name(n, value) for n in neg)
    return ok_pos and ok_neg


values = st.text(alphabet="ab.-", max_size=5)
patterns = st.text(alphabet=ALPHABET, max_size=5)
entries = st.one_of(patterns, patterns.map(lambda p: "!" + p))
expectations = st.one_of(entries, st.lists(entries, min_size=1, max_size=3))


@given(patterns, values)
@settings(max_examples=400)
def test_name_matches_reference(pattern: str, value: str) -> None:
    assert name_matches(pattern, value) == ref_name(pattern, value)


@given(expectations, st.one_of(st.none(), values))
@settings(max_examples=400)
def test_value_matches_reference(expected: str | list[str], value: str | None) -> None:
    assert label_value_matches(expected, value) == ref_value(expected, value)


@given(
    st.dictionaries(st.sampled_from(LABELS), expectations),
    st.dictionaries(st.sampled_from(LABELS), values),
)
@settings(max_examples=300)
def test_spec_is_and_of_labels(spec: dict[str, str | list[str]], labels: dict[str, str]) -> None:
    expected = all(ref_value(v, labels.get(k)) for k, v in spec.items())
    assert labels_match(spec, labels) == expected
    assert ResourceSpecification(spec).matches(labels) == expected


def test_matching_examples() -> None:
    assert name_matches("tideflow.flow-run.*", "tideflow.flow-run.Completed")
    assert name_matches("*.Completed", "tideflow.flow-run.Completed")
    assert name_matches("a*b*c", "aXbYc") and not name_matches("a*b*c", "aXcYb")
    assert not name_matches("ab*ba", "aba")  # the prefix and suffix may not overlap
    assert label_value_matches("*", "anything") and not label_value_matches("*", None)
    assert label_value_matches("!x", None) and not label_value_matches("!x", "x")
    assert label_value_matches(["a", "b"], "b") and not label_value_matches(["a", "b"], "c")
    # positives are OR-ed, negatives exclude: "any prod-* except prod-eu"
    assert label_value_matches(["prod-*", "!prod-eu"], "prod-us")
    assert not label_value_matches(["prod-*", "!prod-eu"], "prod-eu")
    assert not label_value_matches(["prod-*", "!prod-eu"], None)


def _event(name: str, related: list[dict[str, str]], **resource: str) -> Event:
    return Event(
        event=name,
        resource={"tideflow.resource.id": "tideflow.flow-run.1", **resource},
        related=related,
    )


def rel(role: str, name: str, ident: str | None = None) -> dict[str, str]:
    return {
        "tideflow.resource.id": ident or f"tideflow.{role}.{name}",
        "tideflow.resource.role": role,
        "tideflow.resource.name": name,
    }


def test_match_related_each_spec_independently_by_some_resource() -> None:
    trigger = EventTrigger(
        match_related=[
            {"tideflow.resource.role": "deployment", "tideflow.resource.name": "up"},
            {"tideflow.resource.role": "tag", "tideflow.resource.name": "nightly"},
        ]
    )
    ok = _event("e", [rel("deployment", "up"), rel("tag", "other"), rel("tag", "nightly")])
    assert qualify(trigger, ok).match_related == [True, True]
    # role and name on *different* resources do not satisfy one spec
    mixed = _event("e", [rel("flow", "up"), rel("deployment", "down"), rel("tag", "nightly")])
    assert qualify(trigger, mixed).match_related == [False, True]
    assert not qualify(trigger, mixed).passes_filters


def test_single_spec_dict_is_accepted_and_negation_on_related() -> None:
    trigger = EventTrigger(
        match_related={
            "tideflow.resource.role": "work-pool",
            "tideflow.resource.name": "!self-pool",
        }
    )
    assert qualify(trigger, _event("e", [rel("work-pool", "other")])).passes_filters
    assert not qualify(trigger, _event("e", [rel("work-pool", "self-pool")])).passes_filters
    # no work-pool related at all: no single resource has the role, so the spec is not satisfied
    assert not qualify(trigger, _event("e", [rel("flow", "f")])).passes_filters


def test_expect_and_after_wildcards() -> None:
    trigger = EventTrigger(
        expect={"tideflow.flow-run.*"},
        after={"*.Running"},
        match={"tideflow.resource.id": "tideflow.flow-run.*"},
    )
    q = qualify(trigger, _event("tideflow.flow-run.Running", []))
    assert q.is_expected and q.is_after and q.match
    q = qualify(trigger, _event("tideflow.deployment.created", []))
    assert not q.is_expected and not q.is_after and not q.relevant
    assert qualify(EventTrigger(), _event("anything.at-all", [])).is_expected
