# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
ACS/WFC detector features for the simulator, with the numbers they rest on.

Every feature is a keyword of `Detector`; a value marked *assumed* is not a
measurement and is there to be changed.

- **Hot pixels** (DQ 16): a fraction ``hot_fraction`` of pixels (default
  0.5 %, *assumed*) carries extra dark charge, rate drawn from the power law
  N(> r) ~ r**-1.31 above 0.08 e-/s, the slope of the ACS Instrument
  Handbook's table of new WFC hot pixels per day (390/day above 0.08 e-/s,
  328 above 0.1, 16 above 1.0; ACS IHB, "Warm and Hot Pixels", Table 4.3 of
  the 2005 edition); 0.08 e-/s is the handbook's hot-pixel threshold. The
  fraction sits between one anneal cycle of new hot pixels (~0.1 %) and the
  ~2 % Riess, Mutchler & Van Orsow (ACS ISR 2002-06) extrapolated for three
  years of weak anneals. The dark charge is left in the image (an ``_flc``
  whose dark did not remove it: a residual hot pixel).
- **Bad columns** (DQ 4): ``bad_columns`` columns per 4096 (default 10,
  *assumed*), each dead from a random row to the end farthest from the
  amplifier (a charge trap blocks the charge behind it): the pixels read
  only the read noise.
- **CTE trails** (DQ not set): every pixel loses a fraction of its charge
  above the sky, ``cte_loss * (transfers / 2048) * (charge / 100 e-)**-0.5``
  capped at 0.5, released into an exponential trail of ``cte_length`` px
  (default 3, *assumed*) on the side away from the readout. ``cte_loss``
  (default 0.02, *assumed*) is the order of the residual left in CTE-corrected
  ``_flc`` data: Riess (ACS ISR 2003-09) measured 1-2 % photometric losses,
  ~10 % in the worst case, before correction; the pixel-based correction
  removes ~97-98 % of the trailing (Massey et al. 2010, 2014). The power law
  in charge follows the "strong power-law dependence on the stellar flux" of
  ISR 2003-09 (exponent *assumed*).
- **Saturation with bleeding** (DQ 256): charge above ``saturation``
  (default 77,400 e-, the mean WFC saturation level, ACS IHB section 4.3.1,
  ACS ISR 2020-02) flows along the column, half up, half down, filling each
  pixel to the level; the <10 % horizontal blooming the handbook mentions
  is left out.
- **Sky gradient**: a linear gradient of total amplitude ``sky_gradient``
  (default 0.1 = +-5 % of the sky across the image, *assumed*; scattered
  light and earthshine make the ACS sky non-flat), random direction.

The readout amplifier is at row 0 (``readout="bottom"``, as for the chip in
``SCI,1`` of an ACS/WFC ``_flc``, WFC2, read through amplifiers C/D) or at
the last row (``"top"``, WFC1).
"""

import dataclasses

import numpy as np
from scipy import signal

__all__ = ["Detector", "DQ_HOT", "DQ_BAD", "DQ_SATURATED", "add_hot_pixels", "add_bad_columns", "add_cte_trails",
           "bleed_saturation", "sky_gradient"]

#: ACS data-quality bits used here (ACS Data Handbook, "Data Quality Flags").
DQ_BAD = 4
DQ_HOT = 16
DQ_SATURATED = 256
WFC_ROWS = 2048
HOT_THRESHOLD = 0.08  # e-/s, ACS IHB definition of a hot pixel
HOT_SLOPE = 1.31  # N(> rate) ~ rate**-1.31: log(328 / 16) / log(1.0 / 0.1), ACS IHB hot-pixel table


@dataclasses.dataclass
class Detector:
    """Which detector features to simulate, with their parameters (see the module docstring).

    ``Detector()`` turns every feature on at its documented default;
    ``Detector.none()`` turns them all off. Hot pixels and bad columns are
    properties of the chip: they are drawn from ``defects_seed`` and the
    image's chip position, so every exposure of a stack shares them
    (``defects_seed=None``: new ones in every exposure).
    """

    hot_fraction: float = 0.005
    bad_columns: float = 10.0
    cte_loss: float = 0.02
    cte_length: float = 3.0
    saturation: float = 77400.0
    sky_gradient: float = 0.1
    readout: str = "bottom"
    defects_seed: object = 0

    @classmethod
    def none(cls):
        """A detector with every feature off (the simulator without ``detector=``)."""
        return cls(hot_fraction=0.0, bad_columns=0.0, cte_loss=0.0, saturation=np.inf, sky_gradient=0.0)

    def __post_init__(self):
        if self.readout not in ("bottom", "top"):
            raise ValueError(f"readout must be 'bottom' or 'top', not {self.readout!r}")
        for name in ("hot_fraction", "bad_columns", "cte_loss", "cte_length", "sky_gradient"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)!r}")
        if not self.saturation > 0:
            raise ValueError(f"saturation must be > 0, not {self.saturation!r}")


def sky_gradient(shape, sky, amplitude, rng):
    """Sky (e-) with a linear gradient of total amplitude ``amplitude * sky`` in a random direction."""
    if amplitude == 0:
        return np.full(shape, float(sky))
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[: shape[0], : shape[1]]
    span = abs(np.cos(angle)) * (shape[1] - 1) + abs(np.sin(angle)) * (shape[0] - 1)
    ramp = (x - (shape[1] - 1) / 2) * np.cos(angle) + (y - (shape[0] - 1) / 2) * np.sin(angle)
    return sky * (1.0 + amplitude * ramp / max(span, 1))


def add_hot_pixels(shape, exptime, fraction, rng):
    """Dark charge (e-) of hot pixels and their mask: rates above 0.08 e-/s with N(> r) ~ r**-1.31."""
    hot = rng.random(shape) < fraction
    rate = HOT_THRESHOLD * (1.0 - rng.random(int(hot.sum()))) ** (-1.0 / HOT_SLOPE)
    charge = np.zeros(shape)
    charge[hot] = rate * exptime
    return charge, hot


def add_bad_columns(shape, per_4096, readout, rng):
    """Mask of dead column segments: ``per_4096`` columns per 4096, dead beyond a random row."""
    bad = np.zeros(shape, bool)
    for column in np.flatnonzero(rng.random(shape[1]) < per_4096 / 4096.0):
        start = int(rng.integers(0, shape[0]))
        if readout == "bottom":
            bad[start:, column] = True
        else:
            bad[: start + 1, column] = True
    return bad


def add_cte_trails(charge, loss, length, readout="bottom", row0=0, n_rows=WFC_ROWS):
    """Move part of each pixel's ``charge`` (e- above the sky) into a trail away from the readout.

    A pixel ``t`` transfers from the amplifier (row ``row0 + row`` for a
    bottom readout) loses ``loss * t / n_rows * (q / 100)**-0.5`` (at most
    half) of its charge ``q``, released into the following pixels with an
    exponential profile of scale ``length``. Charge is conserved except
    what trails off the image.
    """
    if loss == 0:
        return charge.copy()
    data = charge if readout == "bottom" else charge[::-1]
    rows = np.arange(data.shape[0])[:, None] + (row0 if readout == "bottom" else 0)
    q = np.clip(data, 0, None)
    fraction = np.clip(loss * rows / n_rows * (np.maximum(q, 1.0) / 100.0) ** -0.5, 0, 0.5)
    lost = q * fraction
    decay = np.exp(-1.0 / length)
    # released charge at row n: sum_k lost[n - k] * (1 - decay) * decay**(k - 1), k >= 1 (an IIR filter along columns)
    trail = signal.lfilter([0.0, 1.0 - decay], [1.0, -decay], lost, axis=0)
    out = data - lost + trail
    return out if readout == "bottom" else out[::-1]


def bleed_saturation(image, level):
    """Spread charge above ``level`` along columns, half each way; return the image and the saturated mask."""
    out = np.array(image, dtype=np.float64)
    if not np.isfinite(level) or out.max() <= level:
        return out, np.zeros(out.shape, bool)
    for column in np.flatnonzero((out > level).any(axis=0)):
        values = out[:, column]
        for row in np.flatnonzero(values > level):
            excess = values[row] - level
            if excess <= 0:
                continue
            values[row] = level
            for direction, share in ((1, excess / 2), (-1, excess / 2)):
                k = row + direction
                while share > 0 and 0 <= k < values.size:
                    room = max(level - values[k], 0.0)
                    moved = min(room, share)
                    values[k] += moved
                    share -= moved
                    k += direction
    return out, out >= level
