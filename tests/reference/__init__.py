"""Float64 NumPy reference implementations (the oracles the kernels are checked against)."""
