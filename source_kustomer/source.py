"""The Kustomer source: the declarative manifest, nothing else.

All behaviour lives in ``manifest.yaml`` (streams, auth, pagination, incremental sync) and the
small components it names in ``components.py``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Mapping, MutableMapping, Optional

from airbyte_cdk.models import ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.source import TState

from source_kustomer.components import KustomerApiBudget, PageStore


def manifest_path() -> Path:
    """Where the manifest is: inside the installed wheel, or at the top of a source checkout."""
    packaged = resources.files("source_kustomer").joinpath("manifest.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "manifest.yaml"


#: Records and partitions waiting between the worker threads and the output.
QUEUE_SIZE = 1000


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
        # One budget for the whole sync, whichever streams the CDK builds and however often.
        self._budget = KustomerApiBudget.for_config(self._config)
        # The CDK buffers up to 10,000 records and partitions between its workers and the output. A
        # buffered search record keeps its whole parsed page alive: 1,000 keep the output as busy
        # and peak memory about 90 MB lower (measured with 10 workers; see README, Performance).
        self._concurrent_source._queue.maxsize = QUEUE_SIZE

    @staticmethod
    def read_config(config_path: str) -> MutableMapping[str, Any]:
        """The config file, with the API key trimmed: a key pasted with a space or a newline around it
        works, and the key as sent (the one the logs must mask, also at debug level) is the trimmed one."""
        config = YamlDeclarativeSource.read_config(config_path)
        if isinstance(config.get("api_token"), str):
            config["api_token"] = config["api_token"].strip()
        return config

    def _prepare_for_stream_build(self) -> None:
        """Every requester the CDK builds from here on spends from Kustomer's two rate-limit buckets."""
        super()._prepare_for_stream_build()
        self._constructor._api_budget = self._budget
