# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Input file lists as drizzlepac reads them.

`parse_inputs` expands every form ``AstroDrizzle`` accepts: a name, a list,
a comma-separated string, a wildcard, an ``@file`` (first column; a second
column names IVM files) and an association table (``*_asn.fits``: its
``EXP`` members with ``MEMPRSNT`` true, found as ``<memname>_flt/_flc...``
by `stsci.tools.fileutil.buildRootname`). Lists (comma strings,
``@files``) are split here the way `stsci.tools.irafglob.irafglob` splits
them, and each name, wildcard or table then goes through
`stsci.tools.parseinput.parseinput`, the function drizzlepac's own
``processInput`` uses. Unlike those, a name listed anywhere (not a
wildcard) that does not exist is an error, not silently dropped.
"""

import os
import shutil
import warnings

from astropy.utils.exceptions import AstropyDeprecationWarning

__all__ = ["parse_inputs", "crmask_names", "archive_inputs"]


def _first_column(line):
    """drizzlepac's ``@file`` convention: the first word is the input (``#`` lines are comments)."""
    words = line.split()
    return "" if not words or words[0].startswith("#") else words[0]


def _asn_problem(path):
    """What is wrong with an association table stsci.tools could not read (its own message says nothing)."""
    from astropy.io import fits
    from stsci.tools import fileutil

    try:
        with fits.open(path) as hdul:
            table = hdul[1].data
            columns = set(table.names)
            needed = {"MEMNAME", "MEMTYPE", "MEMPRSNT"} - columns
            if needed:
                return f"column(s) {', '.join(sorted(needed))} missing (drizzlepac's asn format)"
            members = [str(name).strip().lower() for name, kind, present in
                       zip(table["MEMNAME"], table["MEMTYPE"], table["MEMPRSNT"], strict=True)
                       if str(kind).strip().upper().startswith("EXP") and present]
    except (OSError, IndexError, AttributeError, TypeError) as exc:
        return f"not a FITS table ({exc})"
    directory = os.path.dirname(path) or os.curdir
    missing = [name for name in members if fileutil.buildRootname(os.path.join(directory, name)) is None]
    if missing:
        return f"no _flt/_flc/... file for member(s) {', '.join(missing)}"
    return "see the chained exception"


def _parseinput(item):
    """One name, wildcard or association table through drizzlepac's ``parseinput`` (no lists here)."""
    from stsci.tools.parseinput import parseinput

    with warnings.catch_warnings():
        # stsci.tools' association-table reader uses astropy's deprecated chararray methods
        warnings.simplefilter("ignore", AstropyDeprecationWarning)
        try:
            found, _ = parseinput(item)
        except OSError as exc:
            raise ValueError(f"cannot read the input list {item!r}: {exc}") from None
        except ValueError as exc:
            if "ASSOCIATION" not in str(exc):
                raise
            raise ValueError(f"cannot read association table {item!r}: {_asn_problem(item)}") from exc
    # buildRootname returns None for an association member with no file on disk
    missing = [name for name in found if name is None]
    if missing:
        raise ValueError(f"association table {item!r} names member(s) with no _flt/_flc file on disk")
    return found


def _at_file_lines(item):
    """The inputs an ``@file`` lists (first column of each line), read here so none is lost unseen."""
    path = item[1:]
    if not os.path.isfile(path):
        raise ValueError(f"@file {path} not found")
    try:
        with open(path) as stream:
            return [_first_column(line) for line in stream]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the input list {item!r}: {exc}") from None


def _expand(item, missing):
    """The files of one input, split as irafglob splits it; names that do not exist are added to ``missing``.

    stsci.tools' ``irafglob`` globs every name, so a listed name that does not exist matched nothing and
    vanished from comma strings and ``@files``; here only a wildcard may match nothing.
    """
    item = item.strip()
    if not item:
        return []
    if any(char in item for char in ",[]") and os.path.isfile(item):
        return [item]  # a file whose name has drizzlepac syntax in it: taken literally (issue #28)
    if "," in item:
        return [name for part in item.split(",") for name in _expand(part, missing)]
    if item.startswith("@"):
        return [name for line in _at_file_lines(item) for name in _expand(line, missing)]
    found = _parseinput(item)
    if not found and not any(char in item for char in "*?["):
        missing.append(item)  # a plain name that does not exist: an error, not an empty match
    return found


def parse_inputs(input):  # noqa: A002  (drizzlepac's parameter name)
    """Expand drizzlepac-style input into a list of existing file names.

    Parameters
    ----------
    input : str, path-like or list of those
        A file name, a comma-separated list (``"a_flc.fits,b_flc.fits"``), a
        wildcard (``"*_flc.fits"``), an ``@file`` listing inputs one per line,
        an association table (``"j8xi01010_asn.fits"``), or a list of any of
        these, as ``AstroDrizzle`` takes them.

    Returns
    -------
    names : list of str
        In the order given (wildcards sorted as `glob` returns them).

    Raises
    ------
    ValueError
        A listed name (in any form: a name, a list, a comma string, an
        ``@file``) or an ``@file`` does not exist, an association member has
        no file, or nothing matched at all (wildcards matching nothing).

    Examples
    --------
    >>> from astro_deepcr.drizzle import parse_inputs
    >>> parse_inputs("@visit.lis")  # doctest: +SKIP
    ['j8xi01abq_flc.fits', 'j8xi01acq_flc.fits']
    """
    if input is None:
        raise ValueError("no input given")
    items = [input] if isinstance(input, (str, bytes, os.PathLike)) else list(input)
    names, missing = [], []
    for item in items:
        names.extend(_expand(os.fsdecode(os.fspath(item)), missing))
    missing += [name for name in names if not os.path.isfile(name)]
    if missing:
        raise ValueError(f"input file(s) not found: {', '.join(missing)}")
    if not names:
        raise ValueError(f"no input files found for {input!r}")
    return names


def crmask_names(filename):
    """The ``<rootname>_sci<N>_crmask.fits`` names AstroDrizzle gives the cosmic-ray masks of a file.

    The rootname follows drizzlepac's public convention,
    `stsci.tools.fileutil.buildNewRootname` of the input name (directory kept,
    ``_flt``/``_flc`` suffix dropped), one name per ``SCI`` extension.
    AstroDrizzle's final drizzle merges any such file it finds, whether
    driz_cr ran or not.
    """
    from astropy.io import fits
    from stsci.tools import fileutil

    rootname = fileutil.buildNewRootname(os.fspath(filename))
    with fits.open(filename) as hdul:
        extvers = [hdu.ver for hdu in hdul if hdu.name == "SCI"]
    return [f"{rootname}_sci{extver}_crmask.fits" for extver in extvers]


def archive_inputs(names, preserve=True, overwrite=False, restore=False, directory="OrIg_files"):
    """AstroDrizzle's ``[STATE OF INPUT FILES]`` archive, done before anything changes the inputs.

    ``overwrite``: copy every input into ``directory`` (replacing older
    copies); ``preserve``: copy the inputs not archived yet; ``restore``: put
    the archived copy back in place of an input that was not archived just
    now. Archived copies are read-only, as AstroDrizzle leaves them.

    Returns
    -------
    actions : list of (str, str)
        ``("archived" | "restored", name)`` for each file copied.
    """
    actions = []
    if not (preserve or overwrite or restore):
        return actions
    if preserve or overwrite:
        os.makedirs(directory, exist_ok=True)
    for name in names:
        copy = os.path.join(directory, os.path.basename(name))
        if overwrite or (preserve and not os.path.exists(copy)):
            if os.path.exists(copy):
                os.chmod(copy, 0o644)
            shutil.copy(name, copy)
            os.chmod(copy, 0o444)
            actions.append(("archived", name))
        elif restore and os.path.exists(copy):
            os.chmod(name, 0o644)
            shutil.copy(copy, name)
            os.chmod(name, 0o644)
            actions.append(("restored", name))
    return actions
