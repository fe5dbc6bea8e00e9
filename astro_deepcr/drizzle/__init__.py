# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
HST exposures: deepCR cosmic-ray flags in ``_flt``/``_flc`` DQ arrays, and
AstroDrizzle with deepCR in place of its median / blot / driz_cr steps.

Laid out like drizzlepac, one step per module:

- `~astro_deepcr.drizzle.inputs`: input lists (names, comma strings,
  wildcards, ``@files``, association tables) through ``stsci.tools.parseinput``;
- `~astro_deepcr.drizzle.detect`: the deepCR mask of one chip (model choice,
  DQ ``bits`` in drizzlepac's sense, driz_cr's growth);
- `~astro_deepcr.drizzle.flag`: `flag_cosmic_rays`, DQ flagging in place;
- `~astro_deepcr.drizzle.astrodrizzle`: `astrodrizzle`, AstroDrizzle with
  deepCR masks, a TEAL task (``__taskname__``, ``run(configobj)``);
- `~astro_deepcr.drizzle.config`: the ``.cfg`` files of both tasks
  (``pars/*.cfg`` and ``.cfgspc``).
"""

from .astrodrizzle import SUPPORTED_DRIZZLEPAC, astrodrizzle, check_drizzlepac_version
from .config import astrodrizzle_parameter_names, load_astrodrizzle_config, load_config, save_config
from .detect import CALACS_CRBIT, DEFAULT_BITS, DEFAULT_FILL_BITS, grow_like_driz_cr, select_model
from .flag import flag_cosmic_rays
from .inputs import parse_inputs

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_FILL_BITS",
    "CALACS_CRBIT",
    "SUPPORTED_DRIZZLEPAC",
    "parse_inputs",
    "select_model",
    "grow_like_driz_cr",
    "flag_cosmic_rays",
    "astrodrizzle",
    "check_drizzlepac_version",
    "astrodrizzle_parameter_names",
    "load_astrodrizzle_config",
    "load_config",
    "save_config",
]
