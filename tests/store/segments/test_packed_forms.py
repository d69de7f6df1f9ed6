"""A form derived from a source whose segments live in a pack file
(representations/form_segments.py sends the source's parts, now with each segment's
pack and offset): the worker reads the source from the pack, no view of it is
written, and the form reads back byte-identical to the same form derived from the
source's own segment files."""

from __future__ import annotations

from pathlib import Path

from representations.test_derive import (
    deriver_for,
    runtime,  # noqa: F401 (a fixture)
    stored,
)
from representations.test_forms_segments import OPSET, heavy_model, open_store, read_back
from store.segments.packing import move_into_pack, packed_digests
from webmodels.runtime.client import Runtime


def test_a_form_of_a_packed_source_reads_it_from_the_pack(
    tmp_path: Path,
    runtime: Runtime,  # noqa: F811
) -> None:
    source = heavy_model(tmp_path / "heavy.onnx")
    made = {}
    for packed in (False, True):
        with open_store(tmp_path / f"packed-{packed}", segments=True) as store:
            record = stored(store, source)
            if packed:
                move_into_pack(store, packed_digests(store, record.digest))
            form = deriver_for(store, runtime).form(record, OPSET, partition=None)
            made[packed] = read_back(store, form)
            views = store.segmented.view_dir
            assert not views.exists() or not any(views.iterdir())
    assert made[True] == made[False]
