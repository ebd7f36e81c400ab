"""Errors that mean "the user asked for something impossible", reported in one line."""


class UserError(Exception):
    """Bad input: train.py prints `error: <message>` and exits with status 2."""


class ConfigError(UserError):
    pass


class DataError(UserError):
    pass


class RunDiverged(Exception):
    """The loss became non-finite: train.py prints `diverged: <message>` and exits with status 3.

    Not a UserError: in a sweep, Hydra records the job as failed and runs the others."""


class WorkerFailed(Exception):
    """A worker of a distributed run died or failed: the job stops, and train.py exits with `exit_status`.

    `message` is empty when the worker has already printed its own one-line reason."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.message, self.exit_status = message, exit_status
