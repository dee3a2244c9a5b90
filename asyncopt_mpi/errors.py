"""Error types that carry an exit status: user mistakes exit 2, run failures exit 1."""


class AsyncoptError(Exception):
    """Base of the project's errors; `exit_code` is what the process exits with."""

    exit_code = 1


class UserError(AsyncoptError):
    """A mistake in what the user gave us (config, data file); one clear line, exit 2."""

    exit_code = 2


class ConfigError(UserError):
    """A config key or value that is not accepted."""


class DataError(UserError):
    """A data file that is missing, malformed or does not fit the problem."""


class RunError(AsyncoptError):
    """The run itself failed (a worker crashed, the iterate diverged, ...); exit 1."""
