"""`swapdrop face add|list|rm` as a person runs them, against a running local stack: the face
reaches the bucket through the API's presigned form, and every error path has its exit code."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from e2e.conftest import FIXTURES, Client, CliStack, run_cli

FACE = FIXTURES / "grace_hopper.jpg"


def _faces(stack: CliStack) -> dict[str, dict]:
    listed = run_cli("face", "list", "--json", stack=stack)
    assert listed.returncode == 0, listed.stderr
    return {face["face"]: face for face in map(json.loads, listed.stdout.splitlines())}


def test_add_list_replace_and_remove_a_face(cli_stack: CliStack) -> None:
    name = f"ada-{uuid.uuid4().hex[:6]}"
    added = run_cli("face", "add", name, str(FACE), stack=cli_stack)
    assert added.returncode == 0, added.stderr
    assert f"added face '{name}' (faces/{name}.jpg" in added.stdout
    assert Client(cli_stack.info).read(f"faces/{name}.jpg") == FACE.read_bytes()
    assert _faces(cli_stack)[name]["bytes"] == FACE.stat().st_size

    table = run_cli("face", "list", stack=cli_stack)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["FACE", "BYTES", "LAST", "MODIFIED", "KEY"]
    assert any(line.split()[0] == name for line in table.stdout.splitlines()[1:])

    same_type = run_cli("face", "add", name, str(FIXTURES / "no_face.jpg"), stack=cli_stack)
    assert same_type.returncode == 0, same_type.stderr
    assert Client(cli_stack.info).read(f"faces/{name}.jpg") == (FIXTURES / "no_face.jpg").read_bytes()
    png = FIXTURES / "astronaut.png"
    other_type = run_cli("face", "add", name, str(png), stack=cli_stack)
    assert other_type.returncode == 2
    assert f"face '{name}' exists as another image type" in other_type.stderr
    assert "--replace" in other_type.stderr
    replaced = run_cli("face", "add", name, str(png), "--replace", "--json", stack=cli_stack)
    assert replaced.returncode == 0, replaced.stderr
    record = json.loads(replaced.stdout)
    assert record == {"face": name, "key": f"faces/{name}.png", "bytes": png.stat().st_size, "contentType": "image/png"}
    assert [key for key in _faces(cli_stack) if key == name] == [name]
    assert _faces(cli_stack)[name]["key"] == f"faces/{name}.png"

    removed = run_cli("face", "rm", name, "--json", stack=cli_stack)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout) == {"face": name, "deleted": True}
    assert name not in _faces(cli_stack)
    again = run_cli("face", "rm", name, stack=cli_stack)
    assert again.returncode == 2
    assert f"error: no face '{name}' in local stack" in again.stderr


def test_a_bad_face_name_is_refused_before_any_request(cli_stack: CliStack) -> None:
    for name, message in (("a/b", "contains '/'"), ("..", "is not a usable face name"), ("x\x1b[31m", "control")):
        answer = run_cli("face", "add", name, str(FACE), stack=cli_stack)
        assert answer.returncode == 2, (name, answer.stderr)
        assert message in answer.stderr
        assert answer.stdout == ""


def test_missing_file_directory_and_non_image_exit_2(cli_stack: CliStack, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    cases = (
        (tmp_path / "missing.jpg", "no such file"),
        (tmp_path, "is not a file"),
        (text, "is not a JPEG, PNG or WebP image"),
    )
    for path, message in cases:
        answer = run_cli("face", "add", "ok-name", str(path), "--json", stack=cli_stack)
        assert answer.returncode == 2, (path, answer.stderr)
        assert message in answer.stderr
        assert json.loads(answer.stdout)["error"]["exitCode"] == 2


def test_usage_errors_exit_2() -> None:
    missing_argument = run_cli("face", "add", "only-a-name")
    assert missing_argument.returncode == 2
    assert "the following arguments are required: IMAGE" in missing_argument.stderr
    no_subcommand = run_cli("face")
    assert no_subcommand.returncode == 2


def test_no_stack_exits_3(tmp_path: Path) -> None:
    answer = run_cli("face", "list", "--local", str(tmp_path / "gone.json"))
    assert answer.returncode == 3
    assert "start one with `swapdrop local --info-file" in answer.stderr


def test_refused_credentials_exit_4(cli_stack: CliStack, tmp_path: Path) -> None:
    info = json.loads(cli_stack.info_file.read_text())
    info["api_credentials"]["secret_access_key"] = "z" * 40
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(info))
    for command in (("face", "list"), ("face", "add", "eve", str(FACE)), ("face", "rm", "eve")):
        answer = run_cli(*command, "--local", str(tampered), "--json")
        assert answer.returncode == 4, (command, answer.stderr)
        assert "hint: the credentials do not match the running local stack" in answer.stderr
        assert json.loads(answer.stdout)["error"]["exitCode"] == 4


def test_a_deployed_target_with_a_wrong_secret_key_is_refused_with_exit_4(cli_stack: CliStack) -> None:
    """--stack through moto's CloudFormation (AWS_ENDPOINT_URL): the stack is found, the API refuses the signature."""
    credentials = cli_stack.info["api_credentials"]
    env = {
        "AWS_ENDPOINT_URL": cli_stack.info["endpoint_url"],
        "AWS_ACCESS_KEY_ID": credentials["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": "w" * 40,
        "AWS_REGION": cli_stack.info["region"],
    }
    answer = run_cli("face", "list", "--stack", cli_stack.info["stack_name"], env=env)
    assert answer.returncode == 4, answer.stderr
    assert "the jobs API refused the request (403" in answer.stderr
    assert "ClientPolicyArn" in answer.stderr
    unknown = run_cli("face", "list", "--stack", "nope", env=env)
    assert unknown.returncode == 3
    assert "stack 'nope' not found in us-east-1: deploy it" in unknown.stderr
