"""Compiler: M3ViT (PyTorch or ONNX) to accelerator binaries."""
