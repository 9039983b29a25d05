"""User-facing errors: the CLI prints these as one line, never as a traceback."""


class EdgeGANError(Exception):
    """A problem with the user's input or environment, worded as one actionable line."""


class ImageError(EdgeGANError):
    """An image file that cannot be used; the message starts with the file's path."""


class CheckpointError(EdgeGANError):
    """A checkpoint that is missing, corrupt or incompatible with the requested config."""
