"""Methods: discovered from ``methods/<name>/method.yaml`` (registry) and built (factory)."""

from .factory import (build_localizer, build_model, check_output, method_target, resolve_loss, training_sizes,
                      validate_method)
from .registry import (MethodSpec, available_methods, broken_methods, describe, discover, get_method, methods_dir,
                       paper_names, scan, selected_methods)

__all__ = ["MethodSpec", "available_methods", "broken_methods", "build_localizer", "build_model", "check_output",
           "describe", "discover", "get_method", "methods_dir", "paper_names", "method_target", "resolve_loss", "scan",
           "selected_methods", "training_sizes", "validate_method"]
