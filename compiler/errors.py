"""Errors the compiler reports to users (printed by the CLI without a traceback)."""


class CompileError(ValueError):
    """The model or options cannot be compiled; the message names the node, op or option."""
