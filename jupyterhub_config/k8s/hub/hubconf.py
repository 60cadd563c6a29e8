"""Helpers shared by the cluster and the local hub configuration.

This file travels next to ``jupyterhub_config.py`` in the hub's ConfigMap, so it
may import only what a stock JupyterHub image has (jupyterhub, traitlets and,
for the cluster, kubespawner): never ``kubeflow_jupyter``.

Three jobs:

* read every admin-tunable value from an environment variable, with a typed,
  named error when the value is malformed (``Setting`` / ``SETTINGS``);
* refuse configuration that JupyterHub would silently ignore: unknown or
  deprecated trait names, in ``c.<Class>`` sections and inside KubeSpawner's
  ``kubespawner_override`` dictionaries (``check_config``);
* build the pieces both hubs share: the idle-culler service with its
  least-privilege role, and the authenticator choice.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any


class HubConfigError(SystemExit):
    """A configuration mistake: JupyterHub exits with this message and nothing starts."""

    def __init__(self, message: str):
        super().__init__(f"hub configuration error: {message}")


# -- environment settings -----------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One environment variable an admin may set instead of editing the config file."""

    name: str
    default: str
    help: str


# Every variable read through ``setting()``, in reading order: docs/hub.md and
# the tests walk this registry, so an undocumented knob cannot slip in.
SETTINGS: dict[str, Setting] = {}


def setting(name: str, default: Any, help: str, cast: Callable[[str], Any] = str) -> Any:
    """The value of $name converted by ``cast``, else ``default``; a bad value stops the hub."""
    SETTINGS[name] = Setting(name, "" if default is None else str(default), help)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        if not isinstance(default, str) or cast is str:
            return default
        raw = default  # string defaults go through the same conversion as admin values
    try:
        return cast(raw.strip())
    except (TypeError, ValueError) as e:
        raise HubConfigError(f"${name}={raw!r} is not valid: {e}. {help}") from None


def as_bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("use 1/0, true/false, yes/no or on/off")


def as_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def as_positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def as_byte_size(raw: str) -> str:
    """KubeSpawner's byte units: an integer with an optional K, M, G or T suffix ("2G")."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?[KMGT]?", raw):
        raise ValueError('use a number with an optional K, M, G or T suffix, like "2G"')
    return raw


# A container image reference as the registry grammar allows it, always with a tag
# or digest: an image without one silently means ":latest", which is not reproducible.
_IMAGE_RE = re.compile(
    r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})"
)


def as_image_list(raw: str) -> list[str]:
    images = as_list(raw)
    if not images:
        raise ValueError("list at least one image")
    for image in images:
        if not _IMAGE_RE.fullmatch(image) or image.endswith(":latest"):
            raise ValueError(
                f"{image!r} is not a pinned image reference: write registry/name:tag "
                "(not :latest) or name@sha256:digest"
            )
    return images


# -- fail loudly on names JupyterHub would ignore -------------------------------


def _configurable_classes(classes: list[type]) -> dict[str, type]:
    """Every Configurable class (and base) whose name can appear as a ``c.<Name>`` section."""
    from traitlets.config import Configurable

    found: dict[str, type] = {}
    for cls in classes:
        for base in cls.__mro__:
            if isinstance(base, type) and issubclass(base, Configurable) and base is not Configurable:
                found.setdefault(base.__name__, base)
    return found


def _unknown_name(name: str, known: list[str], where: str, deprecated: dict[str, tuple[str, str]]) -> str:
    if name in deprecated:
        return f"{where}.{name} was renamed: use {where}.{deprecated[name][0]}"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}.{name} is not a setting of {where}{hint}"


def check_config(config, classes: list[type]) -> None:
    """Stop the hub on any config name the given classes do not define.

    traitlets only logs "Config option X not recognized" and KubeSpawner's
    ``kubespawner_override`` simply sets an unused attribute, so a 2018-era
    ``singleuser_image_spec`` or a typo would otherwise be dropped without a word.
    """
    known_classes = _configurable_classes(classes)
    problems: list[str] = []
    for section in list(config.keys()):
        if not section[:1].isupper():
            continue
        cls = known_classes.get(section)
        if cls is None:
            close = difflib.get_close_matches(section, list(known_classes), n=1, cutoff=0.85)
            if close:
                problems.append(f"c.{section} is not a configurable class (did you mean c.{close[0]}?)")
            continue
        traits = cls.class_trait_names(config=True)
        deprecated = getattr(cls, "_deprecated_traits", {})
        for name in config[section]:
            if name not in traits:
                problems.append(_unknown_name(name, traits, f"c.{section}", deprecated))
    spawner = known_classes.get("KubeSpawner")
    if spawner is not None and "KubeSpawner" in config and "profile_list" in config.KubeSpawner:
        profiles = config.KubeSpawner.profile_list
        if not callable(profiles):
            problems.extend(check_profile_list(profiles, spawner))
    if problems:
        raise HubConfigError("; ".join(problems))


def _check_overrides(overrides: dict, spawner_cls: type, where: str) -> list[str]:
    from traitlets import HasTraits

    holder = HasTraits()  # trait validators need an instance; this one has no side effects
    traits = spawner_cls.class_traits(config=True)
    deprecated = getattr(spawner_cls, "_deprecated_traits", {})
    problems = []
    for name, value in overrides.items():
        if name not in traits:
            problems.append(_unknown_name(name, list(traits), f"{where}.kubespawner_override", deprecated))
        elif not callable(value) and not isinstance(value, dict):
            # Validate now with the trait's own type, so "2 G" fails at start-up,
            # not at a user's spawn. Dicts are merged by KubeSpawner: checked by key only.
            try:
                traits[name].validate(holder, value)
            except Exception as e:  # traitlets raises TraitError; others mean the same here
                problems.append(f"{where}.kubespawner_override.{name}={value!r}: {e}")
    return problems


def check_profile_list(profiles: list[dict], spawner_cls: type) -> list[str]:
    """Names, types and choices in a KubeSpawner profile_list."""
    problems: list[str] = []
    slugs = [p.get("slug") for p in profiles]
    if len(set(slugs)) != len(slugs):
        problems.append(f"profile_list has duplicate slugs: {slugs}")
    for profile in profiles:
        where = f"profile {profile.get('slug', profile.get('display_name'))!r}"
        problems += _check_overrides(profile.get("kubespawner_override", {}), spawner_cls, where)
        for option_name, option in profile.get("profile_options", {}).items():
            option_where = f"{where} option {option_name!r}"
            if option.get("unlisted_choice", {}).get("enabled"):
                problems.append(f"{option_where} allows free text (unlisted_choice): list the choices instead")
            if not option.get("choices"):
                problems.append(f"{option_where} has no choices")
            for choice_name, choice in option.get("choices", {}).items():
                problems += _check_overrides(
                    choice.get("kubespawner_override", {}), spawner_cls, f"{option_where} choice {choice_name!r}"
                )
    return problems


def unoffered_choice(user_options: dict, profiles: list[dict]) -> str | None:
    """What is wrong when a spawn names a choice its profile does not list (None when all is offered).

    KubeSpawner 7 checks the profile and free-text choices itself but looks listed
    choices up unchecked, so a stale spawn form or an API call naming another
    image failed with a bare KeyError.
    """
    slug = user_options.get("profile")
    profile = next((p for p in profiles if p.get("slug") == slug), None) if slug else None
    if profile is None:  # no profile, or an unknown one: KubeSpawner's own message names the profiles
        return None
    for name, option in profile.get("profile_options", {}).items():
        choice = user_options.get(name)
        choices = option.get("choices", {})
        if choice and not user_options.get(f"{name}--unlisted-choice") and choice not in choices:
            offered = ", ".join(f"{key} ({c.get('display_name', key)})" for key, c in choices.items())
            return (
                f"{option.get('display_name', name)} {choice!r} is not offered by profile "
                f"{profile.get('display_name', slug)!r}; choose one of: {offered}"
            )
    return None


# -- the local hub (`make run`): defaults local_config.py and run_local.py share -----------

LOCAL_HUB_PORT = 8000  # http://127.0.0.1:PORT, the proxy's public side
LOCAL_API_PORT = 8081  # the hub's own API
LOCAL_PROXY_API_PORT = 8001
ROOT_HUB_USER = "jovyan"  # the unprivileged account notebook servers run as when the hub is root

# -- shared pieces ----------------------------------------------------------------

IDLE_CULLER = "jupyterhub-idle-culler"
# Exactly what jupyterhub-idle-culler needs to stop idle servers (not to delete
# users): the same scopes Zero to JupyterHub grants it.
IDLE_CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def idle_culler(c, timeout: int, every: int) -> None:
    """Run the idle culler as a hub-managed service holding only the culling scopes."""
    if timeout <= 0:
        return
    services = c.JupyterHub.services if "services" in c.JupyterHub else []
    roles = c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else []
    c.JupyterHub.services = [
        *[s for s in services if s.get("name") != IDLE_CULLER],
        {
            "name": IDLE_CULLER,
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={timeout}",
                f"--cull-every={every}",
            ],
        },
    ]
    c.JupyterHub.load_roles = [
        *[r for r in roles if r.get("name") != IDLE_CULLER],
        {"name": IDLE_CULLER, "scopes": list(IDLE_CULLER_SCOPES), "services": [IDLE_CULLER]},
    ]


def authenticator_class(name: str) -> type:
    """Resolve an authenticator given as an entry-point name ("github") or "module:Class"/"module.Class"."""
    import importlib

    registered = {ep.name: ep for ep in entry_points(group="jupyterhub.authenticators")}
    if name in registered:
        return registered[name].load()
    module, _, attr = name.replace(":", ".").rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        known = ", ".join(sorted(registered))
        raise HubConfigError(
            f"authenticator {name!r} is not installed: use one of {known}, or module.ClassName of an installed package"
        ) from None


# Logged once at start-up while the settings let nobody in (JupyterHub's own warning
# spans four lines and names c.Authenticator traits this hub sets from HUB_* variables).
NOBODY_ALLOWED = (
    "no user can log in yet: set HUB_ALLOWED_USERS (e.g. HUB_ALLOWED_USERS=alice,bob) or HUB_ALLOW_ALL=true "
    "in the tf-hub-settings ConfigMap, or an allow setting of the authenticator (docs/hub.md step 3)"
)


def saying_when_nobody_may_log_in(cls: type) -> type:
    """``cls`` whose start-up check says in one line, naming the settings, that nobody may log in yet.

    Since JupyterHub 5 only users a setting allows may log in: failing safe is right, but
    an admin must learn which setting. The authenticator's own checks (shared-password's
    about its passwords) still run; the subclass keeps the name JupyterHub logs.
    """

    def check_allow_config(self) -> None:
        if self.any_allow_config:  # JupyterHub's test: a truthy allow* or allow_config-tagged setting
            super(announcing, self).check_allow_config()
            return
        self.log.warning(NOBODY_ALLOWED)
        self.any_allow_config = True  # the documented switch for JupyterHub's own version of that line
        try:
            super(announcing, self).check_allow_config()
        finally:
            self.any_allow_config = False

    announcing = type(
        cls.__name__,
        (cls,),
        {"check_allow_config": check_allow_config, "__module__": cls.__module__, "__doc__": cls.__doc__},
    )
    return announcing


def is_dummy(cls: type) -> bool:
    """The dummy authenticator (or a subclass) lets anyone in with any password."""
    from jupyterhub.auth import DummyAuthenticator

    return issubclass(cls, DummyAuthenticator)
