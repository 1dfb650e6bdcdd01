"""ionn: incremental offloading of neural networks, from Python.

The planners, the simulator, the engine and the live client of the `ionn`
command, with its vocabulary: every result reads like the JSON the command
of the same name writes (``ionn plan``, ``ionn simulate``, ``ionn client``,
``ionn profile`` with ``--format json``), field for field, because it is
made by the same C++ code. Results are read-only mappings; ``to_dict()``
gives a plain dict (for json.dump), and the queries of a simulation or a
client run are numpy arrays.

    import ionn
    costs = ionn.costs(ionn.load_model("alexnet", weights=False), paper_profiles=True, uplink_mbps=80)
    sim = ionn.simulate(costs, "recursive-efficiency")
    sim["queries_in_window"], sim["queries"]["latency_ms"]

A plan is an algorithm's name ("original", "efficiency",
"recursive-efficiency", "all-at-once", ...), a plan ``ionn.plan`` made, a
list of partitions (each a list of layer names, uploaded in list order), or
a function of the costs that returns one of these: your own planner. A
plan that lists a layer twice, none, or one the model lacks raises
ValueError naming the first problem; a planner's own exception passes
through. ``ionn.plot`` draws the paper's figures from these results
(matplotlib; imported on first use).
"""
import csv
import importlib
import io
import json
import os
from collections.abc import Mapping

import numpy as np

from . import _ionn
from ._ionn import Costs, Model, Plan, Simulation

__version__ = _ionn.__version__
# The shipped data (the paper's profiles), as the command line finds it.
_PAPER_PROFILES = os.path.join(os.environ.get("IONN_DATA_DIR", _ionn.default_data_dir), "profiles",
                               "odroid-xu4_gtx1080ti", "")
__all__ = ["load_model", "as_uploaded", "costs", "read_costs", "plan", "simulate", "run", "profile", "seeded_input", "Client",
           "Plan", "Simulation", "ClientRun", "Profile", "Model", "Costs", "plot"]


class _Result(Mapping):
    """A read-only mapping over one of the command line's JSON documents,
    parsed when a field is first read."""

    __slots__ = ("_raw", "_doc")

    def __init__(self, raw, doc=None):
        self._raw = raw
        self._doc = doc

    def _load(self):
        return json.loads(self._raw.json())

    def _fields(self):
        if self._doc is None:
            self._doc = self._load()
        return self._doc

    def __getitem__(self, key):
        return self._fields()[key]

    def __iter__(self):
        return iter(self._fields())

    def __len__(self):
        return len(self._fields())

    def to_dict(self):
        """A plain dict (numpy arrays as lists), as the command line's JSON."""
        return json.loads(json.dumps(self._fields(), default=lambda a: a.tolist()))

    def __repr__(self):
        return f"<ionn.{type(self).__name__} {self._fields().get('format', '')}>"


class Profile(_Result):
    """A profile of this machine: ``ionn profile --format json``'s fields."""

    __slots__ = ()


class ClientRun(_Result):
    """A live run: ``ionn client --format json``'s fields; its ``queries``
    are numpy arrays, one element per query. ``trace`` holds the rows of
    ``ionn client --trace`` (dicts, numbers as numbers) and ``outputs`` the
    last query's outputs (name -> numpy array)."""

    __slots__ = ("trace", "outputs", "_text")

    def to_dict(self):
        """The command line's JSON document itself (queries as a list of records)."""
        return json.loads(self._text)

    def __init__(self, raw):
        self._text = raw["json"]
        doc = json.loads(self._text)
        columns = {}
        for field in ["arrival_ms", "start_ms", "end_ms", "latency_ms", "predicted_ms", "partitions_uploaded",
                      "layers_on_server", "during_upload", "fell_back", "session", "exact"]:
            columns[field] = np.array([q[field] for q in doc["queries"]])
            columns[field].flags.writeable = False  # a result is read-only
        doc["queries"] = columns
        super().__init__(None, doc)
        self.trace = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(raw["trace"]))]
        self.outputs = raw["outputs"]


def _number(text):
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_model(path_or_zoo_name, input_shape=None, weights=True):
    """An ONNX file (a path) or a zoo model by name (alexnet, googlenet,
    resnet50, inception_bn, mobilenet, ...). `input_shape` fixes a model's
    symbolic input dimensions; weights=False loads only the architecture
    (enough for costs, plans and simulations)."""
    return _ionn.load_model(path_or_zoo_name, input_shape, weights)


def as_uploaded(model, upload_encoding, phase="whole"):
    """`model` with the weights the server computes with once they travelled
    in `upload_encoding` (encoded, then decoded): for the lossy ones (fp16,
    int8, and progressive's phase="high": the high halves alone), what
    their queries compute; exact and lossless give the model back bit for
    bit. For measuring accuracy: ionn.run(ionn.as_uploaded(m, "int8"), x)."""
    return _ionn.as_uploaded(model, upload_encoding, phase)


def costs(model, *, client_profile="", server_profile="", server_regression="", paper_profiles=False,
          paper_profile_dir=_PAPER_PROFILES, uplink_mbps=80.0, downlink_mbps=None, rtt_ms=0.0,
          upload_encoding="exact", slices=1):
    """The cost graph of `model` as `ionn costs` builds it. Profiles and the
    regression are CSV paths (`ionn profile`, `ionn calibrate`);
    paper_profiles=True fills those not given with the paper's (zoo
    models). downlink_mbps defaults to the uplink's. upload_encoding: how
    the weights travel ("exact", "lossless", "progressive", "fp16",
    "int8"; lossless needs the model's weights); slices: cut the layers
    holding at least 10% of the weights into this many slices that upload
    separately (`ionn costs --slices N`)."""
    return _ionn.costs(model, client_profile=client_profile, server_profile=server_profile,
                       server_regression=server_regression, paper_profiles=paper_profiles,
                       paper_profile_dir=paper_profile_dir, uplink_mbps=uplink_mbps, downlink_mbps=downlink_mbps,
                       rtt_ms=rtt_ms, upload_encoding=upload_encoding, slices=slices)


def read_costs(path):
    """A cost graph file (ionn-costs/1, `ionn costs --format json`)."""
    return _ionn.read_costs(path)


# Planning and simulating are the C++ functions themselves: a sweep pays
# for no Python between them (bench/python_bench.py).
plan = _ionn.plan
simulate = _ionn.simulate


def run(model, x=None, threads=1, all_outputs=False):
    """The model's first output (numpy float32) for input `x` (the input's
    shape; None: the seeded input `ionn run` uses), computed here, as `ionn
    run --output-tensor` writes it; all_outputs=True: every output by name.
    `x` is copied once into the engine (float32 C order; another float dtype
    or order is converted); the outputs are handed over without a copy."""
    outputs = _ionn.run(model, x, threads)
    return outputs if all_outputs else outputs[model.outputs[0]]


def profile(model, x=None, threads=1, warmup=3, repeats=15, seed=1):
    """Every layer's latency here, as `ionn profile --format json` writes it."""
    return Profile(None, json.loads(_ionn.profile(model, x, threads, warmup, repeats, seed)))


def seeded_input(model, seed=1):
    """The seeded random input the command line uses (--seed) for a model
    with one input."""
    inputs = _ionn.seeded_input(model, seed)
    if len(inputs) != 1:
        raise ValueError(f"the model has {len(inputs)} inputs; ionn.run and ionn.Client use seeded ones for x=None")
    return next(iter(inputs.values()))


class Client:
    """A live client of `ionn serve`, run as `ionn client` runs: Hello,
    plan with the server's predictions and this device's profile, upload
    partition by partition while raising queries. `servers`: "host:port"
    or a list (the first that answers; the next after a loss).

        client = ionn.Client("127.0.0.1:7070", ionn.load_model("alexnet"), paper_profiles=True)
        r = client.run(queries=20, verify=True)
        r["queries_during_upload"], r["queries"]["latency_ms"], r.trace

    The client profile: client_profile (a CSV path), paper_profiles=True
    (a zoo model's), or neither: measured here at the first run.
    client_slowdown=X plans with, and pads local work to, X times the
    profile's times (an emulated slower device). slices=N uploads and runs
    the model with its largest layers cut into N slices (`ionn client
    --slices`); "auto" chooses N with server_profile's times. replan:
    "passive" re-plans what is not sent yet when the uplink, estimated
    from the upload's paced writes, leaves +/-25% of uplink_mbps, "off"
    keeps the plan; None (the default, as `ionn client`): passive where the
    planner plans an exact upload, else off."""

    def __init__(self, servers, model, *, plan="recursive-efficiency", granularity="layer", client_profile="",
                 server_profile="", paper_profiles=False, paper_profile_dir=_PAPER_PROFILES,
                 client_slowdown=0.0, uplink_mbps=80.0, downlink_mbps=None, rtt_ms=0.0, threads=1,
                 ignore_held=False, tls=False, tls_ca="", tls_server_name="", secret="", reconnects=8,
                 deadline_s=60.0, chunk_kib=1024, upload_encoding="exact", slices=1,
                 replan=None):
        if replan is not None and replan not in ("passive", "off"):
            raise ValueError(f"replan {replan!r} (expected \"passive\", \"off\" or None)")
        if not isinstance(servers, str):
            servers = ",".join(servers)
        tls_ca_pem = ""
        if tls_ca:
            try:
                with open(tls_ca, encoding="utf-8") as f:
                    tls_ca_pem = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"tls_ca '{tls_ca}': {e}") from None
        self._raw = _ionn.RawClient(model, servers, plan, granularity, client_profile, server_profile,
                                    paper_profiles, paper_profile_dir, client_slowdown, uplink_mbps, downlink_mbps,
                                    rtt_ms, threads, ignore_held, tls_ca_pem, tls, tls_server_name, secret,
                                    reconnects, deadline_s, chunk_kib, upload_encoding,
                                    0 if slices == "auto" else slices, replan or "")

    def run(self, x=None, *, queries=-1, duration_s=-1.0, verify=False, seed=1, arrivals="back-to-back",
            max_queue=-1, deadline_ms=-1.0):
        """One run: uploads the model while raising queries on `x` (None: the
        seeded input), until `queries` (default: the paper's protocol, until
        the upload is done and 5 more) or `duration_s`. verify=True checks
        every query's outputs against a whole-model run here (the result's
        queries_wrong and max_relative_error). arrivals, max_queue and
        deadline_ms as for ionn.simulate. Returns a ClientRun."""
        return ClientRun(self._raw.run(x, queries, duration_s, verify, seed, arrivals, max_queue, deadline_ms))


def __getattr__(name):
    if name == "plot":  # matplotlib is slow to import: only when asked for
        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'ionn' has no attribute {name!r}")
