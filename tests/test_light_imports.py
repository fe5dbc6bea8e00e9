# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Importing the package and asking the CLI for help load no numerical stack (issue #30).

Each check runs in a fresh interpreter and reads its `sys.modules`, so it fails
as soon as a module on the path imports torch & co. at module level.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from astro_deepcr import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: What loads only when a network, a picture, a drizzle or a cluster is used.
HEAVY = ("torch", "skimage", "matplotlib", "openvino", "drizzlepac", "dask", "distributed")
CLI = "import sys; from astro_deepcr.cli import main; sys.argv[0] = 'astro-deepcr'; rc = main(sys.argv[1:])"


def loaded_heavy_modules(code, *arguments):
    """Top-level names of `HEAVY` in `sys.modules` after ``code`` ran in a fresh interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print('\\n' + json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_probe_sees_a_heavy_import():
    assert loaded_heavy_modules("import astro_deepcr.nets") == ["torch"]


@pytest.mark.parametrize("code", [
    "import astro_deepcr",
    "from astro_deepcr import cosmicray_deepcr",
    "from astro_deepcr import DeepCR",
    "from astro_deepcr import conf",
    "from astro_deepcr import __version__",
    "from astro_deepcr import *",
    "import astro_deepcr; astro_deepcr.cosmicray_deepcr, astro_deepcr.DeepCR, astro_deepcr.list_models()",
])
def test_importing_the_package_loads_no_heavy_module(code):
    assert loaded_heavy_modules(code) == []


def _commands():
    parser = cli.build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    return sorted(subparsers.choices)


@pytest.mark.parametrize("arguments", [["--help"], ["--version"], ["models"], ["models", "info", "ACS-WFC"]]
                         + [[command, "--help"] for command in _commands()], ids=" ".join)
def test_the_cli_help_and_models_load_no_heavy_module(arguments):
    assert loaded_heavy_modules(CLI, *arguments) == []


def test_every_command_is_checked():
    assert {"clean", "flag", "drizzle", "models", "bench", "demo", "evaluate", "train"} <= set(_commands())


def test_lazy_names_are_the_public_ones():
    import astro_deepcr

    for name in astro_deepcr.__all__:
        assert getattr(astro_deepcr, name) is not None
    assert set(astro_deepcr.__all__) <= set(dir(astro_deepcr))
    assert astro_deepcr.zoo.list_models()  # submodules as attributes, as when __init__ imported them
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        astro_deepcr.nonsense  # noqa: B018
