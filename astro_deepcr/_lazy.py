# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Heavy modules imported on first use (issue #30: importing the package or asking the CLI for help loads no torch).

`LazyModule` stands in for a module in a module's namespace and imports it
on the first attribute access, as SPEC 1's ``lazy_loader.load`` does, but
without putting a placeholder into `sys.modules`: a module there has really
been imported.
"""

import importlib

__all__ = ["LazyModule"]


class LazyModule:
    """``torch = LazyModule("torch")``: ``torch.float16`` imports torch then, not before."""

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attribute):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self):
        state = "imported" if self._module is not None else "not imported yet"
        return f"<LazyModule {self._name!r} ({state})>"
