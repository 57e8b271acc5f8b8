"""Fetch a jobs-API URL target (`target.url`) before its swap is sent.

The URL is a caller's, so it gets exactly the result download's rules (result_download:
http/https only, no credentials, no private, link-local or metadata addresses, redirects
checked again, a size cap, a time budget, image content only), with MaxImageBytes as the cap.
A refusal becomes the job's REJECTED reason, which names the URL without its query string or
fragment (they may carry a signature or a token) and without any user:password part.
"""

from __future__ import annotations

from swapdrop.finishing import ResultSource
from swapdrop.layout import printable
from swapdrop.result_download import DownloadedImage, DownloadRefused
from swapdrop.url_rules import shown_url


class TargetFetchRefused(Exception):
    """Why the target URL could not be fetched, for the job's failReason."""


def fetch_target(source: ResultSource, url: str) -> DownloadedImage:
    """The image at `url`, or TargetFetchRefused saying why not (the downloader's words, about a target)."""
    try:
        return source.download(url)
    except DownloadRefused as error:
        # The downloader speaks of "the result"; here the image is the job's target.
        why = printable(str(error).replace("the result", "the target"))
        raise TargetFetchRefused(f"could not fetch the target from {shown_url(url)}: {why}") from None
