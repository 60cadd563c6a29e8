"""JupyterHub for kubeflow-jupyter: cluster config, local config, launcher, manifests (docs/hub.md)."""
