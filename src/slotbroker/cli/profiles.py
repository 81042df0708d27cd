"""Where the CLI finds its server: flags, ``SLOTBROKER_*`` variables, or a profile in config.toml.

Profiles live in ``$XDG_CONFIG_HOME/slotbroker/config.toml`` (``~/.config`` by default), written with
mode 0600 because they hold tokens, in the shape ``kubectl`` contexts and ``clouds.yaml`` users know::

    default = "lab"
    [profiles.lab]
    url = "https://broker.example.org"
    token = "sb_..."

A URL given by flag or variable never borrows a profile's token unless ``--profile`` names one, so a
token is only ever sent to the server it was stored for.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from slotbroker.domain.errors import FieldError, ValidationFailed


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "slotbroker" / "config.toml"


@dataclass(frozen=True)
class Profile:
    name: str
    url: str
    token: str | None = None


def read_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailed(f"{path}: {exc}", [FieldError(str(path), str(exc))]) from None


def profiles(config: dict[str, Any]) -> dict[str, Profile]:
    found: dict[str, Profile] = {}
    for name, body in (config.get("profiles") or {}).items():
        if isinstance(body, dict) and isinstance(body.get("url"), str):
            token = body.get("token")
            found[name] = Profile(name, body["url"], token if isinstance(token, str) else None)
    return found


def save_profile(profile: Profile, *, make_default: bool, path: Path | None = None) -> Path:
    """Add or replace ``profile`` in the config file (created 0600; its directory 0700)."""
    path = path or config_path()
    config = read_config(path)
    entry: dict[str, str] = {"url": profile.url}
    if profile.token is not None:
        entry["token"] = profile.token
    config.setdefault("profiles", {})[profile.name] = entry
    if make_default or "default" not in config:
        config["default"] = profile.name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        tomli_w.dump(config, f)
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file left over from an earlier run
    tmp.replace(path)
    return path


def resolve(url: str | None, token: str | None, profile: str | None) -> Profile:
    """The server to talk to: ``--profile`` (flags override its fields), else the URL given by flag or
    variable with the token given the same way, else the default profile."""
    config = read_config()
    known = profiles(config)
    if profile is not None:
        if profile not in known:
            names = ", ".join(sorted(known)) or "none yet; run `slotbroker login URL`"
            raise ValidationFailed(
                f"--profile: no profile {profile!r} in {config_path()} ({names})",
                [FieldError("--profile", profile)],
            )
        chosen = known[profile]
        return Profile(chosen.name, url or chosen.url, token or chosen.token)
    if url is not None:
        return Profile("", url, token)
    default = config.get("default")
    if isinstance(default, str) and default in known:
        chosen = known[default]
        return Profile(chosen.name, chosen.url, token or chosen.token)
    raise ValidationFailed(
        "no server: pass --url (or set SLOTBROKER_URL), or run `slotbroker login URL` once",
        [FieldError("--url", "missing")],
    )
