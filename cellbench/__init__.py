"""cellbench: a reproducible benchmark for cell counting methods."""

from pathlib import Path

__version__ = "0.1.0"

#: The repository this package was installed from.
REPO_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The workflow folder in use: the current directory when it holds workflow/Snakefile
    (Snakemake runs jobs there, and tests run copies of the repository), else the repository."""
    cwd = Path.cwd()
    return cwd if (cwd / "workflow" / "Snakefile").is_file() else REPO_ROOT
