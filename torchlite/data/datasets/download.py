"""Fetching files over HTTP(S) with the standard library: mirrors in turn, md5-checked, atomic.

A download goes to a hidden temporary file beside its destination and is renamed into place
only once complete and verified, so an interrupted or refused download leaves nothing behind.
"""
import hashlib
import os
import tempfile

from ...progress import ProgressBar

__all__ = ["DownloadError", "download_url", "md5sum"]


class DownloadError(OSError):
    """No mirror delivered a complete file with the expected checksum."""


def md5sum(path, chunk_size=1 << 20):
    """The hex md5 digest of a file."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def download_url(urls, path, md5=None, timeout=30.0, progress=True):
    """Download the first of ``urls`` that works to ``path``; returns ``path``.

    Each URL is tried in turn: a network error, an HTTP error, a short body or an md5 that
    differs from ``md5`` moves on to the next one. ``DownloadError`` lists every failure.
    ``progress`` shows a progress bar on stderr.
    """
    import http.client  # imported here, as urllib below: slow imports for `import torchlite`

    if isinstance(urls, str):
        urls = [urls]
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch(url, path, md5, timeout, progress)
            return path
        except (OSError, http.client.HTTPException) as e:
            failures.append(f"  {url}: {e}")
    raise DownloadError(f"could not download {os.path.basename(path)}; tried:\n" + "\n".join(failures))


def _fetch(url, path, md5, timeout, progress):
    import urllib.request

    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length else None
            bar = ProgressBar(total, desc=name, unit="B", disable=not progress)
            digest, size = hashlib.md5(usedforsecurity=False), 0
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
            bar.close()
            out.flush()
            os.fsync(out.fileno())
        if total is not None and size != total:
            raise DownloadError(f"got {size} of {total} bytes")
        if md5 is not None and digest.hexdigest() != md5:
            raise DownloadError(f"md5 mismatch: got {digest.hexdigest()}, expected {md5}; file refused")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
