"""Trim the built CommonLayer to what Swapdrop's functions import (run by the Makefile after pip, before compileall).

Each cut is something no function ever loads, measured in bench_cold_start.py --large (README "Cold start and
layer"):
- botocore's and boto3's data for services Swapdrop never calls (botocore ships ~450 services, 23 MB);
  SERVICES is every client the package builds, and a test checks that against the code;
- Pillow's extensions for what image_check never does (fonts, colour management, AVIF, Tk, ImageMath and
  ImageMorph) and the bundled libraries only they need;
- Powertools' Swagger UI assets (the jobs API does not serve Swagger UI), type stubs, and dist-info files other
  than METADATA (kept: the build test reads the versions from them);
- console scripts (bin/) and any __pycache__ (compileall writes the layer's own afterwards).

    python slim_layer.py <layer>/python
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SERVICES = frozenset({"dynamodb", "events", "s3", "secretsmanager", "sqs", "stepfunctions"})
"""Every AWS service a Swapdrop function builds a client for (wiring.py, Powertools' SecretsProvider and
idempotency store): their botocore models stay, the others go (the shared files in data/ stay)."""
PIL_UNUSED = ("_avif", "_imagingcms", "_imagingft", "_imagingmath", "_imagingmorph", "_imagingtk")
"""Pillow extensions for AVIF, ImageCms, ImageFont, ImageMath, ImageMorph and ImageTk: image_check opens
JPEG, PNG and WebP only (core _imaging and _webp stay)."""
PIL_LIBS_UNUSED = (
    "libavif-",
    "libbrotlicommon-",
    "libbrotlidec-",
    "libfreetype-",
    "libharfbuzz-",
    "liblcms2-",
    "libpng16-",
)
"""Libraries in pillow.libs needed only by PIL_UNUSED (libpng16 and brotli only by freetype; Pillow's own PNG
codec uses zlib); a build test checks that every library a remaining extension needs is still there."""
KEPT_DIST_INFO = frozenset({"METADATA"})


def slim(python_dir: Path) -> int:
    """Remove what no function imports; the bytes removed."""
    before = size(python_dir)
    for service in (python_dir / "botocore" / "data").iterdir():
        if service.is_dir() and service.name not in SERVICES:
            shutil.rmtree(service)
    for service in (python_dir / "boto3" / "data").iterdir():
        if service.is_dir() and service.name not in SERVICES:
            shutil.rmtree(service)
    for extension in (python_dir / "PIL").glob("*.so"):
        if extension.name.split(".")[0] in PIL_UNUSED:
            extension.unlink()
    for library in (python_dir / "pillow.libs").glob("*"):
        if library.name.startswith(PIL_LIBS_UNUSED):
            library.unlink()
    for pattern in ("*.js", "*.css"):
        for asset in (python_dir / "aws_lambda_powertools" / "event_handler" / "openapi" / "swagger_ui").glob(pattern):
            asset.unlink()
    for info in python_dir.glob("*.dist-info"):
        for path in info.rglob("*"):
            if path.is_file() and path.name not in KEPT_DIST_INFO:
                path.unlink()
    for stub in [*python_dir.rglob("*.pyi"), *python_dir.glob("*-stubs")]:
        shutil.rmtree(stub) if stub.is_dir() else stub.unlink()
    for cache in list(python_dir.rglob("__pycache__")):
        shutil.rmtree(cache)
    shutil.rmtree(python_dir / "bin", ignore_errors=True)  # pip's console scripts (jp.py, normalizer)
    (python_dir / "requirements.txt").unlink(missing_ok=True)
    return before - size(python_dir)


def size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


if __name__ == "__main__":
    (target,) = sys.argv[1:]
    removed = slim(Path(target))
    print(f"slim_layer: removed {removed / 1e6:.1f} MB; {size(Path(target)) / 1e6:.1f} MB left in {target}")
