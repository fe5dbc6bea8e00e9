# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Real example data that installs with astro_deepcr's dependencies.

Nothing here downloads: the files are read where another installed package
ships them, and a missing file raises an error that says which package to
install.

The HST example is ``j8bt06nyq_flt.fits``, a single ACS/HRC exposure of the
globular cluster 47 Tuc (F606W, 60 s, one 1024 x 1024 chip in electrons) that
spherical_geometry ships with its tests. Its cosmic rays are intact (it is an
``_flt``, not a CR-rejected product) and its ``DQ`` array is calacs'.
"""

import dataclasses
import importlib.util
import os

import numpy as np
from astropy.io import fits

__all__ = ["HST_EXAMPLE", "HSTExample", "hst_example_path", "load_hst_example"]

#: (package, path inside the package) of the HST example exposure.
HST_EXAMPLE = ("spherical_geometry", os.path.join("tests", "data", "j8bt06nyq_flt.fits"))


@dataclasses.dataclass(frozen=True)
class HSTExample:
    """The HST example exposure read into memory.

    Attributes
    ----------
    science : ndarray of float32
        ``SCI,1`` in electrons.
    dq : ndarray of int16
        ``DQ,1`` (calacs data-quality bits).
    primary_header, sci_header : `~astropy.io.fits.Header`
        Copies of the primary and ``SCI,1`` headers.
    path : str
        The file that was read.
    """

    science: np.ndarray
    dq: np.ndarray
    primary_header: fits.Header
    sci_header: fits.Header
    path: str


def hst_example_path():
    """Path of the ACS/HRC example ``_flt`` file shipped by spherical_geometry.

    Returns
    -------
    path : str

    Raises
    ------
    FileNotFoundError
        spherical_geometry is not installed, or its installation lacks the
        test data file.

    Examples
    --------
    >>> from astro_deepcr.datasets import hst_example_path
    >>> hst_example_path().endswith("j8bt06nyq_flt.fits")
    True
    """
    package, relative = HST_EXAMPLE
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the HST example frame needs the package {package!r} (pip install "
                                f"spherical-geometry), which is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], relative)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{package} is installed but without its test data file {relative} "
                                f"(looked for {path})")
    return path


def load_hst_example(path=None):
    """Read the ACS/HRC example exposure (``SCI,1``, ``DQ,1`` and headers).

    Parameters
    ----------
    path : str, optional
        Read this file instead of `hst_example_path` (same layout).

    Returns
    -------
    example : `HSTExample`

    Raises
    ------
    FileNotFoundError
        See `hst_example_path`.
    ValueError
        The file has no ``SCI,1``/``DQ,1`` pair of the same shape, or its
        ``BUNIT`` is not electrons.
    """
    path = hst_example_path() if path is None else os.fspath(path)
    with fits.open(path, memmap=False) as hdul:
        try:
            sci, dq = hdul["SCI", 1], hdul["DQ", 1]
        except KeyError:
            raise ValueError(f"{path} has no SCI,1 and DQ,1 extensions") from None
        if sci.data is None or dq.data is None or sci.data.shape != dq.data.shape:
            raise ValueError(f"{path}: SCI,1 and DQ,1 must be images of the same shape")
        bunit = str(sci.header.get("BUNIT", "")).strip().upper()
        if bunit != "ELECTRONS":
            raise ValueError(f"{path}: SCI,1 has BUNIT {bunit or 'missing'}, expected ELECTRONS")
        return HSTExample(science=np.array(sci.data, dtype=np.float32), dq=np.array(dq.data, dtype=np.int16),
                          primary_header=hdul[0].header.copy(), sci_header=sci.header.copy(), path=path)
