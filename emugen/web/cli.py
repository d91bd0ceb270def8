"""`emugen web`: serve the dashboard and the HTTP API with uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from emugen.web import DEFAULT_FLOWER_URL, POLL_INTERVAL_S


@click.command("web")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback needs EMUGEN_WEB_TOKEN, which "
    "control endpoints then require as 'Authorization: Bearer <token>'.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $EMUGEN_CONFIG or config/emugen.yaml).",
)
@click.option(
    "--flower-url",
    envvar="EMUGEN_FLOWER_URL",
    default=DEFAULT_FLOWER_URL,
    show_default=True,
    help="Where the page's Flower link points.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.01, 10.0),
    default=POLL_INTERVAL_S,
    show_default=True,
    help="Seconds between the server's checks for a change to push to the page.",
)
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="On loopback, also answer requests whose Host header is NAME (e.g. behind a "
    "reverse proxy); other names are refused (DNS rebinding).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every HTTP request (uvicorn's access log).",
)
def web_cmd(
    host: str,
    port: int,
    config_file: Path | None,
    flower_url: str,
    poll_interval: float,
    allowed_hosts: tuple[str, ...],
    access_log: bool,
) -> None:
    """Serve the live dashboard and the HTTP API (OpenAPI at /docs, Prometheus at /metrics).

    \b
    Example:
      emugen web --port 8100
    """
    import uvicorn

    from emugen.settings import config_path
    from emugen.web.app import create_app
    from emugen.web.security import is_loopback

    app = create_app(
        config_file,
        host=host,
        flower_url=flower_url or None,
        poll_interval=poll_interval,
        allowed_hosts=allowed_hosts,
    )
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"emugen web: http://{shown}:{port}/  (API /docs, metrics /metrics; config "
        f"{config_path(config_file)}; control "
        f"{'open on loopback' if is_loopback(host) else 'needs the bearer token'})"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=2,
        proxy_headers=False,
    )
