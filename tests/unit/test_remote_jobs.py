"""The pure parts of the docker worker: a run's container spec from a rendered job template (names,
environment precedence, the API URL a container can reach, limits, validation)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tideflow.deployments._docker import container_api_url, container_spec
from tideflow.deployments._remote import RunInfo, job_command, job_name
from tideflow.schemas.work_pools import default_base_job_template, render_job

RUN = RunInfo(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"), name="witty-otter", deployment_id=None,
    flow_name="etl", pool="docker-pool", api_url="http://127.0.0.1:4300/api", api_key="tf_secret",
)  # fmt: skip


def _job(**variables: Any) -> dict[str, Any]:
    return render_job(default_base_job_template("docker"), variables)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:4300/api", "http://host.docker.internal:4300/api"),
        ("http://localhost/api", "http://host.docker.internal/api"),
        ("https://[::1]:8443/api", "https://host.docker.internal:8443/api"),
        ("https://tideflow.example.com/api", None),
        ("http://10.0.0.5:4200/api", None),
    ],
)
def test_loopback_api_urls_are_rewritten_for_containers(url: str, expected: str | None) -> None:
    assert container_api_url(url) == expected


def test_defaults_give_a_runnable_container() -> None:
    spec = container_spec(_job(), RUN)
    assert spec.create["image"] == "python:3.12-slim"
    assert spec.create["command"] == ["python", "-m", "tideflow.deployments._execute"]
    assert spec.create["name"] == "witty-otter-12345678"
    assert spec.create["environment"] == {
        "TIDEFLOW_API_URL": "http://host.docker.internal:4300/api",
        "TIDEFLOW_API_KEY": "tf_secret",
        "TIDEFLOW_FLOW_RUN_ID": str(RUN.id),
    }
    assert spec.create["extra_hosts"] == {"host.docker.internal": "host-gateway"}
    assert spec.pull_policy == "IfNotPresent" and not spec.auto_remove and spec.stream_output
    assert "network" not in spec.create and "volumes" not in spec.create


def test_job_env_wins_but_never_over_the_run_id() -> None:
    env = {
        "TIDEFLOW_API_URL": "http://api.internal:4200/api",
        "TIDEFLOW_FLOW_RUN_ID": "x",
        "A": "1",
    }
    spec = container_spec(_job(env=env), RUN)
    assert spec.create["environment"]["TIDEFLOW_API_URL"] == "http://api.internal:4200/api"
    assert spec.create["environment"]["TIDEFLOW_FLOW_RUN_ID"] == str(RUN.id)
    assert spec.create["environment"]["A"] == "1"
    assert "extra_hosts" not in spec.create  # the user's address is used as given


def test_limits_networks_labels_and_command() -> None:
    spec = container_spec(
        _job(networks=["a", "b", "c"], cpus=0.5, mem_limit="1g", command="sh -c 'run it'",
             labels={"io.tideflow.flow-run-id": "spoofed", "team": "x"}, auto_remove=True),
        RUN,
    )  # fmt: skip
    assert spec.create["network"] == "a" and spec.extra_networks == ["b", "c"]
    assert spec.create["nano_cpus"] == 500_000_000 and spec.create["mem_limit"] == "1g"
    assert spec.create["command"] == ["sh", "-c", "run it"]
    assert spec.create["labels"]["io.tideflow.flow-run-id"] == str(RUN.id)
    assert spec.create["labels"]["team"] == "x" and spec.auto_remove


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"image": ""}, "job variable image is required"),
        ({"image_pull_policy": "Sometimes"}, "image_pull_policy must be one of"),
        ({"volumes": ["/only-one-side"]}, "volume '/only-one-side' must be"),
        ({"networks": [""]}, "networks must be a list of non-empty strings"),
        ({"cpus": 0}, "cpus must be a positive number"),
    ],
)
def test_unusable_variables_are_named(variables: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        container_spec(_job(**variables), RUN)


def test_names_are_dns_labels() -> None:
    name = job_name({"name": "My Flow/Run ÄÖ " * 10}, RUN)
    assert len(name) <= 63 and name.endswith("-12345678")
    assert all(c.isalnum() or c == "-" for c in name) and name == name.lower()
    assert job_command({"command": ["a", 1]}) == ["a", "1"]


def test_kubernetes_job_manifest_from_the_default_template() -> None:
    from tideflow.deployments._kubernetes import job_manifest

    template = default_base_job_template("kubernetes")
    kube = job_manifest(render_job(template, {"namespace": "flows"}), RUN)
    assert kube.namespace == "flows" and kube.name == "witty-otter-12345678"
    spec = kube.manifest["spec"]
    assert spec["backoffLimit"] == 0 and "ttlSecondsAfterFinished" not in spec
    (container,) = spec["template"]["spec"]["containers"]
    assert "resources" not in container and "imagePullPolicy" not in container
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TIDEFLOW_API_URL"] == RUN.api_url  # not rewritten: a cluster has no host alias
    labels = job_manifest(render_job(template, {"labels": {"x": "a b/c"}}), RUN).manifest[
        "metadata"
    ]["labels"]
    assert labels["x"] == "a-b-c" and labels["tideflow.io/work-pool"] == "docker-pool"
    with pytest.raises(ValueError, match="finished_job_ttl"):
        job_manifest(render_job(template, {"finished_job_ttl": -1}), RUN)
