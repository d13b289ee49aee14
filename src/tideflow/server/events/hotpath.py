"""Helpers for ingest's per-event work: JSON text for small objects, and the cyclic GC paused.

``json_text``/``compact_json`` give ``json.dumps``'s output at a fraction of its cost:
``json.dumps`` builds CPython's C encoder anew on every call, which for a payload of a few keys
costs more than the encoding itself (~3 us of ~4); these build it once. No circular-reference
check: only for objects already checked (a validated event's payload, its label maps). Without the
C encoder (another Python implementation) they are ``json.dumps`` itself.

``gc_paused``: checking and storing a batch allocates a few dozen objects per event, and every 700
allocations the cyclic collector runs, now and then over the whole heap (the server's and every
queued event): that cost ingest more than a third of its CPU. Pausing it for a synchronous stretch
(never across an ``await``) leaves one collection for after it instead of dozens. Nothing is leaked:
plain reference counting still frees everything, and cycles wait for the next collection.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import json.encoder
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["compact_json", "gc_paused", "json_text"]


def _encoder(item_separator: str, key_separator: str) -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return functools.partial(json.dumps, separators=(item_separator, key_separator))
    # As JSONEncoder.iterencode builds it, with no markers (no circular check; see above): the
    # standard TypeError for what JSON cannot hold, ASCII output, keys unsorted, NaN allowed.
    encoder = make(
        None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None,
        key_separator, item_separator, False, False, True,
    )  # fmt: skip

    def encode(obj: Any) -> str:
        return "".join(encoder(obj, 0))

    return encode


# ``json.dumps(obj)`` and ``json.dumps(obj, separators=(",", ":"))``.
json_text = _encoder(", ", ": ")
compact_json = _encoder(",", ":")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Automatic cyclic garbage collection off for the block (synchronous code only)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
