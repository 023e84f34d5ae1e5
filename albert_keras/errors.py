"""Exceptions that carry a one-line, user-facing message.

The CLI prints `AlbertInputError` messages on one line and exits non-zero; anything else is a bug
and keeps its traceback.
"""


class AlbertInputError(ValueError):
    """Bad user input: a file, line, key or flag that cannot be used.

    The message must name the offending file, line or field so the user can fix it without a
    traceback, e.g. `AlbertInputError("config.json: key 'hidden_size' must be a positive int")`.
    """
