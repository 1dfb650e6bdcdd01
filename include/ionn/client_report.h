// What a client run reports, for `ionn client` and `ionn.Client` alike: the
// ionn-client/2 JSON (docs/formats/ionn-client-2.schema.json), the trace CSV (one
// row per query, partition and upload call: docs/formats/README.md), the
// first run of queries whose latency strayed from the plan's, and the
// check of a query's outputs against a whole-model run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ionn/client.h"
#include "ionn/plan.h"

namespace ionn {

// The first run of at least three queries in a row (computed with the
// plan's placement, not recomputed after a failure) whose measured latency
// differs from the planner's by more than 25%.
struct LatencyDivergence {
  size_t first = 0, last = 0;
  double measured_ms = 0, predicted_ms = 0;  // medians over the run
  bool on_server = false;                    // some of them ran layers on the server
};
std::optional<LatencyDivergence> FirstDivergence(const std::vector<ClientQuery>& queries);

// The largest over the outputs of |got - want| relative to that output's
// largest |want| (at least 1e-3 of the largest |want| of all outputs);
// infinite when an output is missing, has another shape or is NaN.
double RelativeError(const TensorMap& got, const TensorMap& want);
// Queries whose outputs differ from a whole-model run by more than this
// (relative, as above): `--verify`'s threshold.
constexpr double kVerifyTolerance = 1e-4;

// What the JSON says beyond the run itself.
struct ClientReportSetting {
  RunSetting run;                 // model, link as planned, sources
  bool ignore_held = false;
  bool emulated_profile = false;
  std::string arrivals = "back-to-back";  // ArrivalsName of the client's arrivals
  double deadline_ms = -1;
  // Given when every query was checked (--verify): how many differed, the
  // largest relative error.
  std::optional<int> queries_wrong;  // of the exact queries
  double max_relative_error = 0;
  double max_relative_error_approximate = -1;  // of those that ran approximate layers (< 0: none)
};

// --verify: each query's outputs against `reference` (a whole-model run
// here). Queries that ran only exact layers must be within
// kVerifyTolerance (else they count as wrong); those that ran approximate
// ones (progressive's high halves, fp16, int8) are reported beside, by
// their largest error. Not thread-safe: the client calls it in turn.
class OutputCheck {
 public:
  explicit OutputCheck(TensorMap reference) : reference_(std::move(reference)) {}
  void operator()(const ClientQuery& query, const TensorMap& outputs);
  int wrong() const { return wrong_; }
  double worst_exact() const { return worst_exact_; }
  double worst_approximate() const { return worst_approximate_; }  // < 0: none ran
  // Fills the setting's verification fields.
  void Report(ClientReportSetting* setting) const;

 private:
  TensorMap reference_;
  int wrong_ = 0;
  double worst_exact_ = 0, worst_approximate_ = -1;
};

// The ionn-client/2 document.
nlohmann::json ClientResultToJson(const Graph& model, const ClientResult& r, const ClientReportSetting& setting);

// The trace CSV, header first.
std::string ClientTraceCsv(const ClientResult& r);

}  // namespace ionn
