"""``webmodels derive`` and ``webmodels ls`` with derived forms, run as a user runs
them: a real ``python -m webmodels`` process on a store in a temporary folder. (A
form outside tolerance is refused: tests/representations/test_derive.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from representations.test_derive import dense_model
from support.host import run_cli
from webmodels.config import Config
from webmodels.store.store import Store


def test_derive_by_name_shows_progress_and_ls_lists_the_form_under_its_source(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    model = dense_model(tmp_path / "dense.onnx")
    with Store.open(Config(home=home, log_dir=home / "logs")) as store:  # as `import` does
        store.import_file(model, name="tests/dense", version="1.0.0")
    derived = run_cli(home, "--json", "derive", "tests/dense", "--dtype", "fp16")
    assert "deriving ..." in derived.stderr and "checking ..." in derived.stderr
    made = json.loads(derived.stdout)
    assert made["recipe"]["dtype"] == "fp16" and made["tools"]["onnxconverter_common"]
    assert 0 <= made["max_error"] <= made["tolerance"]
    listing = run_cli(home, "ls").stdout.splitlines()
    print("\n".join(listing))
    source_row = next(i for i, line in enumerate(listing) if "tests/dense" in line)
    form_row = listing[source_row + 1]
    assert made["sha256"][:12] in form_row and "└" in form_row and "fp16 form" in form_row
