"""Test infrastructure shipped with the package so tests and benchmarks of every area can use it.

``fake_kube``: an HTTP stand-in for the Kubernetes API server plus a simulated
training-operator (no API server binary can run on the project's machines).
"""
