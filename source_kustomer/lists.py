"""List endpoints whose plain call does not return everything: one documented filter at a time."""

from dataclasses import InitVar, dataclass, field
from typing import Any, Iterable, List, Mapping, Optional, Set

from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, StreamSlice


@dataclass
class OneFilterAtATimeRetriever(Retriever):
    """Reads a list once per documented filter, in order, and keeps each object the first time it comes.

    Kustomer: ``GET /v1/users`` filters on ``pending`` (only users with a pending invitation) and
    ``deleted`` (``true``: only deactivated users; ``false``: only active ones), and "these filters
    cannot be combined"; what a call without them returns is not documented, so deactivated agents,
    who own old conversations, could be missing. Each entry of ``filters`` is read as its own slice:
    its query parameters under ``params`` and everything else (the user's ``status``) in the slice's
    extra fields, for the manifest to put on the record. An object an earlier filter already returned
    (a pending user that a later ``deleted=false`` also lists) is not emitted again.
    """

    retriever: Retriever
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    filters: List[Mapping[str, Any]] = field(default_factory=list)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        if not self.filters:
            raise ValueError("OneFilterAtATimeRetriever needs at least one filter")

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[StreamData]:
        base = stream_slice or StreamSlice(partition={}, cursor_slice={})
        seen: Set[Any] = set()
        for one_filter in self.filters:
            narrowed = StreamSlice(partition=base.partition, cursor_slice=base.cursor_slice, extra_fields={**base.extra_fields, **one_filter})
            for record in self.retriever.read_records(records_schema, narrowed):
                key = record.get("id") if isinstance(record, Mapping) else None
                if key is not None and key in seen:
                    continue
                seen.add(key)
                yield record
