"""A seeded fuzzer over the example graphs: every mutated document is either accepted or refused with the
product's own errors (GraphError / NodeError / Cancelled), never a raw exception.

Validation level: thousands of mutated documents through ``nodegraph.loads`` + ``validate`` (and a few
hundred through the server's PUT /api/document and POST /api/validate: never a 500, and the document stays
readable). Run level: a few dozen tiny CPU runs of small examples with extreme but valid-looking params.
``python tests/test_fuzz.py [cases]`` prints the same counts outside pytest.
"""
from __future__ import annotations

import json
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
EXAMPLES = sorted(GRAPHS.glob("*.json"))
OWN_ERRORS = ()  # filled in by _own_errors() so that importing this file alone stays light

NASTY_STRINGS = ["", " ", "\n", "a\nb.c: forged line", "\x00", "\x1b[31mred", "\ud800", "\udfff", "é" * 3,
                 "../../../../etc/passwd", "/etc/passwd", "/", ".", "..", "x" * 300, "é" * 200, "a" * 5000,
                 "assets", "assets/", "assets/cow_mesh", "assets/cow_mesh/cow.obj", "cow.obj\x00.png",
                 "{}", "[]", "null", "NaN", "1e999", "__proto__", "constructor", "%s%n", "\u202e"]
NASTY_NUMBERS = [0, -1, 1, -0.0, 0.5, 2, 3, 7, 255, 256, 4097, -4097, 2 ** 31, -2 ** 31, 2 ** 63, 2 ** 64,
                 10 ** 400, -(10 ** 400), 1e308, -1e308, 5e-324, -5e-324, 1e-300, float("nan"), float("inf"),
                 float("-inf"), 1e20, 123456789.123]


def _own_errors() -> tuple:
    from nodegraph.errors import Cancelled, GraphError, NodeError

    return (GraphError, NodeError, Cancelled)


# ------------------------------------------------------------------------------------------ mutations

def _values(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice(NASTY_NUMBERS)
    if kind == 1:
        return rng.choice(NASTY_STRINGS)
    if kind == 2:
        return rng.choice([None, True, False])
    if kind == 3:
        return rng.choice([[], {}, [0, 0, 0], [0.0] * 3, [1e308] * 3, [float("nan")] * 3, [[1, 2, 3]],
                           [0] * 100, ["a", "b"], {"a": 1}])
    if kind == 4:
        return rng.uniform(-1e6, 1e6) * rng.choice([1, 1e-9, 1e9])
    if kind == 5:
        return rng.randrange(-5, 5000)
    if kind == 6:
        return [_values(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 7:
        return {rng.choice(NASTY_STRINGS + ["pos", "id", "x"]): _values(rng, depth + 1) for _ in range(3)}
    nested: object = rng.choice([0, "x", None])
    for _ in range(rng.choice([10, 63, 64, 65, 200])):
        nested = [nested] if rng.random() < 0.5 else {"k": nested}
    return nested


def _spot(doc, rng: random.Random, want=None) -> tuple[object, object] | None:
    """A random (container, key) in the document, found by a random walk from the top (cheap: no copy, no
    full listing); ``want`` filters the value found there."""
    value, found = doc, None
    for _ in range(12):
        keys = list(value) if isinstance(value, dict) else range(len(value)) if isinstance(value, list) else []
        if not keys:
            break
        key = rng.choice(list(keys))
        if want is None or want(value[key]):
            found = (value, key)
        if not isinstance(value[key], (dict, list)) or (found and rng.random() < 0.25):
            break
        value = value[key]
    return found


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def mutate(doc: dict, rng: random.Random) -> dict:
    """One to three random edits of a copy of ``doc``: replace, swap type, delete, add a key, re-point a link,
    rename or duplicate an id, extreme numbers, nest."""
    doc = json.loads(json.dumps(doc))  # a deep copy, faster than copy.deepcopy
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(10)
        nodes = doc.get("nodes") if isinstance(doc.get("nodes"), list) else []
        links = doc.get("links") if isinstance(doc.get("links"), list) else []
        if op == 0 and (spot := _spot(doc, rng)):  # replace anything with anything
            container, key = spot
            container[key] = _values(rng)
        elif op == 1 and (spot := _spot(doc, rng, _is_number)):  # an extreme number where a number was
            container, key = spot
            container[key] = rng.choice(NASTY_NUMBERS)
        elif op == 2 and (spot := _spot(doc, rng)):  # delete a key or an item
            container, key = spot
            del container[key]
        elif op == 3:  # an extra key somewhere
            spot = _spot(doc, rng, lambda v: isinstance(v, dict))
            target = spot[0][spot[1]] if spot else doc
            target[rng.choice(NASTY_STRINGS + ["extra", "params", "ui"])] = _values(rng)
        elif op == 4 and links:  # re-point a link end
            link = rng.choice(links)
            if isinstance(link, dict):
                end = rng.choice(["from", "to"])
                ids = [n.get("id") for n in nodes if isinstance(n, dict)] or ["x"]
                link[end] = rng.choice([[rng.choice(ids), rng.choice(["mesh", "images", "x", "", "loss"])],
                                        rng.choice(ids), [rng.choice(ids)], [1, 2], None,
                                        [rng.choice(ids), rng.choice(ids), "x"]])
        elif op == 5 and nodes:  # rename or duplicate an id (links may now dangle or fork)
            node = rng.choice(nodes)
            if isinstance(node, dict):
                node["id"] = rng.choice(NASTY_STRINGS + [n.get("id") for n in nodes if isinstance(n, dict)])
        elif op == 6 and nodes:  # a node's type swapped for another node's
            a, b = rng.choice(nodes), rng.choice(nodes)
            if isinstance(a, dict) and isinstance(b, dict):
                a["type"] = b.get("type")
        elif op == 7 and nodes:  # a param given the wrong type
            node = rng.choice(nodes)
            if isinstance(node, dict) and isinstance(node.get("params"), dict) and node["params"]:
                name = rng.choice(sorted(node["params"], key=str))
                node["params"][name] = _values(rng)
        elif op == 8 and links:  # a link duplicated or reversed
            link = rng.choice(links)
            if isinstance(link, dict) and rng.random() < 0.5:
                links.append(dict(link))
            elif isinstance(link, dict):
                link["from"], link["to"] = link.get("to"), link.get("from")
        elif op == 9:  # a top-level field broken
            doc[rng.choice(["format", "name", "seed", "ui", "nodes", "links", "description"])] = _values(rng)
    return doc


def text_of(doc: dict, rng: random.Random) -> str:
    """The mutated document as JSON text, sometimes with a text-level fault (truncated, a byte changed)."""
    text = json.dumps(doc)
    roll = rng.random()
    if roll < 0.03:
        return text[: rng.randrange(len(text))]
    if roll < 0.06:
        i = rng.randrange(len(text))
        return text[:i] + rng.choice(["\x00", "}", "]", ",", "\"", "\\", "\ud800"]) + text[i + 1:]
    return text


# ------------------------------------------------------------------------------------------ validation level

def fuzz_validation(cases: int, seed: int = 11) -> Counter:
    """``cases`` mutated examples through loads + validate; counts accepted, refusals and crashes."""
    import nodegraph

    own = _own_errors()
    rng = random.Random(seed)
    bases = [json.loads(p.read_text()) for p in EXAMPLES]
    counts: Counter = Counter()
    crashes: list[str] = []
    for i in range(cases):
        text = text_of(mutate(rng.choice(bases), rng), rng)
        try:
            problems = nodegraph.loads(text, base_dir=GRAPHS).validate()
            for p in problems:
                assert isinstance(p.node, (str, type(None))) and "\n" not in str(p).split(": ", 1)[0]
            counts["refused" if problems else "accepted"] += 1
        except own:
            counts["refused"] += 1
        except Exception:  # noqa: BLE001 - what the fuzzer is here to find
            counts["crashes"] += 1
            crashes.append(f"case {i}: {traceback.format_exc(limit=-3)}")
    counts["cases"] = cases
    counts.crashes_text = crashes  # type: ignore[attr-defined]
    return counts


def test_fuzz_validation_thousands_of_mutated_graphs():
    start = time.perf_counter()
    counts = fuzz_validation(2000)
    seconds = time.perf_counter() - start
    print(f"\nfuzz validation: {counts['cases']} cases, {counts['refused']} refused, {counts['accepted']} accepted, "
          f"{counts['crashes']} crashes, {seconds:.1f} s")
    assert counts["crashes"] == 0, "\n".join(counts.crashes_text[:5])
    assert counts["refused"] > counts["cases"] // 2  # the mutations do reach the checks


def test_fuzz_a_graph_file_that_is_not_text(tmp_path):
    """Byte-level faults in a graph file on disk (not UTF-8, NUL, truncated) are refused as GraphErrors."""
    import nodegraph

    rng = random.Random(5)
    raw = (GRAPHS / "render_textured_cow.json").read_bytes()
    own = _own_errors()
    for i in range(60):
        data = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.choice([0x00, 0xff, 0xc3, 0x80, 0x7b, 0x22])
        (tmp_path / "g.json").write_bytes(bytes(data[: rng.randrange(len(data) // 2, len(data) + 1)]))
        try:
            nodegraph.load(tmp_path / "g.json").validate()
        except own:
            pass


# ------------------------------------------------------------------------------------------ server level

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from editor_server import library_server

    yield from library_server(tmp_path_factory, "fuzz")


def test_fuzz_the_server_put_and_validate_paths(server):
    rng = random.Random(23)
    bases = [json.loads(p.read_text()) for p in EXAMPLES[:6]]
    statuses: Counter = Counter()
    for i in range(150):
        doc = mutate(rng.choice(bases), rng)
        text = json.dumps({"doc": doc}).encode()
        route = ("PUT", "/document") if i % 2 else ("POST", "/validate")
        r = server.api(*route, content=text, headers={"Content-Type": "application/json"})
        statuses[r.status_code] += 1
        assert r.status_code in (200, 400), (route, r.status_code, r.text[:500])
        if r.status_code == 200:
            assert isinstance(r.json()["problems"], list)
    got = server.api("GET", "/document")
    assert got.status_code == 200 and isinstance(got.json()["doc"], dict)  # the editor stays usable
    assert server.api("GET", "/download").status_code in (200, 400)
    print(f"\nfuzz server: 150 requests, statuses {dict(statuses)}")


# ------------------------------------------------------------------------------------------ run level

TINY = ["render_textured_cow.json", "render_coloured_points.json", "volume_rendering_steps.json",
        "lighting_and_shading.json"]  # small examples; _tiny makes them run in a fraction of a second


def _tiny(session) -> None:
    for node in session.graph.nodes.values():
        for name in ("image_size", "image_height", "image_width"):
            if isinstance(node.params.get(name), int):
                node.params[name] = 16
        for name, small in (("n_pts_per_ray", 8), ("num_samples", 500), ("n_frames", 2), ("iterations", 2),
                            ("resolution", 8), ("faces_per_pixel", 2)):
            if name in node.params:
                node.params[name] = small


RUN_VALUES = [0, -1, 1e308, -1e308, 5e-324, 1e-300, 1e20, 1e30, 2 ** 31, 0.5, 1e-3, 10.0, 100.0, [0, 0, 0],
              [1e308] * 3, [5e-324] * 3, [1e20] * 3, [0.5] * 3, [-1.0, 0.0, 1.0], [0.0, 0.0, 2.7]]


def test_fuzz_tiny_runs_with_extreme_params(tmp_path):
    """Param values that are numbers of the right kind but extreme: accepted and run, or refused by name."""
    import torch

    import nodegraph

    torch.set_num_threads(1)
    own = _own_errors()
    rng = random.Random(7)
    counts: Counter = Counter()
    crashes: list[str] = []
    start = time.perf_counter()
    sessions = {}
    for name in TINY:
        s = nodegraph.load(GRAPHS / name)
        _tiny(s)
        sessions[name] = s
    for i in range(60):
        name = TINY[i % len(TINY)]
        s = sessions[name]
        spots = sorted((n, k) for n, doc in s.graph.nodes.items() for k, v in doc.params.items()
                       if isinstance(v, (int, float, list)) and not isinstance(v, bool))
        node, key = rng.choice(spots)
        params = s.graph.nodes[node].params
        value = rng.choice([v for v in RUN_VALUES if isinstance(v, list) == isinstance(params[key], list)] or [0])
        before, links = params[key], list(s.graph.links)
        params[key] = value
        if i % 3 == 0:  # and a link dropped: an optional input left open (a shader without cameras), or not;
            # not the raster settings, whose defaults (256 px) are no longer a tiny run
            droppable = [k for k, l in enumerate(links) if l.dst_port != "settings"]
            s.graph.links.pop(rng.choice(droppable))
        try:
            s.run(device="cpu", out_dir=tmp_path / "out")
            counts["ran"] += 1
        except own as exc:
            if type(exc).__name__ == "NodeError" and exc.problem.field is None:  # a library's raw message
                counts["crashes"] += 1
                crashes.append(f"{name} {node}.{key}={value!r}: no field named: {exc}")
            else:
                counts["refused"] += 1
                counts["of them node errors"] += type(exc).__name__ == "NodeError"
        except Exception:  # noqa: BLE001
            counts["crashes"] += 1
            crashes.append(f"{name} {node}.{key}={value!r}: {traceback.format_exc(limit=-3)}")
        finally:
            params[key] = before
            s.graph.links[:] = links
    counts["cases"] = counts["ran"] + counts["refused"] + counts["crashes"]
    print(f"\nfuzz runs: {counts['cases']} tiny runs, {counts['ran']} ran, {counts['refused']} refused "
          f"({counts['of them node errors']} by a node at run time), "
          f"{counts['crashes']} crashes, {time.perf_counter() - start:.1f} s")
    assert counts["crashes"] == 0, "\n".join(crashes[:5])
    assert counts["cases"] == 60 and counts["ran"] > 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    t = time.perf_counter()
    result = fuzz_validation(n, seed=int(sys.argv[2]) if len(sys.argv) > 2 else 11)
    print(dict(result), f"{time.perf_counter() - t:.1f} s")
    for c in result.crashes_text[:20]:
        print(c)
