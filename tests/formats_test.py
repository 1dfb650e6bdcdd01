#!/usr/bin/python3
"""Every JSON format ionn writes, checked against its schema in docs/formats:
runs each command that writes one (a plan, a simulation, a real client run
against an `ionn serve` started here on loopback, run, profile, the cost
graph), validates the output with its schema (draft 2020-12), and checks
that the schemas are used, strict and complete: every schema has a case,
every case's "format" is its schema's, every field a schema names is
written by some case (or is listed below as one these commands never
write), and a copy of an output with a required field removed, a nested
field renamed or an unknown field added is rejected. The client's trace
CSV must have the columns docs/formats/README.md lists.

Usage: formats_test.py path/to/ionn source-dir
"""
import copy
import csv
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import jsonschema

ionn, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
formats_dir = os.path.join(src, "docs", "formats")
profiles = os.path.join("data", "profiles", "odroid-xu4_gtx1080ti")
COMMON = "ionn-common.schema.json"
COMMAND_TIMEOUT_S = 300
failures = []


def fail(message):
    failures.append(message)


# Fields a schema names that none of the commands below writes: the run
# setting is one function (AddRunSetting) for every report, and some of
# its fields are never set by some commands. Anything else a schema names
# must appear in some output, so that a field the writer dropped or renamed
# cannot linger in the schema.
NEVER_WRITTEN = {
    "ionn-plan-1.schema.json": {"link_sharing"},
    "ionn-client-2.schema.json": {"link_sharing"},
    "ionn-run-1.schema.json": {"uplink_mbps", "downlink_mbps", "rtt_ms", "link_sharing"},
    "ionn-profile-1.schema.json": {"uplink_mbps", "downlink_mbps", "rtt_ms", "link_sharing"},
}

# Fields every case of a format writes that its schema still leaves
# optional, because the writer's other callers may leave them out (the
# library's SimResultToJson takes the setting and `with_queries` from its
# caller). Any other field that every case writes must be "required", so
# that a schema cannot quietly stop promising it.
OPTIONAL_THOUGH_ALWAYS_HERE = {
    "ionn-simulate-1.schema.json": {"model", "uplink_mbps", "downlink_mbps", "rtt_ms", "link_sharing", "queries"},
}


# --- Schemas ---------------------------------------------------------------

def load_schemas():
    """{file name: schema}, each checked against the draft 2020-12 metaschema."""
    schemas = {}
    for path in sorted(glob.glob(os.path.join(formats_dir, "*.schema.json"))):
        name = os.path.basename(path)
        try:
            with open(path) as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)
        except (ValueError, jsonschema.SchemaError) as e:
            fail(f"{name}: not a valid draft 2020-12 schema: {str(e).splitlines()[0]}")
            continue
        if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
            fail(f"{name}: \"$schema\" is not draft 2020-12")
        if schema.get("$id") != name:
            fail(f"{name}: \"$id\" is {schema.get('$id')!r}, not the file's name")
        schemas[name] = schema
    if not schemas:
        fail(f"no *.schema.json in {formats_dir}")
    return schemas


def make_validator(schema, schemas):
    """A validator that resolves "$ref"s to the other schemas by their $id, never over the network."""
    try:  # jsonschema >= 4.18
        import referencing
        import referencing.jsonschema
        registry = referencing.Registry().with_resources(
            (s["$id"], referencing.Resource.from_contents(s, default_specification=referencing.jsonschema.DRAFT202012))
            for s in schemas.values() if "$id" in s)
        return jsonschema.Draft202012Validator(schema, registry=registry)
    except ImportError:  # Debian 12's 4.10
        store = {s["$id"]: s for s in schemas.values() if "$id" in s}
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        return jsonschema.Draft202012Validator(schema, resolver=resolver)


def format_const(schema):
    return schema.get("properties", {}).get("format", {}).get("const")


def path_text(path):
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def errors_of(validator, doc):
    try:
        return sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    except jsonschema.exceptions.RefResolutionError as e:
        return [jsonschema.ValidationError(f"unresolvable $ref: {e}")]


# --- Commands --------------------------------------------------------------

def run(args, label):
    """stdout of `ionn ARGS` run in the source folder, or None (a failure noted)."""
    try:
        p = subprocess.run([ionn] + args, cwd=src, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        fail(f"{label}: `ionn {' '.join(args)}` ran past {COMMAND_TIMEOUT_S} s")
        return None
    if p.returncode != 0:
        fail(f"{label}: `ionn {' '.join(args)}` exited {p.returncode}: {p.stderr.strip()[-500:]}")
        return None
    return p.stdout


def die_with_parent():
    """In the server's child process: SIGTERM when this test dies, even by SIGKILL (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Server:
    """`ionn serve` on 127.0.0.1, port 0: the port it logs ("listening on ... (port N)")."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.proc = None

    def start(self, timeout_s=30):
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [ionn, "serve", "--listen", "127.0.0.1:0", "--regression",
                 os.path.join(profiles, "server_regression.csv")],
                cwd=src, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.log_path) as log:
                m = re.search(r"listening on .*\(port (\d+)\)", log.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.log_path) as log:
            fail(f"ionn serve: no port logged within {timeout_s} s (exit {self.proc.poll()}): {log.read()[-500:]}")
        return None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # drains in-flight calls, then exits
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


# --- Checks ----------------------------------------------------------------

def check_output(label, schema_name, text, schemas, validators, seen_fields, always_fields):
    """Parse and validate one output; returns the document or None. Notes the fields it
    has in seen_fields (any case) and always_fields (every case), by schema."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        fail(f"{label}: not JSON ({e}): {text[:200]!r}")
        return None
    if not isinstance(doc, dict):
        fail(f"{label}: the top level is not an object")
        return None
    schema = schemas.get(schema_name)
    if schema is None:
        fail(f"{label}: no schema {schema_name} in docs/formats")
        return None
    if doc.get("format") != format_const(schema):
        fail(f"{label}: \"format\" is {doc.get('format')!r}; {schema_name} is for {format_const(schema)!r}")
    for e in errors_of(validators[schema_name], doc)[:20]:
        fail(f"{label}: {schema_name}: {path_text(e.absolute_path)}: {e.message[:300]}")
    seen_fields.setdefault(schema_name, set()).update(doc.keys())
    always_fields.setdefault(schema_name, set(doc.keys())).intersection_update(doc.keys())
    if isinstance(doc.get("sources"), dict):
        seen_fields[schema_name].update("sources." + k for k in doc["sources"])
    return doc


def must_reject(label, validator, doc, what):
    if not errors_of(validator, doc):
        fail(f"self-check: {label} with {what} passes its schema (the schema is too loose)")


def object_paths(value, path=()):
    """Paths to every object in a document (an array's first element standing for the rest)."""
    if isinstance(value, dict):
        yield path
        for key, child in value.items():
            yield from object_paths(child, path + (key,))
    elif isinstance(value, list) and value:
        yield from object_paths(value[0], path + (0,))


def at(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def self_checks(label, schema_name, doc, schemas, validators):
    """The schema rejects what a renamed, removed or added field would give."""
    schema, v = schemas[schema_name], validators[schema_name]
    for key in schema.get("required", []):
        if key in doc:
            broken = copy.deepcopy(doc)
            del broken[key]
            must_reject(label, v, broken, f"\"{key}\" removed")
    for path in object_paths(doc):
        broken = copy.deepcopy(doc)
        at(broken, path)["no_such_field"] = 0
        must_reject(label, v, broken, f"an unknown field in {path_text(path)}")
    broken = copy.deepcopy(doc)
    broken["format"] = format_const(schema) + "0"
    must_reject(label, v, broken, "another format tag")
    # Every array of objects: its first record with a field renamed.
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and value[0]:
            broken = copy.deepcopy(doc)
            first = broken[key][0]
            field = sorted(first)[0]
            first[field + "_renamed"] = first.pop(field)
            must_reject(label, v, broken, f"{key}[0].{field} renamed")
    if "queries" in doc:
        broken = copy.deepcopy(doc)
        broken["queries"] = len(doc["queries"])
        must_reject(label, v, broken, "\"queries\" a count instead of an array")


def check_coverage(schemas, used, seen_fields, always_fields):
    for name, schema in schemas.items():
        if name == COMMON:
            continue
        if format_const(schema) is None:
            fail(f"{name}: no properties.format.const")
        if name not in used:
            fail(f"{name}: no test case writes this format")
            continue
        never = NEVER_WRITTEN.get(name, set())
        for key in schema.get("properties", {}):
            if key not in seen_fields.get(name, set()) and key not in never:
                fail(f"{name}: no output had \"{key}\" (a field the writer dropped or renamed?)")
        for key in never & seen_fields.get(name, set()):
            fail(f"{name}: \"{key}\" is listed as never written, but an output had it")
        optional = always_fields.get(name, set()) - set(schema.get("required", []))
        for key in sorted(optional - OPTIONAL_THOUGH_ALWAYS_HERE.get(name, set())):
            fail(f"{name}: every output had \"{key}\", but the schema does not require it")
    if COMMON in schemas:
        referenced = any(COMMON in json.dumps(s) for n, s in schemas.items() if n != COMMON)
        if not referenced:
            fail(f"{COMMON}: no schema refers to it")
        inputs = schemas[COMMON].get("$defs", {}).get("sources", {}).get("properties", {})
        seen_inputs = set().union(*seen_fields.values())
        for key in inputs:
            if "sources." + key not in seen_inputs:
                fail(f"{COMMON}: no output had sources.{key}")


def check_trace(path):
    """The trace CSV's header is the README's column list; rows are of the documented kinds."""
    readme = os.path.join(formats_dir, "README.md")
    try:
        with open(readme) as f:
            text = f.read()
    except OSError as e:
        fail(f"docs/formats/README.md: {e}")
        return
    section = re.search(r"^## Client trace CSV.*?(?=^## |\Z)", text, re.M | re.S)
    if not section:
        fail("docs/formats/README.md: no '## Client trace CSV' section")
        return
    documented = re.findall(r"^\| `([a-z_]+)` \|", section.group(0), re.M)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        fail(f"client trace: {e}")
        return
    if not rows or rows[0] != documented:
        fail(f"client trace: header {rows[0] if rows else None} is not the README's columns {documented}")
        return
    kinds = {r[0] for r in rows[1:]}
    if not kinds <= {"query", "partition", "upload_attempt"} or "query" not in kinds or "partition" not in kinds:
        fail(f"client trace: row kinds {sorted(kinds)}")
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(documented):
            fail(f"client trace: line {i} has {len(r)} fields, not {len(documented)}")
            break


def check_percentiles(path, doc):
    """The client's latency quantiles against a count by hand on the trace it recorded: nearest rank, the
    smallest latency that at least q of the queries do not exceed."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "query"]
    latency = sorted(float(r["end_ms"]) - float(r["start_ms"]) for r in rows)
    if len(latency) != doc["query_count"]:
        fail(f"client trace: {len(latency)} query rows, the JSON says {doc['query_count']}")
        return
    for q, field in [(0.5, "latency_ms_p50"), (0.9, "latency_ms_p90"), (0.99, "latency_ms_p99")]:
        rank = max(1, math.ceil(q * len(latency) - 1e-9))
        if abs(latency[rank - 1] - doc[field]) > 2e-3:  # the trace has 3 decimals
            fail(f"client: {field} {doc[field]} but by hand on the trace {latency[rank - 1]} (rank {rank} of "
                 f"{len(latency)})")
    span = (max(float(r["end_ms"]) for r in rows) - min(float(r["start_ms"]) for r in rows)) / 1000
    if abs(len(latency) / span - doc["throughput_qps"]) > 1e-3 * doc["throughput_qps"]:
        fail(f"client: throughput_qps {doc['throughput_qps']}, by hand {len(latency) / span}")


def main():
    schemas = load_schemas()
    validators = {name: make_validator(s, schemas) for name, s in schemas.items()}
    with tempfile.TemporaryDirectory(prefix="ionn-formats-") as tmp:
        return check_all(schemas, validators, tmp)


def check_all(schemas, validators, tmp):
    used, seen_fields, always_fields, docs = set(), {}, {}, []
    model = os.path.join(tmp, "mobilenet.onnx")
    labels = os.path.join(tmp, "labels.txt")
    trace = os.path.join(tmp, "trace.csv")
    with open(labels, "w") as f:
        f.write("".join(f"class {i}\n" for i in range(1000)))
    run(["zoo", "mobilenet", "-o", model], "zoo")
    alexnet_csv = os.path.join(profiles, "alexnet.csv")

    # (label, schema, ionn arguments or None for a file, extra checks).
    cases = [
        ("plan", "ionn-plan-1.schema.json", ["plan", "--zoo", "alexnet", "--paper-profiles", "--format", "json"],
         lambda d: d.get("model") == "alexnet" and d.get("sources", {}).get("paper_profiles") is True),
        ("plan --costs", "ionn-plan-1.schema.json",
         ["plan", "--costs", "data/cases/paper_fig2.json", "--format", "json"],
         lambda d: d.get("sources") == {"costs_file": "data/cases/paper_fig2.json"} and "uplink_mbps" not in d),
        ("plan (model file, profile, regression, link)", "ionn-plan-1.schema.json",
         ["plan", model, "--client-profile", os.path.join(profiles, "mobilenet.csv"), "--regression",
          os.path.join(profiles, "server_regression.csv"), "--uplink-mbps", "20", "--downlink-mbps", "40",
          "--rtt-ms", "2", "--algorithm", "original", "--granularity", "block", "--format", "json"],
         lambda d: d.get("rtt_ms") == 2 and d.get("downlink_mbps") == 40 and "model_sha256" in d.get("sources", {})),
        ("simulate", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "alexnet", "--paper-profiles", "--format", "json"],
         lambda d: isinstance(d.get("queries"), list) and d.get("query_count") == len(d["queries"])),
        ("simulate (profiles, fair sharing, blocks)", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "alexnet", "--client-profile", alexnet_csv, "--server-profile", alexnet_csv,
          "--link-sharing", "fair", "--granularity", "block", "--format", "json"],
         lambda d: d.get("link_sharing") == "fair" and isinstance(d.get("queries"), list)),
        ("simulate (Poisson arrivals, a queue, a deadline)", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "alexnet", "--paper-profiles", "--arrivals", "poisson:5:2", "--max-queue", "1",
          "--deadline-ms", "500", "--format", "json"],
         lambda d: d.get("arrivals") == "poisson:5:2" and d.get("queries_dropped", 0) > 0
         and 0 <= d.get("deadline_met_share", -1) <= 1 and d.get("wait_ms_mean", 0) > 0
         and all(q["latency_ms"] == q["end_ms"] - q["arrival_ms"] for q in d["queries"])),
        ("plan (progressive upload)", "ionn-plan-1.schema.json",
         ["plan", "--zoo", "alexnet", "--paper-profiles", "--upload-encoding", "progressive", "--format", "json"],
         lambda d: d.get("upload_encoding") == "progressive"
         and {p.get("phase") for p in d["partitions"]} == {"high", "low"}),
        ("simulate (progressive upload)", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "alexnet", "--paper-profiles", "--upload-encoding", "progressive", "--format", "json"],
         lambda d: d.get("upload_encoding") == "progressive" and d.get("exact_from_ms") == d.get("upload_ms")
         and d.get("queries_approximate", 0) > 0 and d["near_optimal_ms"] < d["upload_ms"]
         and any(not q["exact"] for q in d["queries"]) and d["queries"][-1]["exact"]),
        ("simulate (link traces)", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "alexnet", "--paper-profiles", "--uplink-trace", "data/traces/steps_80_20_80.csv",
          "--downlink-trace", "data/traces/random_walk_1_100_seed1.mahimahi", "--format", "json"],
         lambda d: d.get("sources", {}).get("uplink_trace") == "data/traces/steps_80_20_80.csv"
         and "downlink_trace" in d["sources"] and d["uplink_mbps"] == 80 and d["window_ms"] > 30000),
        ("simulate (re-planning on a step up)", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "alexnet", "--paper-profiles", "--uplink-trace",
          "data/traces/step_20_to_80_alexnet_mid.csv", "--replan", "passive", "--format", "json"],
         lambda d: d["replan"] == "passive" and len(d["replans"]) > 0 and d["replans"][0]["at_ms"] >= 46600
         and any(e["estimated_mbps"] is None for e in d["rate_estimates"])
         and abs(d["rate_estimates"][-1]["estimated_mbps"] - 80) < 8),
        ("plan (4 slices)", "ionn-plan-1.schema.json",
         ["plan", "--zoo", "alexnet", "--paper-profiles", "--slices", "4", "--format", "json"],
         lambda d: d.get("slices") == 4 and any(n == "fc6/slice3" for p in d["partitions"] for n in p["layers"])),
        ("simulate (slices chosen by the planner)", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "alexnet", "--paper-profiles", "--slices", "auto", "-a", "window-search",
          "--format", "json"],
         lambda d: d.get("slices", 0) >= 2 and d["queries_in_window"] > 93),
        ("simulate (int8 weights)", "ionn-simulate-1.schema.json",
         ["simulate", "--zoo", "mobilenet", "--paper-profiles", "--upload-encoding", "int8", "--format", "json"],
         lambda d: d.get("exact_from_ms") is None and d.get("upload_ms") < d.get("window_ms")),
        ("client", "ionn-client-2.schema.json", "client", lambda d: d.get("query_count") == len(d.get("queries", ()))
         == 12 and "queries_wrong" not in d),
        ("client --verify", "ionn-client-2.schema.json", "client --verify",
         lambda d: d.get("query_count") == len(d.get("queries", ())) == 3 and d.get("queries_wrong") == 0
         and d.get("slices") == 2 and any("/slice" in n for p in d["partitions"] for n in p["layers"])),
        ("run", "ionn-run-1.schema.json", ["run", "--zoo", "mobilenet", "--repeats", "1", "--format", "json"],
         lambda d: all("label" not in t for t in d.get("top", []))),
        ("run --labels (model file)", "ionn-run-1.schema.json",
         ["run", model, "--repeats", "1", "--labels", labels, "--format", "json"],
         lambda d: d.get("top") and all("label" in t for t in d["top"])),
        ("profile", "ionn-profile-1.schema.json",
         ["profile", "--zoo", "mobilenet", "--repeats", "1", "--warmup", "0", "--format", "json"],
         lambda d: len(d.get("layers", [])) > 0),
        ("costs", "ionn-costs-1.schema.json", ["costs", "--zoo", "alexnet", "--paper-profiles"],
         lambda d: "units" not in d),
        ("costs --upload-encoding lossless", "ionn-costs-1.schema.json",
         ["costs", "--zoo", "mobilenet", "--paper-profiles", "--upload-encoding", "lossless"],
         lambda d: d.get("upload_encoding") == "lossless"
         and sum(l["upload_ms"] for l in d["layers"]) < d["fp32_upload_ms"]),
        ("costs --granularity block", "ionn-costs-1.schema.json",
         ["costs", "--zoo", "googlenet", "--paper-profiles", "--granularity", "block"],
         lambda d: d.get("units") == "block"),
        ("data/cases/paper_fig2.json", "ionn-costs-1.schema.json", None, lambda d: True),
    ]

    server = Server(os.path.join(tmp, "serve.log"))
    try:
        port = None
        for label, schema_name, args, extra in cases:
            used.add(schema_name)
            if args is None:
                with open(os.path.join(src, label)) as f:
                    text = f.read()
            elif isinstance(args, str):  # a client run
                if port is None:
                    port = server.start()
                if port is None:
                    continue
                # --verify with an emulated client (sources.client_slowdown), the other with the paper's.
                profile = ["--client-slowdown", "3"] if "--verify" in label else ["--paper-profiles"]
                args = ["client", "--zoo", "mobilenet", *profile, "--server", f"127.0.0.1:{port}",
                        "--queries", "3" if "--verify" in label else "12", "--format", "json", "--quiet"] + (
                           ["--verify", "--slices", "2"] if "--verify" in label else ["--trace", trace])
                text = run(args, label)
            else:
                text = run(args, label)
            if text is None:
                continue
            doc = check_output(label, schema_name, text, schemas, validators, seen_fields, always_fields)
            if doc is None:
                continue
            if not extra(doc):
                fail(f"{label}: the output is not what this case should give: "
                     f"{json.dumps({k: v for k, v in doc.items() if not isinstance(v, list)})[:600]}")
            docs.append((label, schema_name, doc))
    finally:
        server.stop()

    check_coverage(schemas, used, seen_fields, always_fields)
    for label, schema_name, doc in docs:
        self_checks(label, schema_name, doc, schemas, validators)
    # Plainly: a plan without "partitions" must fail for that reason.
    plans = [doc for _, schema_name, doc in docs if schema_name == "ionn-plan-1.schema.json"]
    if plans:
        plan = copy.deepcopy(plans[0])
        del plan["partitions"]
        if not any("'partitions' is a required property" in e.message
                   for e in errors_of(validators["ionn-plan-1.schema.json"], plan)):
            fail("self-check: a plan without \"partitions\" is not rejected for it")
    if os.path.exists(trace):
        check_trace(trace)
        client = [doc for label, _, doc in docs if label == "client"]
        if client:
            check_percentiles(trace, client[0])
    else:
        fail("client: no trace written (--trace)")

    for f in failures:
        print("FAIL: " + f)
    if failures:
        return 1
    print("formats: all checks passed")
    return 0


if __name__ == "__main__":
    # A SIGTERM (a kill, a runner's timeout) stops the server on the way out;
    # SIGKILL does too, by the server's parent-death signal.
    def terminated(*_):
        print("FAIL: terminated (SIGTERM) before the checks ended")
        sys.exit(1)
    signal.signal(signal.SIGTERM, terminated)
    sys.exit(main())
