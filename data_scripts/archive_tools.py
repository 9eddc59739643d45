"""What the preparation scripts share: checking archives, extracting members, reporting the layout against the splits."""
import hashlib, io, re, sys, tarfile, warnings, zipfile
from pathlib import Path, PurePosixPath
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm


class PreparationError(Exception):
    "A problem the user can fix (missing or wrong archive, bad layout); printed as one line, exit status 2."


def md5sum(path: Path, chunk: int = 1 << 22) -> str:
    "MD5 of a file, read in chunks with a progress bar."
    digest = hashlib.md5()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"md5 {path.name}", leave=False) as bar:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block); bar.update(len(block))
    return digest.hexdigest()


def verify_archive(path: Path, name: str, expected_md5: str = None, skip_checksum: bool = False) -> Path:
    "The archive's path, after checking it exists and (unless skipped or unknown) its MD5."
    path = Path(path)
    if path.is_dir(): raise PreparationError(f"{path} is a folder: pass the archive file itself ({name}), not the folder that holds it")
    if not path.is_file(): raise PreparationError(f"{name} not found at {path}: download it from the data set's site and pass its path")
    if expected_md5 and not skip_checksum:
        actual = md5sum(path)
        if actual != expected_md5:
            raise PreparationError(f"{path}: md5 {actual}, expected {expected_md5} for {name}: the download is incomplete "
                                   f"or a different release (re-download it; --skip-checksum to use it anyway)")
    return path


def _unsafe_because(name: str):
    "Why an archive member's name could point outside the output folder on some OS (None if it cannot)."
    path = PurePosixPath(name)
    if "\\" in name: return "a backslash (a folder separator on Windows)"
    if path.is_absolute(): return "an absolute path"
    if ".." in path.parts: return "'..'"
    if any(re.match(r"[A-Za-z]:", part) for part in path.parts): return "a drive letter (C:, c:foo)"
    return None


def _safe(name: str, archive: Path = None) -> PurePosixPath:
    "An archive member's path, refusing backslashes, absolute paths, '..' and drive letters (names that escape the output folder)."
    reason = _unsafe_because(name)
    if reason: raise PreparationError((f"{archive}: " if archive else "") + f"unsafe path in archive: member {name!r} has {reason}; "
                                      f"it could be written outside --out: the archive is damaged or not the official one")
    return PurePosixPath(name)


_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError)


def _unreadable(path: Path, error: Exception) -> PreparationError:
    return PreparationError(f"{path}: cannot read the archive ({type(error).__name__}: {error}); it may be truncated")


def archive_members(path: Path):
    "Yield (member name, read) for every regular file of a .tar/.tgz/.tar.gz or .zip archive; read() gives its bytes."
    def reader(open_member):
        def read() -> bytes:
            try:
                with open_member() as member: return member.read()
            except _ARCHIVE_ERRORS as error: raise _unreadable(path, error) from None
        return read
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir(): yield str(_safe(info.filename, path)), reader(lambda info=info: archive.open(info))
        else:
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile(): yield str(_safe(member.name, path)), reader(lambda member=member: archive.extractfile(member))
    except _ARCHIVE_ERRORS as error: raise _unreadable(path, error) from None


def decode_image(data: bytes, name: str, archive: Path) -> np.ndarray:
    "An archive member's image as an array, or a PreparationError naming the member and the archive."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)   # a header declaring a huge size: refused, not decoded
            with Image.open(io.BytesIO(data)) as image: return np.array(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise PreparationError(f"{archive}: member {name} declares an implausibly large image ({error}); "
                               f"the archive is damaged or not the official one") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise PreparationError(f"{archive}: member {name} is not a readable image ({type(error).__name__}: {error}); "
                               f"the archive may be damaged: re-download it") from None


def extract(path: Path, out: Path, destination, desc: str) -> int:
    "Copy every member for which `destination(name)` gives a relative path into `out`; return how many."
    count = 0
    for name, read in tqdm(archive_members(path), desc=desc, unit=" files"):
        target = destination(name)
        if target is None: continue
        target = out / _safe(str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read())
        count += 1
    return count


def report_layout(root: Path, dataset: str, strict: bool) -> int:
    "Print how many files each shipped split names are present under `root`; with `strict`, fail if any is missing."
    from csl_nb.datasets import available_splits, shipped_split, read_split
    missing_total = 0
    for split in available_splits(dataset):
        for mode in ("labeled", "unlabeled"):
            path = shipped_split(dataset, split, mode)
            if not path.is_file(): continue
            names = [n for pair in read_split(path) for n in pair if n]
            missing = [n for n in names if not (root / n).is_file()]
            missing_total += len(missing)
            print(f"{dataset} {split} {mode}: {len(names) - len(missing)} of {len(names)} files present" + (f"; first missing: {missing[:3]}" if missing else ""))
    names = [n for pair in read_split(shipped_split(dataset, "", "val")) for n in pair if n]
    missing = [n for n in names if not (root / n).is_file()]
    missing_total += len(missing)
    print(f"{dataset} val: {len(names) - len(missing)} of {len(names)} files present")
    if strict and missing_total: raise PreparationError(f"{missing_total} files named by the shipped splits are missing under {root}")
    return missing_total


def common_arguments(parser, checksum: bool = True):
    "The options every preparation script takes: --out, --skip-checksum (a no-op where no checksum is published), --strict."
    parser.add_argument("--out", type=Path, required=True, help="data folder to write")
    parser.add_argument("--skip-checksum", action="store_true",
                        help="do not check the archives' MD5" if checksum else "accepted for symmetry: this data set publishes no MD5, nothing is checked")
    parser.add_argument("--strict", action="store_true", help="fail if any file a shipped split names is missing")


def run(main):
    "Call `main()`, turning PreparationError into one line on stderr and exit status 2."
    try: main()
    except PreparationError as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr); sys.exit(2)
