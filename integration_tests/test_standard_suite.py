"""The CDK's standard connector test suite (spec, check, discover, read, secret hygiene), offline.

Scenarios come from acceptance-test-config.yml; their config files are written here, pointing at a
sandbox on a free port, before any scenario runs. Image tests need a Docker engine and are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase
from airbyte_cdk.test.standard_tests.pytest_hooks import pytest_generate_tests  # noqa: F401  (parametrizes `scenario`)

from integration_tests.conftest import TOKEN
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox
from source_kustomer import SourceKustomer

CONFIGS = Path(__file__).resolve().parent / "acceptance"


@pytest.fixture(scope="module", autouse=True)
def sandbox_configs():
    with Sandbox(records=1200, seed=21, **FAST_KUSTOMER_LIMITS) as sandbox:
        CONFIGS.mkdir(exist_ok=True)
        (CONFIGS / "sandbox_config.json").write_text(json.dumps({"api_token": TOKEN, "api_url": sandbox.url}))
        (CONFIGS / "rejected_key_config.json").write_text(json.dumps({"api_token": "not-a-kustomer-key", "api_url": sandbox.url}))
        yield


class TestKustomerStandardSuite(SourceTestSuiteBase):
    connector = SourceKustomer


    @classmethod
    def create_connector(cls, scenario):
        # A declarative source reads the config it is built with, so build it with the scenario's.
        config = scenario.get_config_dict(connector_root=cls.get_connector_root_dir(), empty_if_missing=True) if scenario else None
        return SourceKustomer(config=config)
