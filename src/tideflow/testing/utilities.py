"""``tideflow_test_harness()``: a temporary tideflow home and a real server for a block of tests,
under the name a Prefect user looks for (``prefect_test_harness``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tideflow.testing._process import ServerProcess

__all__ = ["tideflow_test_harness"]

_ENV = ("TIDEFLOW_HOME", "TIDEFLOW_API_URL", "TIDEFLOW_API_KEY")


@contextmanager
def tideflow_test_harness(server_startup_timeout: float = 60) -> Iterator[ServerProcess]:
    """Run the block against a fresh server (SQLite in a temporary ``TIDEFLOW_HOME``, a free port):
    ``TIDEFLOW_HOME`` and ``TIDEFLOW_API_URL`` point at them, and are restored afterwards with the
    server stopped and the folder removed.

    As a pytest session fixture::

        @pytest.fixture(autouse=True, scope="session")
        def tideflow_server():
            with tideflow_test_harness():
                yield
    """
    saved = {name: os.environ.get(name) for name in _ENV}
    try:
        with tempfile.TemporaryDirectory(prefix="tideflow-test-harness-") as home:
            os.environ["TIDEFLOW_HOME"] = home
            os.environ.pop("TIDEFLOW_API_KEY", None)  # the harness's server needs none (loopback)
            with ServerProcess(home=home, startup_timeout=server_startup_timeout) as server:
                os.environ["TIDEFLOW_API_URL"] = server.api_url
                yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
