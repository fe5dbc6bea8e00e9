# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astro-deepcr models --validate-precision [NAME ...]``: bfloat16 against float32 on this machine.

Measures (again) the validation that ``precision="auto"`` runs on first use
(`astro_deepcr.bf16_check`) for the named mask models (default: every mask
model), stores the verdicts and prints the table. Where the device has no
native bfloat16 nothing is validated: ``auto`` runs float32 there. A plug-in
of `astro_deepcr.cli` (`PLUGINS`): it adds the option to ``models``.
"""

import sys

__all__ = ["add_subparser", "validate_precision"]


def add_subparser(subparsers):
    """Add ``--validate-precision`` to the ``models`` sub-command of ``subparsers``."""
    models = subparsers.choices["models"]
    models.add_argument("--validate-precision", nargs="*", metavar="NAME", default=None,
                        help="validate bfloat16 against float32 on this machine for the mask models NAME "
                             "(default: all), cache the verdicts and print the table")
    listing = models.get_default("func")

    def dispatch(args):
        if getattr(args, "validate_precision", None) is None:
            return listing(args)
        return validate_precision(args.validate_precision)

    models.set_defaults(func=dispatch)


def validate_precision(names=(), device=None, stream=None):
    """Validate and print the table; returns the exit status (0; 1 when a model failed)."""
    from .bf16_check import format_table
    from .detection import bf16_verdict
    from .engine import native_bfloat16, network_backend, resolve_device
    from .zoo import get_model, list_models

    stream = sys.stdout if stream is None else stream
    device = resolve_device(device)
    if not native_bfloat16(device):
        print(f"{device} has no native bfloat16: precision='auto' runs float32 here and nothing is validated",
              file=stream)
        return 0
    specs = [get_model(name, kind="mask") for name in (names or list_models("mask"))]
    print(f"bfloat16 against float32 on {device}, runtime {network_backend(None, device, 'bfloat16')}:",
          file=stream, flush=True)
    rows = [(spec.name, *bf16_verdict(spec, device, refresh=True)) for spec in specs]
    print(format_table(rows), file=stream)
    return 0 if all(result["passed"] for _, result, _ in rows) else 1
