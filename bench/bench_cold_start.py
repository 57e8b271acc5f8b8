"""Cold start: each handler imported and wired in a fresh process vs the floor, side by side.

The floor is what any Python Lambda talking to the same services pays: `import boto3, requests` and
creating the clients that handler needs. Each handler is imported and its services built (what its
first invocation does before any AWS call) in a fresh interpreter with a Lambda-like environment (the
template's variables with dummy values, AWS_LAMBDA_FUNCTION_NAME, a region, dummy credentials; no
network: clients are created, never called), with tracing on (the X-Ray SDK imported and patching)
and off (POWERTOOLS_TRACE_DISABLED=true). Best of 7, the rounds interleaved so that a busy moment of
a shared machine hits every case alike. The time is the child's CPU time, from before the first import to
the services built (the interpreter's own start is the same for all and left out; see CHILD).

Bytecode: every case runs once untimed first, so its .pyc are cached, as the built layer ships them
(layers/common/Makefile compiles it; SAM's python3.13 build method shipped none, and Lambda's /opt is
read-only: there every cold start compiled every module from source). --large adds that case (callback
without any .pyc) to show what the .pyc save, and the built layer's size.

    python bench/bench_cold_start.py                      # the table
    python bench/bench_cold_start.py --root /tmp/main     # another checkout (e.g. a git worktree of main)
    python bench/bench_cold_start.py --importtime submit  # python -X importtime, the slowest modules
    python bench/bench_cold_start.py --large              # also the built layer's size (sam build)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure, print_table

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 7
TARGET = 1.25
LAYER_LIMIT_MB = 20


@dataclass(frozen=True)
class Handler:
    name: str
    module: str
    build: str
    """What the first invocation builds (wiring's cached services) before its first AWS call."""
    clients: tuple[str, ...]
    """The AWS clients those services hold: the floor creates exactly these."""
    env: tuple[tuple[str, str], ...] = ()


FIVE = ("s3", "dynamodb", "secretsmanager", "events", "sqs")
API_ENV = (
    ("SUBMIT_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/submit"),
    ("IDEMPOTENCY_TABLE_NAME", "swapdrop-idempotency"),
    ("UPLOAD_URL_SECONDS", "900"),
    ("RESULT_URL_SECONDS", "300"),
    ("SWAPDROP_VERSION", "bench"),
)
HANDLERS = (
    Handler(
        "submit",
        "submit_handler",
        "wiring.submitter(); wiring.submit_queue()",
        FIVE,
        (("CALLBACK_BASE_URL", "https://abc.execute-api.us-east-1.amazonaws.com/callbacks"),),
    ),
    Handler("callback", "callback_handler", "wiring.callback_receiver()", FIVE),
    Handler("reconcile", "reconcile_handler", "wiring.reconciler()", FIVE),
    Handler("api", "api_handler", "wiring.api_service()", FIVE, API_ENV),
    Handler("request", "request_handler", "wiring.swap_requests()", FIVE, API_ENV),
    Handler(
        "webhook",
        "webhook_handler",
        "wiring.webhook_deliverer(); wiring.webhook_queue()",
        ("dynamodb", "secretsmanager", "sqs"),
        (
            ("WEBHOOK_SECRET_ID", "swapdrop-webhook-secret"),
            ("WEBHOOK_DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/webhook-dlq"),
        ),
    ),
)

TEMPLATE_ENV = {
    "POWERTOOLS_SERVICE_NAME": "swapdrop-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Swapdrop",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    "BUCKET_NAME": "swapdrop-bench-bucket",
    "JOBS_TABLE_NAME": "swapdrop-jobs",
    "OPEN_JOBS_INDEX_NAME": "OpenJobs",
    "EVENT_BUS_NAME": "swapdrop-events",
    "UPSTREAM_BASE_URL": "https://swap.example.com",
    "UPSTREAM_AUTH_STYLE": "bearer",
    "UPSTREAM_API_KEY_SECRET_ID": "swapdrop-api-key",
    "UPSTREAM_INSTANCE_ID": "",
    "UPSTREAM_TIMEOUT_SECONDS": "30",
    "CALLBACK_TOKEN_SECRET_ID": "swapdrop-callback-token",
    "MAX_IMAGE_BYTES": "10485760",
    "MAX_SUBMIT_ATTEMPTS": "5",
    "JOB_TIMEOUT_MINUTES": "60",
    "RECONCILE_QUIET_SECONDS": "120",
    "ALLOW_PRIVATE_RESULT_URLS": "false",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/webhook",
    "WEBHOOK_RETRY_SCALE": "1",
    "ALLOW_PRIVATE_WEBHOOK_URLS": "false",
    "UPLOAD_GRACE_SECONDS": "300",
    "CALLBACK_BASE_URL": "",
}
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
    "AWS_SECRET_ACCESS_KEY": "bench-secret-not-real",
    "AWS_SESSION_TOKEN": "bench-token-not-real",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_EC2_METADATA_DISABLED": "true",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}

CHILD = """
import time
started = time.process_time()
{body}
print(time.process_time() - started)
"""
"""The child's CPU time (user + system) from the first import to the services built: importing is CPU-bound,
and on a shared machine the wall time mostly measures the neighbours (best of 7 wall times of the same code
differed by 50 % under load; the CPU times by a few %)."""


def environment(root: Path, handler: Handler, tracing: bool) -> dict[str, str]:
    function_dir = root / "functions" / handler.name
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", tempfile.gettempdir())}
    env |= LAMBDA_ENV | TEMPLATE_ENV | dict(handler.env)
    env |= {
        "AWS_LAMBDA_FUNCTION_NAME": f"swapdrop-{handler.name.capitalize()}Function",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/swapdrop-{handler.name}",
        "LAMBDA_TASK_ROOT": str(function_dir),
        "_HANDLER": f"{handler.module}.lambda_handler",
        "PYTHONPATH": os.pathsep.join([str(function_dir), str(root / "layers" / "common")]),
    }
    if not tracing:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def handler_code(handler: Handler) -> str:
    return f"import {handler.module}\nfrom swapdrop import wiring\n{handler.build}"


def floor_code(clients: tuple[str, ...]) -> str:
    made = "; ".join(f"boto3.client({service!r})" for service in clients)
    return f"import boto3, requests\n{made}"


def run_child(body: str, env: dict[str, str], python: str = sys.executable) -> float:
    done = subprocess.run(  # noqa: S603 - our own interpreter on our own code
        [python, "-c", CHILD.format(body=body)], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"the child failed:\n{body}\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def measure(
    roots: list[Path], rounds: int = ROUNDS, handlers: tuple[Handler, ...] = HANDLERS
) -> list[dict[str, float]]:
    """Per root, the best time of each case (seconds), keyed 'floor:<clients>', '<handler>:on', '<handler>:off'.
    Every root's cases run in the same rounds, interleaved."""
    cases: dict[tuple[int, str], tuple[str, dict[str, str]]] = {}
    for index, root in enumerate(roots):
        for handler in handlers:
            floor = (floor_code(handler.clients), environment(root, handler, False))
            cases[index, f"floor:{','.join(handler.clients)}"] = floor
            for tracing in (True, False):
                key = f"{handler.name}:{'on' if tracing else 'off'}"
                cases[index, key] = (handler_code(handler), environment(root, handler, tracing))
    for body, env in cases.values():  # once untimed: bytecode caches written, as a built layer ships them
        run_child(body, env)
    best = {key: float("inf") for key in cases}
    for _ in range(rounds):
        for key, (body, env) in cases.items():
            best[key] = min(best[key], run_child(body, env))
    return [{key: value for (index, key), value in best.items() if index == i} for i in range(len(roots))]


def cold_start_figures(
    best: dict[str, float], label: str = "", handlers: tuple[Handler, ...] = HANDLERS
) -> list[Figure]:
    figures = []
    for handler in handlers:
        floor = best[f"floor:{','.join(handler.clients)}"]
        for tracing in ("off", "on"):
            figures.append(
                Figure(
                    name=f"cold start {handler.name}, tracing {tracing}{label}",
                    value=best[f"{handler.name}:{tracing}"] * 1000,
                    unit="ms",
                    comparison=f"boto3+requests+{len(handler.clients)} clients",
                    comparison_value=floor * 1000,
                    target=TARGET,
                    note=f"best of {ROUNDS}",
                )
            )
    return figures


def python313_path() -> str:
    """PATH with a python3.13 first (the layer's Makefile runs python3.13 -m pip), e.g. pyenv's 3.13."""
    found = sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")).glob("versions/3.13.*/bin"))
    return os.pathsep.join([*(str(p) for p in found[-1:]), os.environ.get("PATH", "")])


def layer_size_mb(root: Path = ROOT) -> float:
    """sam build of the CommonLayer into a temporary directory; its unzipped size."""
    sam = root / ".venv-tools" / "bin" / "sam"
    if not sam.exists():
        sam = Path(shutil.which("sam") or "sam")
    with tempfile.TemporaryDirectory(prefix="swapdrop-layer-") as build_dir:
        template, out = str(root / "template.yaml"), build_dir
        subprocess.run(  # noqa: S603 - the tools venv's sam on our template
            [str(sam), "build", "--template-file", template, "--build-dir", out, "--no-cached", "CommonLayer"],
            cwd=root,
            check=True,
            capture_output=True,
            env=os.environ | {"SAM_CLI_TELEMETRY": "0", "PATH": python313_path()},
        )
        layer = Path(build_dir) / "CommonLayer"
        return sum(path.stat().st_size for path in layer.rglob("*") if path.is_file()) / 1_000_000


def without_bytecode(root: Path, handler: Handler, rounds: int = ROUNDS) -> tuple[float, float]:
    """The handler compiled from source at every start (as a layer without .pyc runs on Lambda, whose /opt is
    read-only), and the floor with its bytecode cached: (handler, floor) best seconds."""
    with tempfile.TemporaryDirectory(prefix="swapdrop-no-pyc-") as empty:
        bare = environment(root, handler, False) | {"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        cached = environment(root, handler, False)
        run_child(floor_code(handler.clients), cached)
        best = [float("inf"), float("inf")]
        for _ in range(rounds):
            best[0] = min(best[0], run_child(handler_code(handler), bare))
            best[1] = min(best[1], run_child(floor_code(handler.clients), cached))
    return best[0], best[1]


def bytecode_figure(root: Path = ROOT) -> Figure:
    handler = next(h for h in HANDLERS if h.name == "callback")
    bare, floor = without_bytecode(root, handler)
    return Figure(
        "cold start callback, tracing off, no .pyc (as the layer was before its Makefile)",
        bare * 1000,
        "ms",
        "floor with .pyc",
        floor * 1000,
        target=TARGET,
        note=f"best of {ROUNDS}",
    )


def figures(large: bool) -> list[Figure]:
    (best,) = measure([ROOT])
    found = cold_start_figures(best)
    if large:
        found.append(bytecode_figure())
        found.append(
            Figure(
                name="CommonLayer unzipped (sam build)",
                value=layer_size_mb(),
                unit="MB",
                target=LAYER_LIMIT_MB,
            )
        )
    return found


def importtime(root: Path, name: str, tracing: bool, top: int = 25) -> None:
    """The modules costing the most in `python -X importtime` (self time), for finding what to defer."""
    (handler,) = [h for h in HANDLERS if h.name == name]
    env = environment(root, handler, tracing)
    done = subprocess.run(  # noqa: S603 - our own interpreter on our own code
        [sys.executable, "-X", "importtime", "-c", handler_code(handler)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, module = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative_us), int(self_us), module.rstrip()))
    top_level = [row for row in rows if not row[2].startswith("  ")]
    print(f"{name}, tracing {'on' if tracing else 'off'}: {sum(r[0] for r in top_level) / 1000:.0f} ms imports")
    for cumulative, self_time, module in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative / 1000:7.1f} ms cumulative {self_time / 1000:6.1f} ms self  {module}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, action="append", help="checkout(s) to measure (default: this one)")
    parser.add_argument("--large", action="store_true", help="also sam build the layer and report its size")
    parser.add_argument("--importtime", metavar="HANDLER", help="show python -X importtime's slowest modules")
    parser.add_argument("--tracing", choices=("on", "off"), default="on", help="with --importtime")
    parser.add_argument("--json", action="store_true", help="also print the best times as JSON")
    args = parser.parse_args()
    roots = args.root or [ROOT]
    if args.importtime:
        for root in roots:
            importtime(root, args.importtime, args.tracing == "on")
        return
    table = []
    for root, best in zip(roots, measure(roots), strict=True):
        if args.json:
            print(json.dumps({"root": str(root), **best}))
        table += cold_start_figures(best, f" [{root.name}]" if len(roots) > 1 else "")
    if args.large:
        table.append(bytecode_figure(roots[-1]))
        table.append(Figure("CommonLayer unzipped (sam build)", layer_size_mb(), "MB", target=LAYER_LIMIT_MB))
    print_table(table)


if __name__ == "__main__":
    main()
