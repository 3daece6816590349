"""Modules imported when first used, not when the code location loads.

The daemon loads the code location in every run process, its code server and every
`dagster` command; pandas and numpy alone take longer to import than Dagster. Modules that
use them only inside functions bind them with `lazy(...)`: the first attribute read imports
the real module, later reads cost a dictionary lookup. Type checkers see the real import:

    if TYPE_CHECKING:
        import pandas as pd
    else:
        pd = lazy("pandas")
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


class LazyModule:
    """Stands for module `name` and imports it on the first attribute read."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr: str) -> Any:
        name = object.__getattribute__(self, "_name")
        module = sys.modules.get(name) or importlib.import_module(name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {object.__getattribute__(self, '_name')!r}>"


def lazy(name: str) -> Any:
    """Module `name` if it is imported already, else a stand-in that imports it when used."""
    return sys.modules.get(name) or LazyModule(name)
