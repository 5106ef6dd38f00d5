"""Airbyte source connector for Kustomer.

``SourceKustomer`` is imported on first use, so that ``source_kustomer.contract`` (plain data, also read
by the test sandbox) can be imported without loading the Airbyte CDK.
"""

from typing import Any

__all__ = ["SourceKustomer"]


def __getattr__(name: str) -> Any:
    if name == "SourceKustomer":
        from source_kustomer.source import SourceKustomer

        return SourceKustomer
    raise AttributeError(f"module 'source_kustomer' has no attribute {name!r}")
