"""The presets shipped inside the package, and `emugen init`'s config written from one.

The repository's config/ folder holds the same files for a checkout (tests/test_init.py keeps
them identical); an installed wheel has only these.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from emugen.errors import InitRefused
from emugen.files.atomic import replace_atomically
from emugen.settings.loading import DEFAULT_CONFIG, settings_from_text

DEFAULT_PRESET = "emulated"
_PACKAGE = "emugen"
_FOLDER = "presets"
_DESCRIBED = "# emugen configuration: "


def preset_names() -> list[str]:
    """The packaged presets by name (`emulated`, `production`, ...), the default first."""
    found = sorted(
        entry.name.removesuffix(".yaml")
        for entry in resources.files(_PACKAGE).joinpath(_FOLDER).iterdir()
        if entry.name.endswith(".yaml")
    )
    return sorted(found, key=lambda name: name != DEFAULT_PRESET)


def preset_text(name: str) -> str:
    """The YAML text of the packaged preset `name`, comments included."""
    if name not in preset_names():
        raise InitRefused(f"--preset: got {name!r}; allowed: {', '.join(preset_names())}")
    return resources.files(_PACKAGE).joinpath(_FOLDER, f"{name}.yaml").read_text("utf-8")


def active_text(name: str) -> str:
    """The preset as the active config: its header says so and where to check it."""
    lines = preset_text(name).splitlines(keepends=True)
    if lines and lines[0].startswith(_DESCRIBED):
        what = lines[0].removeprefix(_DESCRIBED).strip()
        lines[0] = (
            f"# The ACTIVE emugen configuration (the fleet watches this file), written "
            f"by `emugen init` from\n# the {name} preset: {what}\n"
        )
    text = "".join(lines).replace(
        "emugen config check config/emulated.yaml", f"emugen config check {DEFAULT_CONFIG}"
    )
    settings_from_text(text, f"the {name} preset", env=False)  # a broken package fails here
    return text


def write_config(folder: Path, preset: str = DEFAULT_PRESET, force: bool = False) -> Path:
    """Write `folder`/config/emugen.yaml from `preset`; never over a file unless `force`."""
    text = active_text(preset)
    target = folder / DEFAULT_CONFIG
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise InitRefused(
            f"{target} exists and is not a regular file; remove it or choose "
            "another folder (emugen init DIR)"
        )
    if target.exists() and not force:
        raise InitRefused(
            f"{target} already exists; keep it (emugen config check {target}), "
            "or overwrite it with emugen init --force"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(target, text.encode("utf-8"), 0o644)
    except OSError as exc:
        raise InitRefused(
            f"cannot write {target}: {exc.strerror}; choose a folder you can "
            "write to (emugen init DIR)"
        ) from None
    return target
