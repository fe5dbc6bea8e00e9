# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Cosmic rays as objects and as DS9 regions: 8-connected objects of a mask and one pixel-edge polygon each.

`write_regions` writes one DS9 polygon per connected cosmic ray
(8-connectivity, image coordinates, 1-based as DS9 expects); `read_regions`
reads them back. Needs numpy and scipy only; `astro_deepcr.visualization`
draws the pictures and re-exports these names.
"""

import numpy as np
from scipy import ndimage

from .fitsutil import atomic_write

__all__ = ["cr_objects", "cr_outline", "write_regions", "read_regions"]

_EIGHT = np.ones((3, 3), dtype=int)


def cr_objects(cr_mask):
    """Connected cosmic rays of a mask (8-connectivity, as a track crosses pixels diagonally).

    Returns
    -------
    labels : ndarray of int
        0 outside cosmic rays, ``1..n`` for the objects.
    n_objects : int
    """
    labels, n_objects = ndimage.label(np.asarray(cr_mask, dtype=bool), structure=_EIGHT)
    return labels, int(n_objects)


def _boundary_edges(filled):
    """Directed pixel-side edges of ``filled`` (padded by one), interior on the left, in corner coordinates."""
    edges = {}
    ys, xs = np.nonzero(filled)
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        if not filled[y - 1, x]:
            edges.setdefault((x, y), []).append((x + 1, y))
        if not filled[y, x + 1]:
            edges.setdefault((x + 1, y), []).append((x + 1, y + 1))
        if not filled[y + 1, x]:
            edges.setdefault((x + 1, y + 1), []).append((x, y + 1))
        if not filled[y, x - 1]:
            edges.setdefault((x, y + 1), []).append((x, y))
    return edges


def cr_outline(component):
    """Outline of one 8-connected object as a polygon along pixel edges.

    Parameters
    ----------
    component : array-like of bool, 2-D
        One connected object (holes are filled).

    Returns
    -------
    vertices : ndarray of shape (n, 2)
        ``(x, y)`` corners in 0-based pixel coordinates (pixel ``(y, x)``
        covers ``[x - 0.5, x + 0.5] x [y - 0.5, y + 0.5]``), counter-clockwise,
        without repeated or collinear points. Its area equals the number of
        pixels of the filled object.
    """
    filled = np.pad(ndimage.binary_fill_holes(np.asarray(component, dtype=bool)), 1)
    edges = _boundary_edges(filled)
    if not edges:
        raise ValueError("the object has no pixel")
    start = min(edges)
    vertex, direction, path = start, None, []
    while True:
        targets = edges.get(vertex)
        if not targets:
            break
        if direction is None or len(targets) == 1:
            target = targets[0]
        else:  # a pinch where two pixels touch diagonally: turn right to stay on this 8-connected object
            right = (direction[1], -direction[0])
            target = next((t for t in targets if (t[0] - vertex[0], t[1] - vertex[1]) == right), targets[0])
        targets.remove(target)
        path.append(vertex)
        direction = (target[0] - vertex[0], target[1] - vertex[1])
        vertex = target
        if vertex == start:  # the lowest-left corner is never a pinch: back at the start closes the outline
            break
    points = np.array(path, dtype=float)
    before, after = np.roll(points, 1, axis=0), np.roll(points, -1, axis=0)
    incoming, outgoing = points - before, after - points
    turning = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0] != 0
    return points[turning] - 1.5  # undo the padding; corners sit half a pixel from the centres


def write_regions(path, cr_mask, color="red", origin=(0, 0)):
    """Write a DS9 region file with one polygon per connected cosmic ray.

    Parameters
    ----------
    path : str or path-like
        Written atomically.
    cr_mask : array-like of bool, 2-D
    color : str
        DS9 colour of the regions.
    origin : (int, int)
        ``(y0, x0)`` of ``cr_mask`` in the full image, for a mask of a cutout.

    Returns
    -------
    n_regions : int
        One per object of `cr_objects`, in label order (``text={n}``).

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((5, 5), bool); mask[1, 1] = mask[2, 2] = True
    >>> from astro_deepcr.regions import write_regions, read_regions
    >>> write_regions("crs.reg", mask)  # doctest: +SKIP
    1
    """
    labels, n_objects = cr_objects(cr_mask)
    lines = ["# Region file format: DS9 version 4.1",
             f"# astro_deepcr: {n_objects} cosmic-ray objects (8-connected), pixel-edge polygons",
             f"global color={color} width=1 select=1 edit=0 move=0 delete=1 include=1 source=1", "image"]
    for number, box in enumerate(ndimage.find_objects(labels), start=1):
        outline = cr_outline(labels[box] == number)
        # DS9 pixel i (1-based) is centred on i: 0-based corner coordinates shift by one
        xs = outline[:, 0] + box[1].start + origin[1] + 1
        ys = outline[:, 1] + box[0].start + origin[0] + 1
        coordinates = ",".join(f"{x:g},{y:g}" for x, y in zip(xs, ys, strict=True))
        lines.append(f"polygon({coordinates}) # text={{{number}}}")
    with atomic_write(path) as tmp_path, open(tmp_path, "w") as stream:
        stream.write("\n".join(lines) + "\n")
    return n_objects


def read_regions(path):
    """The polygons of a region file written by `write_regions`: a list of ``(n, 2)`` arrays in DS9 ``(x, y)``."""
    polygons = []
    with open(path) as stream:
        for line in stream:
            line = line.strip()
            if line.startswith("polygon("):
                values = [float(value) for value in line[len("polygon("):line.index(")")].split(",")]
                polygons.append(np.array(values).reshape(-1, 2))
    return polygons
