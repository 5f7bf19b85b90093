"""``df.carbon`` and ``lf.carbon``: the engine as a polars namespace.

``power_lf.carbon.account(devices=..., ...)`` streams a LazyFrame of samples
through the engine batch by batch (polars' streaming engine) without
collecting it.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from .accounting import account
from .report import Report


@pl.api.register_lazyframe_namespace("carbon")
class CarbonLazyFrame:
    """``lf.carbon``: carbonledger on a polars LazyFrame of samples."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def account(self, **kwargs: Any) -> Report:
        """``carbonledger.account(power=<this LazyFrame>, **kwargs)``."""
        return account(self._lf, **kwargs)


@pl.api.register_dataframe_namespace("carbon")
class CarbonDataFrame:
    """``df.carbon``: carbonledger on a polars DataFrame of samples."""

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def account(self, **kwargs: Any) -> Report:
        """``carbonledger.account(power=<this DataFrame>, **kwargs)``."""
        return account(self._df, **kwargs)
