// Upload planners: which layers to upload in which order. Pure code: no
// I/O, no threads, no clocks. Definitions and tie-breaking: DESIGN.md.
#pragma once

#include <functional>
#include <limits>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "ionn/cost_graph.h"
#include "ionn/granularity.h"
#include "ionn/latency.h"

namespace ionn {

struct Partition {
  std::vector<int> layers;  // layer positions, ascending
  double upload_ms = 0;     // overhead + weight upload time
  double latency_ms = 0;    // best query latency once this and all earlier are uploaded
  // Progressive uploads: kHigh makes its layers runnable (approximately),
  // a later kLow of the same layers makes them exact (DESIGN.md, "Upload
  // unit"); every other partition is kWhole.
  UnitPhase phase = UnitPhase::kWhole;
};

struct UploadPlan {
  std::string algorithm;
  Granularity granularity = Granularity::kLayer;
  UploadEncoding encoding = UploadEncoding::kExact;  // the cost graph's
  // Upload order; together they hold every layer once (progressive: once
  // whole, or once high and later once low).
  std::vector<Partition> partitions;
  double latency_local_ms = 0;
  double latency_optimal_ms = 0;
  double total_upload_ms() const;
};

struct PlannerOptions {
  std::string algorithm = "recursive-efficiency";
  Granularity granularity = Granularity::kLayer;
  // IONN's penalty schedule for "original"; 0 is appended when missing so
  // that the schedule ends at the optimal set.
  std::vector<double> penalties = {1, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0};
};

// The names MakePlan accepts, in the order tables list them.
const std::vector<std::string>& PlannerNames();

// Plans `graph`. Every layer ends in exactly one partition; layers outside
// the optimal set form the last partition. Each partition's upload_ms and
// latency_ms are evaluated on the layer graph, exactly.
Result<UploadPlan> MakePlan(const CostGraph& graph, const PlannerOptions& options);

// Plans `graph` for a server that already holds the layers in `held` (its
// layer store): they form a first partition of upload time 0 (uploaded at
// time 0) and the rest is planned with their upload time 0. Without held
// layers, MakePlan's plan.
Result<UploadPlan> MakePlanWithHeld(const CostGraph& graph, const LayerMask& held, const PlannerOptions& options);
// `planned` with the layers in `held` moved to a first partition of upload
// time 0 (partitions left empty dropped); `planned` itself without held
// layers. For a plan made elsewhere (PlanFromJson) on a server that holds
// some of its layers.
Result<UploadPlan> WithHeldFirst(const CostGraph& graph, const UploadPlan& planned, const LayerMask& held);

// A plan of the given partitions (layer positions, upload order, together
// every layer once, none empty) with each partition's upload time and the
// best latency after it; the first `free_partitions` take no upload time.
// `phases` (one per partition; none: all kWhole): on a progressive cost
// graph a layer may instead be in a kHigh partition and a later kLow one,
// each taking overhead + half its upload time.
Result<UploadPlan> EvaluatePartitions(const CostGraph& graph, const std::string& algorithm, Granularity granularity,
                                      std::vector<std::vector<int>> layer_parts, int free_partitions,
                                      const std::vector<UnitPhase>* phases = nullptr);

// Per number of partitions arrived (0..partitions), the layers the server
// would compute with exact weights: those that arrived whole (free, or in
// an encoding that is not lossy for good) or in their low half, and those
// without weights to send (upload time 0).
std::vector<LayerMask> ExactLayersAfter(const CostGraph& graph, const UploadPlan& plan);
// Whether the server holds every layer exactly once the whole plan arrived
// (false when a layer travels fp16 or int8).
bool ExactInTheEnd(const CostGraph& graph, const UploadPlan& plan);

// The planners themselves, on a graph of units; they return the partitions
// up to the optimal set (unit positions, in upload order).
using UnitPartitions = std::vector<std::vector<int>>;
UnitPartitions PlanOriginal(const LatencyModel& model, const std::vector<double>& penalties);
UnitPartitions PlanEfficiency(const LatencyModel& model, bool recursive);
UnitPartitions PlanAllAtOnce(const LatencyModel& model);
// ionn's own: `start` (recursive-efficiency's partitions) reordered by
// adjacent swaps while they raise ExpectedQueriesDuringUpload.
UnitPartitions PlanThroughputSearch(const LatencyModel& model, UnitPartitions start);
// ionn's planner for the window: `start` (recursive-efficiency's
// partitions) improved for ExpectedQueriesInWindow, by trying every
// ordered partition of the graph's units where it has at most 6, else by local
// search (adjacent swaps, splitting a partition's first unit off, merging
// adjacent partitions); never below `start` on that count.
UnitPartitions PlanWindowSearch(const LatencyModel& model, UnitPartitions start, double window_ms);
// Queries a client raising them back to back finishes by `window_ms` (the
// one in flight then by its done share), on the planner's numbers as
// ExpectedQueriesDuringUpload; queries go on past the upload's end.
double ExpectedQueriesInWindow(const std::vector<double>& latency_ms, const std::vector<double>& upload_ms,
                               double window_ms);

// `--slices auto`: of `counts` slices per sliced layer, the count whose
// plan finishes the most queries in the fp32 window
// (ExpectedQueriesInWindow on the plan's numbers; ties to fewer slices).
// `costs_for(n)` is the cost graph with n slices (1: none), `plan_for` the
// planner. The planner's and the simulator's choice, and the client's.
struct SlicedPlan {
  int slices = 1;
  CostGraph costs;
  UploadPlan plan;
};
Result<SlicedPlan> PlanBestSlices(const std::function<Result<CostGraph>(int)>& costs_for,
                                  const std::function<Result<UploadPlan>(const CostGraph&)>& plan_for,
                                  const std::vector<int>& counts = {1, 2, 4, 8});

// Queries a client raising them back to back serves before the last
// partition arrives (the one in flight counted by its done share), from the
// latency after each partition and the partitions' upload times: the
// paper's protocol on the planner's numbers, without link contention.
double ExpectedQueriesDuringUpload(const std::vector<double>& latency_ms, const std::vector<double>& upload_ms);
double PlanThroughput(const CostGraph& graph, const UploadPlan& plan);

// The efficiency of uploading `run` on top of `uploaded`:
// (L(S) - L(S; run)) / upload_ms(run), with +/-inf or 0 for a free upload.
inline double Efficiency(double gain_ms, double upload_ms) {
  constexpr double kEps = 1e-9;
  if (upload_ms > 0) return gain_ms / upload_ms;
  if (gain_ms > kEps) return std::numeric_limits<double>::infinity();
  if (gain_ms < -kEps) return -std::numeric_limits<double>::infinity();
  return 0;
}

// What a plan or a run was made for, recorded in the JSON outputs; empty
// or zero fields are unknown (e.g. a cost graph read from a file) and left out.
struct RunSetting {
  std::string model;
  double uplink_mbps = 0, downlink_mbps = 0, rtt_ms = 0;
  std::string link_sharing;  // simulations and live runs
  // The inputs assumed, as the user named them ("inputs" in the JSON).
  std::string model_sha256;  // of the model file; empty for a zoo model
  std::string costs_file, client_profile, server_profile, regression;
  bool paper_profiles = false;
  double client_slowdown = 0;  // an emulated client this many times slower (0: none)
  int slices = 1;              // the largest layers cut into this many slices (slices.h; 1: none)
  std::string uplink_trace, downlink_trace;  // link traces replayed (link_trace.h), as given
};

// Plan as JSON ("format": "ionn-plan/1": DESIGN.md's fields plus
// granularity, per partition cumulative upload, the setting) and as a
// human-readable table.
std::string PlanToJson(const CostGraph& graph, const UploadPlan& plan, const RunSetting& setting = {});
// The setting's known fields, as PlanToJson writes them (for other
// outputs), after "ionn_version".
void AddRunSetting(const RunSetting& setting, nlohmann::json* doc);
// The plan's partitions as a JSON array of {layers, upload_ms,
// uploaded_at_ms, latency_ms}; `uploaded_at_ms` when given (null for
// partitions past its end), else the cumulative upload times.
void AddPartitions(const CostGraph& graph, const UploadPlan& plan, const std::vector<double>* uploaded_at_ms,
                   nlohmann::json* doc);
std::string PlanToTable(const CostGraph& graph, const UploadPlan& plan);

// A plan made anywhere, as data: JSON with "partitions", an array whose
// items are arrays of layer names or objects with "layers" (as
// `ionn plan --format json` writes them; other fields are ignored and
// recomputed), or such an array alone. Every layer of `graph` exactly once,
// no partition empty, names that exist; the first problem is the error,
// naming the partition and the layer. Evaluated on `graph` as
// EvaluatePartitions does; the plan's algorithm is "given". Pure: parses
// `text`, reads no file.
Result<UploadPlan> PlanFromJson(const CostGraph& graph, const std::string& text);

}  // namespace ionn
