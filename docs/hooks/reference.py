"""mkdocs hooks: the reference pages generated from the code, so they cannot drift from it.

- `<!-- config-reference -->` becomes one table per config section, built from the pydantic
  model's JSON Schema (types, defaults, bounds, descriptions) with each key's comment from the
  commented preset (`emugen init` writes the same file) where the model has no description.
- the site gets `openapi.json`, the dashboard's OpenAPI document, from the FastAPI app itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MARKER = "<!-- config-reference -->"
DEFECTS_MARKER = "<!-- defect-catalogue -->"
# What a correct pipeline does with each defect: every Defect must have a line here, or the
# docs build fails (so a new defect type cannot ship undocumented).
DEFECT_HANDLING = {
    "missing_field": "A required field is absent. Quarantine the record with reason "
    "`missing_field` naming the field; never fill in a default.",
    "null_value": "A required field is `null`. Quarantine it (`null_value`); a null `location` "
    "is the one null that is valid (a GPS gap).",
    "malformed_timestamp": "The time is not `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` or not a real date. "
    "Quarantine it (`malformed_timestamp`); never guess the time.",
    "invalid_enum": "A value outside its allowed set (`event_type`, `region`). Quarantine it "
    "(`invalid_enum`).",
    "duplicate": "A second copy of a record already in the batch (same id, same payload). Keep "
    "the first, quarantine (or drop) the copy; counting it twice is the bug.",
    "boundary_violation": "The record's time lies outside its batch's interval, in the future "
    "or beyond the lateness horizon. Quarantine it "
    "(`boundary_violation`).",
    "schema_mismatch": "An unknown extra field, a value of the wrong type, or an id that is "
    "not a UUID. Quarantine it (`schema_mismatch`).",
    "out_of_range": "A number outside its range: counts outside 1..100000, a name over 200 "
    "characters, a latitude or longitude off the Earth. Quarantine it.",
    "empty_string": "A text field that is blank after trimming. Quarantine it "
    "(`empty_string`); a blank id is not an id.",
    "orphan_reference": "An event whose `company_id` names no company in silver. Quarantine "
    "it (`orphan_reference`); never invent the company.",
}
ROOT = Path(__file__).resolve().parents[2]
PRESET = ROOT / "config" / "emulated.yaml"
_LINE = re.compile(r"^(?P<indent> *)(?P<key>[a-z_]+):(?P<rest>[^#]*)(#\s*(?P<comment>.*))?$")


def preset_comments(path: Path = PRESET) -> dict[str, str]:
    """`section.key` -> the comment written beside it in the commented preset."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        indent = len(found["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, found["key"]))
        if found["comment"]:
            comments[".".join(k for _, k in stack)] = found["comment"].strip()
    return comments


def _def(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The definition a property refers to (directly or as `X or null`), if any."""
    ref = prop.get("$ref") or next((p["$ref"] for p in prop.get("anyOf", []) if "$ref" in p), None)
    return None if ref is None else defs[ref.rsplit("/", 1)[-1]]


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        return _type(target, defs) if "enum" in target else "section"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(p, defs) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    return {
        "string": "text",
        "number": "number",
        "integer": "integer",
        "boolean": "true/false",
        "null": "null",
        "array": "list",
        "object": "mapping",
    }.get(kind, kind)


def _bounds(prop: dict[str, Any]) -> str:
    words = []
    for key, sign in (
        ("minimum", "≥"),
        ("ge", "≥"),
        ("exclusiveMinimum", ">"),
        ("gt", ">"),
        ("maximum", "≤"),
        ("le", "≤"),
        ("exclusiveMaximum", "<"),
        ("lt", "<"),
    ):
        if key in prop:
            words.append(f"{sign} {prop[key]}")
    return ", ".join(words)


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "required"
    value = prop["default"]
    if isinstance(value, dict | list):
        return f"`{json.dumps(value)}`" if len(json.dumps(value)) <= 60 else "see below"
    return f"`{json.dumps(value)}`"


def _rows(
    name: str,
    schema: dict[str, Any],
    defs: dict[str, Any],
    comments: dict[str, str],
    sections: list[tuple[str, dict[str, Any]]],
) -> list[str]:
    rows = ["| key | type | default | bounds | meaning |", "|---|---|---|---|---|"]
    for key, prop in schema.get("properties", {}).items():
        path = f"{name}.{key}" if name else key
        target = _def(prop, defs)
        ref = target is not None and "properties" in target
        if ref:
            sections.append((path, target))
        meaning = prop.get("description") or comments.get(path, "")
        if ref and not meaning:
            meaning = f"see [`{path}`](#{path.replace('.', '')})"
        rows.append(
            f"| `{key}` | {_type(prop, defs)} | {_default(prop)} | {_bounds(prop)} | "
            f"{meaning.replace('|', chr(92) + '|')} |"
        )
    return rows


def config_reference() -> str:
    from emugen.settings import Settings

    schema = Settings.model_json_schema(mode="validation")
    defs, comments = schema.get("$defs", {}), preset_comments()
    sections: list[tuple[str, dict[str, Any]]] = []
    out = ["## The top level", "", schema.get("description", ""), ""]
    out += _rows("", schema, defs, comments, sections)
    while sections:
        path, section = sections.pop(0)
        out += ["", f"## `{path}`", "", section.get("description", ""), ""]
        out += _rows(path, section, defs, comments, sections)
    return "\n".join(out) + "\n"


def _examples(stream: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """defect -> (the first record carrying it, its truth row), from a real all-dirty batch."""
    from emugen.generate import build_spec, generate
    from emugen.settings import parse_settings
    from emugen.vocabulary import Mode, Stream

    settings = parse_settings(
        {
            "clock": {"kind": "simulated", "start": "2026-01-01T00:00:00Z"},
            "landing": {"enabled": False},
            stream: {"quality": {"rate": 0.5}},
        },
        env=False,
    )
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for seq in range(1, 40):
        spec = build_spec(
            settings,
            Stream(stream),
            seq,
            mode=Mode.emulated,
            size=40,
            watermark=20,
            first_ordinal=0,
        )
        batch = generate(spec)
        lines = batch.lines()
        for row in batch.truth:
            found.setdefault(
                row.defect.value,
                (
                    lines[row.row_no],
                    {"field": row.field, "expected_reason": row.expected_reason.value},
                ),
            )
    return found


def defect_catalogue() -> str:
    from emugen.vocabulary import DEFECTS_FOR, Defect, Stream

    missing = [d.value for d in Defect if d.value not in DEFECT_HANDLING]
    if missing:
        raise ValueError(f"docs: no handling written for defect(s) {missing}")
    examples = {s.value: _examples(s.value) for s in Stream}
    out: list[str] = []
    for defect in Defect:
        stream = "events" if defect in DEFECTS_FOR[Stream.events] else "companies"
        line, truth = examples[stream][defect.value]
        streams = ", ".join(s.value for s in Stream if defect in DEFECTS_FOR[s])
        out += [
            f"### `{defect.value}`",
            "",
            f"Injected into: {streams}. {DEFECT_HANDLING[defect.value]}",
            "",
            f"An example ({stream}, field `{truth.get('field')}`, silver's reason "
            f"`{truth.get('expected_reason')}`):",
            "",
            "```json",
            line,
            "```",
            "",
        ]
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, config_reference())
    if DEFECTS_MARKER in markdown:
        markdown = markdown.replace(DEFECTS_MARKER, defect_catalogue())
    return markdown


def openapi_document() -> dict[str, Any]:
    """The dashboard's document as served on loopback, from an app over a throwaway store."""
    import tempfile

    from emugen.web.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "emugen.yaml"
        config.write_text(
            f"database_url: sqlite:///{folder}/emugen.db\nlanding: {{enabled: false}}\n",
            encoding="utf-8",
        )
        return create_app(config).openapi()


def on_files(files: Any, config: Any) -> Any:
    """Publish the OpenAPI document as a file of the site, so pages can link to it."""
    from mkdocs.structure.files import File

    files.append(
        File.generated(
            config, "openapi.json", content=json.dumps(openapi_document(), indent=2) + "\n"
        )
    )
    return files
