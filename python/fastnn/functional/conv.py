"""Convolution and pooling kernels (filled in by the convolution work)."""
__all__: list = []
