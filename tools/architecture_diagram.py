# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Draw docs/_static/architecture.png: how a frame becomes a mask (doors -> core -> engine).

    python tools/architecture_diagram.py
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

DOORS = [
    ("cosmicray_deepcr\n(ccdproc_step)", "CCDData / ndarray,\nunits, gain, cleantype"),
    ("astro-deepcr clean\n(batch, fitsclean)", "FITS files, BUNIT,\nDQ, CRMASK"),
    ("flag_cosmic_rays\n(drizzle.flag)", "_flt/_flc DQ bits,\nctegrow, DCR* keys"),
    ("astrodrizzle()\n(drizzle.astrodrizzle)", "flag, then drizzlepac's\npublic AstroDrizzle"),
    ("DeepCR, demos,\nevaluation", "numpy arrays,\nreal / simulated frames"),
]
CORE = ("the one core: detection.detect (with dq, bright)",
        "choose_model (selection) -> default_threshold -> choose_precision\n"
        "-> pixel_masks (dq: bits, fill_bits) -> bright.saturated_pixels -> fill\n"
        "-> network_probability -> threshold -> bright.protect -> grow -> alarm")
ENGINE = ("engine + zoo + nets", "load_network (one cache, safetensors, sha256) -> run_tiled\n"
          "(seam-free halo tiles, device, precision)")


def box(ax, x, y, w, h, title, text, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", facecolor=color, edgecolor="0.2"))
    ax.text(x + w / 2, y + h * 0.68, title, ha="center", va="center", fontsize=8.5, weight="bold")
    ax.text(x + w / 2, y + h * 0.28, text, ha="center", va="center", fontsize=7.5)


OUTPUT = os.path.join(os.path.dirname(__file__), "..", "docs", "_static", "architecture.png")


def main(path=OUTPUT):
    fig, ax = plt.subplots(figsize=(11, 6.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 6.2)
    ax.axis("off")
    width = 2.0
    for index, (title, text) in enumerate(DOORS):
        x = 0.25 + index * 2.15
        box(ax, x, 4.5, width, 1.4, title, text, "#dbe9f6")
        ax.annotate("", xy=(5.5, 3.55), xytext=(x + width / 2, 4.45),
                    arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.text(0.25, 6.05, "doors: I/O, units, provenance", fontsize=9, style="italic")
    box(ax, 1.5, 2.0, 8.0, 1.5, *CORE, "#fde7c8")
    ax.annotate("", xy=(5.5, 1.3), xytext=(5.5, 1.95), arrowprops=dict(arrowstyle="->", color="0.3"))
    box(ax, 3.0, 0.1, 5.0, 1.15, *ENGINE, "#dff0d8")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


if __name__ == "__main__":
    print(main())
