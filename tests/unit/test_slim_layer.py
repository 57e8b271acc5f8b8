"""The CommonLayer's trim (layers/common/slim_layer.py) leaves what the functions use, and the cold-start cuts
(Pillow on first use, no Powertools batch utility) leave every path working.

The built layer itself (arm64: it cannot be imported here) is checked in tests/template/test_template_build.py.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import slim_layer

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "common" / "swapdrop"


def _literal_clients() -> set[str]:
    """Every service named in boto3.client("x") / boto3.resource("x") / _client("x") in the package."""
    services = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            name = ast.unparse(node.func)
            if name in ("boto3.client", "boto3.resource", "_client", "boto3.session.Session().client"):
                services.add(node.args[0].value)
    return services


def test_the_trim_keeps_every_service_the_package_calls() -> None:
    used = _literal_clients() | {"secretsmanager", "dynamodb"}  # Powertools' SecretsProvider and idempotency store
    assert {"s3", "sqs", "events", "stepfunctions"} <= used, f"the scan found too little: {sorted(used)}"
    missing = used - slim_layer.SERVICES
    assert not missing, f"slim_layer.SERVICES lacks {sorted(missing)}: the built layer would have no botocore model"


def _fake_layer(root: Path) -> Path:
    python = root / "python"
    files = [
        "botocore/data/s3/2006-03-01/service-2.json.gz",
        "botocore/data/ec2/2016-11-15/service-2.json.gz",
        "botocore/data/endpoints.json",
        "botocore/__init__.py",
        "boto3/data/dynamodb/2012-08-10/resources-1.json",
        "boto3/data/ec2/2016-11-15/resources-1.json",
        "PIL/_imaging.cpython-313-aarch64-linux-gnu.so",
        "PIL/_webp.cpython-313-aarch64-linux-gnu.so",
        "PIL/_imagingft.cpython-313-aarch64-linux-gnu.so",
        "PIL/_avif.cpython-313-aarch64-linux-gnu.so",
        "PIL/Image.py",
        "pillow.libs/libjpeg-45fb3b13.so.62.4.0",
        "pillow.libs/libfreetype-987c360c.so.6.20.6",
        "pillow.libs/libpng16-7c8e2a9d.so.16.56.0",
        "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui-bundle.min.js",
        "aws_lambda_powertools/event_handler/openapi/swagger_ui/html.py",
        "boto3-1.44.5.dist-info/METADATA",
        "boto3-1.44.5.dist-info/RECORD",
        "wrapt-stubs/__init__.pyi",
        "swapdrop/__pycache__/jobs.cpython-313.pyc",
        "swapdrop/jobs.py",
        "bin/jp.py",
    ]
    for name in files:
        (python / name).parent.mkdir(parents=True, exist_ok=True)
        (python / name).write_bytes(b"x" * 100)
    return python


def test_the_trim_removes_only_what_no_function_loads(tmp_path: Path) -> None:
    python = _fake_layer(tmp_path)
    removed = slim_layer.slim(python)
    left = sorted(str(p.relative_to(python)) for p in python.rglob("*") if p.is_file())
    assert left == [
        "PIL/Image.py",
        "PIL/_imaging.cpython-313-aarch64-linux-gnu.so",
        "PIL/_webp.cpython-313-aarch64-linux-gnu.so",
        "aws_lambda_powertools/event_handler/openapi/swagger_ui/html.py",
        "boto3-1.44.5.dist-info/METADATA",
        "boto3/data/dynamodb/2012-08-10/resources-1.json",
        "botocore/__init__.py",
        "botocore/data/endpoints.json",
        "botocore/data/s3/2006-03-01/service-2.json.gz",
        "pillow.libs/libjpeg-45fb3b13.so.62.4.0",
        "swapdrop/jobs.py",
    ]
    assert removed == 1100


SETTINGS = {
    "BUCKET_NAME": "swapdrop-unit",
    "JOBS_TABLE_NAME": "jobs",
    "EVENT_BUS_NAME": "bus",
    "UPSTREAM_BASE_URL": "https://swap.example.com",
    "UPSTREAM_API_KEY_SECRET_ID": "api-key",
    "CALLBACK_TOKEN_SECRET_ID": "callback-token",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
BUILDERS = {"callback": "callback_receiver", "reconcile": "reconciler"}


def _fresh(code: str, function: str = "callback") -> str:
    env = SETTINGS | {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "layers" / "common")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_image_check_needs_none_of_the_trimmed_pillow_extensions(images: SimpleNamespace, tmp_path: Path) -> None:
    """As in the layer: the extensions slim_layer removes cannot be imported, and every format still checks."""
    samples = {name: getattr(images, name) for name in ("jpeg", "png", "webp")}
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    blocked = [f"PIL.{name}" for name in slim_layer.PIL_UNUSED]
    code = f"""
import json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # import raises ImportError, as with the file removed
from swapdrop.image_check import inspect_image
from pathlib import Path
found = {{}}
for name in {sorted(samples)!r}:
    info = inspect_image(Path({str(tmp_path)!r}, name).read_bytes(), name)
    found[name] = [info.format, info.width, info.height]
print(json.dumps(found))
"""
    assert json.loads(_fresh(code)) == {"jpeg": ["JPEG", 32, 24], "png": ["PNG", 24, 16], "webp": ["WEBP", 20, 20]}


@pytest.mark.parametrize("function", ["callback", "reconcile"])
def test_pillow_is_imported_on_first_use_not_at_cold_start(function: str, images: SimpleNamespace) -> None:
    """A callback or reconciler checks an image only when a job succeeds: most cold starts never need Pillow.
    Cold start here is what the first invocation builds before any AWS call (as bench_cold_start.py measures)."""
    code = f"""
import sys, {function}_handler
from swapdrop import wiring
wiring.{BUILDERS[function]}()
cold = "PIL" in sys.modules
from swapdrop.image_check import inspect_image
info = inspect_image(bytes.fromhex({images.png.hex()!r}), "the result")
print(cold, "PIL.Image" in sys.modules, info.format)
"""
    assert _fresh(code, function).split() == ["False", "True", "PNG"]


@pytest.mark.parametrize("function", ["submit", "request", "webhook"])
def test_sqs_functions_do_not_load_powertools_batch_or_event_classes(function: str) -> None:
    code = f"""
import sys, {function}_handler
print(sorted(m for m in sys.modules if m.startswith(("aws_lambda_powertools.utilities.batch",
      "aws_lambda_powertools.utilities.data_classes"))))
"""
    assert _fresh(code, function).strip() == "[]"


def test_the_callback_function_routes_without_powertools_event_handler() -> None:
    """Its one route is matched in callback_handler; the resolver (`app`) is built only when something asks."""
    code = """
import sys, callback_handler
from swapdrop import wiring
wiring.callback_receiver()
cold = any(m.startswith("aws_lambda_powertools.event_handler") for m in sys.modules)
routes = [(r.method, r.path) for r in callback_handler.app._dynamic_routes + callback_handler.app._static_routes]
print(cold, routes)
"""
    assert _fresh(code).strip() == "False [('POST', '/callbacks/<job_id>')]"
