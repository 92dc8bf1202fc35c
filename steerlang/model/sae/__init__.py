"""Sparse autoencoders: the canonical SAE (`core`), one module per file format (`native`,
`saelens`, `prisma`; `hub` for `hf:` references), the safe readers they share (`tensors`), and
`load`, the one table that detects a folder's format and builds the SAE."""
