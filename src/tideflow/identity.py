"""Who is acting: the OS user behind SDK and CLI requests, as the ``creator`` of the runs they create."""

from __future__ import annotations

import functools
import getpass

from tideflow.schemas import Creator

__all__ = ["user_creator"]


@functools.cache
def user_creator() -> Creator:
    """``Creator(type="user", id="tideflow.user.<login>")`` for this process's OS user."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        login = "unknown"
    return Creator(type="user", id=f"tideflow.user.{login}", name=login)
