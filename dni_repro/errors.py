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
