"""Ctrl-C stops a long run promptly (the engine polls for signals between batches)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import itertools, sys, time
    import pyarrow as pa
    sys.path.insert(0, "tests")
    from conftest import devices_table, sites_table, intensity_table, power_table
    import carbonledger as cl

    schema = power_table([("g0", 0, 1.0)]).schema

    def batches():
        for i in itertools.count():
            if i == 2:
                print("streaming", flush=True)
            time.sleep(0.05)
            yield power_table([("g0", float(i), 100.0)]).to_batches()[0]

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    cl.account(reader, devices_table(), sites_table(), intensity_table([(-10, None, 400)]))
    """
)


def test_ctrl_c_interrupts_streaming() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "streaming"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
