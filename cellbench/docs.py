"""Key tables in the READMEs, written from the JSON schemas so the docs cannot drift from the code.

A README holds ``<!-- keys: NAME -->`` ... ``<!-- end keys -->``; ``python -m cellbench docs``
rewrites what lies between from ``workflow/schemas/NAME.schema.yaml`` (``--check`` only reports).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import REPO_ROOT
from .schemas import schema

READMES = ("config/README.md", "methods/README.md", "datasets/README.md")
_BLOCK = re.compile(r"(<!-- keys: (?P<name>[a-z]+) -->\n)(?P<body>.*?)(<!-- end keys -->)", re.S)


def _default(node: dict) -> str:
    if "default" not in node:
        return "required" if node.get("_required") else "-"
    return f"`{json.dumps(node['default'])}`"


def _rows(node: dict, prefix: str = "") -> list[str]:
    rows = []
    required = set(node.get("required", []))
    for key, sub in node.get("properties", {}).items():
        name = f"{prefix}{key}"
        children = sub.get("properties")
        sub = dict(sub, _required=key in required)
        if children:
            text = " ".join(str(sub.get("description", "")).split())
            rows.append(f"| `{name}` | {text} | {'required' if sub['_required'] else ''} |")
            rows += _rows(sub, f"{name}.")
        else:
            text = " ".join(str(sub.get("description", "")).split())
            rows.append(f"| `{name}` | {text} | {_default(sub)} |")
    return rows


def key_table(name: str) -> str:
    return "\n".join(["| key | meaning | default |", "|---|---|---|", *_rows(schema(name))]) + "\n"


def update_docs(check: bool = False, root: Path = REPO_ROOT) -> list[Path]:
    """The READMEs whose key tables were (or, with ``check``, would be) rewritten."""
    stale = []
    for rel in READMES:
        path = root / rel
        if not path.is_file():
            continue
        text = path.read_text()
        new = _BLOCK.sub(lambda m: m.group(1) + key_table(m.group("name")) + m.group(4), text)
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new)
    return stale
