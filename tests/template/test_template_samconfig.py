"""samconfig.toml: every environment, and overrides that the template accepts; and README's deploy guide:
the answers it gives to `sam deploy --guided` are the questions SAM asks (run here, stopped before AWS)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfn_template import ROOT

README = ROOT / "README.md"


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


GUIDED_TABLE_HEADER = "`sam deploy --guided` asks"
# The sections samconfig.toml may have per environment: sam's commands that read it.
SAM_COMMANDS = {"global", "build", "validate", "deploy", "sync", "logs", "delete", "package", "traces", "list"}
_PARAMETER_PROMPT = re.compile(r"Parameter (\w+) \[(.*)\]")
_CODE_SPAN = re.compile(r"`([^`]*)`")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A sam prompt: "\tLabel [default]: " (the label starts with a capital; the default is in brackets).
_SAM_PROMPT = re.compile(r"\t([A-Z][^\t\n]*?\[[^\]\n]*\]): ")


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))


def environments(samconfig: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: sections for name, sections in samconfig.items() if isinstance(sections, dict)}


def overrides(sections: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(command, name, value) for every parameter override an environment's commands pass."""
    for command, section in sections.items():
        value = section.get("parameters", {}).get("parameter_overrides")
        if value is None:
            continue
        for item in shlex.split(value) if isinstance(value, str) else value:
            name, _, text = item.partition("=")
            yield command, name, text


def constraint_errors(spec: dict[str, Any], value: str) -> list[str]:
    """What CloudFormation would refuse in this value of a parameter: AllowedValues, AllowedPattern, Min/MaxValue."""
    errors = []
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        errors.append(f"not in {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        errors.append(f"fails the pattern {spec['AllowedPattern']}")
    if spec["Type"] == "Number":
        try:
            number = float(value)
        except ValueError:
            return [*errors, "not a number"]
        if not spec.get("MinValue", number) <= number <= spec.get("MaxValue", number):
            errors.append(f"outside {spec.get('MinValue')}..{spec.get('MaxValue')}")
    return errors


def test_default_environment(samconfig: dict[str, Any]) -> None:
    assert str(samconfig["version"]) == "0.1"
    default = samconfig["default"]
    assert default["global"]["parameters"]["stack_name"] == "swapdrop"
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True


def test_environments_are_the_documented_ones(samconfig: dict[str, Any]) -> None:
    assert set(environments(samconfig)) == {"default", "prod", "dev"}


def test_every_environment_configures_only_sam_commands(samconfig: dict[str, Any]) -> None:
    for env, sections in environments(samconfig).items():
        assert set(sections) <= SAM_COMMANDS, f"[{env}] unknown sam commands: {set(sections) - SAM_COMMANDS}"
        for command, section in sections.items():
            assert set(section) == {"parameters"}, f"[{env}.{command}] holds {set(section)}, sam reads only parameters"


@pytest.mark.parametrize("env", ["default", "prod", "dev"])
def test_deploy_settings(samconfig: dict[str, Any], env: str) -> None:
    deploy = samconfig[env]["deploy"]["parameters"]
    assert "CAPABILITY_IAM" in deploy["capabilities"].split(), "the functions' roles need CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
    assert deploy["region"] == "us-east-1"


def test_each_environment_is_a_separate_stack(samconfig: dict[str, Any]) -> None:
    names = {env: sections["global"]["parameters"]["stack_name"] for env, sections in environments(samconfig).items()}
    assert len(set(names.values())) == len(names), f"two environments share a stack: {names}"


def test_dev_syncs_its_own_stack_with_its_own_overrides(samconfig: dict[str, Any]) -> None:
    """`sam sync` reads [dev.sync], not [dev.deploy]: both must carry the same overrides, or sync and deploy
    would flip the dev stack's parameters back and forth."""
    dev = samconfig["dev"]
    assert dev["sync"]["parameters"]["watch"] is True
    assert dev["sync"]["parameters"]["parameter_overrides"] == dev["deploy"]["parameters"]["parameter_overrides"]


def test_parameter_overrides_name_real_parameters_with_allowed_values(
    samconfig: dict[str, Any], parameters: dict[str, Any]
) -> None:
    seen = 0
    for env, sections in environments(samconfig).items():
        for command, name, value in overrides(sections):
            seen += 1
            assert name in parameters, f"[{env}.{command}] override {name} is not a template parameter"
            assert not constraint_errors(parameters[name], value), (
                f"[{env}.{command}] {name}={value}: {constraint_errors(parameters[name], value)}"
            )
    assert seen, "no overrides found: the parser lost them"


def test_constraint_errors_catch_what_cloudformation_refuses(parameters: dict[str, Any]) -> None:
    assert constraint_errors(parameters["LogLevel"], "LOUD")
    assert constraint_errors(parameters["LogRetentionDays"], "8")
    assert constraint_errors(parameters["UpstreamBaseUrl"], "https://example.com/")
    assert constraint_errors(parameters["UpstreamConcurrency"], "1")
    assert constraint_errors(parameters["UpstreamConcurrency"], "five")
    assert not constraint_errors(parameters["LogRetentionDays"], "90")


# ------------------------------------------------------------------------- README's deploy guide


def readme_section(title: str) -> str:
    text = readme_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def guided_rows() -> list[tuple[str, str]]:
    """(question, answer) rows of the Deploy section's `sam deploy --guided` table, in order."""
    lines = readme_section("Deploy").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith(f"| {GUIDED_TABLE_HEADER} |"))
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        question = _CODE_SPAN.fullmatch(cells[0])
        assert question, f"the question must be one code span, as SAM prints it: {cells[0]!r}"
        rows.append((question.group(1), cells[1]))
    return rows


def typed_answer(answer: str) -> str:
    """What a person types for a README answer: nothing for 'Enter…', else the answer's first code span."""
    if answer.startswith("Enter"):
        return ""
    span = _CODE_SPAN.search(answer)
    assert span, f"an answer is 'Enter…' or starts with what to type, in backticks: {answer!r}"
    return span.group(1)


def test_deploy_guide_answers_every_parameter_in_template_order(parameters: dict[str, Any]) -> None:
    asked = [(m.group(1), m.group(2)) for q, _ in guided_rows() if (m := _PARAMETER_PROMPT.fullmatch(q))]
    assert [name for name, _ in asked] == list(parameters), "README's deploy guide lacks or misorders a parameter"
    for name, default in asked:
        assert default == str(parameters[name].get("Default", "")), f"{name}: README shows [{default}]"


def test_deploy_guide_answers_are_values_the_template_accepts(parameters: dict[str, Any]) -> None:
    for question, answer in guided_rows():
        match = _PARAMETER_PROMPT.fullmatch(question)
        if match:
            value = typed_answer(answer) or match.group(2)
            errors = constraint_errors(parameters[match.group(1)], value)
            assert not errors, f"README answers {match.group(1)}={value!r}: {errors}"


def test_deploy_guide_names_only_configured_environments(samconfig: dict[str, Any]) -> None:
    named = set(re.findall(r"--config-env (\w+)", readme_section("Deploy")))
    assert named, "the guide shows --config-env"
    assert named <= set(environments(samconfig)), f"README names environments samconfig.toml lacks: {named}"


def sam_bin() -> Path:
    path = Path(os.environ.get("SAM_BIN") or ROOT / ".venv-tools/bin/sam")
    if not path.exists():
        pytest.fail(f"sam not found at {path}: run `make tools` or set SAM_BIN")
    return path


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.build
@pytest.mark.timeout(180)
def test_sam_deploy_guided_asks_exactly_what_the_readme_answers(tmp_path: Path, refused_port: int) -> None:
    """Runs `sam deploy --guided` on a copy of template.yaml and samconfig.toml with README's answers on stdin.
    Everything AWS-bound goes to a refused loopback port (endpoint and proxies), so SAM stops right after the
    questions, at 'Looking for resources needed for deployment'; samconfig.toml is never written."""
    for name in ("template.yaml", "samconfig.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    dead = f"http://127.0.0.1:{refused_port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_ENDPOINT_URL": dead,
        "AWS_EC2_METADATA_DISABLED": "true",
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "SAM_CLI_TELEMETRY": "0",
    }
    rows = guided_rows()
    answers = "".join(typed_answer(answer) + "\n" for _, answer in rows)
    result = subprocess.run(
        [str(sam_bin()), "deploy", "--guided", "--template", "template.yaml"],
        cwd=tmp_path, env=env, input=answers, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    stdout = _ANSI.sub("", result.stdout)
    asked = _SAM_PROMPT.findall(stdout)
    assert asked == [question for question, _ in rows], f"sam asked:\n{stdout}\n{result.stderr}"
    assert "Looking for resources needed for deployment" in stdout, f"sam stopped early:\n{stdout}\n{result.stderr}"
    assert (tmp_path / "samconfig.toml").read_bytes() == (ROOT / "samconfig.toml").read_bytes()


def test_deploy_guide_prices_the_alarms_the_template_has(resources: dict[str, dict[str, Any]]) -> None:
    """CloudWatch bills an alarm per metric it reads (a metric-math alarm: each MetricStat), $0.10 each."""
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    metrics = sum(1 if "MetricName" in a else sum("MetricStat" in m for m in a["Metrics"]) for a in alarms)
    stated = re.search(
        r"\| (\d+) alarms \((\d+) alarm metrics, \$0\.10 each\) \|[^|]*\| \$(\d+\.\d\d) \|", readme_text()
    )
    assert stated, "README's cost table has the alarms row"
    assert (int(stated.group(1)), int(stated.group(2))) == (len(alarms), metrics)
    assert stated.group(3) == f"{metrics * 0.10:.2f}"


REMOVAL_COMMANDS = {"AWS::S3::Bucket": "aws s3api delete-bucket", "AWS::DynamoDB::Table": "aws dynamodb delete-table"}


def test_teardown_names_every_retained_resource_and_how_to_remove_it(resources: dict[str, dict[str, Any]]) -> None:
    retained = {name: r["Type"] for name, r in resources.items() if r.get("DeletionPolicy") == "Retain"}
    assert retained, "the template retains the bucket and the table"
    teardown = readme_section("Deploy").split("### Tearing down", 1)[1].split("\n### ", 1)[0]
    for name, kind in retained.items():
        assert kind in REMOVAL_COMMANDS, f"{name} ({kind}) is retained: say in README's teardown how to remove it"
        assert REMOVAL_COMMANDS[kind] in teardown, f"README's teardown lacks {REMOVAL_COMMANDS[kind]} for {name}"


def test_teardown_empties_the_versioned_bucket(resources: dict[str, dict[str, Any]]) -> None:
    """README's snippet deletes every version and delete marker, so that delete-bucket then succeeds (moto)."""
    import boto3
    from moto import mock_aws

    assert resources["MediaBucket"]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"
    snippet = re.search(r"python3 - \"\$BUCKET\" <<'PY'\n(.*?)\nPY\n", readme_section("Deploy"), re.DOTALL)
    assert snippet, "README's teardown has the python3 snippet for the bucket's versions"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="swapdrop-teardown")
        s3.put_bucket_versioning(Bucket="swapdrop-teardown", VersioningConfiguration={"Status": "Enabled"})
        for key in ("faces/alice.jpg", "inbox/alice/a b.jpg", "results/alice/a b.jpg"):
            s3.put_object(Bucket="swapdrop-teardown", Key=key, Body=b"1")
            s3.put_object(Bucket="swapdrop-teardown", Key=key, Body=b"2")
        s3.delete_object(Bucket="swapdrop-teardown", Key="faces/alice.jpg")  # a delete marker
        with pytest.raises(s3.exceptions.ClientError, match="BucketNotEmpty"):
            s3.delete_bucket(Bucket="swapdrop-teardown")
        argv = sys.argv
        sys.argv = ["-", "swapdrop-teardown"]
        try:
            exec(compile(snippet.group(1), "README teardown", "exec"), {"__name__": "__main__"})  # noqa: S102
        finally:
            sys.argv = argv
        s3.delete_bucket(Bucket="swapdrop-teardown")


def test_readme_queries_only_outputs_the_template_has(template: dict[str, Any]) -> None:
    """Each `--query "Stacks[0].Outputs[?OutputKey=='X'].OutputValue"` in README finds X's value in a
    describe-stacks answer shaped like CloudFormation's (jmespath, as the aws CLI evaluates it)."""
    import jmespath

    outputs = template["Outputs"]
    answer = {"Stacks": [{"Outputs": [{"OutputKey": key, "OutputValue": f"value-of-{key}"} for key in outputs]}]}
    queries = re.findall(r'--query "([^"]+)"', readme_text())
    assert len(queries) >= 3, queries
    for query in queries:
        key = re.fullmatch(r"Stacks\[0\]\.Outputs\[\?OutputKey=='(\w+)'\]\.OutputValue", query)
        assert key, f"README queries something other than one output: {query}"
        assert key.group(1) in outputs, f"README reads the output {key.group(1)}, which template.yaml lacks"
        assert jmespath.search(query, answer) == [f"value-of-{key.group(1)}"]
