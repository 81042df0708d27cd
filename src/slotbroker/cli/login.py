"""``slotbroker login URL`` and ``slotbroker profiles``: remember servers, like ``kubectl`` contexts."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import typer

from slotbroker.cli import remote
from slotbroker.cli.output import Result, emit
from slotbroker.cli.profiles import Profile, config_path, profiles, read_config, save_profile
from slotbroker.cli.remote import Remote, console
from slotbroker.client import Client


def _masked(token: str | None) -> str:
    return "-" if not token else token[:7] + "..."


@remote.command
def login(
    ctx: Remote,
    server: Annotated[str, typer.Argument(help="The server's URL, e.g. https://broker.example.org.")],
    name: Annotated[str | None, typer.Option("--name", help="Profile name (default: the host).")] = None,
    default: Annotated[bool, typer.Option(help="Make it the default profile.")] = True,
) -> None:
    """Check a token against a server, then store both as a profile (config.toml, mode 0600).

    The token comes from --token or SLOTBROKER_TOKEN, else it is asked for (not echoed)."""
    token = ctx.token or typer.prompt("token", hide_input=True)
    with Client(server, token=token) as api:
        api.list_leases(limit=1)  # any answer but 401/403 means the token is good here
    profile = Profile(name or urlsplit(server).netloc or server, server, token)
    path = save_profile(profile, make_default=default)
    console.print(f"profile {profile.name!r} saved in {path}{' (default)' if default else ''}")


@remote.command
def profiles_(ctx: Remote) -> None:
    """List the stored profiles (tokens shortened)."""
    config = read_config()
    default = config.get("default")
    found = list(profiles(config).values())
    emit(
        Result(
            data=[{"name": p.name, "url": p.url, "default": p.name == default} for p in found],
            columns=("profile", "url", "token", "default"),
            rows=[(p.name, p.url, _masked(p.token), "*" if p.name == default else "") for p in found],
            ids=[p.name for p in found],
            title=f"profiles in {config_path()}",
        ),
        ctx.output,
    )
