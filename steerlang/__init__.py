"""steerlang: a declarative steering language for CLIP's vision transformer.

Importing this package must stay cheap and torch-free: `steer check` and the language server
depend on it. The model side (`steerlang.model`), the stages (`steerlang.pipeline`) and the report
(`steerlang.report`) are imported only by the code that uses them (docs/architecture.md).
"""

__version__ = "0.1.0"
