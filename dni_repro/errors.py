"""Errors that mean "the user asked for something impossible", reported in one line."""


class UserError(Exception):
    """Bad input: train.py prints `error: <message>` and exits with status 2."""


class ConfigError(UserError):
    pass


class DataError(UserError):
    pass
