"""steerlang: a declarative steering language for CLIP's vision transformer.

Importing this package must stay cheap and torch-free: `steer check` and the language server
depend on it. Runtime pieces live in `steerlang.runtime` and are imported lazily.
"""

__version__ = "0.1.0"
