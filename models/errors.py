"""The one exception type for bad input; the CLI turns it into one line and exit status 2."""


class EffscaleError(Exception):
    """Bad input or an unusable file: the message is shown to the user as is, on one line."""
