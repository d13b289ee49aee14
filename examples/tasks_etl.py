"""Tasks in a flow: submit and map on a thread pool, futures as dependencies, wait, retries with a
backoff, and a cached task whose second call comes from the result store.

    python examples/tasks_etl.py      # then: tideflow task-run ls, or the run's page in the UI
"""

from datetime import timedelta

from tideflow import flow, task
from tideflow.cache_policies import INPUTS, TASK_SOURCE
from tideflow.futures import wait
from tideflow.task_runners import ThreadPoolTaskRunner

attempts = {"extract": 0}


@task(retries=3, retry_delay_seconds=[0.1, 0.2, 0.4])
def extract(day: int) -> list[int]:
    attempts["extract"] += 1
    if attempts["extract"] == 1:  # the first call fails, a retry succeeds
        raise ConnectionError("source not reachable yet")
    return [day * 10 + i for i in range(5)]


@task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(hours=1))
def price(row: int) -> float:
    return row * 1.5


@task
def total(prices: list[float]) -> float:
    return sum(prices)


@flow(log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=8))
def daily_revenue(day: int = 1) -> float:
    rows = extract.submit(day)
    prices = price.map(rows.result())
    wait(prices)
    revenue = total.submit(prices).result()  # a list of futures: waits for each of them
    print(f"day {day}: {len(prices)} rows, revenue {revenue}")
    return revenue


if __name__ == "__main__":
    first = daily_revenue(1)
    again = daily_revenue(1)  # the prices come from the cache this time
    assert first == again == 90.0, (first, again)
