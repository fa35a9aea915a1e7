"""SystemVerilog sources of the accelerator and their generator."""
