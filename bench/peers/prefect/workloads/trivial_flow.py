"""Calls a trivial Prefect flow COUNT times in this process; prints each call's seconds as JSON."""

import json
import sys
import time

from prefect import flow


@flow
def trivial() -> int:
    return 1


if __name__ == "__main__":
    seconds = []
    for _ in range(int(sys.argv[1])):
        t0 = time.perf_counter()
        trivial()
        seconds.append(time.perf_counter() - t0)
    print(json.dumps(seconds))
