"""Data manifests: CSV and JSON Lines, every refusal naming row and column, fingerprint and commitment. Fast."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from swarmfuse.client.site.manifest import (
    Manifest,
    ManifestError,
    Problem,
    entity_commitment,
    load_manifest,
)

SALT = bytes(range(32))


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def jsonl(*rows: dict[str, object]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def png(path: Path, colour: tuple[int, int, int] = (200, 10, 10)) -> Path:
    image = pytest.importorskip("PIL.Image")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.new("RGB", (8, 8), colour).save(path, format="PNG")
    return path


def refusal(path: Path, modality: str, **kwargs: object) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, modality, **kwargs)  # type: ignore[arg-type]
    return caught.value


def problems(error: ManifestError) -> list[tuple[int | None, str | None]]:
    return [(p.row, p.column) for p in error.problems]


# --- reading ---

def test_csv_and_jsonl_texts_give_the_same_sorted_rows_and_fingerprint(tmp_path: Path) -> None:
    csv_file = write(tmp_path / "texts.csv", 'entity_id,text\ne2,"two, with a comma"\ne1,one\n')
    jsonl_file = write(tmp_path / "texts.jsonl", jsonl({"entity_id": "e1", "text": "one"},
                                                      {"entity_id": "e2", "text": "two, with a comma"}))
    from_csv, from_jsonl = load_manifest(csv_file, "text"), load_manifest(jsonl_file, "text")
    assert from_csv.ids == from_jsonl.ids == ("e1", "e2")
    assert (from_csv.format, from_jsonl.format) == ("csv", "jsonl")
    assert from_csv.row("e2").value == "two, with a comma" and from_csv.row("e2").row == 1
    assert from_csv.fingerprint() == from_jsonl.fingerprint()
    assert from_csv.sha256 == hashlib.sha256(csv_file.read_bytes()).hexdigest() != from_jsonl.sha256
    assert len(from_csv) == 2 and "e1" in from_csv and "e3" not in from_csv
    with pytest.raises(KeyError, match="'e3' is not in"):
        from_csv.row("e3")


def test_fingerprint_is_the_canonical_table_of_ids_and_content_hashes(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path / "t.csv", "entity_id,text\nb,bee\na,ay\n"), "text")
    rows = "".join(f"{i}\t{hashlib.sha256(t.encode()).hexdigest()}\n" for i, t in (("a", "ay"), ("b", "bee")))
    expected = hashlib.sha256(b"swarmfuse/manifest-fingerprint/v1\ntext\n" + rows.encode()).hexdigest()
    assert manifest.fingerprint() == expected
    changed = load_manifest(write(tmp_path / "u.csv", "entity_id,text\nb,bee!\na,ay\n"), "text")
    assert changed.fingerprint() != expected
    as_labels = load_manifest(write(tmp_path / "l.csv", "entity_id,label\nb,bee\na,ay\n"), "label")
    assert as_labels.fingerprint() != expected  # the modality is part of it


def test_extra_columns_are_kept_and_labels_may_be_integers(tmp_path: Path) -> None:
    file = write(tmp_path / "labels.jsonl", jsonl({"entity_id": "e1", "label": 3, "split": "train"},
                                                  {"entity_id": "e2", "label": "smileys", "split": "test"}))
    manifest = load_manifest(file, "label")
    assert [r.value for r in manifest.rows] == ["3", "smileys"]
    assert manifest.row("e2").extra == {"split": "test"}
    assert manifest.classes == ("3", "smileys")
    with pytest.raises(ValueError, match="not an image one"):
        manifest.image_path(manifest.rows[0])


def test_bom_crlf_blank_lines_and_multiline_fields_are_read(tmp_path: Path) -> None:
    file = write(tmp_path / "t.csv", b'\xef\xbb\xbf entity_id ,text\r\n\r\ne1,"two\r\nlines"\r\ne2,\r\n')
    error = refusal(file, "text")
    assert [(p.row, p.line, p.column) for p in error.problems] == [(2, 5, "text")]  # line numbers after the field
    write(file, b'\xef\xbb\xbfentity_id,text\r\ne1,"two\r\nlines"\r\n')
    assert load_manifest(file, "text").row("e1").value == "two\r\nlines"


def test_subset_and_commitment(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path / "t.csv", "entity_id,text\nc,3\na,1\nb,2\n"), "text")
    assert [r.entity_id for r in manifest.subset(["c", "a"])] == ["a", "c"]
    with pytest.raises(KeyError):
        manifest.subset(["z"])
    expected = hashlib.sha256(SALT + b"a\nb\nc").hexdigest()
    assert manifest.entity_commitment(SALT) == entity_commitment(["c", "b", "a"], SALT) == expected
    assert manifest.entity_commitment(bytes(32)) != expected
    with pytest.raises(ValueError, match="at least 16"):
        entity_commitment(["a"], b"short")
    with pytest.raises(ValueError, match="twice"):
        entity_commitment(["a", "a"], SALT)
    with pytest.raises(ValueError, match="newline"):
        entity_commitment(["a\nb"], SALT)


# --- refusals: row and column named ---

@pytest.mark.parametrize(("name", "content", "modality", "expected", "message"), [
    ("empty-id.csv", "entity_id,text\n,hello\n", "text", [(1, "entity_id")], "empty entity ID"),
    ("dup.csv", "entity_id,text\ne1,a\ne2,b\ne1,c\n", "text", [(3, "entity_id")],
     "duplicate entity ID 'e1' (first at row 1)"),
    ("space.csv", "entity_id,text\ne1 ,a\n", "text", [(1, "entity_id")], "leading or trailing whitespace"),
    ("tab.jsonl", jsonl({"entity_id": "e\t1", "text": "a"}), "text", [(1, "entity_id")], "control character"),
    ("empty-text.csv", "entity_id,text\ne1,a\ne2,   \n", "text", [(2, "text")], "empty text"),
    ("null-text.jsonl", jsonl({"entity_id": "e1", "text": None}), "text", [(1, "text")], "empty text"),
    ("empty-label.csv", "entity_id,label\ne1,\n", "label", [(1, "label")], "empty label"),
    ("bool-label.jsonl", jsonl({"entity_id": "e1", "label": True}), "label", [(1, "label")], "string or an integer"),
    ("int-id.jsonl", jsonl({"entity_id": 7, "text": "a"}), "text", [(1, "entity_id")], "must be a string"),
    ("missing-key.jsonl", jsonl({"entity_id": "e1"}), "text", [(1, "text")], "missing"),
    ("fields.csv", "entity_id,text\ne1,a,b\n", "text", [(1, None)], "3 fields where the header has 2"),
    ("json.jsonl", '{"entity_id": "e1", "text": "a"}\n{"entity_id": \n', "text", [(2, None)], "not valid JSON"),
    ("array.jsonl", '["e1", "a"]\n', "text", [(1, None)], "expected a JSON object"),
    ("quote.csv", 'entity_id,text\ne1,"open\n', "text", [(1, None)], "not valid CSV"),
    ("no-col.csv", "entity_id,caption\ne1,a\n", "text", [(None, "text")],
     "missing column (the header has: entity_id, caption)"),
    ("twice.csv", "entity_id,text,text\ne1,a,b\n", "text", [(None, "text")], "appears twice"),
    ("empty.csv", "", "text", [(None, None)], "the file is empty"),
    ("header.csv", "entity_id,text\n", "text", [(None, None)], "no rows after the header"),
    ("empty.jsonl", "\n\n", "text", [(None, None)], "no rows"),
    ("texts.txt", "entity_id,text\ne1,a\n", "text", [(None, None)], "unknown extension '.txt'"),
])
def test_refusals_name_row_and_column(tmp_path: Path, name: str, content: str, modality: str,
                                      expected: list[tuple[int | None, str | None]], message: str) -> None:
    error = refusal(write(tmp_path / name, content), modality)
    assert problems(error) == expected
    assert message in str(error) and str(tmp_path / name) in str(error)
    if expected[0][0] is not None:
        assert f"row {expected[0][0]}" in str(error)
    if expected[0][1] is not None:
        assert f"column '{expected[0][1]}'" in str(error)


def test_wrong_encoding_is_named_with_row_and_column(tmp_path: Path) -> None:
    error = refusal(write(tmp_path / "t.csv", "entity_id,text,note\ne1,ok,x\ne2,café,y\n".encode("latin-1")), "text")
    assert problems(error) == [(2, "text")]
    assert "not valid UTF-8 (byte 0xe9)" in str(error)
    extra = refusal(write(tmp_path / "u.csv", "entity_id,text,note\ne1,ok,é\n".encode("latin-1")), "text")
    assert problems(extra) == [(1, "note")]
    utf16 = refusal(write(tmp_path / "v.csv", "entity_id,text\ne1,a\n".encode("utf-16")), "text")
    assert "UTF-16" in str(utf16)


def test_every_problem_is_listed_and_the_message_stays_short(tmp_path: Path) -> None:
    body = "".join(f"e{i},\n" for i in range(30))
    error = refusal(write(tmp_path / "t.csv", "entity_id,text\n" + body), "text")
    assert len(error.problems) == 30 and (error.row, error.column) == (1, "text")
    assert "and 10 more problems" in str(error) and str(error).count("\n") == 20


def test_missing_manifest_and_unknown_modality(tmp_path: Path) -> None:
    assert "manifest file not found" in str(refusal(tmp_path / "none.csv", "text"))
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        load_manifest(tmp_path / "none.csv", "audio")  # type: ignore[arg-type]


def test_problem_text() -> None:
    assert str(Problem("bad", row=3, column="image", line=4)) == "row 3 (line 4), column 'image': bad"
    assert str(Problem("bad", line=1, column="text")) == "line 1, column 'text': bad"
    assert str(Problem("bad")) == "bad"


# --- images ---

def test_image_manifest_hashes_the_files_relative_to_its_folder(tmp_path: Path) -> None:
    red, blue = png(tmp_path / "images" / "a.png"), png(tmp_path / "images" / "b.png", (0, 0, 255))
    file = write(tmp_path / "images.csv", "entity_id,image,image_sha256\n"
                 f"b,images/b.png,\na,images/a.png,{hashlib.sha256(red.read_bytes()).hexdigest()}\n")
    manifest = load_manifest(file, "image")
    assert manifest.ids == ("a", "b")
    assert manifest.image_path(manifest.row("b")) == blue.resolve()
    assert manifest.row("b").content_sha256 == hashlib.sha256(blue.read_bytes()).hexdigest()
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("a", "b"):
        (moved / f"{name}.png").write_bytes((tmp_path / "images" / f"{name}.png").read_bytes())
    other = load_manifest(write(moved / "m.jsonl", jsonl({"entity_id": "a", "image": "a.png"},
                                                         {"entity_id": "b", "image": "b.png"})), "image")
    assert other.fingerprint() == manifest.fingerprint()  # paths and format do not count, contents do


def test_missing_unreadable_and_mismatched_images_are_refused(tmp_path: Path) -> None:
    good = png(tmp_path / "good.png")
    write(tmp_path / "junk.png", b"not an image at all")
    write(tmp_path / "cut.png", good.read_bytes()[:40])
    (tmp_path / "folder.png").mkdir()
    file = write(tmp_path / "images.csv", "entity_id,image,image_sha256\n"
                 "e1,good.png,\ne2,gone.png,\ne3,junk.png,\ne4,cut.png,\ne5,folder.png,\n"
                 f"e6,good.png,{'0' * 64}\ne7,,\n")
    error = refusal(file, "image")
    assert problems(error) == [(2, "image"), (3, "image"), (4, "image"), (5, "image"), (6, "image_sha256"),
                               (7, "image")]
    text = str(error)
    assert f"image file not found: {tmp_path / 'gone.png'}" in text
    assert "row 3 (line 4), column 'image': not a readable image" in text
    assert "row 4 (line 5), column 'image': not a readable image" in text
    assert "is a folder" in text and "does not match the SHA-256" in text and "empty image" in text
    unchecked = refusal(file, "image", verify_images=False)  # files must exist, but are not decoded
    assert problems(unchecked) == [(2, "image"), (5, "image"), (6, "image_sha256"), (7, "image")]


BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("numpy", "PIL", "onnxruntime", "torch"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
""")


def test_light_install_reads_manifests_and_names_the_extra_for_images(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", "entity_id,text\ne1,a\n")
    write(tmp_path / "i.csv", "entity_id,image\ne1,a.png\n")
    code = BLOCKER + textwrap.dedent(f"""
        import swarmfuse.client.site, swarmfuse.client.site.store
        from swarmfuse.client.site.manifest import load_manifest
        assert load_manifest({str(tmp_path / "t.csv")!r}, "text").ids == ("e1",)
        try:
            load_manifest({str(tmp_path / "i.csv")!r}, "image")
        except ModuleNotFoundError as exc:
            print(exc)
        assert "numpy" not in sys.modules and "PIL" not in sys.modules
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'swarmfuse[extract]'" in done.stdout


def test_manifest_is_a_plain_value(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path / "t.csv", "entity_id,text\ne1,a\n"), "text")
    assert isinstance(manifest, Manifest) and manifest == load_manifest(tmp_path / "t.csv", "text")
    assert hash(manifest) == hash(load_manifest(tmp_path / "t.csv", "text"))
