"""A drop folder on a laptop: DIR/faces and DIR/inbox mirrored into the bucket, results back."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("swapdrop.local.watch")
MIRRORED = ("faces", "inbox")


class FolderMirror:
    def __init__(self, root: Path, s3: Any, bucket: str, interval: float = 1.0) -> None:
        self.root = root
        self._s3 = s3
        self._bucket = bucket
        self._interval = interval
        self._uploaded: dict[Path, tuple[float, int]] = {}
        self._downloaded: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)
        for name in (*MIRRORED, "results"):
            (root / name).mkdir(parents=True, exist_ok=True)

    def start(self) -> FolderMirror:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sync_once(self) -> tuple[int, int]:
        """Upload new or changed files, download new results; how many of each."""
        return self._upload_changes(), self._download_results()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sync_once()
            except Exception:
                log.exception("folder sync failed")

    def _upload_changes(self) -> int:
        count = 0
        for top in MIRRORED:
            for path in sorted((self.root / top).rglob("*")):
                if not path.is_file() or path.name.startswith("."):
                    continue
                stat = path.stat()
                signature = (stat.st_mtime, stat.st_size)
                if self._uploaded.get(path) == signature:
                    continue
                key = path.relative_to(self.root).as_posix()
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=path.read_bytes())
                self._uploaded[path] = signature
                count += 1
                log.info("uploaded %s", key)
        return count

    def _download_results(self) -> int:
        count = 0
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix="results/"):
            for obj in page.get("Contents", []):
                key, etag = obj["Key"], obj["ETag"]
                if self._downloaded.get(key) == etag:
                    continue
                target = self.root / key
                target.parent.mkdir(parents=True, exist_ok=True)
                body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
                target.write_bytes(body)
                self._downloaded[key] = etag
                count += 1
                log.info("result %s", key)
        return count
