# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
HST exposures: deepCR cosmic-ray flags in ``_flt``/``_flc`` DQ arrays, and
AstroDrizzle with deepCR in place of its median / blot / driz_cr steps.

Laid out like drizzlepac, one step per module:

- `~astro_deepcr.drizzle.inputs`: input lists (names, comma strings,
  wildcards, ``@files``, association tables) through ``stsci.tools.parseinput``;
- `astro_deepcr.dq` (re-exported here: ``DEFAULT_BITS``, ``DEFAULT_FILL_BITS``,
  ``CALACS_CRBIT``, `grow_like_driz_cr`) and `astro_deepcr.detection`
  (``select_model`` is its ``choose_model``): DQ bits and the detection core;
- `~astro_deepcr.drizzle.flag`: `flag_cosmic_rays`, DQ flagging in place;
- `~astro_deepcr.drizzle.astrodrizzle`: `astrodrizzle`: `flag_cosmic_rays`,
  then drizzlepac's public ``AstroDrizzle`` (``resetbits=0``, median / blot /
  driz_cr off); a TEAL task (``__taskname__``, ``run(configobj)``). It needs
  drizzlepac (``pip install "astro_deepcr[drizzle]"``), imported only when it
  runs; everything else here works without it;
- `~astro_deepcr.drizzle.config`: the ``.cfg`` files of both tasks
  (``pars/*.cfg`` and ``.cfgspc``).
"""

from ..detection import choose_model as select_model
from ..dq import CALACS_CRBIT, DEFAULT_BITS, DEFAULT_FILL_BITS, grow_like_driz_cr
from .astrodrizzle import astrodrizzle
from .config import astrodrizzle_parameter_names, load_astrodrizzle_config, load_config, save_config
from .flag import flag_cosmic_rays
from .inputs import parse_inputs

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_FILL_BITS",
    "CALACS_CRBIT",
    "parse_inputs",
    "select_model",
    "grow_like_driz_cr",
    "flag_cosmic_rays",
    "astrodrizzle",
    "astrodrizzle_parameter_names",
    "load_astrodrizzle_config",
    "load_config",
    "save_config",
]
