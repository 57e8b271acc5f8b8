"""The README's jobs API example works as printed: its code block, taken from README.md, runs as a
separate program against a running local stack (signed with the info file's api_credentials, as
the README tells a reader to do) and swaps a face through PUT /faces, POST /jobs with an upload,
the presigned POSTs, GET /jobs/{id}?wait= and the result's presigned URL. So the example cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.conftest import Client
from swapdrop_local.auth import signed_request
from swapdrop_local.stack import RunningStack, StackOptions

from integration.conftest import jpeg, png

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE = re.compile(r"```python\n(# swap\.py .*?)```", re.DOTALL)
RESULT = png((30, 160, 90), size=(64, 48))


def readme_example() -> str:
    blocks = EXAMPLE.findall(README.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "README.md must hold exactly one ```python block starting '# swap.py'"
    return blocks[0]


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    options = StackOptions(
        api_key="readme-secret-key",
        reconcile_interval=1.0,
        emulator={"step_delay": 0.02, "engine": lambda _source, _target: RESULT},
    )
    with RunningStack(options) as running:
        yield running


def test_the_readme_example_swaps_a_face_through_the_http_api(stack: RunningStack, tmp_path: Path) -> None:
    info = stack.info()
    script = tmp_path / "swap.py"
    script.write_text(readme_example(), encoding="utf-8")
    (tmp_path / "ada.jpg").write_bytes(jpeg((200, 150, 120)))
    (tmp_path / "beach.png").write_bytes(png((40, 90, 200), size=(120, 90)))
    credentials = info["api_credentials"]
    # What the README's "on the local stack" lines export, and nothing else of this process's AWS setup.
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        SWAPDROP_API_URL=info["api_url"],
        AWS_ACCESS_KEY_ID=credentials["access_key_id"],
        AWS_SECRET_ACCESS_KEY=credentials["secret_access_key"],
        AWS_DEFAULT_REGION=info["region"],
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    run = subprocess.run(
        [sys.executable, str(script), "ada", "ada.jpg", "beach.png"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, f"the README example failed:\n{run.stdout}\n{run.stderr}"
    assert (tmp_path / "result.png").read_bytes() == RESULT  # the swap's image, fetched by its presigned URL
    job_id = re.search(r"^job ([0-9a-f]{32}) AWAITING_UPLOAD$", run.stdout, re.MULTILINE)
    assert job_id, run.stdout
    assert run.stdout.rstrip().endswith(f"wrote result.png from results/ada/jobs/{job_id[1]}.png"), run.stdout
    job = signed_request(info, "GET", f"/jobs/{job_id[1]}").json()
    assert (job["status"], job["face"], job["metadata"]) == ("SUCCESS", "ada", {"album": "readme"})
    assert job["target"]["key"] == f"uploads/{job_id[1]}/target.png"
    client = Client(info)
    assert client.s3.get_object(Bucket=info["bucket"], Key="faces/ada.jpg")["ContentType"] == "image/jpeg"


def test_the_example_is_refused_without_the_stacks_credentials(stack: RunningStack, tmp_path: Path) -> None:
    """The example's signature is what lets it in: other keys get API Gateway's 403, reported by the script."""
    info = stack.info()
    script = tmp_path / "swap.py"
    script.write_text(readme_example(), encoding="utf-8")
    (tmp_path / "ada.jpg").write_bytes(jpeg((200, 150, 120)))
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        SWAPDROP_API_URL=info["api_url"],
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        AWS_DEFAULT_REGION=info["region"],
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    run = subprocess.run(
        [sys.executable, str(script), "ada", "ada.jpg", "ada.jpg"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "PUT /faces/ada: 403" in run.stderr, run.stderr
