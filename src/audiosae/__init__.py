"""audiosae: sparse autoencoders for explaining audio foundation models."""

__version__ = "0.1.0"
