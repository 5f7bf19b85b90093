"""What one day of a 30-day archive reads (issue 12): a fleet of DEVICES
GPUs at one sample a minute, one Parquet file per day (6-hour row groups),
accounted for one day with an explicit period; the read window leaves the
other row groups unread. Prints bytes and time against a run over the
whole archive's period.

python benches/daily_window.py [DEVICES] [DAYS]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import carbonledger as cl

UTC = dt.timezone.utc
D0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("ns", tz="UTC")


def main() -> None:
    n_dev = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    rng = np.random.default_rng(3)
    ids = [f"gpu-{i:05d}" for i in range(n_dev)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "power").mkdir()
        for d in range(days):
            t0 = int((D0 + dt.timedelta(days=d)).timestamp()) * 10**9
            times = t0 + np.arange(0, 86_400, 60, dtype=np.int64) * 10**9
            t = pa.table(
                {
                    "device_id": np.tile(np.array(ids), len(times)),
                    "ts": pa.array(np.repeat(times, n_dev), pa.int64()).cast(TS),
                    "power_w": rng.uniform(80, 700, n_dev * len(times)),
                }
            )
            pq.write_table(t, root / "power" / f"day-{d:02d}.parquet", row_group_size=len(t) // 4)
        total = sum(p.stat().st_size for p in (root / "power").iterdir())
        small = {
            "devices": pa.table(
                {
                    "device_id": ids,
                    "site_id": ["s"] * n_dev,
                    "embodied_kgco2e": [150.0] * n_dev,
                    "installed_at": pa.array([D0 - dt.timedelta(days=300)] * n_dev, TS),
                    "lifetime_years": [4.0] * n_dev,
                }
            ),
            "sites": pa.table({"site_id": ["s"], "region": ["R"], "pue": [1.2]}),
            "intensity": pa.table(
                {"region": ["R"], "start": pa.array([D0], TS), "gco2e_per_kwh": [400.0]}
            ),
        }
        power = str(root / "power" / "*.parquet")
        day = (D0 + dt.timedelta(days=days // 2), D0 + dt.timedelta(days=days // 2 + 1))
        whole = (D0, D0 + dt.timedelta(days=days))
        for name, period in (("one day", day), ("whole archive", whole)):
            s = time.perf_counter()
            r = cl.account(power, **small, period=period)
            secs = time.perf_counter() - s
            read = total - r.unread.bytes
            print(
                f"{name:14s}: {secs:6.3f} s, read {read / 1e6:8.1f} of {total / 1e6:8.1f} MB "
                f"({100 * read / total:5.1f}%), {r.unread.row_groups} row groups unread"
            )


if __name__ == "__main__":
    main()
