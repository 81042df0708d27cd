"""What every user command shares: the server options, the output options and friendly failures.

:func:`command` adds ``--url``, ``--token``, ``--profile``, ``--tz`` and ``-o/--output`` to a command
written as ``def cmd(ctx: Remote, ...)``, so the options are declared once and every command has them
(after the command name, where users put them: ``slotbroker leases -o id``). Nothing here imports the
server: the CLI installs and runs with the client alone.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Annotated, Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from slotbroker.cli.profiles import Profile, resolve
from slotbroker.client import Client, SlotbrokerAPIError
from slotbroker.domain.errors import FieldError, SlotbrokerError, ValidationFailed
from slotbroker.domain.humantime import parse_instant

P = ParamSpec("P")
R = TypeVar("R")

# soft_wrap: long lines (tokens, ids) stay whole so they can be copied from the terminal
console = Console(soft_wrap=True, emoji=False, markup=False, highlight=False)
# An error stays one line however it is shown (piped, Rich wraps at 80 columns): grep and logs find it.
err_console = Console(stderr=True, soft_wrap=True, emoji=False, highlight=False)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    CSV = "csv"
    ID = "id"


UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="SLOTBROKER_URL", help="Server URL (default: the profile's).", show_default=False
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="SLOTBROKER_TOKEN", help="API token.", show_default=False, show_envvar=True
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", envvar="SLOTBROKER_PROFILE", help="Profile in config.toml (slotbroker login)."),
]
TzOpt = Annotated[
    str | None, typer.Option("--tz", help="Time zone to show and read times in (default: local).")
]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table, json, yaml, csv or id (bare ids, one a line).")
]


@dataclass
class Remote:
    """A command's connection and presentation settings, resolved lazily (``--help`` needs no server)."""

    url: str | None
    token: str | None
    profile: str | None
    tz_name: str | None
    output: Output
    _client: Client | None = field(default=None, repr=False)

    @functools.cached_property
    def tz(self) -> tzinfo:
        return zone(self.tz_name)

    def target(self) -> Profile:
        return resolve(self.url, self.token, self.profile)

    @property
    def client(self) -> Client:
        if self._client is None:
            target = self.target()
            self._client = Client(target.url, token=target.token)
        return self._client

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def instant(self, text: str, option: str) -> datetime:
        """A time the user typed (``now+2h``, ``tomorrow 09:00`` ...), read in their zone."""
        return parse_instant(text, now=self.now(), tz=self.tz, field=option)

    def when(self, value: datetime) -> str:
        """A time shown to the user: in their zone, with the offset (``2026-12-07 09:00 +01:00``)."""
        local = value.astimezone(self.tz)
        offset = local.strftime("%z")
        return local.strftime("%Y-%m-%d %H:%M ") + offset[:3] + ":" + offset[3:]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def zone(name: str | None) -> tzinfo:
    """``--tz``: an IANA name, ``UTC``, or (None, ``local``) the machine's zone."""
    if name is None or name.lower() == "local":
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    try:
        return ZoneInfo("UTC" if name.upper() in ("UTC", "Z") else name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"--tz: {name!r} is not a time zone (try UTC, local or Europe/Paris)", [FieldError("--tz", name)]
        ) from None


def _extra_params() -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("output", kw, annotation=OutputOpt, default=Output.TABLE),
        inspect.Parameter("url", kw, annotation=UrlOpt, default=None),
        inspect.Parameter("token", kw, annotation=TokenOpt, default=None),
        inspect.Parameter("profile", kw, annotation=ProfileOpt, default=None),
        inspect.Parameter("tz", kw, annotation=TzOpt, default=None),
    ]


def command(fn: Callable[..., None]) -> Callable[..., None]:
    """Make ``fn(ctx: Remote, **options)`` a Typer command with the shared options; API and input
    errors become a message on stderr and an exit code (2: bad input, 1: anything else)."""
    signature = inspect.signature(fn, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "ctx"]
    params = [*own, *_extra_params()]
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params if p not in positional]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        ctx = Remote(
            url=kwargs.pop("url"),
            token=kwargs.pop("token"),
            profile=kwargs.pop("profile"),
            tz_name=kwargs.pop("tz"),
            output=kwargs.pop("output"),
        )
        try:
            with failing_nicely(ctx):
                _ = ctx.tz  # a bad --tz is bad input whether or not a time gets shown
                fn(ctx, *args, **kwargs)
        finally:
            ctx.close()

    wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # Typer must read the new signature, not fn's
    return wrapper


def _hints(exc: SlotbrokerAPIError, ctx: Remote | None) -> list[str]:
    """What the problem's extension members tell the user: how far a lease can go, which ids match,
    which jobs still run."""
    hints = []
    if exc.max_end is not None:
        when = ctx.when(exc.max_end) if ctx is not None else exc.max_end.isoformat()
        hints.append(f"  the furthest end possible now: {when}")
    if exc.candidates:
        hints.append(f"  matches: {', '.join(exc.candidates)}")
    if exc.running_jobs:
        hints.append(f"  unfinished jobs: {', '.join(exc.running_jobs)} (--force cancels them too)")
    return hints


@contextmanager
def failing_nicely(ctx: Remote | None = None) -> Iterator[None]:
    """Expected errors become a short message and an exit code, not a traceback: 2 for bad input
    (ours or the server's 400/422), 1 for anything else the server refused or could not do."""
    try:
        yield
    except SlotbrokerAPIError as exc:
        err_console.print(f"[red]error[/red] ({exc.status} {exc.code}): {escape(exc.detail)}")
        for f in exc.errors[:20]:
            err_console.print(f"  {f.pointer or '(document)'}: {f.detail}", markup=False)
        try:
            hints = _hints(exc, ctx)
        except SlotbrokerError:  # a bad --tz: the hints in UTC ISO form
            hints = _hints(exc, None)
        for hint in hints:
            err_console.print(hint, markup=False)
        raise typer.Exit(2 if exc.status in (400, 422) else 1) from None
    except SlotbrokerError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {escape(exc.detail)}")
        for field_error in exc.errors[:20]:
            where = field_error.pointer or "(document)"
            err_console.print(f"  {where}: {field_error.detail}", markup=False)
        raise typer.Exit(2 if exc.code == "validation_error" else 1) from None
    except httpx.TransportError as exc:
        err_console.print(f"[red]error[/red]: cannot reach the server: {escape(str(exc))}")
        raise typer.Exit(1) from None
    except (ValueError, OSError) as exc:  # an unreadable file, a database that is not there ...
        err_console.print(f"[red]error[/red]: {escape(str(exc))}")
        raise typer.Exit(2) from None
