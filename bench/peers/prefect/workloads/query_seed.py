"""Seeds Prefect's database for the query benchmark: ``python query_seed.py N OUT.json``.

Migrates the database named by PREFECT_API_DATABASE_CONNECTION_URL and writes N events as Prefect
encodes them (``ReceivedEvent.as_database_row`` / ``as_database_resource_rows``, what its event
persister writes) into its ORM tables with executemany inserts, 10,000 events per commit: its own
``write_events`` builds multi-row VALUES statements capped by SQLite's parameter limit and ran at
about 600 events/s here, too slow for a million. The same event mix as bench/query.py:
40% flow-run state events on run resources, the rest custom ``acme.stepN.done`` events on tables,
each with a flow, a deployment and a tag related resource, spread over the last six days (Prefect
keeps seven days of events by default), then ANALYZE as ours. Writes the resource ids the queries
need to OUT.json.
"""

import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prefect.server.database import provide_database_interface
from prefect.server.events.schemas.events import ReceivedEvent

STATES = ["Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed", "Cancelled", "Late"]
CUSTOM = [f"acme.step{i}.done" for i in range(12)]
BATCH = 10_000


def _uuid(rnd: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rnd.getrandbits(128))


async def seed(n: int, rnd: random.Random) -> dict[str, list[str]]:
    db = provide_database_interface()
    await db.create_db()
    flows = [f"prefect.flow.{_uuid(rnd)}" for _ in range(100)]
    deployments = [f"prefect.deployment.{_uuid(rnd)}" for _ in range(200)]
    runs = [f"prefect.flow-run.{_uuid(rnd)}" for _ in range(max(1, n // 10))]
    end = datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(days=6)
    span = (end - start).total_seconds()
    used_runs: set[str] = set()
    batch: list[ReceivedEvent] = []
    for i in range(n):
        related = [
            {"prefect.resource.id": rnd.choice(flows), "prefect.resource.role": "flow"},
            {"prefect.resource.id": rnd.choice(deployments), "prefect.resource.role": "deployment"},
            {"prefect.resource.id": f"prefect.tag.t{rnd.randrange(50)}", "prefect.resource.role": "tag"},
        ]  # fmt: skip
        if rnd.random() < 0.4:
            name, resource = f"prefect.flow-run.{rnd.choice(STATES)}", rnd.choice(runs)
            used_runs.add(resource)
        else:
            name, resource = rnd.choice(CUSTOM), f"acme.table.{rnd.randrange(5000)}"
        batch.append(
            ReceivedEvent(
                id=_uuid(rnd),
                occurred=start + timedelta(seconds=rnd.random() * span),
                event=name,
                resource={"prefect.resource.id": resource},
                related=related,
                payload={"i": i},
                received=end,
            )
        )
        if len(batch) >= BATCH or i == n - 1:
            # Core inserts with every column given: the ORM bulk path computes the defaults
            # (id, created, updated) row by row in Python, three times slower.
            rows = [{**e.as_database_row(), "created": end, "updated": end} for e in batch]
            resources = [
                {**r, "id": _uuid(rnd), "created": end, "updated": end}
                for e in batch
                for r in e.as_database_resource_rows()
            ]
            async with db.session_context(begin_transaction=True) as session:
                connection = await session.connection()
                await connection.execute(sa.insert(db.Event.__table__), rows)
                await connection.execute(sa.insert(db.EventResource.__table__), resources)
            batch = []
    # Our seed runs ANALYZE too: both query planners start with statistics.
    async with db.session_context(begin_transaction=True) as session:
        await session.execute(sa.text("ANALYZE"))
    return {"runs": sorted(used_runs), "flows": flows}


if __name__ == "__main__":
    started = time.monotonic()
    ids = asyncio.run(seed(int(sys.argv[1]), random.Random(1)))
    with open(sys.argv[2], "w") as fh:
        json.dump({**ids, "seconds": time.monotonic() - started}, fh)
