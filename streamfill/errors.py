"""The typed error tree. Every class also subclasses the matching builtin, so callers can catch either.

The library raises these and never prints or exits; only ``streamfill.cli`` turns them into messages.
"""


class StreamfillError(Exception):
    """Base of every error streamfill raises on purpose."""


class ConfigError(StreamfillError, ValueError):
    """A configuration key has a bad value (the message names key, value and allowed range)."""


class InputError(StreamfillError, ValueError):
    """A user-supplied input (path, argument) is missing or unusable."""


class DecodeError(InputError):
    """A video or image could not be opened or decoded (not video, truncated, corrupt, no frames)."""


class MaskError(InputError):
    """A mask does not fit its video: unreadable, wrong size, or wrong frame count."""


class OutputError(StreamfillError, OSError):
    """The output cannot be written (not writable, same as the input, encoder refused)."""


class EngineError(StreamfillError, RuntimeError):
    """An inpainting engine is unknown, unavailable, or failed."""


class WeightsError(StreamfillError, ValueError):
    """A weights file is missing, unreadable, or does not match the model (the message names the keys)."""


class ProtocolError(StreamfillError, ValueError):
    """A wire message is malformed (see plugins/PROTOCOL.md)."""


class TransportError(StreamfillError, ConnectionError):
    """A peer did not answer in time or a socket failed."""


class DistributedError(StreamfillError, RuntimeError):
    """A distributed run failed: the cluster is unreachable, or a chunk or clip failed on every attempt."""
