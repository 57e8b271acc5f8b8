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
import time
import tracemalloc

from swapdrop.upstream import StreamingJsonBody, SwapImage, SwapRequest

SIZE = 10 * 1024 * 1024
BLOCK = 16 * 1024  # what the HTTP client asks the body for at a time
ROUNDS = 5


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


def main() -> None:
    req = request()
    whole = b"".join(iter(StreamingJsonBody(req)))
    assert whole == built(req), "the streamed body must equal the built one"
    assert len(StreamingJsonBody(req)) == len(whole)
    built_time, built_peak = measure(built, req)
    stream_time, stream_peak = measure(streamed, req)
    images = 2 * SIZE
    print(
        f"submit body for two {SIZE // 1048576} MiB images ({len(whole) / 1048576:.1f} MiB of JSON), "
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
