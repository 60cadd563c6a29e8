"""Model serving: TensorFlow Serving's APIs from the notebook, and a local server that speaks them.

Asking a model server:

- :mod:`.client` — ``PredictionClient``: Predict / Classify / metadata / status over gRPC or REST,
  with errors (:mod:`.errors`) that say what is wrong and what is served;
- :mod:`.inception` — ``classify_images``: the seed's Inception request, top-5 per image;
- :mod:`.background`, :mod:`.display` — what ``%model`` and the ModelQuery widget build on;
- :mod:`.export` — ``export_image_classifier``: a Keras classifier with the seed's signatures.

The local server (``kubeflow-jupyter serve``, :mod:`.cli`), one job per module, each depending only on those below it:

- :mod:`.server` — ``ModelServer`` / ``serve``: starts and stops the store and both transports;
- :mod:`.grpc_service` / :mod:`.rest_service` (+ :mod:`.rest_json`, on the :mod:`.httpd` front end) —
  the two transports, each only a codec over the core;
- :mod:`.core` — a request from model spec to answer: resolve, signature checks, limits, TF Serving's errors;
- :mod:`.signatures` — Predict / Classify / Regress semantics on numpy arrays;
- :mod:`.model_store` — the versions on disk, labels, the polling thread;
- :mod:`.loading` — a SavedModel version loaded as TF Serving loads it; :mod:`.batching` — its batched calls;
- :mod:`.tensors` (request tensors checked before allocation), :mod:`.memory` (malloc_trim after large
  requests), :mod:`.server_errors` (status code + message).

Importing this package imports nothing heavy: grpc and TensorFlow load with the module that needs them.
"""
