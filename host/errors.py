"""Errors the runtime reports to users (printed by the CLI without a traceback)."""


class RuntimeUserError(ValueError):
    """Bad input to the runtime: a missing or unreadable file, a wrong shape, an unknown task."""


class DeviceFault(RuntimeError):
    """The device stopped with an error; the message names the instruction and the cause."""
