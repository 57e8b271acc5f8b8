"""The template's Lambda functions, run locally the way Lambda runs them.

Each function gets a pool of worker processes, its "containers": a worker imports the
handler once (cold start), keeps its module state between invocations, and handles one
event at a time. Concurrency is the pool size, as Lambda's is the number of containers,
so handlers that are safe on Lambda are safe here without being thread-safe.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swapdrop_local.lambda_context import LocalLambdaContext
from swapdrop_local.template import PROJECT_ROOT, Resolver

_handlers: dict[str, Any] = {}


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    events: dict[str, Any]

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]


def function_specs(resolver: Resolver) -> dict[str, FunctionSpec]:
    template = resolver.template
    defaults = template.get("Globals", {}).get("Function", {})
    specs = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        specs[name] = FunctionSpec(
            name=name,
            code_dir=PROJECT_ROOT / props["CodeUri"],
            handler=props["Handler"],
            timeout=int(resolver.resolve(props.get("Timeout", defaults.get("Timeout", 3)))),
            memory=int(resolver.resolve(props.get("MemorySize", defaults.get("MemorySize", 128)))),
            events=resolver.resolve(props.get("Events", {})),
        )
    return specs


def layer_dirs(resolver: Resolver) -> list[Path]:
    """Where the functions' layers' code lives (ContentUri), as Lambda mounts them on sys.path."""
    return [
        PROJECT_ROOT / resource["Properties"]["ContentUri"]
        for resource in resolver.template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    ]


def _start_container(paths: list[str], environment: dict[str, str]) -> None:
    os.environ.update(environment)
    for path in reversed(paths):
        sys.path.insert(0, path)


def _load(spec: FunctionSpec) -> Any:
    handler = _handlers.get(spec.name)
    if handler is None:
        module_name, attribute = spec.handler.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attribute)
        _handlers[spec.name] = handler
    return handler


def _invoke(spec: FunctionSpec, event: dict[str, Any]) -> Any:
    handler = _load(spec)
    context = LocalLambdaContext(spec.name, timeout_seconds=spec.timeout, memory_limit_in_mb=spec.memory)
    return handler(event, context)


class LocalFunction:
    def __init__(self, spec: FunctionSpec, environment: dict[str, str], layers: list[Path], concurrency: int) -> None:
        self.spec = spec
        self.concurrency = concurrency
        paths = [str(spec.code_dir), *(str(p) for p in layers)]
        self._pool = ProcessPoolExecutor(
            max_workers=concurrency,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_container,
            initargs=(paths, environment),
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Synchronous invocation; the handler's exception is re-raised here, as Lambda reports it."""
        return self._pool.submit(_invoke, self.spec, event).result(timeout=self.spec.timeout + 30)

    def warm_up(self) -> None:
        """Start every container now, so the first real event does not pay for the imports."""
        futures = [self._pool.submit(_load_noop, self.spec) for _ in range(self.concurrency)]
        for future in futures:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _load_noop(spec: FunctionSpec) -> int:
    _load(spec)
    return os.getpid()
