"""The data preparation scripts, run on small fixture archives in the official layouts: once as a program in a subprocess,
otherwise executed as `__main__` in this process (runpy: the script's own code and arguments, no interpreter start-up)."""
import io, json, runpy, subprocess, sys, tarfile, zipfile
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from conftest import Done, run_captured

SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"


def run_program(name, *args):
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def run_script(capsys, monkeypatch):
    "`run_script(name, *args)`: data_scripts/NAME run as `python NAME ARGS` would run it, in this process → Done."
    monkeypatch.syspath_prepend(str(SCRIPTS))   # the scripts import their sibling archive_tools
    def run(name, *args) -> Done:
        monkeypatch.setattr(sys, "argv", [str(SCRIPTS / name), *map(str, args)])
        return run_captured(capsys, lambda: runpy.run_path(str(SCRIPTS / name), run_name="__main__"))
    return run


def png_bytes(array, fmt="PNG"):
    buffer = io.BytesIO(); Image.fromarray(array).save(buffer, fmt); return buffer.getvalue()


def add_to_tar(archive, name, data):
    info = tarfile.TarInfo(name); info.size = len(data); archive.addfile(info, io.BytesIO(data))


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items(): archive.writestr(name, data)
    return path


@pytest.fixture
def pascal_archives(tmp_path):
    photo = png_bytes(np.full((6, 8, 3), 120, np.uint8), "JPEG")
    voc_mask = np.zeros((6, 8), np.uint8); voc_mask[2:4, 2:6] = 15; voc_mask[0, 0] = 255
    with tarfile.open(tmp_path / "VOCtrainval_11-May-2012.tar", "w") as voc:
        for image_id in ("2007_000032", "2008_000002"):
            add_to_tar(voc, f"VOCdevkit/VOC2012/JPEGImages/{image_id}.jpg", photo)
        add_to_tar(voc, "VOCdevkit/VOC2012/SegmentationClass/2007_000032.png", png_bytes(voc_mask))
        add_to_tar(voc, "VOCdevkit/VOC2012/Annotations/2007_000032.xml", b"<annotation/>")
    sbd_mask = np.zeros((6, 8), np.uint8); sbd_mask[1:5, 1:3] = 7
    with tarfile.open(tmp_path / "benchmark.tgz", "w:gz") as sbd:
        for image_id, mask in (("2008_000002", sbd_mask), ("2007_000032", np.ones((6, 8), np.uint8))):
            buffer = io.BytesIO(); savemat(buffer, {"GTcls": {"Segmentation": mask, "CategoriesPresent": np.unique(mask)}})
            add_to_tar(sbd, f"benchmark_RELEASE/dataset/cls/{image_id}.mat", buffer.getvalue())
    return tmp_path / "VOCtrainval_11-May-2012.tar", tmp_path / "benchmark.tgz", voc_mask, sbd_mask


@pytest.mark.slow   # counts the 10 582-image lists' files
def test_pascal_layout_and_sbd_conversion(run_script, pascal_archives, tmp_path):
    voc, sbd, voc_mask, sbd_mask = pascal_archives
    done = run_script("prepare_pascal.py", "--voc", voc, "--sbd", sbd, "--out", tmp_path / "pascal", "--skip-checksum")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "pascal"
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == ["2007_000032.jpg", "2008_000002.jpg"]
    assert np.array_equal(np.array(Image.open(out / "SegmentationClass" / "2007_000032.png")), voc_mask)  # VOC's own wins
    assert np.array_equal(np.array(Image.open(out / "SegmentationClass" / "2008_000002.png")), sbd_mask)  # SBD converted
    assert not (out / "Annotations").exists()
    from csl_nb.datasets import read_split, shipped_split
    names = [n for pair in read_split(shipped_split("pascal", "1464", "labeled")) for n in pair]
    present = sum((out / n).is_file() for n in names)
    assert f"pascal 1464 labeled: {present} of {len(names)} files present" in done.stdout


def test_pascal_checksum_and_missing_archive(run_script, pascal_archives, tmp_path):
    voc, sbd, *_ = pascal_archives
    done = run_script("prepare_pascal.py", "--voc", voc, "--sbd", sbd, "--out", tmp_path / "p")
    assert done.returncode == 2 and "md5" in done.stderr and "expected 6cd6e144f989b92b3379bac3b3de84fd" in done.stderr
    done = run_script("prepare_pascal.py", "--voc", tmp_path / "nope.tar", "--sbd", sbd, "--out", tmp_path / "p", "--skip-checksum")
    assert done.returncode == 2 and "VOCtrainval_11-May-2012.tar not found" in done.stderr
    done = run_script("prepare_pascal.py", "--voc", voc.parent, "--sbd", sbd, "--out", tmp_path / "p", "--skip-checksum")
    assert done.returncode == 2 and f"{voc.parent} is a folder: pass the archive file itself (VOCtrainval_11-May-2012.tar)" in done.stderr


@pytest.mark.slow   # counts the 10 582-image lists' files
def test_pascal_strict_fails_on_missing_split_files(run_script, pascal_archives, tmp_path):
    voc, sbd, *_ = pascal_archives
    done = run_script("prepare_pascal.py", "--voc", voc, "--sbd", sbd, "--out", tmp_path / "p", "--skip-checksum", "--strict")
    assert done.returncode == 2 and "files named by the shipped splits are missing" in done.stderr


@pytest.mark.slow   # a subprocess: the script as a program
def test_truncated_archive_is_reported(pascal_archives, tmp_path):
    voc, sbd, *_ = pascal_archives
    truncated = tmp_path / "truncated.tgz"; truncated.write_bytes(sbd.read_bytes()[:200])
    done = run_program("prepare_pascal.py", "--voc", voc, "--sbd", truncated, "--out", tmp_path / "p", "--skip-checksum")
    assert done.returncode == 2 and "cannot read the archive" in done.stderr and "Traceback" not in done.stderr


def test_cityscapes_train_ids(run_script, tmp_path):
    frame = "aachen/aachen_000000_000019"
    ids = np.array([[7, 26, 0, 33], [24, 4, 11, 7]], np.uint8)  # road, car, unlabeled, bicycle / person, static, building, road
    images = write_zip(tmp_path / "leftImg8bit_trainvaltest.zip", {
        f"leftImg8bit/train/{frame}_leftImg8bit.png": png_bytes(np.zeros((2, 4, 3), np.uint8)),
        "leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png": png_bytes(np.zeros((2, 4, 3), np.uint8))})
    labels = write_zip(tmp_path / "gtFine_trainvaltest.zip", {
        f"gtFine/train/{frame}_gtFine_labelIds.png": png_bytes(ids),
        f"gtFine/train/{frame}_gtFine_color.png": png_bytes(np.zeros((2, 4, 3), np.uint8))})
    done = run_script("prepare_cityscapes.py", "--images", images, "--labels", labels, "--out", tmp_path / "cs", "--skip-checksum")
    assert done.returncode == 0, done.stderr   # --skip-checksum is accepted by every script, as the README says
    train_ids = np.array(Image.open(tmp_path / "cs" / "gtFine" / "train" / f"{frame}_gtFine_labelTrainIds.png"))
    assert train_ids.tolist() == [[0, 13, 255, 18], [11, 255, 2, 0]]
    assert not (tmp_path / "cs" / "leftImg8bit" / "test").exists()
    assert "cityscapes val: 0 of 1000 files present" in done.stdout


def test_cityscapes_corrupt_label_png_is_named(run_script, tmp_path):
    frame = "aachen/aachen_000000_000019"
    images = write_zip(tmp_path / "leftImg8bit_trainvaltest.zip", {f"leftImg8bit/train/{frame}_leftImg8bit.png": png_bytes(np.zeros((2, 4, 3), np.uint8))})
    labels = write_zip(tmp_path / "gtFine_trainvaltest.zip", {f"gtFine/train/{frame}_gtFine_labelIds.png": b"\x89PNG\r\n\x1a\n broken"})
    done = run_script("prepare_cityscapes.py", "--images", images, "--labels", labels, "--out", tmp_path / "cs")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"member gtFine/train/{frame}_gtFine_labelIds.png is not a readable image" in done.stderr


@pytest.mark.parametrize("member", ["../escaped.png", "/etc/escaped.png", "leftImg8bit/train/../../../escaped.png"])
def test_archive_paths_outside_the_output_are_refused(run_script, tmp_path, member):
    images = write_zip(tmp_path / "leftImg8bit_trainvaltest.zip", {member: png_bytes(np.zeros((2, 4, 3), np.uint8))})
    labels = write_zip(tmp_path / "gtFine_trainvaltest.zip", {})
    out = tmp_path / "deep" / "cs"
    done = run_script("prepare_cityscapes.py", "--images", images, "--labels", labels, "--out", out)
    assert done.returncode == 2 and "unsafe path in archive" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("escaped.png"))


WINDOWS_ESCAPES = {"leftImg8bit/train/..\\..\\..\\escaped.png": "a backslash (a folder separator on Windows)",
                   "C:/escaped.png": "a drive letter (C:, c:foo)", "c:escaped.png": "a drive letter (C:, c:foo)"}


@pytest.mark.parametrize("member", list(WINDOWS_ESCAPES))
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_archive_paths_that_escape_on_windows_are_refused(run_script, tmp_path, member, kind):
    "Backslashes and drive letters: harmless names on Linux, outside --out on Windows; refused on every OS, naming the member."
    photo = png_bytes(np.zeros((2, 4, 3), np.uint8))
    if kind == "tar":   # VOC's archive is a tar (read first: SBD's is never opened)
        archive = tmp_path / "VOCtrainval_11-May-2012.tar"
        with tarfile.open(archive, "w") as voc: add_to_tar(voc, member, photo)
        args = ("prepare_pascal.py", "--voc", archive, "--sbd", archive)
    else:               # Cityscapes' archives are zips
        archive = write_zip(tmp_path / "leftImg8bit_trainvaltest.zip", {member: photo})
        args = ("prepare_cityscapes.py", "--images", archive, "--labels", write_zip(tmp_path / "gtFine_trainvaltest.zip", {}))
    done = run_script(*args, "--out", tmp_path / "deep" / "out", "--skip-checksum")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{archive}: unsafe path in archive: member {member!r} has {WINDOWS_ESCAPES[member]}; it could be written outside --out" in done.stderr
    assert not [path for path in tmp_path.rglob("*") if path.is_file() and path.suffix == ".png"]


def png_declaring(width, height):
    "A small PNG whose header (IHDR, CRC recomputed) declares width × height pixels."
    import struct, zlib
    data = bytearray(png_bytes(np.zeros((2, 4), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("size", [100_000, 10_000])   # over twice PIL's limit (its error), over the limit (its warning)
def test_cityscapes_decompression_bomb_label_is_named(run_script, tmp_path, size):
    frame = "aachen/aachen_000000_000019"
    images = write_zip(tmp_path / "leftImg8bit_trainvaltest.zip", {f"leftImg8bit/train/{frame}_leftImg8bit.png": png_bytes(np.zeros((2, 4, 3), np.uint8))})
    labels = write_zip(tmp_path / "gtFine_trainvaltest.zip", {f"gtFine/train/{frame}_gtFine_labelIds.png": png_declaring(size, size)})
    done = run_script("prepare_cityscapes.py", "--images", images, "--labels", labels, "--out", tmp_path / "cs")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "DecompressionBomb" not in done.stderr
    error, = [line for line in done.stderr.splitlines() if "error:" in line]
    assert f"error: {labels}: member gtFine/train/{frame}_gtFine_labelIds.png declares an implausibly large image (Image size ({size * size} pixels) exceeds limit" in error
    assert error.endswith("the archive is damaged or not the official one")
    assert not (tmp_path / "cs" / "gtFine").exists()


def test_coco_masks(run_script, tmp_path):
    image = {"id": 9, "file_name": "000000000009.jpg", "height": 10, "width": 12}
    polygon = {"id": 1, "image_id": 9, "category_id": 3, "iscrowd": 0, "area": 16.0, "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]}
    crowd_rle = {"counts": [0, 10, 110], "size": [10, 12]}  # column-major: the first column is crowd
    crowd = {"id": 2, "image_id": 9, "category_id": 1, "iscrowd": 1, "area": 10.0, "segmentation": crowd_rle}
    document = lambda anns: json.dumps({"images": [image], "annotations": anns, "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]})
    photo = png_bytes(np.zeros((10, 12, 3), np.uint8), "JPEG")
    train = write_zip(tmp_path / "train2017.zip", {"train2017/000000000009.jpg": photo})
    val = write_zip(tmp_path / "val2017.zip", {"val2017/000000000139.jpg": photo})
    annotations = write_zip(tmp_path / "annotations_trainval2017.zip", {
        "annotations/instances_train2017.json": document([polygon, crowd]), "annotations/instances_val2017.json": document([])})
    done = run_script("prepare_coco.py", "--train", train, "--val", val, "--annotations", annotations, "--out", tmp_path / "coco", "--skip-checksum")
    assert done.returncode == 0, done.stderr
    mask = np.array(Image.open(tmp_path / "coco" / "masks" / "000000000009.png"))
    assert (mask[:, 0] == 255).all()                 # crowd
    assert mask[3, 3] == 2 and mask[8, 8] == 0       # car is class 2 (second category id); background 0
    assert (tmp_path / "coco" / "val2017" / "000000000139.jpg").is_file()
    assert not (tmp_path / "coco" / "masks" / "000000000139.png").exists()  # no annotation, no mask


def test_fashion_subset_from_idx_files(run_script, tmp_path):
    import gzip
    def idx(array):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        return gzip.compress(header + array.tobytes())
    labels = np.repeat(np.arange(10, dtype=np.uint8), 3)
    images = (np.arange(30 * 28 * 28) % 251).astype(np.uint8).reshape(30, 28, 28)
    for stem, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        (tmp_path / f"{stem}.gz").write_bytes(idx(array))
    out = tmp_path / "subset.npz"
    done = run_script("make_fashion_subset.py", "--source", tmp_path, "--out", out, "--train-per-class", 2, "--test-per-class", 1)
    assert done.returncode == 0, done.stderr
    with np.load(out) as data:
        assert data["train_images"].shape == (20, 28, 28) and np.bincount(data["train_labels"]).tolist() == [2] * 10
    first = out.read_bytes()
    run_script("make_fashion_subset.py", "--source", tmp_path, "--out", out, "--train-per-class", 2, "--test-per-class", 1)
    assert out.read_bytes() == first                 # deterministic bytes
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x09\x01"))
    done = run_script("make_fashion_subset.py", "--source", tmp_path, "--out", out)
    assert done.returncode == 2 and "not an IDX file" in done.stderr


def pascal_archives_for(tmp_path, split="92"):
    "VOC and SBD archives in the official layouts holding a tiny image and mask for every file `split`'s lists and val name."
    from csl_nb.datasets import split_pairs
    pairs = {pair for mode in ("labeled", "unlabeled") for pair in split_pairs("pascal", split, mode)} | set(split_pairs("pascal", "", "val"))
    photo, mask = png_bytes(np.full((6, 8, 3), 120, np.uint8), "JPEG"), np.zeros((6, 8), np.uint8)
    mask[2:4, 2:6] = 15
    with tarfile.open(tmp_path / "VOCtrainval_11-May-2012.tar", "w") as voc:
        for image, label in sorted(pairs):
            add_to_tar(voc, f"VOCdevkit/VOC2012/{image}", photo)
            if label: add_to_tar(voc, f"VOCdevkit/VOC2012/{label}", png_bytes(mask))
    with tarfile.open(tmp_path / "benchmark.tgz", "w:gz") as sbd:
        buffer = io.BytesIO(); savemat(buffer, {"GTcls": {"Segmentation": mask, "CategoriesPresent": np.unique(mask)}})
        add_to_tar(sbd, "benchmark_RELEASE/dataset/cls/2008_000002.mat", buffer.getvalue())
    return tmp_path / "VOCtrainval_11-May-2012.tar", tmp_path / "benchmark.tgz"


@pytest.mark.slow   # 12 000 fixture files, then two tiny Pascal runs in subprocesses (about a minute)
def test_runbook_from_archives_to_table(run_script, csl_nb, cache, tmp_path):
    "Chapter 10's runbook on fixture archives: prepare_pascal.py, then `reproduce --run` twice (the second skips the finished run)."
    voc, sbd = pascal_archives_for(tmp_path)
    done = run_script("prepare_pascal.py", "--voc", voc, "--sbd", sbd, "--out", tmp_path / "pascal", "--skip-checksum")
    assert done.returncode == 0, done.stderr
    tiny = ["model=deeplabv3plus-mobilenetv2-light", "pretrained=false", "epochs=1", "iters_per_epoch=1", "augment.crop=16",
            "augment.tmp_block=2", "device=cpu", "progress=false", "workers=0"]
    run = lambda: csl_nb("reproduce", "pascal-classic", "--data-root", tmp_path / "pascal", "--runs", tmp_path / "runs", "--run",
                         "--splits", "92", "--method", "supervised", "--gpus", "1", "--set", *tiny)
    first = run()
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "runs" / "pascal-classic" / "supervised-92" / "last.pt").is_file()
    row = next(line for line in first.stdout.splitlines() if line.startswith("| csl_nb supervised"))
    assert row.split("|")[2].strip() != "n/a" and row.split("|")[3].strip() == "n/a"   # split 92 filled in, 183 not run
    again = run()
    assert again.returncode == 0 and "supervised-92: finished, skipped" in again.stdout


def test_runbook_refuses_a_data_folder_missing_files(csl_nb, pascal_archives, run_script, tmp_path):
    voc, sbd, _, _ = pascal_archives
    run_script("prepare_pascal.py", "--voc", voc, "--sbd", sbd, "--out", tmp_path / "pascal", "--skip-checksum")
    done = csl_nb("reproduce", "pascal-classic", "--data-root", tmp_path / "pascal", "--run", "--splits", "92")
    assert done.returncode == 2 and "is incomplete" in done.stderr and "prepare_pascal.py" in done.stderr
