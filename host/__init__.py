"""Host runtime and the edgemoe command line."""
