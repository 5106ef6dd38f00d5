"""The ``source-kustomer`` command: ``spec | check | discover | read`` on the Airbyte protocol."""

from __future__ import annotations

import sys
import traceback
from datetime import datetime, timezone
from typing import List, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    TraceType,
    Type,
)
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, update_secrets

from source_kustomer.source import SourceKustomer


def _build_source(args: List[str]) -> Optional[SourceKustomer]:
    """Build the source, or print a TRACE error (with the token masked) and return None."""
    config_path = AirbyteEntrypoint.extract_config(args)
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    try:
        config = SourceKustomer.read_config(config_path) if config_path else None
        if config and isinstance(config.get("api_token"), str) and config["api_token"]:
            update_secrets([config["api_token"]])
        return SourceKustomer(
            catalog=SourceKustomer.read_catalog(catalog_path) if catalog_path else None,
            config=config,
            state=SourceKustomer.read_state(state_path) if state_path else None,
            config_path=config_path,
        )
    except Exception as error:  # noqa: BLE001 - every start-up failure must reach the user as a TRACE
        message = AirbyteMessage(
            type=Type.TRACE,
            trace=AirbyteTraceMessage(
                type=TraceType.ERROR,
                emitted_at=datetime.now(timezone.utc).timestamp() * 1000,
                error=AirbyteErrorTraceMessage(
                    message=filter_secrets(f"source-kustomer could not start: {error}"),
                    internal_message=filter_secrets(str(error)),
                    stack_trace=filter_secrets(traceback.format_exc()),
                    failure_type=FailureType.config_error,
                ),
            ),
        )
        print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode())
        return None


def run() -> None:
    args = sys.argv[1:]
    source = _build_source(args)
    if source is None:
        sys.exit(1)
    launch(source, args)


if __name__ == "__main__":
    run()
