"""Assets that chain deployments: ``report`` runs once BOTH raw.csv and prices.csv have been
materialized since its last run.

    python examples/assets_chain.py
    tideflow deployment run load-raw/raw          # in another terminal: nothing runs yet
    tideflow deployment run load-prices/prices    # now report runs, once
    tideflow asset ls                             # the catalogue, with lineage

``report`` materializes ``s3://warehouse/report.parquet`` from the two (read back from storage, so
declared with ``asset_deps``); the flows write local files to stay runnable anywhere.
"""

import json
import os
import tempfile
from pathlib import Path

from tideflow import flow, serve
from tideflow.assets import Asset, AssetProperties, add_asset_metadata, materialize
from tideflow.events import AssetTrigger

RAW = Asset(
    key="s3://warehouse/raw.csv",
    properties=AssetProperties(name="Raw orders", owners=["data-team"]),
)
PRICES = Asset(key="s3://warehouse/prices.csv", properties=AssetProperties(name="Prices"))
REPORT = "s3://warehouse/report.parquet"
OUT = Path(os.environ.get("TIDEFLOW_EXAMPLE_OUT", tempfile.gettempdir())) / "assets-chain"


def _write(name: str, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(rows))
    return rows


@materialize(RAW, retries=2)
def extract_raw() -> list[dict[str, object]]:
    rows = _write("raw.json", [{"item": "tea", "qty": 3}, {"item": "milk", "qty": 1}])
    add_asset_metadata(RAW, {"rows": len(rows)})
    return rows


@materialize(PRICES)
def extract_prices() -> list[dict[str, object]]:
    return _write("prices.json", [{"item": "tea", "price": 2.5}, {"item": "milk", "price": 1.2}])


@materialize(REPORT, asset_deps=[RAW, PRICES])  # read from storage: declared, not inferred
def build_report(raw: list[dict[str, object]], prices: list[dict[str, object]]) -> float:
    price = {p["item"]: p["price"] for p in prices}
    total = sum(float(r["qty"]) * float(price[r["item"]]) for r in raw)  # type: ignore[arg-type]
    add_asset_metadata(REPORT, {"total": total})
    return total


@flow(log_prints=True)
def load_raw() -> None:
    print(f"raw: {len(extract_raw())} rows")


@flow(log_prints=True)
def load_prices() -> None:
    print(f"prices: {len(extract_prices())} rows")


@flow(log_prints=True)
def report() -> None:
    raw = json.loads((OUT / "raw.json").read_text())
    prices = json.loads((OUT / "prices.json").read_text())
    print(f"report total: {build_report(raw, prices)}")


if __name__ == "__main__":
    serve(
        load_raw.to_deployment(name="raw"),
        load_prices.to_deployment(name="prices"),
        report.to_deployment(
            name="when-inputs-fresh",
            triggers=[AssetTrigger(name="raw and prices fresh", assets=[RAW, PRICES])],
        ),
    )
