"""The ``source-kustomer`` command: ``spec | check | discover | read`` on the Airbyte protocol."""

from __future__ import annotations

import sys
import traceback
from datetime import datetime, timezone
from typing import Any, List, Mapping, Optional

import orjson
from airbyte_cdk.entrypoint import PRINT_BUFFER, AirbyteEntrypoint
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    TraceType,
    Type,
)
from airbyte_cdk.sources.utils.schema_helpers import split_config
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, update_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from jsonschema import Draft7Validator, ValidationError

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


def config_problems(config: Mapping[str, Any], spec: Mapping[str, Any]) -> Optional[str]:
    """Every setting that breaks the spec, each named by its title with the form it expects (None if none).

    The CDK checks the config against the spec too, but words it as jsonschema does, naming neither
    the setting nor the expected form: "0 is less than the minimum of 1", "'x' does not match
    '^(https://...'". Secrets are never quoted.
    """
    errors = sorted(Draft7Validator(spec).iter_errors(dict(config)), key=lambda error: [str(p) for p in error.path])
    return " ".join(_explained(error, spec) for error in errors) or None


def _explained(error: ValidationError, spec: Mapping[str, Any]) -> str:
    name = str(error.path[0]) if error.path else str(error.message).split("'")[1] if error.validator == "required" else ""
    field = (spec.get("properties") or {}).get(name) or {}
    if field.get("airbyte_secret"):
        said = "is missing" if error.validator == "required" else f"is not valid ({error.validator})"
    elif error.validator == "pattern":
        said = f"{error.instance!r} is not of the form {field.get('pattern_descriptor') or 'the setting expects'}"
    elif error.validator == "required":
        said = "is missing"
    else:
        said = str(error.message)
    example = f" For example: {field['examples'][0]}." if field.get("examples") else ""
    return f"{field.get('title', name)} ({name}): {said}.{example}"


class KustomerEntrypoint(AirbyteEntrypoint):
    """The CDK's entry point, with config errors worded for the person who has to fix them."""

    @staticmethod
    def validate_connection(source_spec: Any, config: Mapping[str, Any]) -> None:
        problems = config_problems(split_config(config)[0], source_spec.connectionSpecification)
        if problems:
            raise AirbyteTracedException(
                message=f"Config validation error: {problems}",
                internal_message=problems,
                failure_type=FailureType.config_error,
            )


def run() -> None:
    args = sys.argv[1:]
    # A missing or unknown command gets argparse's usage message (exit 2), before anything is built.
    parsed = KustomerEntrypoint.parse_args(args)
    if not parsed.command:
        print("usage: source-kustomer {spec,check,discover,read} [--config CONFIG] [--catalog CATALOG] [--state STATE] [--debug]",
              file=sys.stderr)
        sys.exit(2)
    source = _build_source(args)
    if source is None:
        sys.exit(1)
    entrypoint = KustomerEntrypoint(source)
    with PRINT_BUFFER:  # as the CDK's launch(): one write per message, whole lines under concurrency
        for message in entrypoint.run(parsed):
            print(f"{message}\n", end="")


if __name__ == "__main__":
    run()
