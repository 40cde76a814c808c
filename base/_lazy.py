"""Public names that load on first use: one `__getattr__`/`__dir__` pair for every package that needs them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of `package`, whose `names` come from the modules they map to.

    A name is imported from its module the first time it is used and then kept in the package (later uses
    skip `__getattr__`), so importing the package loads none of those modules: torch, plotly and the data
    stack stay unloaded until a name that needs them is used.

    Args:
        package: The package's `__name__`.
        names: Public name -> the module (absolute) that defines it.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"run_search": "archsearch.controller"})  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
