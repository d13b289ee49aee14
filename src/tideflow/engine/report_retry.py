"""How a run process keeps a state report across a short server outage (a restart, a kill -9).

A run's final state is the one report that must not be lost: without it the run ends Crashed (the
runner lists it no more) although its work was done. A state proposal carries its state's id, so
the server takes a repeated proposal once; retrying it is safe. Only transient answers are retried:
nothing reached the server, or it answered 502/503/504 while (re)starting.
"""

from __future__ import annotations

from collections.abc import Iterator

from tideflow.exceptions import ServerError, ServerUnreachable

__all__ = ["is_transient", "retry_delays"]

_FIRST_DELAY = 0.2
_MAX_DELAY = 2.0


def is_transient(exc: BaseException) -> bool:
    """True for a failure a later identical request may not meet (server down or restarting)."""
    if isinstance(exc, ServerUnreachable):
        return True
    return isinstance(exc, ServerError) and exc.status_code in (502, 503, 504)


def retry_delays(patience: float) -> Iterator[float]:
    """Sleeps between attempts, doubling from 0.2 s up to 2 s, summing to at most ``patience``."""
    spent, delay = 0.0, _FIRST_DELAY
    while spent + delay <= patience:
        yield delay
        spent += delay
        delay = min(delay * 2, _MAX_DELAY)
