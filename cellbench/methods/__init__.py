"""Methods: discovered from ``methods/<name>/method.yaml`` (registry) and built (factory)."""

from .factory import build_localizer, build_model, check_output, resolve_loss
from .registry import MethodSpec, available_methods, describe, discover, get_method, methods_dir, selected_methods

__all__ = ["MethodSpec", "available_methods", "build_localizer", "build_model", "check_output", "describe",
           "discover", "get_method", "methods_dir", "resolve_loss", "selected_methods"]
