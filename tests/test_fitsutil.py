# Licensed under a 3-clause BSD style license - see LICENSE.rst
import gzip
import os
import shutil
import stat
import time
import warnings

import numpy as np
import pytest
from astropy.io import fits

from astro_deepcr.fitsutil import FileLock, FileLockError, FitsUpdateError, atomic_write, check_updatable, update_fits


def _write(path, dq_uint16=False):
    sci = np.random.default_rng(0).normal(100, 5, (16, 20)).astype(">f4")
    dq = np.zeros((16, 20), dtype=np.uint16 if dq_uint16 else np.int16)
    dq[3, 4] = 40000 if dq_uint16 else 16
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(dq, name="DQ")])
    hdul.writeto(path)
    return path


def test_update_fits_changes_only_what_is_modified(tmp_path):
    path = _write(tmp_path / "a.fits")
    os.chmod(path, 0o640)
    before = fits.getdata(path, "SCI").tobytes()
    with update_fits(path) as hdul:
        hdul["DQ"].data[0, 0] |= 4096
        hdul[0].header["HISTORY"] = "test"
    with fits.open(path) as hdul:
        assert hdul["SCI"].data.tobytes() == before
        assert hdul["DQ"].data[0, 0] == 4096 and hdul["DQ"].data[3, 4] == 16
        assert "test" in str(hdul[0].header["HISTORY"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert not [name for name in os.listdir(tmp_path) if name.endswith((".tmp", ".lock"))]


def test_update_fits_keeps_unsigned_dq_raw(tmp_path):
    path = _write(tmp_path / "u.fits", dq_uint16=True)
    with update_fits(path) as hdul:
        assert hdul["DQ"].header["BZERO"] == 32768  # raw int16 values, not rescaled
        hdul["DQ"].data[0, 0] |= 4096
    data = fits.getdata(path, "DQ")
    assert data.dtype.kind == "u" and data[3, 4] == 40000 and data[0, 0] == 4096


def test_update_fits_error_leaves_file_untouched(tmp_path):
    path = _write(tmp_path / "b.fits")
    original = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), update_fits(path) as hdul:
        hdul["DQ"].data[:] = 1
        raise RuntimeError("boom")
    assert path.read_bytes() == original


def test_atomic_write_failure_removes_temp(tmp_path):
    target = tmp_path / "c.txt"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_write(target) as tmp:
        with open(tmp, "w") as stream:
            stream.write("new, half")
        raise ValueError
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["c.txt"]
    with atomic_write(target) as tmp:
        with open(tmp, "w") as stream:
            stream.write("new")
    assert target.read_text() == "new"


def test_lock_refuses_concurrent_update(tmp_path):
    path = _write(tmp_path / "d.fits")
    with FileLock(path):
        with pytest.raises(FileLockError, match="another process"):
            with update_fits(path):
                pass
        with pytest.raises(FileLockError):
            FileLock(path, timeout=0.1).acquire()
    with update_fits(path):  # released
        pass


def test_refuses_compressed_readonly_and_missing(tmp_path):
    path = _write(tmp_path / "e.fits")
    with open(path, "rb") as src, gzip.open(tmp_path / "e.fits.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    with pytest.raises(FitsUpdateError, match="compressed"):
        check_updatable(tmp_path / "e.fits.gz")
    shutil.copy(tmp_path / "e.fits.gz", tmp_path / "disguised.fits")
    with pytest.raises(FitsUpdateError, match="compressed"):
        check_updatable(tmp_path / "disguised.fits")
    with pytest.raises(FitsUpdateError, match="not found"):
        check_updatable(tmp_path / "missing.fits")
    (tmp_path / "text.fits").write_text("hello")
    with pytest.raises(FitsUpdateError, match="not a FITS file"):
        check_updatable(tmp_path / "text.fits")
    os.chmod(path, 0o444)
    with pytest.raises(FitsUpdateError, match="read-only"):
        check_updatable(path)


def test_import_and_lock_without_fcntl(tmp_path):
    """#14 item 12: the package imports (and locks, through filelock) where fcntl does not exist."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['fcntl'] = None\n"  # import fcntl now raises ImportError
        "import astro_deepcr\n"
        "from astro_deepcr.fitsutil import FileLock\n"
        "print('imported', 'fcntl' in sys.modules and sys.modules['fcntl'] is None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported True" in done.stdout


def test_lock_removed_by_holder_is_not_shared(tmp_path):
    """A waiter that locked the file its holder removed on release retries on the file now on disk."""
    import threading

    import filelock

    path = tmp_path / "f.fits"
    path.write_bytes(b"")
    holder = filelock.FileLock(str(path) + ".lock", thread_local=False)
    holder.acquire()
    acquired = []
    waiter = FileLock(path, timeout=5)
    thread = threading.Thread(target=lambda: acquired.append(waiter.acquire()))
    thread.start()
    time.sleep(0.3)
    os.unlink(str(path) + ".lock")  # what FileLock.release does before unlocking
    holder.release()
    thread.join(10)
    assert acquired == [waiter]
    assert os.path.samestat(os.stat(waiter.lock_path), os.fstat(waiter._lock._context.lock_file_fd))
    with pytest.raises(FileLockError):
        FileLock(path).acquire()  # the lock on the file on disk is really held
    waiter.release()
    assert not os.path.exists(waiter.lock_path)


def test_checksums_recomputed_only_where_they_were(tmp_path):
    """One HDU with CHECKSUM made update_fits write CHECKSUM and DATASUM into every HDU (headers not ours)."""
    path = _write(tmp_path / "c.fits")
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].add_checksum()
        hdul["DQ"].add_datasum()
    with update_fits(path) as hdul:
        hdul["DQ"].data[0, 0] |= 4096
        hdul["SCI"].header["HISTORY"] = "changed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy warns on a checksum or datasum that does not match
        with fits.open(path, checksum=True) as hdul:
            assert [("CHECKSUM" in hdu.header, "DATASUM" in hdu.header) for hdu in hdul] == [
                (False, False), (True, True), (False, True)]
            assert hdul["DQ"].data[0, 0] == 4096 and hdul["SCI"].header["HISTORY"][0] == "changed"
            # astropy checks a DATASUM only next to a CHECKSUM: compare it with the sum of the data as written
            assert int(hdul["DQ"].header["DATASUM"]) == fits.ImageHDU(hdul["DQ"].data).add_datasum()
