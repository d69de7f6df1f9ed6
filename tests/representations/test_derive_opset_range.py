"""``webmodels derive --opset LOW-HIGH``: the command line takes an opset range as pages
may ask one; a model already in the range is left as it is, any other is converted to
the highest opset in it. The command's own entry point in this process, on a real
store and runtime worker."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from representations.test_derive import dense_model
from support.host import webmodels_env
from webmodels.cli.main import main
from webmodels.config import Config
from webmodels.store.store import Store


def test_derive_takes_an_opset_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    model = dense_model(tmp_path / "dense.onnx")  # opset 17
    with Store.open(Config(home=home, log_dir=home / "logs")) as store:
        store.import_file(model, name="tests/dense", version="1.0.0")
    for key, value in webmodels_env(home).items():  # the command runs in this process
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    assert main(["--json", "derive", "tests/dense", "--opset", "18-19"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["recipe"]["opset"] == 19  # the highest in the range
    with Store.open(Config(home=home, log_dir=home / "logs")) as store:
        form = store.locate(next(r for r in store.list_models() if r.name != "tests/dense").digest)
        opsets = {o.domain: o.version for o in onnx.load(str(form.path)).opset_import}
        assert opsets.get("", opsets.get("ai.onnx")) == 19
    assert main(["derive", "tests/dense", "--opset", "15-19"]) != 0
    assert "nothing to derive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as backwards:
        main(["derive", "tests/dense", "--opset", "19-15"])
    assert backwards.value.code == 2 and "--opset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["derive", "--help"])
    assert "LOW-HIGH" in capsys.readouterr().out
