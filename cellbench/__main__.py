import sys


def _dependency_missing(exc: ModuleNotFoundError) -> str:
    """One line instead of a traceback when cellbench is started by a Python without its
    dependencies (the system's, say), which is the usual newcomer's mistake."""
    inside_venv = sys.prefix != sys.base_prefix
    where = f"the Python at {sys.executable}"
    if inside_venv:
        return (f"cellbench: error: No module named {exc.name!r} in {where}. cellbench's environment is `.venv` "
                f"(created by `bash run.sh`): activate it with `source .venv/bin/activate`, or run "
                f"`bash run.sh cellbench ...`; if a method's own code needs {exc.name!r}, install it there.")
    return (f"cellbench: error: No module named {exc.name!r}: {where} is not cellbench's environment. "
            f"`bash run.sh` creates `.venv` with every dependency; then `source .venv/bin/activate` "
            f"(once per shell) and run the command again, or run `bash run.sh cellbench ...`.")


try:
    from .cli import main

    code = main()
except ModuleNotFoundError as exc:
    if not exc.name or exc.name.split(".")[0] == "cellbench":
        raise
    print(_dependency_missing(exc), file=sys.stderr)
    code = 2
sys.exit(code)
