"""User-facing errors: each names the file, key or value at fault and what to do."""


class CellbenchError(Exception):
    """An error caused by input (data, config, method definition), reported without a traceback."""


class ConfigError(CellbenchError):
    """A configuration value is missing, unknown or out of range."""


class DataError(CellbenchError):
    """A dataset file is missing, corrupted, or inconsistent with its annotation."""


class MethodError(CellbenchError):
    """A method directory is incomplete or its model breaks the method contract."""


class TrainingError(CellbenchError):
    """Training cannot go on (for example the loss became NaN)."""


class DamagedFileError(CellbenchError):
    """A file the workflow wrote and reads back is missing or damaged (see ``cellbench.io.read_back``)."""
