# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The sub-commands of ``astro-deepcr``, one module per job, each a plug-in of
`astro_deepcr.cli` (it exposes ``add_subparser(subparsers)``):

- `~astro_deepcr.commands.files`: ``clean`` and ``flag`` (FITS files, in batches);
- `~astro_deepcr.commands.drizzle`: ``drizzle`` (AstroDrizzle with deepCR masks);
- `~astro_deepcr.commands.models`: ``models`` (the registry and the model cards);
- `~astro_deepcr.commands.trial`: ``bench`` and ``demo`` (trying deepCR on this machine);
- `~astro_deepcr.commands.options`: what they share (options, reporting, `UsageError`).

These modules import only the standard library and light parts of the package
at module level, so that ``astro-deepcr --help`` loads no numerical stack; the
work is done by `astro_deepcr.batch` and the modules it calls, imported when a
command runs.
"""
