"""One store with arrival conditions per test session, shared by the reference consumers."""

from __future__ import annotations

import pytest

from tests.examples.arrival_zone import ArrivalZone, build_zone


@pytest.fixture(scope="session")
def arrival_zone(tmp_path_factory: pytest.TempPathFactory) -> ArrivalZone:
    return build_zone(tmp_path_factory.mktemp("arrival_zone"))
