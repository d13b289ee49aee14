"""Calling a sync flow function with a deadline.

In the main thread (with no other interval timer armed) SIGALRM interrupts the function where it is.
Elsewhere the function runs in a worker thread (with the caller's context) and the caller stops
waiting at the deadline; the thread cannot be killed and finishes in the background.
"""

from __future__ import annotations

import contextvars
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DeadlineExceeded", "call_with_timeout"]


class DeadlineExceeded(BaseException):
    """Raised inside the function by SIGALRM; a BaseException so ``except Exception`` does not swallow it."""


def _can_use_alarm() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )


def call_with_timeout(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
) -> tuple[Any, bool]:
    """``(value, False)``, or ``(None, True)`` when the deadline passed; the function's errors propagate."""
    if timeout is None:
        return fn(*args, **kwargs), False
    if _can_use_alarm():
        return _with_alarm(fn, args, kwargs, timeout)
    return _with_thread(fn, args, kwargs, timeout)


def _with_alarm(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
) -> tuple[Any, bool]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise DeadlineExceeded()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn(*args, **kwargs), False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except DeadlineExceeded:
        return None, True
    finally:
        # None means a handler installed outside Python: the default is the closest we can restore
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def _with_thread(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float
) -> tuple[Any, bool]:
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = ctx.run(fn, *args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(
        target=target, name=f"tideflow-flow-{getattr(fn, '__name__', 'fn')}", daemon=True
    )
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return None, True
    if "error" in box:
        raise box["error"]
    return box.get("value"), False
