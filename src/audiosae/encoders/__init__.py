"""Encoders: one module per `source:` of the config, one interface (see registry)."""
