"""docker-compose.yml describes the Procfile's fleet (no Docker engine here: parsed, not run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from emugen.up import read_procfile

REPO = Path(__file__).resolve().parents[1]
APP = ("worker", "beat", "flower", "web")  # the Procfile's processes, one service each
# Inside a container 127.0.0.1 is unreachable through a published port: compose binds
# 0.0.0.0 there and publishes on the host's 127.0.0.1 instead (checked below).
IN_CONTAINER = {"--address=0.0.0.0": "--address=127.0.0.1", "0.0.0.0": "127.0.0.1"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return data["services"]


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_the_fleet_services_exist(services: dict[str, Any]) -> None:
    assert {"redis", "postgres", *APP} <= set(services)


def test_commands_match_the_procfile(services: dict[str, Any]) -> None:
    procfile = read_procfile(REPO / "Procfile")
    assert set(procfile) == set(APP)
    for name in APP:
        compose = [IN_CONTAINER.get(a, a) for a in argv(services[name]["command"])]
        assert compose == argv(procfile[name]), name


def test_exactly_one_beat(services: dict[str, Any]) -> None:
    beats = [name for name, svc in services.items()
             if "beat" in argv(svc.get("command", []))]
    assert beats == ["beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for svc in services.values():
        assert "-B" not in argv(svc.get("command", [])) and "--beat" not in argv(
            svc.get("command", []))


def test_every_app_service_runs_the_one_image(services: dict[str, Any]) -> None:
    app = {name: svc for name, svc in services.items() if "build" in svc or name in APP}
    assert set(APP) <= set(app)
    assert {(str(svc.get("build")), svc.get("image")) for svc in app.values()} == {
        (".", "emugen:local")}
    assert (REPO / "Dockerfile").is_file()


def test_app_services_point_at_postgres_and_redis(services: dict[str, Any]) -> None:
    for name in APP:
        env = services[name]["environment"]
        assert re.fullmatch(r"postgresql://[^@]+@postgres:5432/\w+", env["EMUGEN_DATABASE_URL"])
        assert env["EMUGEN_BROKER_URL"] == "redis://redis:6379/0"
        deps = services[name]["depends_on"]
        assert deps["redis"]["condition"] == "service_healthy", name
        if name != "flower":  # Flower reads the broker only
            assert deps["postgres"]["condition"] == "service_healthy", name


def test_tables_are_created_once_before_workers_and_beat(services: dict[str, Any]) -> None:
    init = services["init"]
    assert argv(init["command"]) == ["emugen", "db", "init"]
    assert init["restart"] == "no"
    for name in ("worker", "beat", "web"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully")


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name in ("redis", "postgres", *APP):
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "/healthcheck" in " ".join(services["flower"]["healthcheck"]["test"])


def test_flower_and_web_are_published_on_the_host_loopback_only(
        services: dict[str, Any]) -> None:
    for name, port in (("flower", 5555), ("web", 8000)):
        assert services[name]["ports"] == [f"127.0.0.1:{port}:{port}"]
    for name, svc in services.items():
        for published in svc.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), name


def test_flower_requires_a_login_from_the_environment(services: dict[str, Any]) -> None:
    value = services["flower"]["environment"]["FLOWER_BASIC_AUTH"]
    assert value.startswith("${FLOWER_BASIC_AUTH:?")  # compose refuses to start without it
    assert "--max_tasks=" in services["flower"]["command"]


def test_dockerfile_installs_the_package_with_postgres_and_runs_unprivileged() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.1[1-3]", text, re.M)
    assert 'pip install ".[postgres]"' in text
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    for copied in ("pyproject.toml", "emugen", "config"):
        assert re.search(rf"^COPY .*\b{copied}\b", text, re.M), copied
