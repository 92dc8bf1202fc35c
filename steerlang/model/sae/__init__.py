"""Sparse autoencoders: the core module, the file formats it reads and writes, and the loader that dispatches between them."""
