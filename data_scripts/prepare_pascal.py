#!/usr/bin/env python
"""Prepare Pascal VOC 2012 + SBD (the 10 582 augmented set) from the official archives.

    python data_scripts/prepare_pascal.py --voc VOCtrainval_11-May-2012.tar --sbd benchmark.tgz --out data/pascal

Writes JPEGImages/*.jpg and SegmentationClass/*.png under --out: VOC's own masks for its 2 913 annotated ids, and SBD's
.mat masks converted to PNG for the others (VOC's annotation wins where both exist), the layout the community splits
name. Archives are checked against their published MD5 (--skip-checksum to skip); nothing is downloaded.
"""
import argparse, io
from pathlib import Path, PurePosixPath
import numpy as np
from PIL import Image
from scipy.io import loadmat
from tqdm.auto import tqdm
from archive_tools import PreparationError, common_arguments, archive_members, extract, report_layout, run, verify_archive

VOC_MD5 = "6cd6e144f989b92b3379bac3b3de84fd"   # VOCtrainval_11-May-2012.tar
SBD_MD5 = "82b4d87ceb2ed10f6038a1cba92111cb"   # benchmark.tgz (SBD, benchmark_RELEASE)
VOC_BASE = "VOCdevkit/VOC2012/"


def voc_destination(name: str):
    "Where a VOC archive member goes: JPEGImages and SegmentationClass only."
    for folder in ("JPEGImages/", "SegmentationClass/"):
        if name.startswith(VOC_BASE + folder): return folder + name[len(VOC_BASE + folder):]
    return None


def sbd_mask(mat_bytes: bytes, name: str) -> np.ndarray:
    "The class mask of an SBD GTcls .mat file."
    try: return np.asarray(loadmat(io.BytesIO(mat_bytes))["GTcls"][0]["Segmentation"][0], dtype=np.uint8)
    except Exception as error: raise PreparationError(f"{name}: not an SBD GTcls .mat file ({error})") from None


def convert_sbd(sbd: Path, out: Path) -> int:
    "Write SBD's masks as PNG for the ids VOC does not annotate; return how many."
    count = 0
    for name, read in tqdm(archive_members(sbd), desc="SBD masks", unit=" files"):
        path = PurePosixPath(name)
        if path.parent.name != "cls" or path.suffix != ".mat": continue
        target = out / "SegmentationClass" / f"{path.stem}.png"
        if target.exists(): continue
        Image.fromarray(sbd_mask(read(), name)).save(target)
        count += 1
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", type=Path, required=True, help="VOCtrainval_11-May-2012.tar")
    parser.add_argument("--sbd", type=Path, required=True, help="SBD's benchmark.tgz")
    common_arguments(parser, checksum=True)
    args = parser.parse_args(argv)
    voc = verify_archive(args.voc, "VOCtrainval_11-May-2012.tar", VOC_MD5, args.skip_checksum)
    sbd = verify_archive(args.sbd, "SBD benchmark.tgz", SBD_MD5, args.skip_checksum)
    (args.out / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    copied = extract(voc, args.out, voc_destination, "VOC files")
    if not copied: raise PreparationError(f"{voc}: no {VOC_BASE}JPEGImages or SegmentationClass inside; is it the VOC 2012 trainval tar?")
    converted = convert_sbd(sbd, args.out)
    print(f"wrote {copied} VOC files and {converted} SBD masks under {args.out}")
    report_layout(args.out, "pascal", args.strict)


if __name__ == "__main__":
    run(main)
