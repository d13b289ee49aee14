"""Test helpers for users' and our own tests: an in-process app with a client, and a real server
subprocess. Importing this module loads the server stack."""

from tideflow.testing._in_process import in_process_client
from tideflow.testing._process import ServerProcess, free_port

__all__ = ["ServerProcess", "free_port", "in_process_client"]
