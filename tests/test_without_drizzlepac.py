# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""drizzlepac is an optional extra: the package, flag_cosmic_rays, the ccdproc step and clean work without it.

Where drizzlepac is installed these tests hide it (a subprocess in which ``import drizzlepac`` fails); in the CI's
second virtual environment (``venv-nodriz``, installed with ``.[test]`` only) it is really absent, which
`test_drizzlepac_is_really_absent` checks when ``ASTRO_DEEPCR_EXPECT_NO_DRIZZLEPAC=1``.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

# A subprocess in which drizzlepac cannot be imported, whether it is installed or not.
_HIDE_DRIZZLEPAC = textwrap.dedent("""
    import importlib.abc, sys

    class _NoDrizzlepac(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "drizzlepac" or name.startswith("drizzlepac."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoDrizzlepac())
""")


#: Where drizzlepac is installed, hiding it takes a fresh interpreter per test (~5 s each): slow there (CI runs the
#: slow tests too); in the venv without drizzlepac the same tests are fast and run by default.
_HIDDEN = importlib.util.find_spec("drizzlepac") is not None
slow_where_hidden = pytest.mark.slow if _HIDDEN else (lambda test: test)


def _run_without_drizzlepac(code, cwd):
    script = _HIDE_DRIZZLEPAC + textwrap.dedent(code)
    result = subprocess.run([sys.executable, "-W", "error::astropy.utils.exceptions.AstropyUserWarning", "-c",
                             script], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.skipif(os.environ.get("ASTRO_DEEPCR_EXPECT_NO_DRIZZLEPAC") != "1",
                    reason="only in the CI venv installed without the drizzle extra")
def test_drizzlepac_is_really_absent():
    assert importlib.util.find_spec("drizzlepac") is None


@slow_where_hidden
def test_core_flag_ccdproc_and_clean_run_without_drizzlepac(tmp_path):
    out = _run_without_drizzlepac("""
        import numpy as np
        from astropy.io import fits
        from astropy.nddata import CCDData

        import astro_deepcr
        from astro_deepcr import cosmicray_deepcr
        from astro_deepcr.drizzle import flag_cosmic_rays
        from astro_deepcr.training.flc import write_flc_stack
        assert "drizzlepac" not in sys.modules

        stack = write_flc_stack("data", n_exposures=1, chip_shape=(64, 128), seed=3)
        summary = flag_cosmic_rays(stack.files[0])
        assert len(summary) == 2 and min(summary["n_cr"]) > 0
        dq = fits.getdata(stack.files[0], ("DQ", 1)).astype(np.int64)
        assert int(((dq & 4096) > 0).sum()) == summary["n_cr"][0]

        ccd = CCDData(stack.images[0][0].astype(np.float32), unit="electron")
        cleaned = cosmicray_deepcr(ccd, model="ACS-WFC", gain=1.0, readnoise=4.0)
        assert cleaned.mask.sum() > 0

        from astro_deepcr import cli
        assert cli.main(["clean", stack.files[0], "--outdir", "cleaned", "-q"]) == 0
        assert "drizzlepac" not in sys.modules
        print("n_cr", list(summary["n_cr"]), "ccdproc", int(cleaned.mask.sum()))
    """, tmp_path)
    assert "n_cr" in out


@slow_where_hidden
def test_astrodrizzle_names_the_extra_without_drizzlepac(tmp_path):
    _run_without_drizzlepac("""
        import os
        from astro_deepcr.drizzle import astrodrizzle
        from astro_deepcr.training.flc import write_flc_stack

        stack = write_flc_stack("data", n_exposures=1, chip_shape=(64, 128), seed=3)
        before = os.stat(stack.files[0]).st_mtime_ns
        for method in ("deepcr", "driz_cr"):
            try:
                astrodrizzle(stack.files[0], cr_method=method, output="x")
            except ImportError as exc:
                assert 'pip install "astro_deepcr[drizzle]"' in str(exc), exc
            else:
                raise AssertionError("astrodrizzle ran without drizzlepac")
        assert os.stat(stack.files[0]).st_mtime_ns == before  # nothing touched
        # parameter names and the deepCR options are still checked first, without drizzlepac
        for bad, match in (({"final_bit": 0}, "did you mean 'final_bits'"), ({"cr_method": "x"}, "cr_method")):
            try:
                astrodrizzle(stack.files[0], **bad)
            except ValueError as exc:
                assert match in str(exc), exc
            else:
                raise AssertionError(bad)
    """, tmp_path)
