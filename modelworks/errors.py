"""The one exception type for user errors.

Anything the user can fix (a bad config key, a malformed file, an unknown column) raises
`UserError` with one message that names what is wrong and where. The CLI prints that message
without a traceback and exits with status 2; the Python API lets it propagate.
"""


class UserError(Exception):
    """A problem in the user's config, data or command line, with a message saying how to fix it."""
