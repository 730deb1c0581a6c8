"""Every problem of a graph at once: what reading the file finds does not hide what validation finds, and the
training-wiring checks run even when other things are wrong."""
from __future__ import annotations

import json

import pytest

import nodegraph
from nodegraph.errors import GraphError
from nodegraph.prepare import problems_of

from editor_server import ROOT

GRAPHS = ROOT / "graphs"


def teapot_training_nothing() -> tuple[dict, str]:
    """The teapot document with its trainer told to train a node that does not exist (a training-wiring
    problem), and the trainer's id."""
    doc = json.loads((GRAPHS / "camera_pose_teapot.json").read_text())
    trainer = next(n for n in doc["nodes"] if n["type"] == "Optimize")
    trainer["params"]["train"] = ["nope"]
    return doc, trainer["id"]


def broken_teapot() -> tuple[dict, str]:
    doc, trainer = teapot_training_nothing()
    doc["bogus"] = 1  # a reading problem
    doc["nodes"].append({"id": "x", "type": "NoSuch"})  # a validation problem
    doc["links"].append({"from": "ab", "to": ["x", "y"]})  # a reading problem
    return doc, trainer


def test_reading_validation_and_wiring_problems_come_together(tmp_path):
    doc, trainer = broken_teapot()
    (tmp_path / "g.json").write_text(json.dumps(doc))
    expected = {(None, "bogus"), (None, "links[28]"), ("x", "type"), (trainer, "train")}
    for attempt in (lambda: nodegraph.loads(json.dumps(doc), base_dir=GRAPHS),
                    lambda: nodegraph.load(tmp_path / "g.json")):
        with pytest.raises(GraphError) as info:
            attempt()
        assert expected <= {(p.node, p.field) for p in info.value.problems}, info.value
    assert expected <= {(p.node, p.field) for p in problems_of(doc, base_dir=GRAPHS)}


def test_wiring_is_checked_when_a_param_is_wrong_too():
    doc, trainer = teapot_training_nothing()
    other = next(n for n in doc["nodes"] if n["type"] == "LoadMesh")
    other["params"]["file"] = "no/such.obj"
    found = {(p.node, p.field) for p in problems_of(doc, base_dir=GRAPHS)}
    assert {(trainer, "train"), (other["id"], "file")} <= found
