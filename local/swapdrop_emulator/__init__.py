"""A local emulator of the Midjourney-proxy-style InsightFace swap API, failure modes included.

It speaks the contract in UPSTREAM_API.md over real HTTP (stdlib ThreadingHTTPServer on
127.0.0.1, a free port by default): submit codes 1/22/23/4, auth styles, task snapshots,
fetch, list-by-condition and trueai's task/list and cancel, unsigned callbacks from a thread pool,
result images that may expire, and injected faults (see ``swapdrop_emulator.faults`` for the spec language).

Python API (tests)::

    emu = SwapEmulator(EmulatorConfig(api_key="k", auth_style="bearer", engine=fake)).start()
    emu.url; emu.stop()                       # stop() never hangs
    emu.swaps, emu.tasks, emu.list_requests, emu.fetch_requests, emu.callbacks
    emu.script_submit(status, payload)        # == emu.responses.append((status, payload))
    emu.faults.next_submits.append("code=23"); emu.faults.always.append("latency=0.5")
    emu.progress(id, status, progress); emu.succeed(id, image=None); emu.fail(id, reason)
    emu.callback(id, snapshot=None, hook=None)    # one synchronous POST -> requests.Response
    emu.notify(id); emu.expire_result(id); emu.wait_idle(timeout)
    emu.task_list_enabled = False             # GET /mj/task/list answers 404 from now on
    emu.cancel_enabled = False                # POST /mj/task/{id}/cancel answers 404 from now on
    emu.cancel_requests                       # the task ids of every cancel answered

The default engine is the real face swap (``swapdrop_emulator.faceswap``), imported only
when a task first needs it, so this package imports without MediaPipe or OpenCV.
"""

import logging

from .callbacks import CallbackRecord
from .config import EmulatorConfig, Engine
from .emulator import FAULT_HEADER, SwapEmulator
from .engines import echo_engine, faceswap_engine
from .faults import Fault, FaultList, FaultPlan, FaultSpecError, RequestFaults, TaskFaults, parse_fault, parse_faults
from .hostile import ODD_KINDS, Raw
from .tasks import SubmittedSwap, Task

logging.getLogger("swapdrop_emulator").addHandler(logging.NullHandler())

__all__ = [
    "FAULT_HEADER",
    "ODD_KINDS",
    "CallbackRecord",
    "EmulatorConfig",
    "Engine",
    "Fault",
    "FaultList",
    "FaultPlan",
    "FaultSpecError",
    "Raw",
    "RequestFaults",
    "SubmittedSwap",
    "SwapEmulator",
    "Task",
    "TaskFaults",
    "echo_engine",
    "faceswap_engine",
    "parse_fault",
    "parse_faults",
]
