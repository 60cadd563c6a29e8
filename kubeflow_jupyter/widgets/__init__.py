"""ipywidgets front ends: :class:`~.job_monitor.JobMonitor` (a live TFJob) and the model query panel.

Importing this package imports nothing: each widget module imports ipywidgets itself,
so ``%load_ext kubeflow_jupyter`` stays cheap until a widget is first shown.
"""
