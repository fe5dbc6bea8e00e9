# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Model choice from a header: the model cards (instrument, detector, filters)
matched against ``INSTRUME``, ``DETECTOR`` and ``FILTER*``.

Every entry point that chooses a model by itself (`cosmicray_deepcr` with
``model=None``, the CLI, the drizzlepac step) goes through `select_model`,
so a model a user registers with `astro_deepcr.register_model` is chosen
for its own instrument like a built-in one. The reason for the choice is
logged and recorded in output headers (``DCRWHY``).
"""

import warnings

from astropy import log
from astropy.utils.exceptions import AstropyUserWarning

from . import zoo

__all__ = ["select_model", "header_telescope"]

#: INSTRUME values of the Hubble Space Telescope, for headers without ``TELESCOP``.
_HST_INSTRUMENTS = frozenset({"ACS", "WFC3", "WFPC2", "STIS", "NICMOS", "COS", "FOC", "FOS", "GHRS", "WFPC"})
_FILTER_KEYWORDS = ("FILTER", "FILTER1", "FILTER2", "FILTER3", "FILTNAM1", "FILTNAM2")


def _header_text(header, key):
    """Upper-case stripped text of a header / ``meta`` value ('' when missing); dicts may use any case."""
    if header is None:
        return ""
    for candidate in (key, key.lower(), key.capitalize()):
        try:
            value = header[candidate]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(value, tuple):  # a (value, comment) pair in a meta dict
            value = value[0]
        return "" if value is None else str(value).strip().upper()
    return ""


def _header_filters(header):
    """Filter names in a header: each FILTER* value and its first word, CLEAR*/N/A/empty left out."""
    names = []
    for key in _FILTER_KEYWORDS:
        value = _header_text(header, key)
        if not value or value.startswith("CLEAR") or value in ("N/A", "NONE", "OPEN"):
            continue
        for name in (value, value.split()[0]):
            if name not in names:
                names.append(name)
    return names


#: PHOTMODE's detector words (synphot obsmode) -> the DETECTOR keyword's value.
_PHOTMODE_DETECTORS = {"WFC1": "WFC", "WFC2": "WFC", "UVIS1": "UVIS", "UVIS2": "UVIS"}


def _photmode(header):
    """``(instrument, detector, filters)`` from an HST extension's ``PHOTMODE`` (e.g. 'ACS HRC F606W MJD#...').

    A science extension read on its own (``CCDData.read(flt, hdu=1)``) has no ``INSTRUME``: its ``INHERIT``
    points to the primary header, which the reader did not keep; ``PHOTMODE`` still names the instrument.
    """
    words = _header_text(header, "PHOTMODE").split()
    if len(words) < 2 or words[0] not in _HST_INSTRUMENTS:
        return "", "", []
    filters = [word for word in words[2:] if word.startswith(("F", "G")) and word[1:2].isdigit()]
    return words[0], _PHOTMODE_DETECTORS.get(words[1], words[1]), filters


def _telescope(instrument, telescope=""):
    if telescope:
        return telescope
    return "HST" if instrument in _HST_INSTRUMENTS else ""


def header_telescope(header):
    """The telescope of a header: ``TELESCOP``, else ``"HST"`` for an HST ``INSTRUME`` (or ``PHOTMODE``), else ''.

    >>> from astro_deepcr.selection import header_telescope
    >>> header_telescope({"INSTRUME": "ACS"}), header_telescope({"TELESCOP": "Gemini-North"}), header_telescope({})
    ('HST', 'GEMINI-NORTH', '')
    """
    instrument = _header_text(header, "INSTRUME") or _photmode(header)[0]
    return _telescope(instrument, _header_text(header, "TELESCOP"))


def _specific_first(spec):
    """Sort key: fewest filters (a filter model before a multi-filter one), then the shortest name
    (``ACS-WFC-F606W`` before its architecture variant ``ACS-WFC-F606W-2-4``), then alphabetical."""
    return (len(spec.filters), len(spec.name), spec.name)


def _general_first(spec):
    """Sort key: a card for any filter, then the most filters, then the shortest name, then alphabetical."""
    return (len(spec.filters) > 0, -len(spec.filters), len(spec.name), spec.name)


def select_model(header, model=None, kind="mask"):
    """The model for the data described by ``header``, and why it was chosen.

    Matches ``INSTRUME``, ``DETECTOR`` and the filter keywords (``FILTER``,
    ``FILTER1``, ``FILTER2``...) against the ``instrument``, ``detector``
    and ``filters`` of every registered card, built-in and user-registered,
    case-insensitively. An explicit ``model`` always wins.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`, dict or None
        Primary header or ``CCDData.meta`` (a dict may use lower-case keys).
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional
        Use this model (reason ``"explicit"``).
    kind : {"mask", "inpaint"}
        Kind of model to choose.

    Returns
    -------
    spec : `~astro_deepcr.zoo.ModelSpec`
    reason : str
        ``"explicit"`` or a short description of the match, recorded as
        ``DCRWHY`` by `astro_deepcr.provenance.record_run`.

    Warns
    -----
    AstropyUserWarning
        The header names an instrument or detector no card was trained on,
        but one of the same telescope exists: that telescope's model for a
        camera without a card (`~astro_deepcr.zoo.UNCARDED_CAMERA_MODELS`),
        else the nearest card (of the same instrument, else telescope), is
        used outside its training domain.

    Notes
    -----
    Order of preference, first match wins:

    1. cards of the header's instrument and detector (a card with an empty
       ``detector`` fits every detector) that list one of the header's
       filters: the most specific one (fewest filters, then shortest name,
       so ``ACS-WFC-F606W`` rather than its ``-2-4`` variant);
    2. cards of that instrument and detector for any filter: the most
       general one (empty ``filters``, else the most filters), so ACS/WFC
       F775W gets ``ACS-WFC``;
    3. a camera without a card of a telescope that has cards: another detector
       of the same instrument (ACS/HRC) or another instrument (WFPC2) gets that
       telescope's mask model for cameras without a card
       (`~astro_deepcr.zoo.UNCARDED_CAMERA_MODELS`: ``ground`` for HST,
       measured better than ACS-WFC on the ACS/HRC frame and on WFPC2's
       chips, docs/ground.rst), with a warning; inpaint models, or a
       telescope without such a model, get the most general card of the same
       instrument, else of the same telescope, with a warning;
    4. anything else (ground-based frames): `~astro_deepcr.zoo.GENERIC_DEFAULT_MODEL` for mask
       models, the most general card for inpaint models.

    Examples
    --------
    >>> from astro_deepcr.selection import select_model
    >>> header = {"INSTRUME": "ACS", "DETECTOR": "WFC", "FILTER1": "CLEAR1L", "FILTER2": "F814W"}
    >>> spec, reason = select_model(header)
    >>> spec.name, reason
    ('ACS-WFC-F814W', 'card for ACS/WFC F814W')
    """
    spec, reason = _select(header, model, kind)
    # debug, not info: a pipeline calls this once per frame; the steps report the choice (verbose, headers)
    log.debug(f"deepCR {kind} model {spec.name}: {reason}")
    return spec, reason


def _nearest(spec, kind, where, scope):
    trained = "/".join(filter(None, [spec.instrument, spec.detector]))
    warnings.warn(f"no deepCR {kind} model for {where}; using {spec.name} (same {scope}, trained on "
                  f"{trained}) outside its training domain: check its masks", AstropyUserWarning)
    return spec, f"nearest card, same {scope}"


def _select(header, model, kind):
    if model is not None:
        return zoo.get_model(model, kind), "explicit"
    instrument = _header_text(header, "INSTRUME")
    detector = _header_text(header, "DETECTOR")
    filters = _header_filters(header)
    if not instrument:
        instrument, detector, filters = _photmode(header)
    telescope = _telescope(instrument, _header_text(header, "TELESCOP"))
    cards = [zoo.get_model(name) for name in zoo.list_models(kind)]
    where = "/".join(filter(None, [instrument, detector])) or "no INSTRUME"
    same_instrument = [spec for spec in cards if instrument and spec.instrument.upper() == instrument]
    same_detector = [spec for spec in same_instrument if spec.detector.upper() in ("", detector)]
    # an exact detector before a card for any detector
    exact = [spec for spec in same_detector if spec.detector.upper() == detector] or same_detector
    with_filter = [spec for spec in exact if {f.upper() for f in spec.filters} & set(filters)]
    if with_filter:
        spec = min(with_filter, key=_specific_first)
        shown = next(f for f in filters if f in {g.upper() for g in spec.filters})
        return spec, f"card for {where} {shown}"
    if exact:
        spec = min(exact, key=_general_first)
        note = f", {filters[0]} in no card" if filters and spec.filters else ""
        return spec, f"card for {where}{note}"
    same_telescope = [spec for spec in cards if telescope and _telescope(spec.instrument.upper()) == telescope]
    uncarded = zoo.UNCARDED_CAMERA_MODELS.get(telescope)
    if (same_instrument or same_telescope) and kind == "mask" and uncarded in {spec.name for spec in cards}:
        # measured on ACS/HRC and WFPC2 frames (docs/ground.rst): this model beats the nearest HST card there
        spec = zoo.get_model(uncarded, kind)
        warnings.warn(f"no deepCR {kind} model for {where}; using {spec.name}, the {telescope} default for a camera "
                      "without a card, rather than a model of another camera of the same telescope: check its masks",
                      AstropyUserWarning)
        return spec, f"{telescope} default for a camera without a card"
    if same_instrument:
        return _nearest(min(same_instrument, key=_general_first), kind, where, "instrument")
    if same_telescope:
        return _nearest(min(same_telescope, key=_general_first), kind, where, "telescope")
    if kind == "mask" and zoo.GENERIC_DEFAULT_MODEL in {spec.name for spec in cards}:
        return zoo.get_model(zoo.GENERIC_DEFAULT_MODEL, kind), "generic default, no card matches"
    if not cards:
        raise ValueError(f"no {kind} model is registered")
    return min(cards, key=_general_first), "most general card, no card matches"
