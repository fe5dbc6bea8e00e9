# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
What ``astro-deepcr adapt`` (`astro_deepcr.adapt.adapt_model`) writes into its folder, and how.

``DIR/<name>.safetensors``, its card ``DIR/<name>.json``, its entry in ``DIR/models.json`` beside the entries of
the other models there (`listed_models`), and its table appended to ``DIR/adapt.md`` under ``## <name>``
(`write_outputs`): each file written beside its place and then moved there. A model of the same name stops the run
before training unless ``overwrite``; a run that fails removes the files it created (`removed_on_failure`).
"""

import contextlib
import dataclasses
import json
import os

__all__ = ["listed_models", "candidate_path", "removed_on_failure", "write_outputs", "model_card"]


def _same(entry, name):
    return entry.get("name") == name or entry.get("file") == f"{name}.safetensors"


def listed_models(output, name, overwrite):
    """The entries of ``output/models.json`` (empty without one), and whether a model ``name`` is in ``output``.

    Raises
    ------
    FileExistsError
        A model ``name`` is in ``output`` (its weights, its card or its entry) and not ``overwrite``.
    ValueError
        ``output/models.json`` is not a models index (it is left as it is).
    """
    index = os.path.join(output, "models.json")
    entries = []
    if os.path.exists(index):
        try:
            with open(index) as stream:
                content = json.load(stream)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{index} cannot be read ({exc}); the adapted model would be added to it: move it away "
                             "or choose another folder") from None
        entries = content.get("models") if isinstance(content, dict) else None
        if not (isinstance(entries, list) and all(isinstance(entry, dict) for entry in entries)):
            raise ValueError(f"{index} has no list of models under 'models'; the adapted model would be added to it: "
                             "move it away or choose another folder")
    present = [f"{index} lists it"] if any(_same(entry, name) for entry in entries) else []
    present += [path for path in (os.path.join(output, f"{name}.safetensors"), os.path.join(output, f"{name}.json"))
                if os.path.exists(path)]
    if present and not overwrite:
        raise FileExistsError(f"a model named {name!r} is already in {output} ({', '.join(present)}); give another "
                              "name (--name) or overwrite it (--overwrite, overwrite=True)")
    return entries, bool(present)


def candidate_path(output, name):
    """Where the adapted weights wait for the check's verdict (a hidden file of ``output``)."""
    return os.path.join(output, f".{name}.candidate.safetensors")


@contextlib.contextmanager
def removed_on_failure(output, name):
    """Where the block raises (an interrupt included): remove the files of the run of model ``name`` that it created
    in ``output`` (checkpoint, weights, card, ``models.json``, ``adapt.md``, a folder left empty), and its temporary
    files; older files stay as they were."""
    outputs = ["checkpoint.safetensors", f"{name}.safetensors", f"{name}.json", "models.json", "adapt.md"]
    new_folder = not os.path.exists(output)
    new = [os.path.join(output, base) for base in outputs if not os.path.exists(os.path.join(output, base))]
    temporary = [candidate_path(output, name), *(os.path.join(output, f"{base}.tmp") for base in outputs)]
    try:
        yield
    except BaseException:
        for path in [*new, *temporary]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        if new_folder:
            with contextlib.suppress(OSError):
                os.rmdir(output)
        raise


def write_outputs(output, name, tmp, card, table, overwrite):
    """Write the model, its card, its entry in ``models.json`` (merged) and its table in ``adapt.md`` (appended);
    every file is written beside its place first and then moved there."""
    entries, replaces = listed_models(output, name, overwrite)  # again: another run may have written meanwhile
    merged = [entry for entry in entries if not _same(entry, name)]
    first = next((k for k, entry in enumerate(entries) if _same(entry, name)), len(entries))
    merged.insert(first, card)  # where the model it replaces was listed, else last
    markdown = os.path.join(output, "adapt.md")
    earlier = ""
    if os.path.exists(markdown):
        with open(markdown) as stream:
            earlier = stream.read()
    heading = f"## {name}" + (" (replaces an earlier model of this name)" if replaces else "")
    texts = {os.path.join(output, f"{name}.json"): json.dumps(card, indent=1),
             os.path.join(output, "models.json"): json.dumps({"format": 1, "models": merged}, indent=1),
             markdown: (earlier.rstrip("\n") + "\n\n" if earlier.strip() else "") + "\n".join([heading, "", *table])
             + "\n"}
    moves = [(tmp, os.path.join(output, f"{name}.safetensors"))]
    for path, text in texts.items():
        with open(f"{path}.tmp", "w") as stream:
            stream.write(text)
        moves.append((f"{path}.tmp", path))
    for source, target in moves:
        os.replace(source, target)


def model_card(spec, adapted, settings, metrics):
    """The card of ``adapted`` (``DIR/<name>.json`` and its ``models.json`` entry), fine-tuned from ``spec`` with
    ``settings`` (`astro_deepcr.adapt.adapt_model`'s, as its checkpoint records them) and checked as ``metrics``."""
    card = dataclasses.asdict(dataclasses.replace(adapted, file=f"{adapted.name}.safetensors"))
    card["filters"] = list(card.get("filters") or ())
    faint_stars = settings["faint_stars"]
    card.update(description=f"{spec.name} adapted to {', '.join(settings['frames'])} by astro-deepcr adapt",
                training_data=f"injected cosmic rays in the first {1 - settings['holdout']:.0%} of each frame; the "
                              "frames' own cosmic-ray candidates (base model p > 0.3 or LACosmic sigclip 4"
                              + (", less the stars their own PSF explains" if settings["release_stars"] else "")
                              + ") kept out of the loss"
                              + (f"; {faint_stars:g} faint point sources per px of each frame's own PSF as "
                                 "negatives" if faint_stars else ""),
                provenance=f"astro_deepcr.adapt, fine-tuned from {spec.name} ({spec.sha256[:12]}), "
                           f"{settings['steps']} steps, seed {settings['seed']}",
                metrics=metrics)
    card.pop("bf16_validation", None)
    return card
