"""The gRPC API: TF Serving's PredictionService and ModelService servicers over the core.

``tensorflow.serving.PredictionService`` (Predict, Classify, Regress,
GetModelMetadata) and ``ModelService.GetModelStatus`` on the message types of
``tensorflow-serving-api``. Each call is the core's (:mod:`.core`); a
:class:`~.server_errors.ServingStatus` becomes the call's status code and message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from .core import SERVED_MODELS_KEY, ModelServerCore, served_models
from .server_errors import ServingStatus

log = logging.getLogger(__name__)


def _grpc_call(method: Callable, core: ModelServerCore) -> Callable:
    def handler(request, context: grpc.ServicerContext):
        try:
            return method(request)
        except ServingStatus as status:
            if status.code == "NOT_FOUND":
                context.set_trailing_metadata(((SERVED_MODELS_KEY, served_models(core.store)),))
            context.abort(getattr(grpc.StatusCode, status.code), status.message)
        except MemoryError:
            log.exception("request failed")
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the server ran out of memory for this request")
        except Exception as e:  # keep serving whatever one request hit
            log.exception("request failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    return handler


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ModelServerCore):
        self.Predict = _grpc_call(core.predict, core)
        self.Classify = _grpc_call(core.classify, core)
        self.Regress = _grpc_call(core.regress, core)
        self.GetModelMetadata = _grpc_call(core.metadata, core)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ModelServerCore):
        self.GetModelStatus = _grpc_call(core.status, core)


def grpc_server(workers: int = 16, max_receive_bytes: int = 256 << 20) -> grpc.Server:
    """The gRPC server the model server runs on (the benchmark's no-op servicer uses the same)."""
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        options=[("grpc.max_receive_message_length", max_receive_bytes), ("grpc.max_send_message_length", 256 << 20)],
    )


def grpc_message_limit(max_request_tensor_bytes: int) -> int:
    """The largest gRPC request taken: four times the tensor limit (256 MiB by default), within gRPC's range."""
    return min(max(4 * max_request_tensor_bytes, 4 << 20), (1 << 31) - 1)


def add_services(server: grpc.Server, core: ModelServerCore) -> None:
    """PredictionService and ModelService on ``server``, both over ``core``."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), server)
