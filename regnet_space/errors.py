"""The one exception type the CLI turns into a clean message and exit code 2."""


class UserError(ValueError):
    """Bad input from the user: a spec field, a file, a flag. The message names the problem."""
