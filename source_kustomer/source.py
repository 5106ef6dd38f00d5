"""The Kustomer source: the declarative manifest, nothing else.

All behaviour lives in ``manifest.yaml`` (streams, auth, pagination, incremental sync) and the
small components it names in ``components.py``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional

from airbyte_cdk.models import ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.source import TState

from source_kustomer.components import PageStore


def manifest_path() -> Path:
    """Where the manifest is: inside the installed wheel, or at the top of a source checkout."""
    packaged = resources.files("source_kustomer").joinpath("manifest.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "manifest.yaml"


class SourceKustomer(YamlDeclarativeSource):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: TState = None,
        config_path: Optional[str] = None,
    ) -> None:
        PageStore.start_sync()  # pages shared between streams live for one sync
        super().__init__(
            catalog=catalog,
            config=config,
            state=state,
            path_to_yaml=str(manifest_path()),
            config_path=config_path,
        )
