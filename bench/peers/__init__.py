"""Peer systems benchmarked side by side with tideflow, each in its own virtualenv."""

__all__: list[str] = []
