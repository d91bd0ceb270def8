"""docker-compose.yml describes the Procfile's fleet (no Docker engine here: parsed, not run)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from emugen.fleet.up import read_procfile, resolve

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
    assert {"redis", "postgres", "s3", *APP} <= set(services)


def test_the_worker_service_scales(services: dict[str, Any]) -> None:
    """`docker compose up --scale worker=4` needs replicas that differ in nothing fixed: no
    container name, no published host port, no fixed hostname (celery's node name), no
    replica count."""
    worker = services["worker"]
    for fixed in ("container_name", "hostname", "ports"):
        assert fixed not in worker, fixed
    assert "replicas" not in worker.get("deploy", {})
    assert not [v for v in worker.get("volumes", []) if not str(v).endswith(":ro")], (
        "a worker writes nothing on a volume: replicas share no files"
    )


def test_the_landing_zone_is_the_s3_stand_in_and_its_bucket_exists_first(
    services: dict[str, Any],
) -> None:
    assert services["s3"]["image"].startswith("motoserver/moto:")
    bucket_cmd = " ".join(argv(services["bucket"]["command"]))
    assert services["bucket"]["depends_on"]["s3"]["condition"] == "service_healthy"
    for name in ("worker", "web", "beat"):
        env = services[name]["environment"]
        root = env["EMUGEN_LANDING_ROOT"]
        assert root.startswith("s3://") and env["AWS_ENDPOINT_URL_S3"] == "http://s3:5000"
        assert f"'{root.removeprefix('s3://').split('/')[0]}'" in bucket_cmd
        assert services[name]["depends_on"]["bucket"]["condition"] == (
            "service_completed_successfully"
        )


def test_commands_match_the_procfile(services: dict[str, Any]) -> None:
    procfile = read_procfile(REPO / "Procfile")
    assert set(procfile) == set(APP)
    for name in APP:
        compose = [IN_CONTAINER.get(a, a) for a in argv(services[name]["command"])]
        assert compose == argv(procfile[name]), name


def test_exactly_one_beat(services: dict[str, Any]) -> None:
    beats = [name for name, svc in services.items() if "beat" in argv(svc.get("command", []))]
    assert beats == ["beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for svc in services.values():
        assert "-B" not in argv(svc.get("command", [])) and "--beat" not in argv(
            svc.get("command", [])
        )


def test_every_app_service_runs_the_one_image(services: dict[str, Any]) -> None:
    app = {name: svc for name, svc in services.items() if "build" in svc or name in APP}
    assert set(APP) <= set(app)
    assert {(str(svc.get("build")), svc.get("image")) for svc in app.values()} == {
        (".", "emugen:local")
    }
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
            "service_completed_successfully"
        )


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name in ("redis", "postgres", "s3", *APP):
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "/healthcheck" in " ".join(services["flower"]["healthcheck"]["test"])


def test_flower_and_web_are_published_on_the_host_loopback_only(services: dict[str, Any]) -> None:
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
    assert 'pip install ".[postgres,s3]"' in text  # psycopg and s3fs
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    for copied in ("pyproject.toml", "emugen", "config"):
        assert re.search(rf"^COPY .*\b{copied}\b", text, re.M), copied


# -- each service's command, run with its environment, as its container would -------------------

# What the operator exports before `docker compose up` (the file's header says so).
HOST_ENV = {
    "FLOWER_BASIC_AUTH": "admin:compose-test-password",
    "EMUGEN_WEB_TOKEN": "compose-test-token-0123456789abcdef",
}
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class ComposeRefuses(Exception):
    """compose's own refusal: a `${VAR:?message}` whose variable is unset or empty."""


def interpolate(value: str, host: dict[str, str]) -> str:
    """compose's variable substitution (`$$`, `${V}`, `${V:-default}`, `${V:?error}`)."""

    def one(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        name, op, arg, given = m["name"], m["op"], m["arg"], host.get(m["name"])
        if op in (":?", "?") and (given is None or (op == ":?" and not given)):
            raise ComposeRefuses(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and (given is None or (op == ":-" and not given)):
            return arg
        return given or ""

    return _VARIABLE.sub(one, value)


def container_env(service: dict[str, Any], host: dict[str, str], folder: Path) -> dict[str, str]:
    """The service's environment after substitution, with what only a compose network
    provides swapped for local stand-ins: the config mount, the postgres and s3 services."""
    env = {k: interpolate(str(v), host) for k, v in service.get("environment", {}).items()}
    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        env = {k: v.replace(target, str((REPO / source).resolve())) for k, v in env.items()}
    env["EMUGEN_DATABASE_URL"] = f"sqlite:///{folder / 'emugen.db'}"  # the postgres service
    env["EMUGEN_LANDING_ROOT"] = str(folder / "landing")  # the s3 service
    env.pop("AWS_ENDPOINT_URL_S3", None)
    return env


def test_compose_refuses_to_start_the_dashboard_or_flower_without_their_secrets(
    services: dict[str, Any],
) -> None:
    for name, variable in (("web", "EMUGEN_WEB_TOKEN"), ("flower", "FLOWER_BASIC_AUTH")):
        without = {k: v for k, v in HOST_ENV.items() if k != variable}
        with pytest.raises(ComposeRefuses, match=variable):
            container_env(services[name], without, REPO)


def _in_own_network(argv: list[str]) -> list[str]:
    """argv in a network namespace of its own, loopback only, as in a container: 0.0.0.0 and
    the fixed ports bind there, and the `redis` host name resolves to nothing."""
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def _program(argv: list[str]) -> list[str]:
    return [sys.executable if argv[0] == "python" else resolve(argv[0])[0], *argv[1:]]


@pytest.mark.integration
def test_every_app_service_starts_with_its_own_environment_and_passes_its_healthcheck(
    services: dict[str, Any], tmp_path: Path
) -> None:
    if subprocess.run(_in_own_network(["true"]), capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("CI is set but `unshare --net` does not work here (needs root)")
        pytest.skip("`unshare --net` needs root; CI runs this")

    def run(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        env = {
            **container_env(services[name], HOST_ENV, tmp_path),
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
        }
        log = (tmp_path / f"{name}.log").open("wb")
        return subprocess.Popen(
            _in_own_network(_program(argv)),
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]

    init = run("init", argv(services["init"]["command"]))
    assert init.wait(60) == 0, log("init")
    procs = {name: run(name, argv(services[name]["command"])) for name in APP}
    try:
        # web and Flower answer their own healthchecks inside their namespaces; worker and
        # beat, whose checks need the redis service, must at least still be running by then
        for name in ("web", "flower"):
            check = argv(services[name]["healthcheck"]["test"][1:])
            deadline = time.monotonic() + 60
            while True:
                assert procs[name].poll() is None, f"{name} exited:\n{log(name)}"
                probe = subprocess.run(
                    ["nsenter", f"--net=/proc/{procs[name].pid}/ns/net", *_program(check)],
                    capture_output=True,
                    timeout=30,
                )
                if probe.returncode == 0:
                    break
                assert time.monotonic() < deadline, f"{name} never healthy:\n{log(name)}"
                time.sleep(0.5)
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{log(name)}"
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_the_compose_file_is_valid_against_the_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"  # the dev extra installs it
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(REPO / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_bucket_service_creates_the_landing_bucket_on_the_stand_in_and_reruns(
    services: dict[str, Any], tmp_path: Path
) -> None:
    """Its command, with its environment, against moto's S3 server on a free local port."""
    from moto.server import ThreadedMotoServer

    from emugen.fleet.broker import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
        region_name="us-east-1",
    )
    root = services["worker"]["environment"]["EMUGEN_LANDING_ROOT"]
    bucket = root.removeprefix("s3://").split("/")[0]
    try:
        # moto shares its buckets among every server in one process: compare before and after
        before = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert bucket not in before
        env = {
            **container_env(services["bucket"], HOST_ENV, tmp_path),
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        }
        for _ in range(2):  # a restarted stack runs it again
            done = subprocess.run(
                _program(argv(services["bucket"]["command"])),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
        after = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert after - before == {bucket}
    finally:
        server.stop()
