# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The version a clone, the wheel and the sdist report is CHANGES.rst's top entry (issue #30)."""

import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import types
import zipfile

import pytest
from packaging.version import Version

import astro_deepcr

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _setup_module():
    spec = importlib.util.spec_from_file_location("astro_deepcr_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: setup() does not run
    return module


SETUP = _setup_module()
CHANGES_VERSION = SETUP.changes_version((ROOT / "CHANGES.rst").read_text())


def _scm(tag, distance, dirty=False):
    return types.SimpleNamespace(tag=tag, distance=distance, dirty=dirty, exact=distance == 0 and not dirty)


def test_changes_version():
    assert SETUP.changes_version("0.3.0 (unreleased)\n==================\n\n0.2.0 (2027-01-05)\n") == "0.3.0"
    assert SETUP.changes_version("Changes\n\n0.2.1 (2027-01-05)\n------------------\n") == "0.2.1"
    with pytest.raises(ValueError, match="CHANGES.rst has no entry"):
        SETUP.changes_version("nothing here\n")
    assert re.fullmatch(r"\d+\.\d+\.\d+", CHANGES_VERSION)


def test_version_scheme_without_tags_and_on_the_release_tag():
    changes = "0.2.0 (unreleased)\n"
    assert SETUP.version_scheme(_scm("0.0", 146), changes) == "0.2.0.dev146"  # a clone without tags
    assert SETUP.version_scheme(_scm("0.1.0", 12), changes) == "0.2.0.dev12"  # after the 0.1.0 tag
    assert SETUP.version_scheme(_scm("0.2.0", 0), "0.2.0 (2027-01-05)\n") == "0.2.0"  # the release itself


def test_the_installed_version_is_the_changes_version():
    spec = importlib.util.find_spec("astro_deepcr._version")
    if spec is None or pathlib.Path(spec.origin).parent != pathlib.Path(astro_deepcr.__file__).parent:
        pytest.skip("running from a source tree that was never built (no astro_deepcr/_version.py beside it)")
    assert Version(astro_deepcr.__version__).base_version == CHANGES_VERSION


def _build(tmp_path):
    """sdist and wheel of a fresh clone of HEAD without tags; returns (sdist, wheel, build output)."""
    pytest.importorskip("build")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-tags", str(ROOT), str(clone)], check=True)
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(clone)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return sdist, wheel, done.stdout + done.stderr


@pytest.mark.slow
def test_wheel_and_sdist_of_a_clone_without_tags(tmp_path):
    sdist, wheel, output = _build(tmp_path)
    sdist_version = sdist.name.removeprefix("astro_deepcr-").removesuffix(".tar.gz")
    wheel_version = wheel.name.split("-")[1]
    assert sdist_version == wheel_version
    assert re.fullmatch(re.escape(CHANGES_VERSION) + r"\.dev\d+(\+.*)?", wheel_version)
    with zipfile.ZipFile(wheel) as archive:
        version_file = archive.read("astro_deepcr/_version.py").decode()
        members = {info.filename: info.file_size for info in archive.infolist()}
    assert f"'{wheel_version}'" in version_file or f'"{wheel_version}"' in version_file
    with tarfile.open(sdist) as archive:
        assert any(name.endswith("/PKG-INFO") for name in archive.getnames())
    assert not re.search(r"deprecat", output, re.IGNORECASE), "the build printed a deprecation warning"

    # the wheel: the models, the .cfg/.cfgspc files, the code; nothing else large
    models = {path.name for path in (ROOT / "astro_deepcr_models").glob("*.safetensors")}
    assert {name.split("/")[-1] for name in members if name.startswith("astro_deepcr_models/")} >= models | {
        "models.json"}
    pars = {path.name for path in (ROOT / "astro_deepcr" / "drizzle" / "pars").iterdir()}
    assert {name.split("/")[-1] for name in members if "/pars/" in name} == pars
    assert not [name for name in members if name.startswith(("tests/", "docs/", "benchmarks/"))]
    other = {name: size for name, size in members.items() if not name.endswith((".safetensors", ".py"))}
    assert max(other.values()) < 100_000, other
    assert sum(members.values()) < 8_000_000
