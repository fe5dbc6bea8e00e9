# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Issue #28 on the real ACS/HRC frame: crbit=256 and two runs of flag (DQ saturation count and hash).

Usage: ``python tools/check_hrc_flag_twice.py SCRATCH_DIR`` (the frame is copied there; nothing else is written).
"""
import hashlib
import shutil
import sys
import warnings

from astropy.io import fits

from astro_deepcr.datasets import hst_example_path
from astro_deepcr.drizzle import flag_cosmic_rays

warnings.simplefilter("ignore")
d = sys.argv[1]
p = shutil.copy(hst_example_path(), f"{d}/j8bt06nyq_flt.fits")
def sat():
    with fits.open(p) as h:
        return int(((h["DQ", 1].data & 256) != 0).sum()), hashlib.sha256(h["DQ", 1].data.tobytes()).hexdigest()[:12]
print("before: DQ&256 px, DQ sha", sat())
try:
    n = flag_cosmic_rays(p, model="ACS-WFC", crbit=256)["n_cr"][0]
    print("crbit=256 run 1: flagged", n, "DQ&256 px, sha", sat())
    n = flag_cosmic_rays(p, model="ACS-WFC", crbit=256)["n_cr"][0]
    print("crbit=256 run 2: flagged", n, "DQ&256 px, sha", sat())
except ValueError as e:
    print("crbit=256 refused:", e, "| DQ&256 px, sha", sat())
p = shutil.copy(hst_example_path(), f"{d}/j8bt06nyq_flt.fits")
for run in (1, 2):
    n = flag_cosmic_rays(p, model="ACS-WFC")["n_cr"][0]
    print(f"crbit=4096 run {run}: flagged", n, "DQ&256 px, sha", sat())
