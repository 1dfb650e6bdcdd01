"""`import ionn` against the command line: the same plans and simulations
field for field, a planner written in Python judged by the same simulator,
the engine's output, and bad input as ValueError. Run by ctest (python)
with PYTHONPATH at the built module and IONN at the ionn binary."""
import json
import os
import subprocess
import tempfile

import numpy as np
import pytest

import ionn

IONN = os.environ.get("IONN", "build/bin/ionn")
ZOO = ["alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"]
# What only the command line knows: the model it was named by and the files it read.
SETTING = {"ionn_version", "sources", "model", "uplink_mbps", "downlink_mbps", "rtt_ms", "link_sharing"}


def cli_json(*args):
    out = subprocess.run([IONN, *args, "--format", "json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def paper_costs():
    return {name: ionn.costs(ionn.load_model(name, weights=False), paper_profiles=True) for name in ZOO}


@pytest.mark.parametrize("model", ZOO)
@pytest.mark.parametrize("algorithm", ["original", "recursive-efficiency"])
def test_plan_and_simulation_equal_the_command_line(paper_costs, model, algorithm):
    costs = paper_costs[model]
    plan = ionn.plan(costs, algorithm)
    want = cli_json("plan", "--zoo", model, "--paper-profiles", "-a", algorithm)
    assert {k: v for k, v in plan.items() if k not in SETTING} == {k: v for k, v in want.items() if k not in SETTING}
    assert plan["ionn_version"] == want["ionn_version"] == ionn.__version__

    sim = ionn.simulate(costs, algorithm)
    want = cli_json("simulate", "--zoo", model, "--paper-profiles", "-a", algorithm)
    for key, value in want.items():
        if key in SETTING or key == "queries":
            continue
        assert sim[key] == value, key
    q = sim["queries"]
    assert len(q["latency_ms"]) == want["query_count"] == len(want["queries"])
    for field in ["start_ms", "end_ms", "latency_ms", "partitions_uploaded", "during_upload"]:
        assert list(q[field]) == [w[field] for w in want["queries"]], field
    assert isinstance(q["latency_ms"], np.ndarray)


def test_a_python_planner_is_judged_like_a_plan_file(paper_costs, tmp_path):
    costs = paper_costs["alexnet"]

    def one_layer_at_a_time(c):  # the simplest planner: every layer a partition, in model order
        return [[name] for name in c.layer_names]

    by_python = ionn.simulate(costs, one_layer_at_a_time)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(one_layer_at_a_time(costs)))
    by_cli = cli_json("simulate", "--zoo", "alexnet", "--paper-profiles", "--plan", str(path))
    assert by_python["algorithm"] == by_cli["algorithm"] == "given"
    assert by_python["queries_during_upload"] == by_cli["queries_during_upload"]
    assert by_python["queries_in_window"] == by_cli["queries_in_window"]
    assert ionn.plan(costs, one_layer_at_a_time)["partitions"] == ionn.plan(costs, by_python["partitions"])["partitions"]


def test_bad_plans_raise_value_error(paper_costs):
    costs = paper_costs["alexnet"]
    names = costs.layer_names
    with pytest.raises(ValueError, match="layer 'conv1' is in partition 0 and in partition 1"):
        ionn.simulate(costs, [names, ["conv1"]])
    with pytest.raises(ValueError, match="partition 0 names layer 'nope'"):
        ionn.plan(costs, [["nope"]])
    with pytest.raises(ValueError, match="is in no partition"):
        ionn.plan(costs, [names[:3]])
    with pytest.raises(ValueError, match="partition 1 is empty"):
        ionn.plan(costs, [names, []])
    with pytest.raises(ValueError, match="not JSON-serialisable|array of partitions"):
        ionn.plan(costs, lambda c: {1, 2})
    with pytest.raises(ZeroDivisionError):  # the planner's own exception, re-raised
        ionn.plan(costs, lambda c: 1 / 0)
    with pytest.raises(ValueError, match="unknown"):
        ionn.plan(costs, "no-such-planner")


def test_run_equals_the_command_line():
    model = ionn.load_model("mobilenet")
    x = ionn.seeded_input(model)
    y = ionn.run(model, x)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "y.npy")
        subprocess.run([IONN, "run", "--zoo", "mobilenet", "--repeats", "1", "--output-tensor", path], check=True,
                       capture_output=True)
        want = np.load(path)
    assert y.shape == want.shape and y.dtype == np.float32
    assert np.array_equal(y, want)
    with pytest.raises(ValueError, match=r"input of shape \[1,3,10,10\], the model's input"):
        ionn.run(model, np.zeros((1, 3, 10, 10), dtype=np.float32))


def test_models_and_costs():
    model = ionn.load_model("alexnet", weights=False)
    assert model.name == "alexnet" and len(model.layers) == 23
    assert model.layers[0] == {"name": "conv1", "kind": "Conv", "output_shape": [1, 96, 55, 55],
                               "weight_bytes": 139776}
    with pytest.raises(ValueError):
        ionn.load_model("/nonexistent/model.onnx")
    with pytest.raises(ValueError, match="was loaded without weights"):
        ionn.run(model, np.zeros((1, 3, 227, 227), dtype=np.float32))
    costs = ionn.costs(model, paper_profiles=True, uplink_mbps=20)
    assert costs.to_json()["layers"][0]["name"] == "conv1"
