# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Plots of the evaluation report (matplotlib, Agg backend)."""

import numpy as np

__all__ = ["roc", "gallery", "runtime", "plot_injection", "plot_bright_flags"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc(detection, path):
    """ROC curves per field: lines for networks, markers for the LACosmic sigclip sweep."""
    plt = _pyplot()
    fields = list(detection)
    fig, axes = plt.subplots(1, len(fields), figsize=(4.2 * len(fields), 3.8), squeeze=False)
    for ax, field in zip(axes[0], fields):
        for name, row in detection[field].items():
            fpr, tpr = row["roc"]
            keep = np.isfinite(fpr) & (fpr > 0)
            style = "o--" if name.startswith("LACosmic") else "-"
            ax.plot(np.asarray(fpr)[keep] * 100, np.asarray(tpr)[keep] * 100, style, ms=3, label=name)
        for target in (0.05, 0.5):
            ax.axvline(target, color="0.8", lw=0.8, zorder=0)
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 10)
        ax.set_ylim(0, 100)
        ax.set_xlabel("false positive rate (%)")
        ax.set_ylabel("true positive rate (%)")
        ax.set_title(field)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def gallery(test_set, model, inpaint, path, size=48, count=3):
    """Cutouts around the brightest CRs: image, truth, prediction, inpainted."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    from ..deepcr import DeepCR

    plt = _pyplot()
    detector = DeepCR(model, device="cpu", progress=False)
    fig, axes = plt.subplots(count, 4, figsize=(8, 2.1 * count), squeeze=False)
    for row, item in zip(axes, test_set[:: max(1, len(test_set) // count)][:count]):
        charge = np.where(item["cr_mask"], item["image"] - item["clean"], 0)
        y, x = np.unravel_index(np.argmax(charge), charge.shape)
        y = int(np.clip(y, size // 2, charge.shape[0] - size // 2))
        x = int(np.clip(x, size // 2, charge.shape[1] - size // 2))
        cut = np.s_[y - size // 2:y + size // 2, x - size // 2:x + size // 2]
        mask, cleaned = detector.clean(item["image"][cut], inpaint=inpaint)
        norm = ImageNormalize(item["clean"][cut], interval=ZScaleInterval(), stretch=AsinhStretch())
        panels = [(item["image"][cut], f"image ({item['field']})"), (item["cr_mask"][cut], "truth"),
                  (mask, f"deepCR {model}"), (cleaned, f"inpainted ({inpaint})")]
        for ax, (data, title) in zip(row, panels):
            if data.dtype == bool:
                ax.imshow(data, origin="lower", cmap="gray", interpolation="nearest")
            else:
                ax.imshow(data, origin="lower", cmap="gray", norm=norm)
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def runtime(timings, path):
    """Horizontal bars of seconds per megapixel."""
    plt = _pyplot()
    names = list(timings)
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1))
    ax.barh(names, [timings[name] for name in names], color="tab:blue")
    ax.set_xlabel("seconds per megapixel (2-core CPU unless marked GPU)")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_injection(results, path):
    """PNG of `~astro_deepcr.evaluation.frames.run_frame` results.

    Recall by new flags against injected charge per detector, and a cut-out
    of the last injection with each mask.
    """
    from .recovery import CHARGE_BINS, bin_name

    plt = _pyplot()
    names = list(results["detectors"])
    last = results["last"]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 3.2))
    centres = [np.sqrt(max(low, 200.0) * min(high, 2e4)) for low, high in zip(CHARGE_BINS[:-1], CHARGE_BINS[1:])]
    for name in names:
        rates = results["detectors"][name]
        axes[0].plot(centres, [rates[f"object_recall_new {bin_name(lo, hi)}"]
                               for lo, hi in zip(CHARGE_BINS[:-1], CHARGE_BINS[1:])], "o-", label=name)
    axes[0].set(xscale="log", xlabel="injected charge (e-)", ylabel="object recall (new flags)", ylim=(0, 1.02))
    axes[0].legend(fontsize=6)
    # the cut-out around the injected cosmic ray nearest a saturated pixel (else the brightest one)
    table, truth, env = last["table"], last["truth"], results.get("environment")
    used = table[table["n_pixels"] > 0]
    near = used[env[used["y"], used["x"]] == 0] if env is not None and len(used) else used[:0]
    row = near[0] if len(near) else used[np.argmax(used["charge"])]
    box = tuple(slice(max(int(c) - 24, 0), int(c) + 24) for c in (row["y"], row["x"]))
    stamp = last["injected"][box]
    low, high = np.percentile(stamp, [5, 99.5])
    for ax, name in zip(axes[1:], names):
        ax.imshow(stamp, origin="lower", cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        overlay = np.zeros(stamp.shape + (4,))
        overlay[last["masks"][name][box]] = (1.0, 0.1, 0.1, 0.8)
        ax.imshow(overlay, origin="lower", interpolation="nearest")
        ax.contour(truth[box] > 0, levels=[0.5], colors="lime", linewidths=0.6)
        if results.get("saturated") is not None and results["saturated"][box].any():
            ax.contour(results["saturated"][box], levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set(title=f"{name}\nred flagged, green injected, cyan saturated", xticks=[], yticks=[])
        ax.title.set_fontsize(6)
    fig.suptitle(f"{results.get('name', '')}: {results['n_injected']} injected CRs, seed {results['seed']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_bright_flags(results, image, bright, path, count=24, half=10):
    """PNG: cut-outs around the flags of the brightest set, for judging them by eye.

    One cut-out per 8-connected group of pixels of ``bright`` that deepCR (``results["default"]``) or
    LACosmic at its defaults flags on the uninjected frame, the largest groups first, at most ``count``:
    red deepCR, cyan LACosmic, yellow the pixels near what both flag (`~astro_deepcr.evaluation.frames.common_flags`).
    """
    from scipy import ndimage

    from .frames import LACOSMIC_DEFAULT, common_flags

    plt = _pyplot()
    originals = results["last"]["originals"]
    deepcr, lacosmic = originals[results["default"]], originals[LACOSMIC_DEFAULT]
    common = common_flags(deepcr, lacosmic)
    labels, n_groups = ndimage.label((deepcr | lacosmic) & bright, np.ones((3, 3), bool))
    sizes = ndimage.sum(np.ones(image.shape), labels, np.arange(1, n_groups + 1)) if n_groups else []
    order = np.argsort(sizes)[::-1][:count] + 1
    centres = ndimage.center_of_mass(np.ones(image.shape), labels, order) if n_groups else []
    columns = 6
    rows = max(1, int(np.ceil(len(order) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, label, (cy, cx) in zip(axes.flat, order, centres):
        box = tuple(slice(max(int(round(c)) - half, 0), int(round(c)) + half + 1) for c in (cy, cx))
        stamp = image[box]
        low, high = np.percentile(stamp, [5, 99.5])
        ax.imshow(np.arcsinh((stamp - low) / max(high - low, 1e-9) * 10), origin="lower", cmap="gray",
                  interpolation="nearest")
        for mask, colour, width in ((deepcr, "red", 1.2), (lacosmic, "cyan", 0.8), (common, "yellow", 0.6)):
            if mask[box].any():
                ax.contour(mask[box], levels=[0.5], colors=colour, linewidths=width)
        in_group = labels[box] == label
        ax.set_title(f"y {int(cy)} x {int(cx)}: {int((deepcr[box] & in_group).sum())} / "
                     f"{int((lacosmic[box] & in_group).sum())} px", fontsize=7)
    fig.suptitle(f"{results.get('name', '')}: flags on the brightest pixels, red {results['default']}, cyan "
                 f"{LACOSMIC_DEFAULT}, yellow near both ({n_groups} groups)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
