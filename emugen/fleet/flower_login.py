"""Flower's login guard: `celery -A emugen flower` refuses to serve its UI without one."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import click

from emugen.errors import FlowerLoginMissing

# Flower's own ways to require a login: basic auth, or OAuth (`--auth` with a provider).
LOGIN_OPTIONS = ("--basic_auth", "--basic-auth", "--auth")
LOGIN_ENV = ("FLOWER_BASIC_AUTH", "FLOWER_AUTH")


def require_login(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Raise FlowerLoginMissing unless Flower, started with `argv` in `environ`, has a login."""
    if any(environ.get(name, "").strip() for name in LOGIN_ENV):
        return
    if any(arg.partition("=")[0] in LOGIN_OPTIONS for arg in argv):
        return
    raise FlowerLoginMissing(
        "refusing to start Flower without a login: anyone who reaches its port could "
        "revoke or kill tasks and read every task's arguments. Set FLOWER_BASIC_AUTH="
        "user:password (e.g. FLOWER_BASIC_AUTH=admin:$(python -c 'import secrets; "
        "print(secrets.token_urlsafe(16))')), or run `emugen up`, which makes one up"
    )


def _check(ctx: click.Context, _: click.Parameter, __: object) -> None:
    # Celery adds its app's preload options to every sub-command; only Flower is guarded.
    if ctx.command.name != "flower" or ctx.resilient_parsing:
        return
    try:
        require_login(ctx.params.get("tornado_argv") or (), os.environ)
    except FlowerLoginMissing as exc:
        click.echo(str(exc), err=True)  # one line, no traceback, no usage text
        ctx.exit(exc.exit_code)


# Not exposed to the command (expose_value=False): Flower's callback takes no such keyword,
# and Celery before 5.7 would pass it on and crash (celery#7894).
REQUIRE_LOGIN = click.Option(
    ["--flower-login-guard"],
    is_flag=True,
    hidden=True,
    expose_value=False,
    callback=_check,
    help="(internal) refuse to start Flower without a login",
)
