"""``clipstudy check-data`` checks every file and counts classes and images; loaders refuse class subsets."""
import json
import shutil

import pytest

from clipstudy.cli import main
from clipstudy.data import build_dataset
from clipstudy.data.fake import make_fake_tree
from clipstudy.data.real import SUBSET_ENV, SUBSET_MARKER, allow_subsets, check_dataset, check_file, check_files
from clipstudy.errors import DataError


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def save_jpeg(path, value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value % 256, 40, 90)).save(path, format="JPEG")
    return path


def subset_tree(tmp_path, families, **kw):
    """A fake tree without its subset marker: loaders see it as a user's incomplete copy."""
    root = make_fake_tree(tmp_path / "data", families=families, **kw)
    (root / SUBSET_MARKER).unlink()
    return root


@pytest.fixture(scope="module")
def full_sketch(tmp_path_factory):
    """ImageNet-Sketch with one image in each of the 1000 wnid folders (the set has no fixed image count)."""
    from clipstudy.data.imagenet import imagenet_wnids

    root = tmp_path_factory.mktemp("full")
    for i, wnid in enumerate(imagenet_wnids()):
        save_jpeg(root / "sketch" / wnid / "a.JPEG", i)
    return root


# ---------------------------------------------------------------------------------------------- every file

def test_zero_byte_tenth_image_is_malformed(tmp_path, capsys):
    root = make_fake_tree(tmp_path / "data", families=["cue_conflict"], images_per_class=4)
    files = build_dataset("cue_conflict", root=root).samples
    bad = files[9][0]
    bad.write_bytes(b"")
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--dataset", "cue_conflict", "--json")
    r = json.loads(out)["datasets"][0]
    assert code == 2 and r["status"] == "malformed" and r["bad_files"] == 1
    assert r["first_bad_file"] == str(bad) and f"{bad} is empty (0 bytes)" in r["reason"]
    assert "1 of 12 files unreadable" in r["reason"]
    files[4][0].write_bytes(b"random bytes, not an image")  # now two bad files; the first is named
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--dataset", "cue_conflict")
    line = out.splitlines()[1]
    assert code == 2 and "malformed" in line and "2 of 12 files unreadable" in line
    assert f"cannot read image {files[4][0]}" in line


def test_header_check_does_not_decode_and_deep_does(tmp_path, capsys, monkeypatch):
    root = make_fake_tree(tmp_path / "data", families=["ood"])
    import numpy as np
    from PIL import Image

    path = sorted((root / "SUN" / "images").iterdir())[3]
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, format="JPEG")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # the header is intact, the pixels are cut off
    assert check_file(path) is None
    assert "cannot read image" in check_file(path, deep=True) and "truncated" in check_file(path, deep=True)
    r = check_dataset("sun", root)
    assert r["status"] == "partial" and r["bad_files"] == 0 and r["files_checked"] == 6
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--dataset", "sun", "--deep", "--json")
    r = json.loads(out)["datasets"][0]
    assert code == 2 and r["status"] == "malformed" and r["deep"] and r["first_bad_file"] == str(path)

    def no_decoding(self):
        raise AssertionError("the header check decoded pixels")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    files = sorted((root / "Places" / "images").iterdir())
    assert check_files(files, workers=2) == []


def test_check_files_keeps_order_over_chunks(tmp_path, monkeypatch):
    import clipstudy.data.real as real

    monkeypatch.setattr(real, "CHECK_CHUNK", 3)
    files = [save_jpeg(tmp_path / f"{i:02d}.jpg", i) for i in range(11)]
    for i in (8, 2, 5):
        files[i].write_bytes(b"")
    (tmp_path / "03.jpg").unlink()
    found = check_files(files, workers=4)
    assert [i for i, _ in found] == [2, 3, 5, 8] and "cannot read" in found[1][1]
    monkeypatch.setattr(real, "PROCESS_MIN_FILES", 5)  # large lists go to worker processes: same answer
    monkeypatch.setattr(real, "PROCESS_CHUNK", 4)
    assert check_files(files, workers=2) == found


# ---------------------------------------------------------------------------------------------- counts

def test_one_of_1000_classes_is_partial(tmp_path, capsys):
    save_jpeg(tmp_path / "imagenet" / "val" / "n01440764" / "ILSVRC2012_val_00000001.JPEG")
    code, out, _ = run(capsys, "check-data", "--data-root", str(tmp_path), "--dataset", "imagenet", "--json")
    r = json.loads(out)["datasets"][0]
    assert code == 2 and r["status"] == "partial" and r["expected_classes"] == 1000
    test = next(u for u in r["units"] if u["split"] == "test")
    assert (test["classes"], test["expected_classes"], test["images"], test["expected_images"]) == (1, 1000, 1, 50000)
    assert "1 of 1000 classes" in r["reason"] and r["absent"] == ["train"]
    code, out, _ = run(capsys, "check-data", "--data-root", str(tmp_path), "--dataset", "imagenet")
    assert code == 2 and "imagenet         partial   1 of 1000 classes, 1 of 50000 images (test)" in out
    assert "train: absent" in out


def test_complete_sets_are_present(full_sketch, tmp_path, capsys):
    root = make_fake_tree(tmp_path / "data", families=["coop"], n_classes=10, images_per_class=1)
    shutil.copytree(full_sketch / "sketch", root / "sketch")
    code, out, _ = run(capsys, "check-data", "--data-root", str(root), "--dataset", "imagenet_sketch,eurosat",
                       "--json")
    sketch, eurosat = json.loads(out)["datasets"]
    assert code == 0 and sketch["status"] == eurosat["status"] == "present"
    assert sketch["images"] == {"imagenet_sketch": 1000} and sketch["files_checked"] == 1000
    assert [(u["name"], u["classes"], u["expected_classes"]) for u in eurosat["units"]] == [
        ("test", 10, 10), ("train", 10, 10), ("val", 10, 10)]
    assert "reason" not in sketch and sketch["bad_files"] == 0 and sketch["first_bad_file"] is None


def test_optional_split_absent_or_partial(full_sketch, tmp_path, monkeypatch):
    from clipstudy.data.imagenet import ImageNetBuilder

    monkeypatch.setattr(ImageNetBuilder, "IMAGES", {})  # 1000 classes with one image each stand for the full set
    shutil.copytree(full_sketch / "sketch", tmp_path / "imagenet" / "val")
    r = check_dataset("imagenet", tmp_path)
    assert r["status"] == "present" and r["absent"] == ["train"]
    save_jpeg(tmp_path / "imagenet" / "train" / "n01440764" / "a.JPEG")
    r = check_dataset("imagenet", tmp_path)
    assert r["status"] == "partial" and r["reason"] == "1 of 1000 classes (train)"
    monkeypatch.setenv(SUBSET_ENV, "1")  # the report does not change when subsets are allowed
    assert check_dataset("imagenet", tmp_path)["status"] == "partial"


def test_domains_and_cells_are_counted(tmp_path):
    root = subset_tree(tmp_path, ["domainnet", "imagenet"])
    shutil.rmtree(root / "domainnet" / "sketch")
    r = check_dataset("domainnet", root)
    assert r["status"] == "partial" and "domainnet/sketch is missing" in r["reason"]
    assert {u["name"]: u["status"] for u in r["units"]}["sketch/test"] == "absent"
    c = check_dataset("imagenet_c", root)
    assert c["status"] == "partial" and "corruption/severity folder absent" in c["reason"]
    cells = {u["name"]: u for u in c["units"]}
    assert len(cells) == 75 and cells["fog/1"]["status"] == "absent"
    assert (cells["motion_blur/3"]["classes"], cells["motion_blur/3"]["images"]) == (3, 6)


def test_layout_errors_stay_malformed(tmp_path):
    root = subset_tree(tmp_path, ["coop"])
    (root / "eurosat" / "split_zhou_EuroSAT.json").write_text("{not json")
    r = check_dataset("eurosat", root)
    assert r["status"] == "malformed" and "split file" in r["reason"] and "expected layout" not in r["reason"]


# ---------------------------------------------------------------------------------------------- loaders refuse

@pytest.mark.parametrize("name, family, expected", [
    ("imagenet", "imagenet", "imagenet has 3 of 1000 classes under "),
    ("imagenet_r", "imagenet", "imagenet_r has 3 of 200 classes under "),
    ("imagenet_c", "imagenet", "imagenet_c has 3 of 1000 classes under "),
    ("domainnet", "domainnet", "domainnet has 3 of 345 classes in "),
    ("oxford_pets", "coop", "oxford_pets has 3 of 37 classes in "),
    ("fgvc_aircraft", "coop", "fgvc_aircraft has 3 of 100 classes in "),
    ("cue_conflict", "cue_conflict", "cue_conflict has 3 of 16 classes under "),
])
def test_loading_a_class_subset_refuses_without_opt_in(tmp_path, monkeypatch, name, family, expected):
    root = subset_tree(tmp_path, [family])
    monkeypatch.delenv(SUBSET_ENV, raising=False)
    with pytest.raises(DataError) as err:
        build_dataset(name, root=root)
    msg = str(err.value)
    assert msg.startswith(expected) and "\n" not in msg
    assert f"set {SUBSET_ENV}=1 or create the file {root / SUBSET_MARKER}" in msg
    with allow_subsets():
        assert len(build_dataset(name, root=root)) > 0
    monkeypatch.setenv(SUBSET_ENV, "1")
    assert len(build_dataset(name, root=root)) > 0
    monkeypatch.delenv(SUBSET_ENV)
    (root / SUBSET_MARKER).write_text("")
    assert len(build_dataset(name, root=root)) > 0


def test_full_sets_and_classless_sets_load_without_opt_in(full_sketch, tmp_path, monkeypatch):
    monkeypatch.delenv(SUBSET_ENV, raising=False)
    assert len(build_dataset("imagenet_sketch", root=full_sketch).classnames) == 1000
    root = subset_tree(tmp_path, ["ood", "retrieval"])  # no classes: fewer images only shows in check-data
    assert len(build_dataset("sun", root=root)) == 6 and len(build_dataset("flickr30k", root=root)) == 6


def test_zeroshot_on_one_imagenet_class_is_one_error_line(tmp_path, capsys, monkeypatch):
    # before: "imagenet 100.0 % (1 classes)", a 1-way head scored as ImageNet
    monkeypatch.delenv(SUBSET_ENV, raising=False)
    save_jpeg(tmp_path / "imagenet" / "val" / "n01440764" / "ILSVRC2012_val_00000001.JPEG")
    code, out, err = run(capsys, "zeroshot", "--model", "clipstudy-micro", "--pretrained", "random",
                         "--dataset", "imagenet", "--data-root", str(tmp_path))
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1
    assert lines[0].startswith("clipstudy: error: imagenet has 1 of 1000 classes under ")
