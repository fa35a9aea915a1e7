"""Bit-exact integer arithmetic of the accelerator (shared by golden model and RTL tests)."""
