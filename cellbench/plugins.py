"""Code that lives outside the package: a method's model and loss, a dataset's own reader.

A definition file names such code as ``file.py:name``, relative to its own folder; the file is
imported once under a module name derived from its folder, so two methods may both have a
``model.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Callable

from .errors import ConfigError


def is_reference(value: str) -> bool:
    return ":" in value and value.partition(":")[0].endswith(".py")


def load_callable(directory: Path, reference: str, definition: Path,
                  error: type[Exception] = ConfigError) -> Callable:
    """The object ``name`` of ``directory/file.py`` for ``reference`` = ``file.py:name``; ``error``
    naming ``definition`` when the file, the name or the import fails."""
    file_name, _, attr = reference.partition(":")
    path = directory / file_name
    if not path.is_file():
        raise error(f"{definition}: {reference!r} must name an existing file and a callable, "
                    f"as model.py:ClassName ({path} not found)")
    if not attr:
        raise error(f"{definition}: {reference!r} lacks ':Name'")
    module_name = f"cellbench_plugins.{directory.parent.name}.{directory.name}.{path.stem}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise error(f"{path}: cannot be imported: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        raise error(f"{definition}: {path} defines no {attr!r}")
    return getattr(module, attr)
