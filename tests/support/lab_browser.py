"""Start a real JupyterLab and drive it in Debian's Chromium (shared by the lab and notebook UI tests and bench/)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STARTUP_SECONDS = 90


def write_user_settings(settings_dir: Path, theme: str = "JupyterLab Light") -> None:
    """No news prompt (it would cover the sidebar in screenshots); the theme to start with."""
    apputils = settings_dir / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True, exist_ok=True)
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    (apputils / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))


class Lab:
    def __init__(self, url: str, token: str, root: Path, process: subprocess.Popen):
        self.url, self.token, self.root, self.process = url, token, root, process

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        request = urllib.request.Request(
            f"{self.url}kubeflow-jupyter/api/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def delete_all_jobs(self) -> None:
        code, body = self.api("GET", "jobs")
        for job in (body or {}).get("jobs", []) if code == 200 else []:
            self.api("DELETE", f"jobs/{job['name']}")


@contextmanager
def running_lab(
    root: Path, home: Path, work: Path, theme: str = "JupyterLab Light", extra_args: tuple[str, ...] = ()
) -> Iterator[Lab]:
    """``jupyter lab`` on 127.0.0.1 and a random port, root ``root``, local store ``home``."""
    token = secrets.token_hex(16)
    port = free_port()
    settings = work / "settings"
    write_user_settings(settings, theme)
    env = {
        **os.environ,
        "KUBEFLOW_JUPYTER_HOME": str(home),
        "KUBEFLOW_JUPYTER_BACKEND": "local",
        "KUBECONFIG": os.devnull,
        "JUPYTER_CONFIG_DIR": str(work / "config"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
    }
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--allow-root",  # containers and CI often run as root; harmless otherwise
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={work / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # window.jupyterapp, as in JupyterLab's own UI tests (Galata): wait_for_lab() and
        # open_command_palette() use it.
        "--LabApp.expose_app_in_browser=True",
        *extra_args,
    ]
    with open(work / "jupyter-lab.log", "wb") as log:
        process = subprocess.Popen(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        lab = Lab(f"http://127.0.0.1:{port}/", token, root, process)
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited: see {work / 'jupyter-lab.log'}")
                try:
                    if lab.api("GET", "jobs")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab did not start in {STARTUP_SECONDS}s: see {work / 'jupyter-lab.log'}"
                    )
                time.sleep(0.2)
            yield lab
        finally:
            try:
                if process.poll() is None:
                    lab.delete_all_jobs()  # no replica outlives the test
            finally:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_for_lab(page) -> None:
    """Wait until the Lab in ``page`` is ready for a user, as JupyterLab's Galata helpers do.

    Its plugins are activated (``jupyterapp.started``), its layout is restored
    (``jupyterapp.restored``), the splash screen is gone, and the main area's current widget
    (on a fresh workspace, the Launcher that start-up creates) has the focus. Until then
    start-up still moves the focus, and the modal command palette closes as soon as it loses
    the focus: opened any earlier, it vanishes again.
    """
    page.wait_for_function("() => typeof window.jupyterapp === 'object'")
    page.evaluate("""() => {
        Promise.all([window.jupyterapp.started, window.jupyterapp.restored])
            .then(() => { window.kfjLabRestored = true; });
    }""")
    page.wait_for_function("() => window.kfjLabRestored === true")
    page.locator("#jupyterlab-splash").wait_for(state="detached")
    page.wait_for_function("""() => {
        const current = window.jupyterapp.shell.currentWidget;
        return !!current && current.node.contains(document.activeElement);
    }""")


def open_command_palette(page):
    """Open JupyterLab's command palette through the app's own command; returns the palette.

    ``apputils:activate-command-palette`` is what Ctrl+Shift+C runs; executing it directly
    does not depend on where the keyboard focus is. Returns once the modal palette is
    attached, visible and its search field has the focus (it closes when it loses it).
    """
    palette = page.locator("#modal-command-palette")
    palette.wait_for(state="attached")  # the palette becomes modal once Lab has restored its layout
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:activate-command-palette')")
    palette.wait_for(state="visible")
    search = palette.locator(".lm-CommandPalette-input")
    search.wait_for(state="visible")
    page.wait_for_function(
        "() => document.activeElement?.matches('#modal-command-palette .lm-CommandPalette-input') ?? false"
    )
    return palette


@contextmanager
def chromium(playwright) -> Iterator:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()
