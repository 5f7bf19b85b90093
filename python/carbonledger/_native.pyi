from typing import Any

__version__: str

def account(
    power: list[Any],
    devices: Any,
    sites: Any,
    intensity: Any,
    allocations: Any | None = None,
    *,
    period: tuple[int, int] | None = None,
    interpolation: str = "linear",
    max_gap_ns: int = 300_000_000_000,
    gap_fill: str = "none",
    on_invalid: str = "drop",
    overlap: str = "error",
    sort: bool = False,
    threads: int | None = None,
    max_power_w: float = 1e6,
) -> tuple[Any, Any, Any, Any]: ...
def validate(
    devices: Any,
    sites: Any,
    intensity: Any,
    allocations: Any | None = None,
    *,
    power_schemas: list[Any] = ...,
    period: tuple[int, int] | None = None,
    overlap: str = "error",
) -> tuple[list[tuple[str, str]], int]: ...
