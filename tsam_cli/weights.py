"""Weight files: a registry of what exists, a cache, and a careful downloader.

The registry is plain data (:data:`REGISTRY`, name -> :class:`WeightSpec`), in the spirit of
whisper's model table: each entry says where the file comes from, what it is called on disk
and, where known, its SHA-256. Everything else here works from that table:

* :func:`cache_dir` -- ``$TSAM_HOME/weights`` when ``TSAM_HOME`` is set, else
  ``platformdirs.user_cache_dir("tsam")/weights``.
* :func:`download` -- fetch an entry into the cache. A cached file whose checksum is fine is
  returned without touching the network. Otherwise the file is written to ``<name>.part`` in
  the cache folder, resumed with an HTTP ``Range`` request when a partial file exists and the
  server answers 206, retried with back-off on dropped connections and 5xx answers, checked
  against the SHA-256 and only then renamed into place (atomically). A file already in the
  cache is never deleted: one with a wrong checksum is refused (the message names it) unless
  ``force``, and even then it is replaced only once the new download is verified.
* :func:`resolve` -- turn a path or a registry name into a path to a usable file, without
  downloading unless asked to.
* :func:`status` -- what the cache holds for an entry (for ``tsam weights list``).

Every failure a user can fix is raised as :class:`tsam_cli.errors.WeightsError` with a one-line
message; when the network is the problem the message names the exact path where the file can
be put by hand, and where to get it.

This module must stay importable without torch (``tsam weights`` runs without it).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tsam_cli import __version__
from tsam_cli.errors import WeightsError

if TYPE_CHECKING:  # the network modules (ssl, http.client: ~30 ms) load only when a download runs
    import http.client
    import urllib.request

__all__ = [
    "OFFICIAL",
    "REGISTRY",
    "ChecksumState",
    "converted_path",
    "official_weights",
    "ProgressCallback",
    "Source",
    "WeightSpec",
    "cache_dir",
    "check",
    "download",
    "get_spec",
    "local_dir",
    "manual_hint",
    "register",
    "resolve",
    "sha256sum",
    "status",
    "target_path",
]

SourceKind = Literal["gdrive", "url", "local"]
ChecksumState = Literal["ok", "mismatch", "unknown", "missing"]
#: ``progress(bytes_done, bytes_total_or_None)``, called as bytes arrive.
ProgressCallback = Callable[[int, int | None], None]

#: Environment variable that moves the cache: weights go to ``$TSAM_HOME/weights``.
ENV_HOME = "TSAM_HOME"

#: Folder of files shipped with the repository (``source.kind == "local"``).
#: shipped inside the package (package data), so wheels and non-editable installs have them
LOCAL_WEIGHTS_DIR = Path(__file__).resolve().parent / "shipped"

_CHUNK = 1 << 20  # 1 MiB, for hashing and for reading from the network
_TIMEOUT_S = 30.0  # per socket operation, not for the whole download
_BACKOFF_BASE_S = 1.0  # retry i waits _BACKOFF_BASE_S * 2**i seconds, capped below
_BACKOFF_MAX_S = 20.0
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a weight file comes from.

    ``kind`` is one of:

    * ``"gdrive"`` -- ``ref`` is a Google Drive file id, fetched with ``gdown``;
    * ``"url"`` -- ``ref`` is an http(s) URL, fetched with ``urllib``;
    * ``"local"`` -- ``ref`` is a file name inside the package's ``tsam_cli/shipped/`` folder
      (shipped with tsam, never downloaded).

    ``page`` is an optional web page a person can open to get the file by hand (a README,
    a release page); when absent the download link itself is shown.
    """

    kind: SourceKind
    ref: str
    page: str | None = None

    @property
    def link(self) -> str:
        """A link a person can open in a browser to get the file."""
        if self.kind == "gdrive":
            return f"https://drive.google.com/file/d/{self.ref}/view"
        if self.kind == "url":
            return self.ref
        return self.page or f"the tsam package's tsam_cli/shipped/{self.ref} (reinstall tsam)"

    @property
    def host(self) -> str:
        """Short label for tables: ``gdrive``, ``local`` or the URL's host name."""
        if self.kind == "url":
            return urllib.parse.urlparse(self.ref).hostname or "url"
        return self.kind


@dataclass(frozen=True)
class WeightSpec:
    """One entry of the registry.

    ``sha256`` is the hex digest of the file, or a prefix of it (at least 8 hex digits) where
    only a prefix is published, as in torchvision's ``name-<sha256[:8]>.pth`` file names;
    ``None`` where nothing is known (the file is then accepted as is, state ``"unknown"``).
    ``size`` is the expected size in bytes: shown in tables and used as the progress total
    when a server sends no length; it is informational and never used to reject a file.
    ``reference`` says where the source and checksum were taken from.
    """

    name: str
    source: Source
    filename: str
    sha256: str | None = None
    size: int | None = None
    description: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        if self.source.kind not in ("gdrive", "url", "local"):
            raise ValueError(f"{self.name}: unknown source kind {self.source.kind!r}")
        if self.sha256 is not None and not _HEX.match(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 8 to 64 lowercase hex digits")
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"{self.name}: filename must be a bare file name")


#: The known weight files, by name. Plain data: add entries with :func:`register`.
REGISTRY: dict[str, WeightSpec] = {
    "tsam-official": WeightSpec(
        name="tsam-official",
        source=Source(
            kind="gdrive",
            ref="17PN5aB34M-TkGP5jwCrcQRo76TNbfMu-",
            page="https://github.com/MaureenZOU/TSAM#update",
        ),
        filename="tsam_official.pth",
        # The authors publish no checksum; the file is accepted as is (state "unknown").
        sha256=None,
        size=None,
        description="Official TSAM checkpoint (Zou et al., CVPR 2021)",
        reference="'Checkpoint' link in the README of github.com/MaureenZOU/TSAM",
    ),
    "i3d-rgb-imagenet": WeightSpec(
        name="i3d-rgb-imagenet",
        source=Source(
            kind="url",
            ref="https://github.com/sczhou/ProPainter/releases/download/v0.1.0/i3d_rgb_imagenet.pt",
            page="https://github.com/sczhou/ProPainter/releases/tag/v0.1.0",
        ),
        filename="i3d_rgb_imagenet.pt",
        # No checksum is published by ProPainter / E2FGVI. A third-party copy
        # (huggingface.co/yeates/DMT-VideoInpainting, release_model/i3d_rgb_imagenet.pt) lists
        # sha256 2609088c2e8c868187c9921c50bc225329a9057ed75e76120e0b4a397a2c7538 and 50883138
        # bytes; that is not confirmed against the release asset, so it is not enforced here.
        sha256=None,
        size=50883138,
        description="I3D RGB (ImageNet+Kinetics), for the VFID metric",
        reference=(
            "ProPainter README (weights from Releases v0.1.0, i3d_rgb_imagenet.pt 'for evaluating"
            " VFID metric'); the same file is listed in E2FGVI's release_model/README.md"
        ),
    ),
    "vgg16-imagenet": WeightSpec(
        name="vgg16-imagenet",
        source=Source(
            kind="url",
            ref="https://download.pytorch.org/models/vgg16-397923af.pth",
            page="https://pytorch.org/vision/stable/models/generated/torchvision.models.vgg16.html",
        ),
        filename="vgg16-397923af.pth",
        # torchvision names its files <name>-<first 8 hex digits of the sha256>.pth
        # (397923af); the full digest below starts with that prefix.
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        size=553433881,
        description="VGG-16 ImageNet (torchvision), for perceptual losses",
        reference="torchvision VGG16_Weights.IMAGENET1K_V1",
    ),
    "alexnet-imagenet": WeightSpec(
        name="alexnet-imagenet",
        source=Source(
            kind="url",
            ref="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            page="https://pytorch.org/vision/stable/models/generated/torchvision.models.alexnet.html",
        ),
        filename="alexnet-owt-7be5be79.pth",
        # torchvision names its files <name>-<first 8 hex digits of the sha256>.pth and checks
        # only that prefix (torch.hub check_hash); the full digest is not published, so the
        # prefix is what is enforced. About 233 MB (torchvision lists _file_size 233.087 MB).
        sha256="7be5be79",
        size=None,
        description="AlexNet ImageNet (torchvision), backbone of the LPIPS metric",
        reference="torchvision AlexNet_Weights.IMAGENET1K_V1 (torchvision/models/alexnet.py)",
    ),
    "lpips-alex-v0.1": WeightSpec(
        name="lpips-alex-v0.1",
        source=Source(
            kind="url",
            ref="https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth",
            page="https://github.com/richzhang/PerceptualSimilarity",
        ),
        filename="lpips_alex_v0.1.pth",
        # sha256 and size of lpips/weights/v0.1/alex.pth as committed in
        # richzhang/PerceptualSimilarity (git blob 1df9dfe6, unchanged since commit c33f89e9,
        # 2020-09-05, "refactor into lpips directory"), read from the repository's git objects.
        sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        size=6009,
        description="LPIPS v0.1 linear layers for AlexNet (lin0..lin4), for the LPIPS metric",
        reference="richzhang/PerceptualSimilarity lpips/weights/v0.1/alex.pth (the lpips package's net='alex')",
    ),
    "tsam-compact": WeightSpec(
        name="tsam-compact",
        source=Source(kind="local", ref="tsam-compact.safetensors"),
        filename="tsam-compact.safetensors",
        sha256="2ddfff7137050adbf6db32ec101517d593d5eac8aff0262b7b9c46112221d680",
        size=2393304,
        description="tsam compact generator (shipped in the package)",
        reference="tsam_cli/shipped/README.md",
    ),
}


def register(spec: WeightSpec, *, replace: bool = False) -> WeightSpec:
    """Add ``spec`` to :data:`REGISTRY` (e.g. a shipped ``tsam-compact`` ``local`` entry).

    Raises ``ValueError`` if the name is taken, unless ``replace`` is true.
    """
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"weights {spec.name!r} are already registered")
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name_or_spec: str | WeightSpec) -> WeightSpec:
    """The registry entry for a name (a :class:`WeightSpec` is passed through)."""
    if isinstance(name_or_spec, WeightSpec):
        return name_or_spec
    spec = REGISTRY.get(name_or_spec)
    if spec is None:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise WeightsError(f"unknown weights {name_or_spec!r}: known weights are {known}")
    return spec


# --------------------------------------------------------------------------------------
# Where files live, and checksums
# --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The folder downloaded weights go to (not created here)."""
    home = os.environ.get(ENV_HOME, "").strip()
    if home:
        return Path(home).expanduser() / "weights"
    import platformdirs  # light, but only needed here

    return Path(platformdirs.user_cache_dir("tsam", appauthor=False)) / "weights"


def cache_problem() -> str | None:
    """Why the cache folder cannot be used, as one line naming the fix; ``None`` when it can
    (a folder that does not exist yet is fine: it is created on the first download)."""
    home = os.environ.get(ENV_HOME, "").strip()
    if home:
        path = Path(home).expanduser()
        if os.path.lexists(path) and not os.path.isdir(path):
            what = "a file" if os.path.isfile(path) else "not a folder"
            return f"{ENV_HOME}={home} is {what}: set it to a folder"
    folder = cache_dir()
    if os.path.lexists(folder) and not os.path.isdir(folder):
        return f"the weights cache {folder} is not a folder: move it away, or set {ENV_HOME} to a folder"
    if os.path.isdir(folder) and not os.access(folder, os.R_OK | os.X_OK):
        return f"the weights cache {folder} cannot be read (permission denied): fix its permissions, or set {ENV_HOME} to another folder"
    return None


def checked_cache_dir() -> Path:
    """:func:`cache_dir`, or :class:`WeightsError` (one line) when it cannot be used."""
    problem = cache_problem()
    if problem is not None:
        raise WeightsError(problem)
    return cache_dir()


def local_dir() -> Path:
    """The folder of weights shipped with tsam (``source.kind == "local"``)."""
    return LOCAL_WEIGHTS_DIR


def target_path(name_or_spec: str | WeightSpec) -> Path:
    """Where the file of an entry is (or will be once downloaded)."""
    spec = get_spec(name_or_spec)
    if spec.source.kind == "local":
        return local_dir() / spec.source.ref
    return cache_dir() / spec.filename


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def sha256sum(path: str | Path, chunk_size: int = _CHUNK) -> str:
    """SHA-256 hex digest of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_size)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def _digest_matches(digest: str, expected: str) -> bool:
    return digest.lower().startswith(expected.lower())


def check(path: str | Path, name_or_spec: str | WeightSpec) -> ChecksumState:
    """Checksum state of ``path`` for an entry: ok / mismatch / unknown (no sha256) / missing
    (also for a folder or a device). Raises WeightsError when the file cannot be read."""
    spec = get_spec(name_or_spec)
    path = Path(path)
    if not os.path.isfile(path):  # os.path: False (not an exception) in an unreadable folder
        return "missing"
    if spec.sha256 is None:
        return "unknown"
    try:
        digest = sha256sum(path)
    except OSError as err:
        raise WeightsError(f"cannot read {path} ({_one_line(err.strerror or err)}): fix its permissions or move it away") from None
    return "ok" if _digest_matches(digest, spec.sha256) else "mismatch"


def manual_hint(name_or_spec: str | WeightSpec) -> str:
    """One sentence telling a person where to get the file and where to put it."""
    spec = get_spec(name_or_spec)
    dest = target_path(spec)
    if spec.source.kind == "local":
        return f"it ships with tsam as {dest}: reinstall tsam or restore that file"
    return f"download it by hand from {spec.source.link} and save it as {dest}"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying (dropped connection, 5xx, short body)."""


class _Permanent(Exception):
    """A failure retrying will not fix (4xx, connection refused, no DNS, TLS)."""


def _backoff(attempt: int) -> float:
    return min(_BACKOFF_BASE_S * (2**attempt), _BACKOFF_MAX_S)


def _classify_oserror(err: BaseException) -> Exception:
    """Map a low-level network error to _Transient or _Permanent."""
    import http.client
    import socket
    import ssl
    import urllib.error

    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, (ConnectionRefusedError, socket.gaierror, ssl.SSLCertVerificationError)):
        return _Permanent(_one_line(reason))
    if isinstance(reason, ssl.SSLError):  # e.g. TLS stream cut short
        return _Transient(_one_line(reason))
    if isinstance(reason, (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException)):
        return _Transient(_one_line(reason) or type(reason).__name__)
    # anything else (ENETUNREACH, EHOSTUNREACH, proxy trouble...): retrying will not help
    return _Permanent(_one_line(reason) or type(reason).__name__)


def _build_request(url: str, offset: int) -> urllib.request.Request:
    """A GET for ``url`` with our User-Agent; from byte ``offset`` on (``Range``) when non-zero."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": f"tsam/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return request


def _http_error(code: int, part: Path, offset: int) -> Exception:
    """_Transient or _Permanent for an HTTP error status. A 416 to a resumed request means our
    partial file does not fit the server's copy: it is deleted so the next attempt starts over."""
    if code == 416 and offset:
        part.unlink(missing_ok=True)
        return _Transient("server refused to resume the partial download")
    if code >= 500 or code in (408, 429):
        return _Transient(f"server answered HTTP {code}")
    return _Permanent(f"server answered HTTP {code}")


def _open_url(request: urllib.request.Request, part: Path, offset: int) -> http.client.HTTPResponse:
    """Send ``request``; network and HTTP errors become _Transient / _Permanent."""
    import http.client
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        code = err.code
        err.close()
        raise _http_error(code, part, offset) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _classify_oserror(err) from None


def _resume_start(response: http.client.HTTPResponse, offset: int) -> int:
    """Where the body of ``response`` starts in the file: ``offset`` when the server honoured
    our Range from exactly there (206 + matching Content-Range), else 0 (the whole file)."""
    if offset and response.status == 206:
        match = re.match(r"bytes\s+(\d+)-", response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            return offset
    return 0


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The body length announced by ``response``, or None when absent or not a number."""
    length_header = response.headers.get("Content-Length", "")
    return int(length_header) if length_header.isdigit() else None


def _read_block(response: http.client.HTTPResponse) -> bytes:
    """The next chunk of the body (b"" at its end); network errors become _Transient / _Permanent."""
    import http.client

    try:
        return response.read(_CHUNK)
    except (OSError, http.client.HTTPException) as err:
        raise _classify_oserror(err) from None


def _open_part(part: Path, append: bool) -> int:
    """A descriptor on ``part`` for writing: appended to, or emptied. ``O_NOFOLLOW``: a link put
    there is refused, never followed into someone else's file."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (os.O_APPEND if append else os.O_TRUNC)
    return os.open(part, flags, 0o666)  # the umask applies: the finished file gets the usual mode


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _stream_to_part(
    response: http.client.HTTPResponse, part: Path, start: int, total: int | None,
    progress: ProgressCallback | None,
) -> int:
    """Write the body of ``response`` to ``part``: appended when ``start`` is non-zero, else
    over it (the server sent the whole file). Reports ``progress(done, total)`` before the
    first chunk and after each one. Returns the size of ``part`` when the body ends.

    A network failure keeps ``part`` for a resume; a failure to write it (full disk, quota,
    read-only folder) deletes it: it only takes space, and the error says what to fix."""
    try:
        fd = _open_part(part, append=bool(start))
    except OSError as err:
        raise WeightsError(_write_error(part, err)) from None
    done = start
    try:
        try:
            if progress is not None:
                progress(done, total)
            while block := _read_block(response):
                _write_all(fd, block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        finally:
            os.close(fd)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise WeightsError(_write_error(part, err)) from None
    return done


def _fetch_url_once(url: str, part: Path, progress: ProgressCallback | None, size_hint: int | None) -> None:
    """One HTTP attempt: append to ``part`` from its current size (Range) or start over."""
    offset = os.stat(part).st_size if os.path.isfile(part) else 0
    response = _open_url(_build_request(url, offset), part, offset)
    with response:
        start = _resume_start(response, offset)
        length = _content_length(response)
        total = start + length if length is not None else size_hint
        done = _stream_to_part(response, part, start, total, progress)
    if length is not None and done - start < length:
        raise _Transient(f"connection closed after {done} of {start + length} bytes")


def _write_error(path: Path, err: OSError) -> str:
    """One line: which file could not be written, why, and the fix (free space, another TSAM_HOME)."""
    return f"cannot write {path}: {_cause(err)}"


def _fetch_url(spec: WeightSpec, part: Path, progress: ProgressCallback | None, retries: int) -> None:
    attempt = 0
    while True:
        try:
            _fetch_url_once(spec.source.ref, part, progress, spec.size)
            return
        except _Permanent as err:
            raise WeightsError(_offline_message(spec, str(err))) from None
        except _Transient as err:
            if attempt >= retries:
                reason = f"{err} (gave up after {attempt + 1} attempts)"
                raise WeightsError(_offline_message(spec, reason)) from None
            time.sleep(_backoff(attempt))
            attempt += 1


def _fetch_gdrive(spec: WeightSpec, part: Path, progress: ProgressCallback | None, quiet: bool) -> None:
    try:
        import gdown  # lazy: pulls in requests, bs4
    except ImportError:
        raise WeightsError(_offline_message(spec, "the gdown package is not installed")) from None
    part.unlink(missing_ok=True)  # gdown cannot resume our partial files
    kwargs: dict[str, object] = {"id": spec.source.ref, "output": str(part), "quiet": quiet or progress is not None}
    if progress is not None and _accepts_keyword(gdown.download, "progress"):
        kwargs["progress"] = progress
    try:
        result = gdown.download(**kwargs)
    except Exception as err:  # gdown raises many kinds (its own, requests', OSError)
        part.unlink(missing_ok=True)
        reason = _one_line(err) or type(err).__name__
        raise WeightsError(_offline_message(spec, f"Google Drive download failed: {reason}")) from None
    if result is None or not os.path.isfile(part) or os.stat(part).st_size == 0:
        part.unlink(missing_ok=True)
        raise WeightsError(_offline_message(spec, "Google Drive download failed"))


def _accepts_keyword(func: Callable[..., object], name: str) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _offline_message(spec: WeightSpec, reason: str) -> str:
    reason = _one_line(reason)
    if len(reason) > 160:  # gdown/requests errors can be paragraphs long
        reason = reason[:157] + "..."
    return f"could not download weights {spec.name!r} ({reason}): {manual_hint(spec)}"


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _verify_part(spec: WeightSpec, part: Path) -> None:
    """Check a finished download; on failure delete it and raise WeightsError."""
    if _looks_like_html(part):
        part.unlink(missing_ok=True)
        raise WeightsError(
            f"the download of weights {spec.name!r} is a web page, not a weight file "
            f"(quota exceeded or sign-in needed?): {manual_hint(spec)}"
        )
    if spec.sha256 is not None:
        digest = sha256sum(part)
        if not _digest_matches(digest, spec.sha256):
            part.unlink(missing_ok=True)
            raise WeightsError(
                f"checksum mismatch for weights {spec.name!r} (sha256 {digest[:16]}..., expected "
                f"{spec.sha256[:16]}...), the download was deleted: retry with "
                f"`tsam weights download {spec.name} --force`, or {manual_hint(spec)}"
            )


def _local_file(spec: WeightSpec) -> Path:
    path = target_path(spec)
    state = check(path, spec)
    if state == "missing":
        raise WeightsError(f"weights {spec.name!r} are missing: {manual_hint(spec)}")
    if state == "mismatch":
        raise WeightsError(f"weights file {path} is corrupt (sha256 mismatch): {manual_hint(spec)}")
    return path


def download(
    name_or_spec: str | WeightSpec,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
    retries: int = 3,
    quiet: bool = True,
) -> Path:
    """Make sure the weights of an entry are in the cache and return their path.

    A cached file whose checksum is fine (or unknown) is returned at once, without network.
    A file already in the cache is never deleted: one with a wrong checksum is refused
    (WeightsError naming it), unless ``force``, which downloads again whatever the cache holds;
    the cached file is then replaced only once the new download is verified. Downloads go to
    ``<file>.part`` first (tsam's own file, resumed when possible).
    ``progress(done, total)`` is called as bytes arrive (``total`` may be ``None``).
    ``retries`` is how many times a transient failure (dropped connection, 5xx, body cut
    short) is retried, resuming from the partial file where the server allows it.
    ``quiet=False`` lets gdown print its own progress when no callback is given.

    ``local`` entries are never downloaded: their shipped file is checked and returned.
    Raises :class:`~tsam_cli.errors.WeightsError` on any failure.
    """
    spec = get_spec(name_or_spec)
    if spec.source.kind == "local":
        return _local_file(spec)
    return _fetch_into_cache(spec, force=force, progress=progress, retries=retries, quiet=quiet)[0]


def _fetch_into_cache(
    spec: WeightSpec, *, force: bool = False, progress: ProgressCallback | None = None,
    retries: int = 3, quiet: bool = True,
) -> tuple[Path, tuple[int, int] | None]:
    """:func:`download` for a ``url``/``gdrive`` entry. Returns ``(path, fresh)``: ``fresh`` is
    the (device, inode) of the file this call put in place, ``None`` when the cache already held
    a usable one. Only a ``fresh`` file is tsam's to delete later (a download that will not load)."""
    checked_cache_dir()
    dest = target_path(spec)
    state = _cached_state(dest, spec, force)
    if state in ("ok", "unknown") and not force:
        return dest, None
    if state == "mismatch" and not force:
        raise WeightsError(_mismatch_message(dest, spec))
    _make_cache_folder(dest.parent)
    part = _part_path(dest)
    _check_part(part)
    if force:
        part.unlink(missing_ok=True)
    elif spec.sha256 is not None and check(part, spec) == "ok":
        return dest, _install(part, dest, spec, replace=False)  # an earlier run finished the download, not the rename
    if spec.source.kind == "gdrive":
        _fetch_gdrive(spec, part, progress, quiet)
    else:
        _fetch_url(spec, part, progress, max(0, retries))
    _verify_part(spec, part)
    return dest, _install(part, dest, spec, replace=force)


def _cached_state(dest: Path, spec: WeightSpec, force: bool) -> ChecksumState:
    """The checksum state of the cached file; WeightsError for what tsam must not touch: a
    folder, a device or FIFO, or (when it would be replaced) a symbolic link."""
    if not os.path.lexists(dest):
        return "missing"
    if not os.path.isfile(dest) and not os.path.islink(dest):
        raise WeightsError(f"{dest} exists and is not a file: move it away and try again")
    state = check(dest, spec)
    if os.path.islink(dest) and (force or state not in ("ok", "unknown")):
        raise WeightsError(
            f"{dest} is a symbolic link, which tsam does not replace: remove the link, or point it at a good copy"
        )
    return state


def _mismatch_message(dest: Path, spec: WeightSpec) -> str:
    """The refusal for a cached file with a wrong checksum: it may be the user's own copy."""
    return (
        f"weights file {dest} does not match {spec.name!r} (sha256 mismatch); tsam did not delete it: move it "
        f"away, or run `tsam weights download {spec.name} --force` to replace it once a new download is verified"
    )


def _make_cache_folder(folder: Path) -> None:
    """Create the cache folder (and TSAM_HOME); WeightsError naming the cause when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightsError(f"cannot create the weights folder {folder}: {_cause(err)}") from None


def _cause(err: OSError) -> str:
    """Why a write failed (full disk, read-only, permission...) and the fix, for messages."""
    from tsam_cli.media.output import describe_os_error  # lazy: pulls in the media layer

    return describe_os_error(err, ENV_HOME)


def _check_part(part: Path) -> None:
    """``<file>.part`` is tsam's partial download; anything else with that name is left alone."""
    if os.path.lexists(part) and (os.path.islink(part) or not os.path.isfile(part)):
        raise WeightsError(
            f"{part} is not a regular file (tsam keeps unfinished downloads under that name): "
            "move it away and try again"
        )


def _install(part: Path, dest: Path, spec: WeightSpec, *, replace: bool) -> tuple[int, int]:
    """Rename the verified ``part`` to ``dest`` (mode: the umask's usual one). Without ``replace``
    a file that appeared at ``dest`` meanwhile is kept: the new name is made with ``link``,
    which never replaces. Returns the (device, inode) of the installed file."""
    from tsam_cli.media.output import current_umask  # lazy: pulls in the media layer

    try:
        os.chmod(part, 0o666 & ~current_umask())  # gdown writes private files
        if replace:
            os.replace(part, dest)
        else:
            _link_no_clobber(part, dest, spec)
        st = os.stat(dest)
    except OSError as err:
        raise WeightsError(f"cannot write {dest}: {_cause(err)}") from None
    return st.st_dev, st.st_ino


def _link_no_clobber(part: Path, dest: Path, spec: WeightSpec) -> None:
    """Give ``part`` the name ``dest`` unless something is there by now (then WeightsError)."""
    try:
        os.link(part, dest)
    except FileExistsError:
        pass
    except OSError:  # no hard links on this filesystem (FAT, some shares): rename, after one last look
        if not os.path.lexists(dest):
            os.replace(part, dest)
            return
    else:
        part.unlink()
        return
    part.unlink(missing_ok=True)  # a file appeared at dest during the download: it wins, untouched
    raise WeightsError(
        f"{dest} appeared while tsam was downloading it and was kept: run "
        f"`tsam weights download {spec.name}` again to check it"
    )


_download = download  # resolve() has a parameter called `download`


# --------------------------------------------------------------------------------------
# Resolve and status
# --------------------------------------------------------------------------------------


def resolve(
    name_or_path: str | Path,
    *,
    download: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """A path to a usable weight file, from a file path or a registry name.

    * an existing file path is returned as is (no checks: the user chose it);
    * a registry name gives its cached (or shipped) file once its checksum is verified;
      a corrupt file is reported, never returned, and never deleted. A file not yet in the
      cache is an error, unless ``download`` is true, in which case it is fetched (a corrupt
      cached file is refused as by :func:`download` without ``force``).
    """
    candidate = Path(name_or_path).expanduser()
    if os.path.isfile(candidate):
        return candidate
    name = str(name_or_path)
    if name not in REGISTRY:
        if os.path.lexists(candidate):
            raise WeightsError(f"weights path {candidate} is not a file: give a weight file")
        if isinstance(name_or_path, Path) or os.sep in name or "/" in name or candidate.suffix:
            raise WeightsError(f"weights file {candidate} does not exist: check the path")
        get_spec(name)  # raises the "unknown weights" error listing the known names
    spec = REGISTRY[name]
    if download:
        return _download(spec, progress=progress)
    if spec.source.kind == "local":
        return _local_file(spec)
    checked_cache_dir()
    path = target_path(spec)
    state = _cached_state(path, spec, force=False)
    if state == "missing":
        raise WeightsError(
            f"weights {spec.name!r} are not downloaded yet: run `tsam weights download {spec.name}`, "
            f"or {manual_hint(spec)}"
        )
    if state == "mismatch":
        raise WeightsError(
            f"weights file {path} is corrupt (sha256 mismatch): run "
            f"`tsam weights download {spec.name} --force`, or {manual_hint(spec)}"
        )
    return path


def status(name: str | WeightSpec) -> dict[str, object]:
    """What the cache holds for an entry.

    Keys: ``name``, ``path`` (str), ``cached`` (bool), ``size_on_disk`` (bytes or None),
    ``checksum`` (``"ok"`` / ``"mismatch"`` / ``"unknown"`` (no sha256 known) / ``"missing"`` /
    ``"not a file"`` (a folder or device there) / ``"unreadable"``), ``partial`` (bytes of an
    unfinished download, or None), ``source`` (kind), ``link``, ``expected_size`` and ``description``.
    """
    spec = get_spec(name)
    path = target_path(spec)
    part = _part_path(path)
    return {
        "name": spec.name,
        "path": str(path),
        "cached": os.path.isfile(path),
        "size_on_disk": _size(path),
        "checksum": _listed_state(path, spec),
        "partial": _size(part) if spec.source.kind != "local" else None,
        "source": spec.source.kind,
        "link": spec.source.link,
        "expected_size": spec.size,
        "description": spec.description,
    }


def _size(path: Path) -> int | None:
    """Size of a regular file, None for anything else (missing, folder, unreadable)."""
    try:
        return os.stat(path).st_size if os.path.isfile(path) else None
    except OSError:
        return None


def _listed_state(path: Path, spec: WeightSpec) -> str:
    """:func:`check` for the table: never raises (one bad file must not hide the others)."""
    if os.path.lexists(path) and not os.path.isfile(path):
        return "missing" if os.path.islink(path) else "not a file"
    try:
        return check(path, spec)
    except WeightsError:
        return "unreadable"


# --------------------------------------------------------------------------------------
# `--model auto`: which filler a run uses, and the official weights converted once
# --------------------------------------------------------------------------------------

#: The registry entry behind ``--model full`` (and ``--model auto`` on a CUDA GPU).
OFFICIAL = "tsam-official"
#: Metadata key of a converted file: size and mtime of the ``.pth`` it was made from, so a
#: replaced ``.pth`` (``tsam weights download --force``) is converted again.
SOURCE_STAMP_KEY = "tsam_source_stamp"



def converted_path(name_or_spec: str | WeightSpec = OFFICIAL) -> Path:
    """Where the safetensors conversion of a downloaded official checkpoint is cached."""
    spec = get_spec(name_or_spec)
    return cache_dir() / (Path(spec.filename).stem + ".safetensors")


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


@contextmanager
def _cache_lock(spec: WeightSpec) -> Iterator[None]:
    """Hold ``flock`` on ``<cache>/.<name>.lock``: parallel runs (torchrun, batch shards) wait
    for one download and one conversion instead of doing them side by side; the lock file is
    removed when released (:func:`tsam_cli.media.output.take_lock`). Without a writable cache
    (or off POSIX) there is no lock; the atomic renames still keep files whole, and the write
    that needs the folder reports the problem."""
    from tsam_cli.media.output import current_umask, drop_lock, take_lock

    path = cache_dir() / f".{spec.name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = take_lock(path, current_umask(), wait=True)
    except (ImportError, OSError):
        fd = None
    try:
        yield
    finally:
        if fd is not None:
            drop_lock(path, fd)


def _conversion_is_current(dst: Path, pth: Path) -> bool:
    """Whether ``dst`` is a readable conversion of ``pth`` (or of a ``.pth`` no longer kept).
    Reads the safetensors header only: nothing is unpickled."""
    if not os.path.isfile(dst):
        return False
    from tsam_cli.model.tsam_format import read_safetensors_header

    try:
        meta, _ = read_safetensors_header(dst)
    except WeightsError:
        return False  # damaged: converted again from the .pth (or reported when there is none)
    return not os.path.isfile(pth) or meta.get(SOURCE_STAMP_KEY) == _stamp(pth)


def _convert(pth: Path, dst: Path, fresh: tuple[int, int] | None, reporter) -> Path:
    """Official ``.pth`` -> safetensors ``dst`` (restricted unpickler; atomic write); returns
    ``dst``. ``fresh`` is the (device, inode) of the ``.pth`` when this run downloaded it: only
    that very file, if it cannot be read, is deleted (so the next run fetches it again); a file
    the user put there is kept. When ``dst`` cannot be written, or is a file tsam did not write,
    warns and returns ``pth`` (loaded directly this time)."""
    from tsam_cli.media.output import file_identity
    from tsam_cli.model.official import load_official_generator
    from tsam_cli.model.tsam_format import save_generator

    reporter.info(f"converting {pth.name} to {dst.name} (once; later runs load it directly)")
    with reporter.timed("weights convert"):
        try:
            model = load_official_generator(pth)
        except WeightsError as err:
            if fresh is not None and file_identity(pth) == fresh:
                pth.unlink(missing_ok=True)
                raise WeightsError(f"{err} (the download was deleted; the next run downloads it again)") from None
            raise WeightsError(f"{err} (delete or replace {pth}: {manual_hint(OFFICIAL)})") from None
        if not _converted_by_tsam(dst):
            reporter.warn(f"{dst} was not written by tsam and is kept: loading {pth.name} itself this time "
                          "(slower); move it away to let tsam convert once")
            return pth
        try:
            return save_generator(model, dst, {"tsam_source": "official:" + pth.name, SOURCE_STAMP_KEY: _stamp(pth)})
        except WeightsError as err:
            reporter.warn(f"{err}: loading {pth.name} itself this time (slower)")
            return pth


def _converted_by_tsam(dst: Path) -> bool:
    """Whether tsam may write ``dst``: nothing there, or a conversion tsam made (it carries the
    source stamp). A user's own file under that name, or one tsam cannot read, is never replaced."""
    if not os.path.lexists(dst):
        return True
    if os.path.islink(dst) or not os.path.isfile(dst):
        return False
    from tsam_cli.model.tsam_format import read_safetensors_header

    try:
        meta, _ = read_safetensors_header(dst)
    except WeightsError:
        return False
    return SOURCE_STAMP_KEY in meta


def _byte_progress(reporter, stage: str = "weights MB") -> ProgressCallback:
    """A download progress callback that drives ``reporter``'s progress bars, in MB."""
    state = {"started": False, "shown": 0}

    def update(done: int, total: int | None) -> None:
        if not state["started"]:
            reporter.start(stage, None if total is None else max(1, total // 1_000_000))
            state["started"] = True
        mb = done // 1_000_000
        if mb > state["shown"]:
            reporter.advance(stage, mb - state["shown"])
            state["shown"] = mb

    return update


def official_weights(*, download: bool = False, reporter=None) -> Path:
    """The official TSAM generator as a safetensors file in the cache, converted once.

    A conversion that matches the cached ``.pth`` (or whose ``.pth`` was removed) is returned
    after reading its header: the ``.pth`` is never unpickled again. Otherwise the ``.pth`` is
    taken from the cache, or downloaded when ``download`` is true (progress shown through
    ``reporter``), read with the restricted unpickler and saved as safetensors beside it.
    The ``.pth`` is kept (it also holds the discriminator). Raises
    :class:`~tsam_cli.errors.WeightsError` (missing, offline, corrupt, unwritable).
    """
    from tsam_cli.ui import NullReporter

    rep = reporter or NullReporter()
    spec = get_spec(OFFICIAL)
    pth, dst = target_path(spec), converted_path(spec)
    if _conversion_is_current(dst, pth):  # the usual case: no lock, nothing written
        return dst
    with _cache_lock(spec):
        if _conversion_is_current(dst, pth):  # another run converted it while this one waited
            return dst
        fresh = None
        if download and check(pth, spec) not in ("ok", "unknown"):
            rep.info(f"downloading the official TSAM weights (first use) from {spec.source.link} to {pth}")
            pth, fresh = _fetch_into_cache(spec, progress=_byte_progress(rep))
        else:
            pth = resolve(spec.name)  # not downloaded: the usual "run tsam weights download" error
        return _convert(pth, dst, fresh, rep)
