"""Small helpers for user code; ``tideflow.utilities.annotations`` wraps task arguments."""

__all__: list[str] = []
