# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astro-deepcr models``: the registered models and their cards (reads JSON; loads no network)."""

from .options import UsageError, common

__all__ = ["add_subparser"]


def _where_chosen(spec):
    """The instrument column: the card's instrument, else where `select_model` chooses a model without one."""
    from ..zoo import GENERIC_DEFAULT_MODEL, UNCARDED_CAMERA_MODELS

    carded = "/".join(filter(None, [spec.instrument, spec.detector]))
    if carded:
        return carded
    if spec.kind == "mask" and spec.name == GENERIC_DEFAULT_MODEL:
        return "no card matches"
    telescopes = sorted(scope for scope, name in UNCARDED_CAMERA_MODELS.items() if name == spec.name)
    if spec.kind == "mask" and telescopes:
        return f"{', '.join(telescopes)} without a card"
    return "any"


def _cmd_models_list(args):
    from ..zoo import get_model, list_models

    rows = [("name", "kind", "arch", "instrument", "units", "threshold")]
    for name in list_models(args.kind):
        spec = get_model(name)
        instrument = _where_chosen(spec)
        threshold = "n/a" if spec.threshold is None else f"{spec.threshold:g}"
        rows.append((name, spec.kind, spec.arch, instrument, spec.units, threshold))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_models_info(args):
    from ..zoo import get_model

    try:
        print(get_model(args.name).card())
    except ValueError as exc:
        raise UsageError(exc) from None
    return 0


def add_subparser(subparsers):
    """Register ``models`` (``list``, the default, and ``info NAME``)."""
    parser = subparsers.add_parser("models", parents=[common()], help="list the models or show a model card")
    actions = parser.add_subparsers(dest="action", metavar="{list,info}")
    listing = actions.add_parser("list", help="table of the registered models (default)")
    listing.add_argument("--kind", choices=("mask", "inpaint"), help="only this kind")
    listing.set_defaults(func=_cmd_models_list)
    info = actions.add_parser("info", help="print the model card of NAME")
    info.add_argument("name", metavar="NAME")
    info.set_defaults(func=_cmd_models_info)
    parser.set_defaults(func=_cmd_models_list, kind=None)
