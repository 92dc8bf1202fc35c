"""steerlang: a declarative steering language for CLIP's vision transformer.

Importing this package must stay cheap and torch-free: `steer check` and the language server
depend on it. The model side (`steerlang.model`), the stages (`steerlang.pipeline`) and the report
(`steerlang.report`) are imported only by the code that uses them (docs/architecture.md).

The notebook API (docs/python.md) is reached through this package lazily:
`steerlang.compile`, `steerlang.plan`, `steerlang.run` and `steerlang.steer` load
`steerlang.commands.notebook` on first use. `steerlang.plan` is also the module that defines
the plan types (`steerlang.plan.RecipeIR`); that module is made callable, so both
`steerlang.plan(recipe)` and `from steerlang.plan import InterventionPlan` work.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from steerlang.version import __version__

__all__ = ["__version__", "compile", "plan", "run", "steer"]
_API = ("compile", "run", "steer")


class _CallablePlanModule(types.ModuleType):
    """`steerlang.plan`, the module, callable as the notebook's `plan(recipe, …)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from steerlang.commands import notebook

        return notebook.plan(*args, **kwargs)


class _Package(types.ModuleType):
    @property
    def plan(self) -> types.ModuleType:
        import importlib

        module = sys.modules.get(f"{__name__}.plan") or importlib.import_module(".plan", __name__)
        if not isinstance(module, _CallablePlanModule):
            module.__class__ = _CallablePlanModule
        return module

    @plan.setter
    def plan(self, module: types.ModuleType) -> None:
        # The import system binds the submodule here after loading it; the getter finds it
        # in sys.modules, so there is nothing to store.
        pass


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _API:
        from steerlang.commands import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, "plan"])
