"""Submit body: streamed base64 JSON vs building it with json.dumps, side by side.

Two 10 MiB images (the default limit), the same request either way. Reports the extra
memory each needs above the images themselves (tracemalloc peak) and the time, and
their ratios. The bodies are checked to be byte-identical first.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from swapdrop.upstream import StreamingJsonBody, SwapImage, SwapRequest

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure

SIZE = 10 * 1024 * 1024
BLOCK = 16 * 1024  # what the HTTP client asks the body for at a time
ROUNDS = 5
MEMORY_TARGET = 0.01
"""The streamed body's extra memory at most 1 % of json.dumps' (it was 1/372 when it was built)."""


def request() -> SwapRequest:
    return SwapRequest(
        source=SwapImage(b"\xff\xd8\xff" + os.urandom(SIZE - 3), "image/jpeg"),
        target=SwapImage(b"\x89PNG\r\n\x1a\n" + os.urandom(SIZE - 8), "image/png"),
        notify_hook="https://api.example/callbacks/0123456789abcdef0123456789abcdef?token=x",
        state="0123456789abcdef0123456789abcdef",
    )


def built(req: SwapRequest) -> bytes:
    def data_url(image: SwapImage) -> str:
        return f"data:{image.mime_type};base64," + base64.b64encode(image.data).decode()

    body = {
        "sourceBase64": data_url(req.source),
        "targetBase64": data_url(req.target),
        "notifyHook": req.notify_hook,
        "state": req.state,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def streamed(req: SwapRequest) -> int:
    body, sent = StreamingJsonBody(req), 0
    while chunk := body.read(BLOCK):
        sent += len(chunk)
    return sent


def measure(fn, req: SwapRequest) -> tuple[float, int]:
    times, peaks = [], []
    for _ in range(ROUNDS):
        tracemalloc.start()
        started = time.perf_counter()
        fn(req)
        times.append(time.perf_counter() - started)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return statistics.median(times), max(peaks)


def compare() -> tuple[int, float, int, float, int]:
    """The JSON's size, then json.dumps' and the streamed body's time and extra memory."""
    req = request()
    whole = b"".join(iter(StreamingJsonBody(req)))
    assert whole == built(req), "the streamed body must equal the built one"
    assert len(StreamingJsonBody(req)) == len(whole)
    built_time, built_peak = measure(built, req)
    stream_time, stream_peak = measure(streamed, req)
    return len(whole), built_time, built_peak, stream_time, stream_peak


def figures(large: bool) -> list[Figure]:
    _, built_time, built_peak, stream_time, stream_peak = compare()
    note = f"two {SIZE // 1048576} MiB images, median of {ROUNDS}"
    return [
        Figure(
            "submit body extra memory, streamed",
            stream_peak / 1048576,
            "MiB",
            "json.dumps",
            built_peak / 1048576,
            target=MEMORY_TARGET,
            note=note,
        ),
        Figure("submit body time, streamed", stream_time * 1000, "ms", "json.dumps", built_time * 1000, note=note),
    ]


def main() -> None:
    whole_size, built_time, built_peak, stream_time, stream_peak = compare()
    images = 2 * SIZE
    print(
        f"submit body for two {SIZE // 1048576} MiB images ({whole_size / 1048576:.1f} MiB of JSON), "
        f"median of {ROUNDS}:"
    )
    print(
        f"  json.dumps : {built_time * 1000:7.1f} ms, extra memory {built_peak / 1048576:7.2f} MiB "
        f"({built_peak / images:.2f}x the images)"
    )
    print(
        f"  streamed   : {stream_time * 1000:7.1f} ms, extra memory {stream_peak / 1048576:7.2f} MiB "
        f"({stream_peak / images:.4f}x the images)"
    )
    print(
        f"  ratio (json.dumps / streamed): memory {built_peak / stream_peak:.0f}x, time {built_time / stream_time:.2f}x"
    )


if __name__ == "__main__":
    main()
