# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Checks of model-registry input (issue #28): ``models.json`` entries and sidecar model cards.

An error names the file, the entry and the key; a user's model never takes
the name of a built-in one or of another user's model. `astro_deepcr.zoo`
calls these before it changes its registry, so a failure leaves the
registry as it was. This module knows nothing of the registry itself.
"""

import dataclasses

__all__ = ["specs_from_index", "spec_from_card", "check_name_free"]


class _Missing(Exception):
    pass


def _spec(spec_class, fields, where, error):
    """``spec_class(**fields)``; any problem as ``error`` naming ``where`` and the key."""
    known = {field.name for field in dataclasses.fields(spec_class)}
    required = [field.name for field in dataclasses.fields(spec_class)
                if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
    unknown = sorted(set(fields) - known)
    if unknown:
        raise error(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                    f"allowed keys: {', '.join(sorted(known))}")
    missing = [key for key in required if key not in fields]
    if missing:
        raise error(f"{where}: missing key(s) {', '.join(map(repr, missing))} (required: {', '.join(required)})")
    try:
        return spec_class(**fields)
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: {' '.join(str(exc).split())}") from None


def specs_from_index(index, entries, spec_class, error):
    """The `ModelSpec` of every entry of the ``models.json`` file ``index`` (a `pathlib.Path`), all checked.

    ``error`` is the exception class raised; its message names ``index``,
    the entry (number and name) and the key.
    """
    if not isinstance(entries, dict) or not isinstance(entries.get("models"), list):
        raise error(f"{index}: expected an object with a list under the key 'models'")
    specs, seen = [], {}
    for number, entry in enumerate(entries["models"]):
        label = f"{index}, entry {number}"
        if not isinstance(entry, dict):
            raise error(f"{label}: expected an object of ModelSpec keys, not {type(entry).__name__}")
        label += f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else ""
        entry = dict(entry)
        if "file" in entry:
            if not isinstance(entry["file"], str):
                raise error(f"{label}: key 'file' must be a file name relative to {index.parent}")
            entry["file"] = str(index.parent / entry["file"])
        spec = _spec(spec_class, entry, label, error)
        if spec.name in seen:
            raise error(f"{label}: key 'name' = {spec.name!r} is already entry {seen[spec.name]} of this file")
        seen[spec.name] = number
        specs.append(spec)
    return specs


def spec_from_card(card, fields, spec_class, error, path, sha256):
    """The `ModelSpec` of the weights ``path`` described by its sidecar card ``card`` (read as ``fields``).

    ``file`` is ``path``; ``name`` defaults to the file's stem and ``sha256``
    to ``sha256(path)``.
    """
    if not isinstance(fields, dict):
        raise error(f"model card {card}: expected an object of ModelSpec keys, not {type(fields).__name__}")
    fields = dict(fields, file=str(path))
    fields.setdefault("name", path.stem)
    if "sha256" not in fields:
        fields["sha256"] = sha256(path)
    return _spec(spec_class, fields, f"model card {card}", error)


def check_name_free(spec, registry, source, error, same_file=None):
    """Refuse ``spec`` when its name is already another model's (a built-in or another user's).

    ``same_file(other)`` tells whether the registered model ``other`` is the
    same file being registered again (a card updated on disk), which may
    replace itself.
    """
    other = registry.get(spec.name)
    if other is None or (same_file is not None and same_file(other)):
        return
    raise error(f"{source}: key 'name' = {spec.name!r} is already the registered model of {other.file}; give "
                f"this model its own name (registered names: {', '.join(sorted(registry))})")
