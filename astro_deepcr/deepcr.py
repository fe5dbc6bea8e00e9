# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
`DeepCR`: cosmic-ray probability, mask and cleaning on numpy arrays.
"""

import numpy as np

from . import inpaint as _inpaint
from .conf import conf
from .detection import choose_precision, default_threshold, detect, run_network
from .engine import resolve_device, resolve_precision
from .zoo import get_model

__all__ = ["DeepCR", "as_image"]

_CLASSIC = {"medmask": _inpaint.medmask, "biharmonic": _inpaint.biharmonic}


def as_image(image, inmask=None, name="image", copy=True):
    """Validate a 2-D image; return ``(float32 copy, bad-pixel mask)``.

    With ``copy=False`` the image itself is returned where it already is a
    C-contiguous float32 array (for a caller that never writes to it).

    Accepts any real numeric dtype and byte order and masked arrays. Bad
    pixels are the masked ones, those in ``inmask`` and the non-finite ones
    (also values beyond the float32 range, which become infinite).

    Raises
    ------
    TypeError
        Not array-like, or of a non-real dtype (complex, bool, object, str).
    ValueError
        Not 2-D, empty, or an ``inmask`` of another shape.
    """
    mask = None
    if isinstance(image, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(image)
        image = image.data
    try:
        array = np.asarray(image)
    except Exception as exc:  # e.g. ragged lists
        raise TypeError(f"{name} must be a 2-D numeric array: {exc}") from None
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must have a real numeric dtype (int, uint or float), not {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got a {array.ndim}-D array of shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    with np.errstate(over="ignore", invalid="ignore"):
        data = np.array(array, dtype=np.float32, copy=True if copy else None, order="C")
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= mask
    if inmask is not None:
        inmask = np.asarray(inmask)
        if inmask.shape != data.shape:
            raise ValueError(f"inmask shape {inmask.shape} does not match {name} shape {data.shape}")
        bad |= inmask.astype(bool)
    return data, bad


def _float_copy(image):
    """A native-order float copy of an already validated image: float64 for
    8-byte floats, float32 otherwise."""
    raw = np.asarray(getattr(image, "data", image))
    wide = raw.dtype.kind == "f" and raw.dtype.itemsize == 8
    return raw.astype(np.float64 if wide else np.float32, copy=True)


class DeepCR:
    """Cosmic-ray detection and inpainting with deepCR networks.

    Parameters
    ----------
    mask : str or `~astro_deepcr.zoo.ModelSpec`
        Name of a registered deepCR-mask model (see `astro_deepcr.list_models`).
    inpaint : str or `~astro_deepcr.zoo.ModelSpec`, optional
        Default inpainting for `clean`: ``"medmask"`` (5x5 median of the
        unmasked pixels), ``"biharmonic"`` or the name of a deepCR-inpaint
        model. None means ``"medmask"``.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (also deepCR's
        ``"CPU"``/``"GPU"``); default ``conf.device``.
    tile_size, batch_size, threads : int, optional
        Engine settings (defaults from `astro_deepcr.conf`).
    precision : {"auto", "float32", "bfloat16", "float16"}, optional
        Network precision; default ``conf.precision`` (``"auto"``: bfloat16
        where the device computes it natively and the model's card says its
        bfloat16 masks were validated against float32, else float32). Use
        ``"float32"`` for bit-reproducible runs. `precision_used` says what
        a model actually runs at.
    progress : bool or None
        Tile progress bar; None shows it only on an interactive terminal.

    Notes
    -----
    Images are in the units of the model (`astro_deepcr.model_info` says
    which; electrons for the HST models). Detection goes through
    `astro_deepcr.detection.detect`, as every other entry point does.
    Masked-array pixels and ``inmask`` pixels are *bad*: never flagged as
    cosmic rays, never used to fill other pixels, and they keep their
    original values in a cleaned image; the network sees their values.
    Non-finite pixels are bad too, and are filled with the median of their
    good neighbours before the network sees the image.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_deepcr import DeepCR
    >>> image = np.random.default_rng(0).normal(60, 8, (64, 64)).astype("f4")
    >>> image[30, 20:23] += 2000  # a cosmic-ray track
    >>> mask, cleaned = DeepCR("ACS-WFC", device="cpu").clean(image)
    >>> bool(mask[30, 21]), bool(mask[5, 5])
    (True, False)
    """

    def __init__(self, mask="ACS-WFC", inpaint=None, device=None, tile_size=None, batch_size=None, threads=None,
                 precision=None, progress=None):
        self.mask_spec = get_model(mask, kind="mask")
        self.inpaint_method = "medmask" if inpaint is None else inpaint
        self._check_inpaint(self.inpaint_method)
        self.device = resolve_device(device)
        self.precision = conf.precision if precision is None else precision
        resolve_precision(self.precision, self.device)  # refuse an unknown precision now
        self.tile_size = tile_size
        self.batch_size = batch_size
        self.threads = threads
        self.progress = progress

    def __repr__(self):
        return f"DeepCR(mask={self.mask_spec.name!r}, inpaint={self.inpaint_method!r}, device='{self.device}')"

    @property
    def threshold(self):
        """The mask model's default threshold (`astro_deepcr.detection.default_threshold`)."""
        return default_threshold(self.mask_spec)

    @property
    def precision_used(self):
        """The precision the mask network runs at (``"auto"`` resolved); record this."""
        return self.precision_for(self.mask_spec)

    def precision_for(self, model):
        """The precision ``model`` (a name or `~astro_deepcr.zoo.ModelSpec`) runs at on this instance."""
        return choose_precision(get_model(model), self.precision, self.device)

    def _engine(self):
        return dict(device=self.device, tile_size=self.tile_size, batch_size=self.batch_size, threads=self.threads,
                    progress=self.progress)

    @staticmethod
    def _check_inpaint(method):
        if method in _CLASSIC:
            return None
        return get_model(method, kind="inpaint")

    # -- public API -----------------------------------------------------------------------------------------------

    def detect(self, image, threshold=None, inmask=None, **options):
        """The full `~astro_deepcr.detection.Detection` of ``image`` (probability, mask, masks used).

        ``options`` are those of `astro_deepcr.detection.detect` (``dq``,
        ``bits``, ``fill_bits``, ``satlevel``, ``grow``...).
        """
        data, bad = as_image(image, inmask, copy=False)  # detect never writes to the image
        return detect(data, spec=self.mask_spec, threshold=threshold, mask=bad, precision=self.precision,
                      **self._engine(), **options)

    def probability(self, image, inmask=None):
        """Per-pixel cosmic-ray probability.

        Parameters
        ----------
        image : array-like, 2-D
            Image in the units of the mask model.
        inmask : array-like of bool, optional
            Bad pixels (see Notes of `DeepCR`); their probability is 0.

        Returns
        -------
        probability : ndarray of float32, same shape as ``image``
        """
        return self.detect(image, inmask=inmask).probability

    def mask(self, image, threshold=None, inmask=None):
        """Boolean cosmic-ray mask: ``probability > threshold``.

        ``threshold`` defaults to the model's (see `threshold`).
        """
        return self.detect(image, threshold=threshold, inmask=inmask).cr_mask

    def inpaint(self, image, mask, method=None, inmask=None):
        """Replace the pixels of ``mask`` by ``method`` (default: the instance's).

        Returns a float copy of ``image`` (float64 for float64 input, else
        float32); bad pixels keep their values.
        """
        data, bad = as_image(image, inmask)
        mask = np.asarray(mask)
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} does not match image shape {data.shape}")
        return self._inpaint(_float_copy(image), mask.astype(bool) & ~bad, bad, method or self.inpaint_method)

    def _inpaint(self, image, mask, bad, method):
        spec = self._check_inpaint(method)
        if spec is None:
            return _CLASSIC[method](image, mask, bad)
        cleaned = np.array(image, copy=True)
        if not mask.any():
            return cleaned
        holes = mask | bad
        scaled = np.where(holes, 0.0, image / spec.scale).astype(np.float32)
        inputs = np.stack([scaled, holes.astype(np.float32)])
        predicted = run_network(spec, inputs, precision=self.precision_for(spec), **self._engine())
        cleaned[mask] = predicted[mask] * spec.scale
        return cleaned

    def clean(self, image, threshold=None, inpaint=None, inmask=None):
        """Detect cosmic rays and replace them.

        Parameters
        ----------
        image : array-like, 2-D
        threshold : float, optional
            Probability threshold in [0, 1]; default the model's.
        inpaint : str, optional
            ``"medmask"``, ``"biharmonic"`` or a deepCR-inpaint model name;
            default the instance's.
        inmask : array-like of bool, optional
            Bad pixels: never flagged, never used as sources, left unchanged.

        Returns
        -------
        mask : ndarray of bool
            Cosmic-ray pixels.
        cleaned : ndarray of float
            Copy of ``image`` with the cosmic-ray pixels replaced.
        """
        method = inpaint or self.inpaint_method
        self._check_inpaint(method)
        found = self.detect(image, threshold=threshold, inmask=inmask)
        return found.cr_mask, self._inpaint(_float_copy(image), found.cr_mask, found.bad, method)
