"""scripts/build_train_pool.py: the offline parts (licence lookup, HDRI tone-mapping, Qt resource reading, the
guards on --out and vtest). Nothing here downloads a package."""

import importlib.util
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("build_train_pool", ROOT / "scripts" / "build_train_pool.py")
pool = importlib.util.module_from_spec(spec)
sys.modules.setdefault("build_train_pool", pool)  # dataclasses look their module up there
spec.loader.exec_module(pool)

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2014 Someone
License: GPL-3+

Files: src/activities/zoo/resource/lion.jpg
       src/activities/zoo/resource/cat.jpg
Copyright: Jane Photographer
License: CC-BY-SA-3.0
Comment: https://example.org/lion

Files: src/activities/zoo/resource/cat.jpg
Copyright: Other Person
License: CC0-1.0
"""


def test_licence_lookup_last_stanza_wins_and_default_is_not_specific(tmp_path):
    path = tmp_path / "copyright"
    path.write_text(COPYRIGHT)
    stanzas = pool.copyright_stanzas(path)
    assert pool.licence_of(stanzas, "src/activities/zoo/resource/lion.jpg") == ("CC-BY-SA-3.0", "Jane Photographer",
                                                                               True)
    assert pool.licence_of(stanzas, "src/activities/zoo/resource/cat.jpg")[:2] == ("CC0-1.0", "Other Person")
    assert pool.licence_of(stanzas, "src/other.png") == ("GPL-3+", "2014 Someone", False)
    assert pool.ALLOWED_LICENCES.match("CC-BY-SA-3.0") and pool.ALLOWED_LICENCES.match("public-domain")
    assert not pool.ALLOWED_LICENCES.match("GFDL-NIV-1.2") and not pool.ALLOWED_LICENCES.match("CC-BY-NC-2.0")


def test_tonemap_hdri_horizon_views():
    h, w = 512, 1024
    lum = np.linspace(0.01, 50.0, w, dtype=np.float32)[None, :, None]  # very high dynamic range
    hdr = np.broadcast_to(lum, (h, w, 3)).copy()
    views = pool.tonemap_hdri(hdr, views=4, band_deg=35.0)
    assert len(views) == 4
    for v in views:
        assert v.dtype == np.uint8 and v.shape == (200, 256, 3)
    means = [float(v.mean()) for v in views]
    assert means == sorted(means) and means[0] > 5 and means[-1] < 255  # monotone, nothing black or clipped flat


def _rcc(files: dict[str, bytes], compress: set[str]) -> bytes:
    """A minimal Qt binary resource (format 2): root -> 'dir' -> files."""
    names = b""
    name_off = {}
    for n in ["dir", *files]:
        name_off[n] = len(names)
        enc = n.encode("utf-16-be")
        names += struct.pack(">HI", len(n), 0) + enc
    data = b""
    data_off = {}
    for n, blob in files.items():
        payload = struct.pack(">I", len(blob)) + zlib.compress(blob) if n in compress else blob
        data_off[n] = len(data)
        data += struct.pack(">I", len(payload)) + payload
    tree = struct.pack(">IHII", 0, 2, 1, 1) + b"\0" * 8  # root: 1 child at index 1
    tree += struct.pack(">IHII", name_off["dir"], 2, len(files), 2) + b"\0" * 8
    for n in files:
        flags = 1 if n in compress else 0
        tree += struct.pack(">IHHHI", name_off[n], flags, 0, 0, data_off[n]) + b"\0" * 8
    header = 20
    return (b"qres" + struct.pack(">IIII", 2, header, header + len(tree), header + len(tree) + len(data))
            + tree + data + names)


def test_read_rcc_plain_and_compressed(tmp_path):
    path = tmp_path / "a.rcc"
    path.write_bytes(_rcc({"a.jpg": b"plain bytes", "b.png": b"squeezed " * 20}, compress={"b.png"}))
    files = pool.read_rcc(path)
    assert files == {"/dir/a.jpg": b"plain bytes", "/dir/b.png": b"squeezed " * 20}
    bad = tmp_path / "bad.rcc"
    bad.write_bytes(b"nope")
    with pytest.raises(RuntimeError, match="not a Qt resource"):
        pool.read_rcc(bad)


def test_guards_out_inside_repo_and_vtest(tmp_path, capsys):
    assert pool.main(["--out", str(ROOT / "pool")]) == 2
    assert "inside the repository" in capsys.readouterr().err
    assert not (ROOT / "pool").exists()
    vtest = tmp_path / "vtest.avi"
    vtest.write_bytes(b"x")
    assert pool.main(["--out", str(tmp_path / "p"), "--video", str(vtest)]) == 2
    assert "--include-vtest" in capsys.readouterr().err
    assert pool.main(["--out", str(tmp_path / "p"), "--video", str(tmp_path / "missing.mp4")]) == 2


def test_reserved_packages_are_refused(tmp_path):
    with pytest.raises(RuntimeError, match="reserved"):
        pool.unpack("stellarium-data", tmp_path, 1000)
    with pytest.raises(RuntimeError, match="reserved"):
        pool.unpack("lomiri-wallpapers-16.04", tmp_path, 1000)
