"""Golden model: the NumPy ISA interpreter whose bytes the RTL must reproduce."""
