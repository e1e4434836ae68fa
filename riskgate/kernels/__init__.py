"""Pure numeric kernels: numpy arrays and scalars in, arrays out; no I/O, no logging."""
