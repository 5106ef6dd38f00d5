"""The Kustomer source: the declarative manifest, nothing else.

All behaviour lives in ``manifest.yaml`` (streams, auth, rate limits, pagination, incremental sync)
and the components it names in this package, so the Connector Builder and the CDK's
``source-declarative-manifest`` run the very same connector.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Mapping, MutableMapping, Optional

from airbyte_cdk.models import ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.source import TState


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
        super().__init__(
            catalog=catalog,
            config=config,
            state=state,
            path_to_yaml=str(manifest_path()),
            config_path=config_path,
        )

    @staticmethod
    def read_config(config_path: str) -> MutableMapping[str, Any]:
        """The config file, with the API key trimmed: a key pasted with a space or a newline around it
        works, and the key as sent (the one the logs must mask, also at debug level) is the trimmed one."""
        config = YamlDeclarativeSource.read_config(config_path)
        if isinstance(config.get("api_token"), str):
            config["api_token"] = config["api_token"].strip()
        return config
