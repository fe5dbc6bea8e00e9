# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
What a run of astro_deepcr records about itself: one keyword set for every writer.

The ccdproc step (``CCDData.meta``), the batch cleaner (cleaned FITS files) and
the drizzlepac step (primary header of ``_flt/_flc`` files) all record a run
with `record_run`, so the same question ("which model, threshold and precision
made this mask?") has the same answer in every product:

========  ==========================================================
DCRVERS   astro_deepcr version
DCRSTEP   the step that wrote the cards (``clean``, ``flag``, ``ccdproc``)
DCRMODEL  deepCR-mask model name
DCRWHY    why that model was used (``explicit`` or the header match)
DCRTHRSH  probability threshold
DCRPREC   numerical precision of the network (``float32``, ``bfloat16``...)
DCRPVAL   the verdict behind DCRPREC (``requested``, ``no native bfloat16``,
          ``passed here 2026-12-04 (HRC 48/3828 flipped)``: bf16 validated on this machine)
DCRBACK   inference runtime and its version (``torch 2.13.0``, ``openvino 2026.4.1``)
DCRINPT   replacement of the CR pixels (``none`` when only flagged)
DCRNCR    number of cosmic-ray pixels found
DCRBIT    DQ bit set on cosmic rays (drizzlepac step)
DCRGROW   box side the mask was grown by (drizzlepac step)
========  ==========================================================

Fields that do not apply to a step are left out, and keywords written by an
earlier run are replaced rather than repeated, so rerunning a step on its own
output leaves one set of cards.
"""

try:
    from ._version import version
except ImportError:  # not installed (e.g. a source tree on sys.path)
    version = "0.0.dev0"

__all__ = ["version", "PROVENANCE_KEYWORDS", "provenance_cards", "record_run"]

#: keyword -> (field name, FITS comment)
PROVENANCE_KEYWORDS = {
    "DCRVERS": ("version", "astro_deepcr version"),
    "DCRSTEP": ("step", "astro_deepcr step that wrote these cards"),
    "DCRMODEL": ("model", "deepCR-mask model"),
    "DCRWHY": ("reason", "why this model was used"),
    "DCRTHRSH": ("threshold", "deepCR probability threshold"),
    "DCRPREC": ("precision", "network precision"),
    "DCRPVAL": ("precision_verdict", "why that precision (bf16 validation)"),
    "DCRBACK": ("backend", "inference runtime and its version"),
    "DCRINPT": ("inpaint", "replacement of cosmic-ray pixels"),
    "DCRNCR": ("n_cr", "number of cosmic-ray pixels found"),
    "DCRBIT": ("crbit", "DQ bit set on cosmic rays"),
    "DCRGROW": ("grow", "CR mask grown by this box side"),
    "DCRSATP": ("protection", "no CR flag within this many px of saturation"),
    "DCRSTAR": ("star_shape", "star-shape test (astro_deepcr.starshape)"),
}
_FIELDS = {field: keyword for keyword, (field, _) in PROVENANCE_KEYWORDS.items()}
HISTORY_TAG = "astro_deepcr"


def _card_value(field, value):
    if field == "threshold":
        return float(value)
    if field in ("n_cr", "crbit", "grow", "protection"):
        return int(value)
    if field == "inpaint" and value is None:
        return "none"
    return str(value)


def provenance_cards(step, **fields):
    """The ``(keyword, value, comment)`` cards describing one run.

    Parameters
    ----------
    step : str
        Name of the step writing the cards (``"clean"``, ``"flag"``, ``"ccdproc"``...).
    **fields
        Any of ``model``, ``reason``, ``threshold``, ``precision``, ``backend``, ``inpaint``,
        ``n_cr``, ``crbit``, ``grow``. ``None`` leaves a field out (except
        ``inpaint``, recorded as ``"none"``).

    Returns
    -------
    cards : list of tuple

    Raises
    ------
    TypeError
        A field name that is not part of the keyword set.

    Examples
    --------
    >>> from astro_deepcr.provenance import provenance_cards
    >>> [card[:2] for card in provenance_cards("clean", model="ACS-WFC", threshold=0.5)][1:]
    [('DCRSTEP', 'clean'), ('DCRMODEL', 'ACS-WFC'), ('DCRTHRSH', 0.5)]
    """
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise TypeError(f"unknown provenance field(s) {unknown}; known: {sorted(_FIELDS)}")
    values = {"version": version, "step": step, **fields}
    cards = []
    for keyword, (field, comment) in PROVENANCE_KEYWORDS.items():
        if field not in values or (values[field] is None and field != "inpaint"):
            continue
        value = _card_value(field, values[field])
        if isinstance(value, str) and len(value) + len(comment) > 65:  # one 80-character card, nothing truncated
            comment = ""
        cards.append((keyword, value, comment))
    return cards


def _is_fits_header(meta):
    return hasattr(meta, "cards") and hasattr(meta, "append")


def record_run(meta, step, history=None, **fields):
    """Write the provenance cards of one run into a FITS header or a ``meta`` dict.

    Earlier ``DCR*`` cards are replaced (a FITS header keeps every other card
    in its place; new cards go after the existing ones, blank padding cards are
    not reused). With ``history``, earlier ``HISTORY`` cards starting with
    ``"astro_deepcr"`` are removed and one new one is appended.

    Parameters
    ----------
    meta : `~astropy.io.fits.Header` or dict-like
        Where to record. A plain mapping receives values without comments.
    step : str
        See `provenance_cards`.
    history : str, optional
        Text (<= 58 characters) of one ``HISTORY`` card, e.g.
        ``"CRs in DQ bit 4096 (DCR* keys)"``.
    **fields
        See `provenance_cards`.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from astro_deepcr.provenance import record_run
    >>> header = fits.Header({"EXPTIME": 60.0})
    >>> record_run(header, "flag", model="ACS-WFC", threshold=0.5, n_cr=12)
    >>> record_run(header, "flag", model="ACS-WFC", threshold=0.4, n_cr=15)
    >>> header["DCRTHRSH"], header["DCRNCR"], list(header).count("DCRNCR")
    (0.4, 15, 1)
    """
    cards = provenance_cards(step, **fields)
    if not _is_fits_header(meta):
        for keyword in PROVENANCE_KEYWORDS:
            meta.pop(keyword, None)
        meta.update({keyword: value for keyword, value, _ in cards})
        return
    for keyword in PROVENANCE_KEYWORDS:
        if keyword in meta and keyword not in {card[0] for card in cards}:
            del meta[keyword]
    for keyword, value, comment in cards:
        if keyword in meta:
            meta[keyword] = (value, comment)
        else:
            meta.append((keyword, value, comment), useblanks=False, end=True)
    if history is not None:
        for index in reversed([i for i, card in enumerate(meta.cards)
                               if card.keyword == "HISTORY" and str(card.value).startswith(HISTORY_TAG)]):
            del meta[index]
        meta.append(("HISTORY", f"{HISTORY_TAG} {history}"), useblanks=False, end=True)
