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

The WFPC2 example is ``u40x010hm_c0f.fits`` (F555W, omega Cen), which stsci.tools ships with its tests:
`load_wfpc2_example` reads chip 2 (WF2) without its pyramid-shadowed edge (the first 50 rows and columns,
where the row / column medians are 4-20x the sky, and the last row and column), 749 x 749 px, in
electrons (DN times ``ATODGAIN`` 7 e-/DN), read noise 5.3 e- (WFPC2 Instrument Handbook, gain 7; the
header has none), saturated at or above 0.95 x (``SATURATE`` 4095 DN - the chip's ``BIASEVEN``): the
dip of the chip's histogram below the A-to-D plateau (the c0f is bias-subtracted and flat-fielded).
``chip=3`` and ``chip=4`` read WF3 and WF4 of the same exposure the same way (their edge rows and columns are
shadowed alike, and their histograms rise to the plateau at the same fraction of their own range), ``chip=1`` the
PC1 chip (0.046" pixels against the WF chips' 0.1"), whose few saturated stars make no clear plateau (its
histogram rises from about 3500 DN; the same 0.95 rule gives 3592 DN).
"""

import dataclasses
import importlib.util
import os

import numpy as np
from astropy.io import fits

__all__ = ["HST_EXAMPLE", "HSTExample", "hst_example_path", "load_hst_example", "WFPC2_EXAMPLE", "load_wfpc2_example"]

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


#: (package, path inside the package) of the WFPC2 example exposure.
WFPC2_EXAMPLE = ("stsci.tools", os.path.join("tests", "data", "u40x010hm_c0f.fits"))
WFPC2_CHIP = 2
WFPC2_GOOD = (slice(50, -1), slice(50, -1))  # without the pyramid shadow and the last row / column
WFPC2_READNOISE = 5.3  # e-, WFPC2 Instrument Handbook, ATODGAIN 7


def load_wfpc2_example(chip=WFPC2_CHIP):
    """A chip of the WFPC2 example (WF2 unless ``chip``) as a frame dict: ``name`` (``wfpc2`` for WF2,
    ``wfpc2-wf3``, ``wfpc2-wf4``, ``wfpc2-pc1`` for the others), ``electrons``, ``dq`` (None), ``header``,
    ``readnoise`` (e-), ``satlevel`` (e-); see the module docstring."""
    import warnings

    if chip not in (1, 2, 3, 4):
        raise ValueError(f"chip must be 1 (PC1), 2, 3 or 4 (WF2-WF4), not {chip!r}")
    package, relative = WFPC2_EXAMPLE
    spec = importlib.util.find_spec(package)
    path = None if spec is None or not spec.submodule_search_locations else os.path.join(
        list(spec.submodule_search_locations)[0], relative)
    if path is None or not os.path.exists(path):
        raise FileNotFoundError(f"the WFPC2 example {relative} ships with {package}'s tests; install {package}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the GEIS group table's TDISP cards
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            dn = np.asarray(hdul[0].data[chip - 1], dtype=np.float64)[WFPC2_GOOD]
            bias = float(hdul[1].data["BIASEVEN"][chip - 1])
            # a GEIS file's primary header holds the first group's parameters; the chip's own are in the table
            header["DETECTOR"] = int(hdul[1].data["DETECTOR"][chip - 1])
    gain = float(header["ATODGAIN"])
    satlevel_dn = 0.95 * (float(header["SATURATE"]) - bias)
    name = "wfpc2" if chip == WFPC2_CHIP else f"wfpc2-{'pc' if chip == 1 else 'wf'}{chip}"
    return {"name": name, "electrons": dn * gain, "dq": None, "header": header, "readnoise": WFPC2_READNOISE,
            "satlevel": satlevel_dn * gain}
