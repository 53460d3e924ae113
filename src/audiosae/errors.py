"""Errors shared by the configuration and the encoders (importable without either)."""


class ConfigError(ValueError):
    """A configuration key is missing, misspelt, of the wrong type or out of range."""


class FrameError(RuntimeError):
    """A model's frames cannot be described (unknown frame rate or output length), or a frame store lacks a layer."""
