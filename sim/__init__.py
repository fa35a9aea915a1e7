"""Simulation: golden ISA interpreter, Verilator/cocotb runner and test benches."""
