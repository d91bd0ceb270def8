"""One store with arrival conditions per test session, shared by the reference consumers; the
consumers' tests kept together on one pytest-xdist worker (`--dist loadgroup`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples.arrival_zone import ArrivalZone, build_zone

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # one group: the session's arrival zone is built once, and the Spark and dbt runs (not
    # judged on latency) go one at a time beside the unit tests on the other worker
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.xdist_group("examples"))


@pytest.fixture(scope="session")
def arrival_zone(tmp_path_factory: pytest.TempPathFactory) -> ArrivalZone:
    return build_zone(tmp_path_factory.mktemp("arrival_zone"))
