"""The emulator with its default engine (the real face swap) on the fixture photos."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from swapdrop_emulator import EmulatorConfig, SwapEmulator

from .conftest import API_KEY, CallbackReceiver, accepted_id, b64, submit

FACES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
pytest.importorskip("mediapipe", reason="the face-swap engine needs requirements-emulator*.txt")
pytest.importorskip("cv2", reason="the face-swap engine needs requirements-emulator*.txt")
if not (FACES / "astronaut.png").exists() or not (FACES / "grace_hopper.jpg").exists():
    pytest.skip("tests/fixtures/faces is missing", allow_module_level=True)


def test_the_default_engine_swaps_faces_and_reports_no_face(receiver: CallbackReceiver) -> None:
    from PIL import Image

    face, photo = (FACES / "grace_hopper.jpg").read_bytes(), (FACES / "astronaut.png").read_bytes()
    with SwapEmulator(EmulatorConfig(api_key=API_KEY, step_delay=0.005, callback_workers=1)) as emulator:
        body = {"sourceBase64": "data:image/jpeg;base64," + b64(face), "targetBase64": "data:image/png;base64,"}
        swapped = accepted_id(submit(emulator, {**body, "targetBase64": body["targetBase64"] + b64(photo)}))
        no_face = FACES / "no_face.jpg"
        refused = None
        if no_face.exists():
            target = "data:image/jpeg;base64," + b64(no_face.read_bytes())
            refused = accepted_id(submit(emulator, {**body, "targetBase64": target, "notifyHook": receiver.hook()}))
        emulator.wait_idle(timeout=60)

        task = emulator.tasks[swapped]
        assert task.status == "SUCCESS", task.fail_reason
        result = Image.open(io.BytesIO(task.image))
        assert result.format == "PNG" and result.size == Image.open(io.BytesIO(photo)).size
        assert task.image != photo
        if refused:
            assert receiver.received[-1].body["status"] == "FAILURE"
            assert receiver.received[-1].body["failReason"] == "no face found in the target image"
