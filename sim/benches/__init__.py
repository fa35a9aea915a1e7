"""cocotb test benches, one module per RTL block (run through edgemoe.sim.runner)."""
