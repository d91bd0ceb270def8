"""`emugen up` checks before it promises: its ports are free, and each URL it prints answered as
this fleet (not as somebody else's dashboard or Flower on the same port)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from emugen.cli import main
from emugen.cli.up import Banner
from emugen.errors import PortTaken
from emugen.fleet.broker import answers, free_port
from emugen.fleet.supervisor import flower_accepts, serves_fleet
from emugen.fleet.up import PROCESSES, Child, ProcessDef, check_ports, on_ports
from tests.fleet_helpers import write_config


@contextmanager
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that a socket of this test listens on."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        yield squatter.getsockname()[1]


def _up(
    tmp_path: Path, args: list[str], env: dict[str, str] | None = None
) -> tuple[CliRunner, object, str]:
    broker_url = f"redis://127.0.0.1:{free_port()}/0"
    config = write_config(
        tmp_path / "emugen.yaml", f"sqlite:///{tmp_path / 'e.db'}", broker_url=broker_url
    )
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["up", "--config", str(config), *args],
        env={"EMUGEN_WEB_PORT": None, "EMUGEN_FLOWER_PORT": None, **(env or {})},
    )
    return runner, result, broker_url


@pytest.mark.parametrize("option", ["--web-port", "--flower-port"])
def test_a_taken_port_is_refused_before_anything_starts_naming_the_port_and_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    monkeypatch.chdir(tmp_path)
    other = "--flower-port" if option == "--web-port" else "--web-port"
    with listening() as port:
        _, result, broker_url = _up(tmp_path, [option, str(port), other, str(free_port())])
    assert result.exit_code == 2, result.output
    assert f"port {port}" in result.output and f"{option} PORT" in result.output
    assert result.output.count("\n") == 1
    # nothing started: no private Redis, no database, no logs
    assert not answers(broker_url)
    assert not (tmp_path / "var").exists() and not (tmp_path / "e.db").exists()


def test_the_ports_come_from_the_environment_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with listening() as port:
        _, result, _ = _up(
            tmp_path, [], {"EMUGEN_FLOWER_PORT": str(port), "EMUGEN_WEB_PORT": str(free_port())}
        )
    assert result.exit_code == 2, result.output
    assert f"port {port}" in result.output and "$EMUGEN_FLOWER_PORT" in result.output


def test_one_port_for_both_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()
    _, result, _ = _up(tmp_path, ["--web-port", str(port), "--flower-port", str(port)])
    assert result.exit_code == 2
    assert f"both ask for port {port}" in result.output


def test_chosen_ports_rewrite_the_commands_and_urls_and_are_checked() -> None:
    moved = {p.name: p for p in on_ports(PROCESSES, {"web": 8100, "flower": 5655})}
    assert moved["web"].command == "emugen web --host 127.0.0.1 --port 8100"
    assert "--port=5655 " in moved["flower"].command
    assert (moved["web"].url, moved["flower"].url) == (
        "http://127.0.0.1:8100",
        "http://127.0.0.1:5655",
    )
    assert moved["worker"] == next(p for p in PROCESSES if p.name == "worker")
    with listening() as port, pytest.raises(PortTaken, match=f"port {port} on 127.0.0.1"):
        check_ports(on_ports(PROCESSES, {"web": port, "flower": free_port()}))
    check_ports(on_ports(PROCESSES, {"web": free_port(), "flower": free_port()}))


# -- telling our servers from somebody else's ------------------------------------------------


@contextmanager
def server(
    respond: Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str]]],
) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, headers = respond(self)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_dashboard_is_ours_only_when_it_names_our_fleet() -> None:
    with (
        server(lambda _: (200, {"X-Emugen-Fleet": "ours"})) as ours,
        server(lambda _: (200, {"X-Emugen-Fleet": "theirs"})) as theirs,
        server(lambda _: (200, {})) as plain,
    ):
        assert serves_fleet(ours, "ours")
        assert not serves_fleet(theirs, "ours") and not serves_fleet(plain, "ours")
    assert not serves_fleet(f"http://127.0.0.1:{free_port()}", "ours")  # nobody there


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_flower_is_ours_only_when_it_lets_in_our_login_and_nobody_else() -> None:
    def checks(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str]]:
        ok = handler.headers.get("Authorization") == _basic("emugen", "pw1")
        return (200, {}) if ok else (401, {"WWW-Authenticate": "Basic"})

    with (
        server(checks) as ours,
        server(lambda _: (200, {})) as open_to_all,
        server(lambda _: (401, {})) as someone_elses,
    ):
        assert flower_accepts(ours, "emugen", "pw1")
        assert not flower_accepts(open_to_all, "emugen", "pw1")
        assert not flower_accepts(someone_elses, "emugen", "pw1")


def test_the_dashboard_stamps_every_response_with_the_fleet_id_up_gave_it(tmp_path: Path) -> None:
    from emugen.web.app import create_app

    config = write_config(
        tmp_path / "emugen.yaml", f"sqlite:///{tmp_path / 'e.db'}", broker_url="memory://"
    )
    app = create_app(config, environ={"EMUGEN_FLEET_ID": "f1eet"})
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/health").headers["x-emugen-fleet"] == "f1eet"
        assert client.get("/no/such/page").headers["x-emugen-fleet"] == "f1eet"
        assert client.get("/static/dashboard.css").headers["x-emugen-fleet"] == "f1eet"
    plain = create_app(config, environ={})
    with TestClient(plain, base_url="http://127.0.0.1") as client:
        assert "x-emugen-fleet" not in client.get("/api/health").headers


# -- the banner --------------------------------------------------------------------------------


class FakePopen:
    def __init__(self, alive: bool) -> None:
        self.pid, self.returncode = 1, None if alive else 1

    def poll(self) -> int | None:
        return self.returncode


def _child(name: str, port: int, alive: bool = True) -> Child:
    spec = ProcessDef(
        name,
        f"serve --port {port}",
        essential=False,
        port=port,
        title={"web": "dashboard", "flower": "Flower"}[name],
    )
    return Child(spec, Path(f"var/log/{name}.log"), popen=FakePopen(alive))  # type: ignore[arg-type]


def test_the_banner_prints_a_url_only_once_it_answered_as_this_fleet() -> None:
    answers_now = {"http://127.0.0.1:8100": False}
    said: list[str] = []
    banner = Banner([_child("web", 8100)], {"web": lambda url: answers_now[url]}, said.append)
    banner.poll()
    assert said == []  # somebody else answers there (or nobody yet): no URL
    answers_now["http://127.0.0.1:8100"] = True
    banner.next_probe = 0
    banner.poll()
    banner.next_probe = 0
    banner.poll()
    assert said == ["dashboard  http://127.0.0.1:8100"]  # once


def test_the_banner_never_prints_the_url_of_a_process_that_died() -> None:
    said: list[str] = []
    banner = Banner(
        [_child("flower", 5655, alive=False)],
        {"flower": lambda _: True},
        said.append,
        {"flower": "Flower login: ..."},
    )
    banner.poll()
    assert said == [] and banner.pending == []


def test_the_banner_warns_instead_when_the_port_never_answers_as_ours() -> None:
    said: list[str] = []
    banner = Banner([_child("web", 8100)], {"web": lambda _: False}, said.append, wait_s=0.05)
    banner.poll()
    time.sleep(0.1)
    banner.next_probe = 0
    banner.poll()
    assert len(said) == 1 and said[0].startswith("WARNING: http://127.0.0.1:8100 did not answer")
    assert "var/log/web.log" in said[0]


def test_the_flower_login_follows_flowers_url() -> None:
    said: list[str] = []
    Banner(
        [_child("flower", 5655)],
        {"flower": lambda _: True},
        said.append,
        {"flower": "Flower login: emugen / x"},
    ).poll()
    assert said == ["Flower     http://127.0.0.1:5655", "Flower login: emugen / x"]
