"""Typed errors of the edge runtime. Each message is one line that names the fix."""


class EdgeError(Exception):
    """Base class: bad input the user can fix (the CLI prints it and exits 2)."""


class ModelError(EdgeError):
    """A .tflite file is missing, corrupt, truncated or does not run."""


class SidecarError(EdgeError):
    """A model's JSON sidecar is missing, invalid, or does not match the model."""


class ImageError(EdgeError):
    """An image is unreadable, empty, or has no ink in it."""


class DatasetError(EdgeError):
    """A dataset file is missing, corrupt or unknown; the one-line message names the fix.

    A subclass of EdgeError, so the CLIs print it and exit 2.
    """


class GateError(Exception):
    """A measured value failed a gate such as --min-acc (the CLI exits 1)."""
