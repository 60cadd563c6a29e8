"""jupyterhub_config.py (cluster): the pods KubeSpawner 7 builds from it, offline, and its refusals."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
from hub_support import CLUSTER_CONFIG, DUMMY_KUBECONFIG, build_pod, load_config

K8S_VERSION = "1.37.0"
CPU_IMAGE = "quay.io/jupyter/tensorflow-notebook:tensorflow-2.21.0"
GPU_IMAGE = "quay.io/jupyter/tensorflow-notebook:cuda-tensorflow-2.21.0"


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory):
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(DUMMY_KUBECONFIG)
    return path


@pytest.fixture
def hub_env(monkeypatch, kubeconfig):
    """The environment the manifests give the hub: a real authenticator and its password."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("HUB_AUTHENTICATOR", "shared-password")
    monkeypatch.setenv("HUB_SHARED_PASSWORD", "correct-horse-battery")
    for name in (
        "HUB_EXTRA_CONFIG",
        "HUB_ALLOW_DUMMY_AUTH",
        "HUB_CPU_IMAGES",
        "HUB_CPU_LIMIT",
        "HUB_MEM_LIMIT",
        "HUB_ALLOWED_USERS",
        "HUB_ALLOW_ALL",
        "HUB_ADMIN_USERS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def container(pod: dict) -> dict:
    (notebook,) = pod["spec"]["containers"]
    return notebook


def env_of(pod: dict) -> dict:
    return {e["name"]: e.get("value") for e in container(pod)["env"]}


@pytest.mark.parametrize(
    "profile, image, requests, limits",
    [
        ("tensorflow-cpu", CPU_IMAGE, {"cpu": 0.5, "memory": 1024**3}, {"cpu": 2.0, "memory": 4 * 1024**3}),
        (
            "tensorflow-gpu",
            GPU_IMAGE,
            {"cpu": 1.0, "memory": 4 * 1024**3},
            {"cpu": 4.0, "memory": 16 * 1024**3, "nvidia.com/gpu": "1"},
        ),
    ],
)
def test_hub_profile_pod_is_locked_down_and_points_at_the_cluster(hub_env, profile, image, requests, limits):
    pod, pvc = build_pod(load_config(CLUSTER_CONFIG), {"profile": profile})
    notebook = container(pod)

    assert notebook["image"] == image
    assert notebook["resources"] == {"requests": requests, "limits": limits}
    assert pod["spec"]["serviceAccountName"] == "jupyter-notebook"
    assert pod["spec"]["automountServiceAccountToken"] is True
    assert pod["spec"]["securityContext"] == {"fsGroup": 100}
    assert notebook["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 100,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    env = env_of(pod)
    assert env["KUBEFLOW_JUPYTER_BACKEND"] == "kubernetes"
    # KubeSpawner spawns into the users' namespace (not the hub's), and TFJobs go there too.
    assert env["KUBEFLOW_JUPYTER_NAMESPACE"] == "kubeflow-user"
    assert env["KUBEFLOW_JUPYTER_MODEL_SERVER"] == "model-service:9000"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    assert (
        notebook["args"][0] == "jupyterhub-singleuser" or notebook.get("command", [None])[0] == "jupyterhub-singleuser"
    )

    # Persistent home: the pod mounts the user's own claim, which KubeSpawner creates.
    assert {"mountPath": "/home/jovyan", "name": "home"} in notebook["volumeMounts"]
    assert {"name": "home", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}} in pod["spec"]["volumes"]
    assert pvc["metadata"]["name"] == "claim-ada"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"

    gpu_tolerated = any(t.get("key") == "nvidia.com/gpu" for t in pod["spec"].get("tolerations", []))
    assert gpu_tolerated == (profile == "tensorflow-gpu")

    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    kubernetes_validate.validate(pvc, K8S_VERSION, strict=True)


def test_hub_default_profile_is_tensorflow_cpu(hub_env):
    pod, _ = build_pod(load_config(CLUSTER_CONFIG), {})
    assert container(pod)["image"] == CPU_IMAGE
    assert "nvidia.com/gpu" not in container(pod)["resources"]["limits"]


def test_hub_env_overrides_resources_images_and_model_server(hub_env):
    second = "registry.example.com/team/notebook:2.21-kfj"
    hub_env.setenv("HUB_CPU_IMAGES", f"{CPU_IMAGE}, {second}")
    hub_env.setenv("HUB_CPU_LIMIT", "3")
    hub_env.setenv("HUB_MEM_LIMIT", "6G")
    hub_env.setenv("HUB_MODEL_SERVER", "serving.models:9000")
    hub_env.setenv("HUB_NOTEBOOK_SERVICE_ACCOUNT", "team-notebook")
    config = load_config(CLUSTER_CONFIG)

    pod, _ = build_pod(config, {"profile": "tensorflow-cpu", "image": "image-1"})
    assert container(pod)["image"] == second
    assert container(pod)["resources"]["limits"] == {"cpu": 3.0, "memory": 6 * 1024**3}
    assert env_of(pod)["KUBEFLOW_JUPYTER_MODEL_SERVER"] == "serving.models:9000"
    assert pod["spec"]["serviceAccountName"] == "team-notebook"
    assert pod["spec"]["automountServiceAccountToken"] is True


def test_hub_notebooks_without_their_account_get_no_token(hub_env):
    """The token is mounted only for the notebook account whose Role the TFJob client needs."""
    hub_env.setenv("HUB_NOTEBOOK_SERVICE_ACCOUNT", "default")
    pod, _ = build_pod(load_config(CLUSTER_CONFIG), {})
    assert pod["spec"].get("serviceAccountName") in (None, "default")
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_hub_notebook_namespace_is_a_setting(hub_env):
    hub_env.setenv("HUB_NOTEBOOK_NAMESPACE", "team-notebooks")
    config = load_config(CLUSTER_CONFIG)
    assert config.KubeSpawner.namespace == "team-notebooks"
    pod, _ = build_pod(config, {})
    assert env_of(pod)["KUBEFLOW_JUPYTER_NAMESPACE"] == "team-notebooks"


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"profile": "tensorflow-cpu", "image--unlisted-choice": "evil.example/miner:1"},  # free text: refused
            "unlisted_choice for image without being enabled",
        ),
        (
            {"profile": "tensorflow-cpu", "image": "not-a-choice"},  # KubeSpawner alone: a bare KeyError
            f"Image 'not-a-choice' is not offered by profile 'TensorFlow (CPU)'; choose one of: image-0 ({CPU_IMAGE})",
        ),
        ({"profile": "no-such-profile"}, "No such profile: no-such-profile. Options include: tensorflow-cpu"),
    ],
)
def test_hub_spawn_options_outside_the_lists_are_refused_with_what_is_offered(hub_env, options, message):
    with pytest.raises(ValueError) as refused:
        build_pod(load_config(CLUSTER_CONFIG), options)
    assert message in str(refused.value)


def test_hub_profile_options_offer_no_free_text(hub_env):
    config = load_config(CLUSTER_CONFIG)
    for profile in config.KubeSpawner.profile_list:
        for option in profile["profile_options"].values():
            assert option["unlisted_choice"] == {"enabled": False}
            assert option["choices"]


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("HUB_MEM_LIMIT", "2 GB", "HUB_MEM_LIMIT"),
        ("HUB_CPU_LIMIT", "-1", "HUB_CPU_LIMIT"),
        ("HUB_CPU_IMAGES", "tensorflow-notebook", "not a pinned image reference"),
        ("HUB_GPU_IMAGES", "quay.io/jupyter/tensorflow-notebook:latest", "not :latest"),
        ("HUB_ALLOW_ALL", "maybe", "HUB_ALLOW_ALL"),
    ],
)
def test_hub_bad_env_value_stops_the_hub_naming_the_variable(hub_env, name, value, fragment):
    hub_env.setenv(name, value)
    with pytest.raises(SystemExit, match=fragment):
        load_config(CLUSTER_CONFIG)


def _profile(**override) -> str:
    """An extra profile appended from $HUB_EXTRA_CONFIG, the documented way to add one."""
    return (
        "c.KubeSpawner.profile_list.append({'slug': 'extra', 'display_name': 'Extra', "
        f"'kubespawner_override': {override!r}}})"
    )


@pytest.mark.parametrize(
    "extra, fragment",
    [
        # The 2018 Kubeflow config's names: traitlets would only log them.
        (
            "c.KubeSpawner.singleuser_image_spec = 'gcr.io/kubeflow/tensorflow-notebook-cpu:v1'",
            "use c.KubeSpawner.image",
        ),
        ("c.KubeSpawner.cpu_limt = 4.0", "did you mean 'cpu_limit'"),
        ("c.KubeSpawnr.cpu_limit = 4.0", "did you mean c.KubeSpawner"),
        # Inside kubespawner_override KubeSpawner would set a dead attribute without a word.
        (_profile(singleuser_uid=0), "use profile 'extra'.kubespawner_override.uid"),
        (_profile(mem_limit="lots"), "mem_limit='lots'"),
        (
            "c.KubeSpawner.profile_list.append({'slug': 'free', 'display_name': 'Free', 'profile_options': "
            "{'image': {'display_name': 'Image', 'choices': {}, 'unlisted_choice': {'enabled': True}}}})",
            "allows free text",
        ),
    ],
)
def test_hub_names_jupyterhub_would_ignore_stop_the_hub(hub_env, tmp_path, extra, fragment):
    extra_config = tmp_path / "extra_config.py"
    extra_config.write_text(f"c = get_config()\n{extra}\n")
    hub_env.setenv("HUB_EXTRA_CONFIG", str(extra_config))
    with pytest.raises(SystemExit, match=re.escape(fragment)):
        load_config(CLUSTER_CONFIG)


def test_hub_extra_config_adds_a_profile(hub_env, tmp_path):
    extra_config = tmp_path / "extra_config.py"
    extra_config.write_text(
        "c = get_config()\n"
        + _profile(cpu_limit=8.0, mem_limit="32G", image="registry.example.com/big:1.0")
        + "\nc.KubeSpawner.storage_capacity = '50Gi'\n"
    )
    hub_env.setenv("HUB_EXTRA_CONFIG", str(extra_config))
    pod, pvc = build_pod(load_config(CLUSTER_CONFIG), {"profile": "extra"})
    assert container(pod)["image"] == "registry.example.com/big:1.0"
    assert container(pod)["resources"]["limits"] == {"cpu": 8.0, "memory": 32 * 1024**3}
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_hub_requires_an_authenticator(hub_env):
    hub_env.delenv("HUB_AUTHENTICATOR")
    with pytest.raises(SystemExit, match="no authenticator chosen"):
        load_config(CLUSTER_CONFIG)


def test_hub_refuses_dummy_authenticator_unless_allowed(hub_env):
    hub_env.setenv("HUB_AUTHENTICATOR", "dummy")
    with pytest.raises(SystemExit, match="dummy authenticator"):
        load_config(CLUSTER_CONFIG)
    hub_env.setenv("HUB_AUTHENTICATOR", "jupyterhub.auth.DummyAuthenticator")
    with pytest.raises(SystemExit, match="dummy authenticator"):
        load_config(CLUSTER_CONFIG)
    hub_env.setenv("HUB_ALLOW_DUMMY_AUTH", "true")
    from jupyterhub.auth import DummyAuthenticator

    assert issubclass(load_config(CLUSTER_CONFIG).JupyterHub.authenticator_class, DummyAuthenticator)


def test_hub_refuses_shared_password_without_a_password(hub_env):
    hub_env.delenv("HUB_SHARED_PASSWORD")
    with pytest.raises(SystemExit, match="tf-hub-auth"):
        load_config(CLUSTER_CONFIG)


def test_hub_unknown_authenticator_is_named(hub_env):
    hub_env.setenv("HUB_AUTHENTICATOR", "no-such-auth")
    with pytest.raises(SystemExit, match="'no-such-auth' is not installed"):
        load_config(CLUSTER_CONFIG)


def test_hub_idle_culler_runs_with_only_the_culling_scopes(hub_env):
    from jupyterhub.scopes import scope_definitions

    config = load_config(CLUSTER_CONFIG)
    (culler,) = config.JupyterHub.services
    assert culler["name"] == "jupyterhub-idle-culler"
    assert culler["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    assert "--timeout=3600" in culler["command"]
    assert not any(arg.startswith("--cull-users") for arg in culler["command"])
    (role,) = config.JupyterHub.load_roles
    assert role["services"] == ["jupyterhub-idle-culler"]
    assert sorted(role["scopes"]) == ["delete:servers", "list:users", "read:servers", "read:users:activity"]
    assert all(scope in scope_definitions for scope in role["scopes"])
