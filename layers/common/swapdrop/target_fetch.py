"""Fetch a jobs-API URL target (`target.url`) before its swap is sent.

The URL is a caller's, so it gets exactly the result download's rules (result_download:
http/https only, no credentials, no private, link-local or metadata addresses, redirects
checked again, a size cap, a time budget, image content only), with MaxImageBytes as the cap.
A refusal becomes the job's REJECTED reason, which names the URL without its query string or
fragment (they may carry a signature or a token) and without any user:password part.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from swapdrop.finishing import ResultSource
from swapdrop.layout import printable
from swapdrop.result_download import DownloadedImage, DownloadRefused

MAX_SHOWN_URL_CHARS = 200


class TargetFetchRefused(Exception):
    """Why the target URL could not be fetched, for the job's failReason."""


def shown_url(url: str) -> str:
    """scheme://host[:port]/path of `url`, safe for a log line or a person: no query, fragment or userinfo."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(a malformed URL)"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    shown = printable(f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}{parts.path}")
    return shown if len(shown) <= MAX_SHOWN_URL_CHARS else f"{shown[:MAX_SHOWN_URL_CHARS]}…"


def fetch_target(source: ResultSource, url: str) -> DownloadedImage:
    """The image at `url`, or TargetFetchRefused saying why not (the downloader's words, about a target)."""
    try:
        return source.download(url)
    except DownloadRefused as error:
        # The downloader speaks of "the result"; here the image is the job's target.
        why = printable(str(error).replace("the result", "the target"))
        raise TargetFetchRefused(f"could not fetch the target from {shown_url(url)}: {why}") from None
