"""Scripts the benchmarks run as separate processes (served deployments)."""

__all__: list[str] = []
