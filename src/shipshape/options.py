"""``SHIPSHAPE_*`` settings: each feature's defaults in one immutable table, checked at start-up.

A feature declares its keys as a tuple of :class:`Option`: the default (or a
function of the config, for defaults such as "on in production"), what the
key accepts, what it does, and a check that returns the value to use or
raises ``ValueError``. :func:`apply` fills in the defaults for keys the app
left alone and checks every value, so a bad one stops start-up with one line
naming the key and what it accepts (:class:`~shipshape.config.ConfigError`),
never a 500 on some later request. ``docs/configuration.md`` is rendered from
the same tables by :func:`markdown_table`, and a test keeps it in step::

    OPTIONS = (flag("SHIPSHAPE_CSRF", True, "app-wide CSRF checks"),)
    apply(app, OPTIONS)
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quart import Quart

from shipshape.config import ConfigError, parse_rate_limits

Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Derived:
    """A default worked out from the rest of the config, such as "on in production"."""

    compute: Callable[[Quart], Any]
    shown: str  # how the docs state it


@dataclass(frozen=True)
class Option:
    """One ``SHIPSHAPE_*`` key (or a Quart key whose default Shipshape replaces)."""

    key: str
    default: Any  # a value, or a Derived
    accepts: str  # what a good value is, for the error line and the docs
    doc: str  # what the key does, for the docs
    check: Check  # returns the value to store; raises ValueError when bad
    shown: str | None = None  # the default as the docs state it, when repr() won't do

    @property
    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if isinstance(self.default, Derived):
            return self.default.shown
        return f"`{self.default!r}`"


def apply(app: Quart, options: Iterable[Option]) -> None:
    """Fill in defaults the app left alone, then check every value, in order.

    A key the app left at Quart's own default (``MAX_CONTENT_LENGTH``'s 16 MiB)
    counts as left alone, so Shipshape's stricter value applies.
    """
    config = app.config
    for option in options:
        unset = option.key not in config or config[option.key] == Quart.default_config.get(
            option.key, _MISSING
        )
        if unset:
            default = option.default
            config[option.key] = default.compute(app) if isinstance(default, Derived) else default
        value = config[option.key]
        try:
            config[option.key] = option.check(value)
        except (ValueError, TypeError):
            raise ConfigError(option.key, option.accepts.replace("`", ""), _shown(value)) from None


_MISSING = object()

#: Every key of this namespace; one no table holds is a mistake, not a setting.
PREFIX = "SHIPSHAPE_"


def refuse_unknown(config: Mapping[str, Any], options: Iterable[Option]) -> None:
    """Stop start-up at a ``SHIPSHAPE_*`` key that no table holds.

    Such a key is a typo or a setting that does not exist, and the feature it
    meant would otherwise run on its default without a word (a misspelt
    ``SHIPSHAPE_CSRF`` would leave CSRF on, a misspelt ``SHIPSHAPE_HSTS`` would
    leave HSTS as it was). The line names the key and the nearest real one.
    """
    known = {option.key for option in options}
    names = [key.removeprefix(PREFIX) for key in known]  # the shared prefix matches any key
    for key in config:
        if isinstance(key, str) and key.startswith(PREFIX) and key not in known:
            near = difflib.get_close_matches(key.removeprefix(PREFIX), names, n=1)
            hint = f"; did you mean {PREFIX}{near[0]}?" if near else ""
            raise ConfigError(key, f"a setting listed in docs/configuration.md{hint}")


def _shown(value: object) -> object:
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."


def markdown_table(options: Iterable[Option]) -> str:
    """The docs' table of ``options``: key, default, what it accepts, what it does."""
    lines = ["| key | default | accepts | what |", "|---|---|---|---|"]
    for option in options:
        cells = (f"`{option.key}`", option.default_text, option.accepts, option.doc)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


# Checks. Each returns the value to store or raises ValueError.


def is_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not a bool")
    return value


def is_int(low: int, high: int | None = None) -> Check:
    def check(value: object) -> int:
        if type(value) is not int or value < low or (high is not None and value > high):
            raise ValueError("out of range")
        return value

    return check


def is_seconds(low: float, high: float) -> Check:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            raise ValueError("out of range")
        return float(value)

    return check


_PATH_RE = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


def is_path(value: object) -> str:
    """An absolute URL path such as ``/healthz``: no host, query, space or control character."""
    if not isinstance(value, str) or not _PATH_RE.fullmatch(value) or value.startswith("//"):
        raise ValueError("not a path")
    return value


def is_prefix(value: object) -> str:
    """A path that ends in ``/``, such as ``/static/``."""
    path = is_path(value)
    if not path.endswith("/"):
        raise ValueError("not a prefix")
    return path


def is_optional_path(value: object) -> str | None:
    """A path, or ``None`` (or ``""``) for off."""
    return None if value in (None, "") else is_path(value)


def is_paths(value: object) -> tuple[str, ...]:
    return tuple(is_path(item) for item in items(value))


def is_hosts(value: object) -> tuple[str, ...]:
    """Host names or addresses, lower-cased: ``localhost``, ``127.0.0.1``, ``[::1]``."""
    hosts = tuple(str(item).strip().lower() for item in items(value))
    if not all(re.fullmatch(r"[a-z0-9.\-]+|\[[0-9a-f:.]+\]", host) for host in hosts):
        raise ValueError("not host names")
    return hosts


def is_name(value: object) -> str:
    """A form-field or header name: letters, digits, ``-`` and ``_``."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ValueError("not a name")
    return value


def is_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("not text")
    return value


def is_header_value(value: object) -> str | None:
    """A header value of printable ASCII, or ``None`` to send no header."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[\x20-\x7e]+", value):
        raise ValueError("not a header value")
    return value


def one_of(*allowed: str, none: bool = True) -> Check:
    """One of ``allowed`` (exact spelling), or ``None`` when ``none``."""

    def check(value: object) -> str | None:
        if value is None and none:
            return None
        if value not in allowed:
            raise ValueError("not allowed")
        return str(value)

    return check


def is_rate_limits(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    parse_rate_limits(value)  # raises ConfigError, a ValueError
    return value


def is_folder(value: object) -> str:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValueError("not a folder")
    return str(value)


def sequence_of(kind: type, name: str) -> Check:
    def check(value: object) -> tuple[Any, ...]:
        found = tuple(items(value))
        if not all(isinstance(item, kind) for item in found):
            raise ValueError(f"not a sequence of {name}")
        return found

    return check


def items(value: object) -> Sequence[object]:
    """A list or tuple as it is; a string split at commas."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError("not a sequence")
    return list(value)


def flag(key: str, default: bool | Derived, doc: str) -> Option:
    """A feature switch or boolean setting."""
    return Option(key, default, "`True` or `False`", doc, is_flag)


def in_production(app: Quart) -> bool:
    return bool(app.config.get("APP_ENV") == "production")


def in_development(app: Quart) -> bool:
    return bool(app.config.get("APP_ENV", "development") == "development")


ON_IN_PRODUCTION = Derived(in_production, "on in production")
ON_IN_DEVELOPMENT = Derived(in_development, "on in development")
