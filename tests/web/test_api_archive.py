"""Names inside the finals zip: derived from the user's file names, safe for every unzip tool."""

from __future__ import annotations

import io
import zipfile

from web.api.archive import entry_names, safe_stem, write_zip


def test_safe_stem():
    assert safe_stem("holiday photo.HEIC", "x") == "holiday photo"
    assert safe_stem("../../etc/passwd", "x") == "passwd"
    assert safe_stem("..\\..\\boot.ini", "x") == "boot"
    assert safe_stem(".bashrc", "x") == "bashrc"
    assert safe_stem("con.png", "photo-1") == "photo-1_con"
    assert safe_stem("\x00\x07", "photo-3") == "photo-3"
    assert safe_stem("a:b*c?d|e\"f<g>h.jpg", "x") == "a_b_c_d_e_f_g_h"
    assert safe_stem("Zoë.png", "x") == "Zoë"
    assert len(safe_stem("y" * 500 + ".png", "x")) == 100


def test_entry_names_are_unique_case_insensitively():
    names = entry_names([("Face.png", "image/png"), ("face.jpg", "image/png"),
                         ("face.png", "image/jpeg"), ("", "image/webp")])
    assert names == ["Face.png", "face-2.png", "face.jpg", "photo-4.webp"]


def test_write_zip_round_trip():
    archive = write_zip([("a.png", b"one"), ("b.jpg", b"two")])
    with zipfile.ZipFile(io.BytesIO(archive.read())) as z:
        assert z.namelist() == ["a.png", "b.jpg"] and z.read("b.jpg") == b"two"
