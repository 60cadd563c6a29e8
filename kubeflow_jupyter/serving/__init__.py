"""Model serving: TensorFlow Serving's APIs from the notebook, and a local server that speaks them.

- :mod:`.client` — ``PredictionClient``: Predict / Classify / metadata / status over gRPC or REST,
  with errors that say what is wrong and what is served;
- :mod:`.inception` — ``classify_images``: the seed's Inception request, top-5 per image;
- :mod:`.server` — ``ModelServer``: gRPC + REST for ``BASE/<version>/`` SavedModels (``kubeflow-jupyter serve``);
- :mod:`.export` — ``export_image_classifier``: a Keras classifier with the seed's signatures;
- :mod:`.background`, :mod:`.display` — what ``%model`` and the ModelQuery widget build on.

Importing this package imports nothing heavy: grpc and TensorFlow load with the module that needs them.
"""
