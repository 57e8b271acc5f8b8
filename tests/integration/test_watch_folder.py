"""The drop folder on moto's server (issue 6, item 5): hostile and foreign-form names through real
boto3 and S3 events, and hostile result keys listed by a real S3 API."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from swapdrop.jobs import JobStatus
from swapdrop_local.watch import FolderMirror

from integration.conftest import Harness, jpeg, png

SETTLE = 0.1
NFC_RENEE = unicodedata.normalize("NFC", "Renée")
NFD_RENEE = unicodedata.normalize("NFD", "Renée")


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_a_drop_folder_with_hostile_and_macos_names(harness: Harness, tmp_path: Path) -> None:
    mirror = FolderMirror(tmp_path / "drop", harness.s3, harness.stack.bucket, settle=SETTLE)
    drop = mirror.root
    (drop / "faces" / f"{NFC_RENEE}.jpg").write_bytes(jpeg((10, 200, 30)))  # typed on Linux: NFC
    (drop / "inbox" / NFD_RENEE).mkdir(parents=True)  # a folder made on macOS: NFD
    (drop / "inbox" / NFD_RENEE / "plage.png").write_bytes(png((90, 90, 200)))
    (drop / "inbox" / "w").mkdir()
    (drop / "inbox" / "w" / "\x1b[31mred\u202egnp.png").write_bytes(png((1, 2, 3)))
    harness.put("inbox/hostile/../../faces/hostile.png", png((4, 5, 6)))

    assert mirror.sync_once() == (3, 0)
    assert harness.drain_submits() >= 3

    matched = harness.job_for(f"inbox/{NFD_RENEE}/plage.png")
    assert matched.status is JobStatus.SUBMITTED, matched.failReason
    assert matched.sourceKey == f"faces/{NFC_RENEE}.jpg"
    escaped = harness.job_for("inbox/w/\x1b[31mred\u202egnp.png")
    assert escaped.status is JobStatus.REJECTED
    assert "'\\x1b'" in escaped.failReason and "\x1b" not in escaped.failReason
    dotted = harness.job_for("inbox/hostile/../../faces/hostile.png")
    assert dotted.status is JobStatus.REJECTED and "'..' path segment" in dotted.failReason
    assert len(harness.upstream.swaps) == 1, "only the matched face was sent upstream"

    response = harness.upstream.callback(matched.taskId, harness.upstream.succeed(matched.taskId))
    assert response.status_code == 200, response.text
    done = harness.job(matched.jobId)
    assert done.resultKey == f"results/{NFD_RENEE}/plage.png"
    assert mirror.sync_once() == (0, 1)
    assert (drop / "results" / NFD_RENEE / "plage.png").read_bytes() == harness.upstream.result_image
    assert mirror.sync_once() == (0, 0), "the result is not uploaded back"
    listed = harness.s3.list_objects_v2(Bucket=harness.stack.bucket)["Contents"]
    assert sorted(obj["Key"] for obj in listed) == sorted(
        [
            f"faces/{NFC_RENEE}.jpg",
            f"inbox/{NFD_RENEE}/plage.png",
            "inbox/w/\x1b[31mred\u202egnp.png",
            "inbox/hostile/../../faces/hostile.png",
            f"results/{NFD_RENEE}/plage.png",
        ]
    )


def test_hostile_result_keys_from_a_real_listing_stay_inside_dir_results(harness: Harness, tmp_path: Path) -> None:
    hostile = [
        "results/w/../../../escaped.png",
        "results/w/../../faces/w.png",
        "results/w/../../inbox/w/again.png",
        "results/w/\x1b[2Jred.png",
        "results/w/..\\..\\..\\escaped2.png",
        "results//abs.png",
    ]
    for key in [*hostile, "results/w/ok.png"]:
        harness.put(key, b"bytes")
    mirror = FolderMirror(tmp_path / "drop", harness.s3, harness.stack.bucket, settle=SETTLE)
    before = _tree(tmp_path)
    assert mirror.sync_once() == (0, 1)
    assert _tree(tmp_path) - before == {"drop/results/w", "drop/results/w/ok.png"}
    assert mirror.sync_once() == (0, 0)
