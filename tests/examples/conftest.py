"""One store with arrival conditions per test session, shared by the reference consumers; the
consumers' tests kept together on one pytest-xdist worker under `-n` (tests/conftest.py's
scheduler), so that the arrival zone is built once."""

from __future__ import annotations

import pytest

from tests.examples.arrival_zone import ArrivalZone, build_zone


@pytest.fixture(scope="session")
def arrival_zone(tmp_path_factory: pytest.TempPathFactory) -> ArrivalZone:
    return build_zone(tmp_path_factory.mktemp("arrival_zone"))
