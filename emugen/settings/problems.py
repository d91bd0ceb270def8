"""Pydantic validation errors as one line each: the dotted field, the bad value, what is allowed."""

from __future__ import annotations

import reprlib
from typing import Any

from pydantic import BaseModel, ValidationError

from emugen.settings.model import Settings

MAX_PROBLEMS = 20  # a file with thousands of bad values needs its first few, not a wall


def problems(exc: ValidationError) -> list[str]:
    lines = [_describe(err) for err in exc.errors(include_url=False)[:MAX_PROBLEMS]]
    more = exc.error_count() - len(lines)
    return lines + ([f"... and {more:,} more problems like these"] if more > 0 else [])


def _describe(err: Any) -> str:
    """One line per pydantic error: the dotted field, the bad value, what is allowed."""
    loc = ".".join(str(p) for p in err["loc"] if p != "[key]") or "(top level)"
    kind, msg, value = err["type"], err["msg"], err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        return f"{loc}: unknown key; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{loc}: required but missing"
    msg = msg.removeprefix("Value error, ")
    if kind == "enum":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{loc}: got {_short(value)}; allowed: {expected}"
    if kind == "value_error" and not err["loc"]:  # a whole-config check names its own fields
        return str(msg)
    if kind == "value_error":  # our own validators already name the value where it helps
        return f"{loc}: {msg}" if "got" in msg else f"{loc}: got {_short(value)}; {msg}"
    return f"{loc}: got {_short(value)}; {msg[0].lower()}{msg[1:]}"


_BOUNDED = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
for _name, _limit in (
    ("maxlevel", 3),
    ("maxdict", 4),
    ("maxlist", 4),
    ("maxtuple", 4),
    ("maxset", 4),
    ("maxstring", 60),
    ("maxlong", 40),
    ("maxother", 60),
):
    setattr(_BOUNDED, _name, _limit)


def _short(value: Any) -> str:
    # reprlib stops after a few items per level: the cost and the text stay bounded however
    # large (or alias-expanded) the value is; a plain repr() of a YAML bomb runs for minutes.
    text = _BOUNDED.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ["(see `emugen config schema`)"]
        model = annotation
    return list(model.model_fields)
