// ionn's planner for the window (DESIGN.md, "The window"): the partitions
// of recursive-efficiency, improved for the queries a client finishes
// within the window (by default the fp32 all-at-once upload time), on the
// planner's own numbers (the simulator's protocol without link
// contention, one step per query). Where the graph has few units, every
// ordered partition of them is tried; otherwise local search: swap two
// adjacent partitions, split a partition's first unit off, merge two
// adjacent partitions (which pays with a per-partition overhead), in
// passes until none raises the count. Each move changes at most one prefix
// set, so it costs at most one latency update and one replay.
#include <algorithm>
#include <functional>
#include <optional>

#include "ionn/plan.h"
#include "ionn/protocol.h"

namespace ionn {

double ExpectedQueriesInWindow(const std::vector<double>& latency_ms, const std::vector<double>& upload_ms,
                               double window_ms) {
  if (latency_ms.empty()) return 0;
  ProtocolOptions options;
  options.queries_after_upload = 0;
  options.raise_until_ms = window_ms;
  thread_local ProtocolRun run;  // the search calls this once per tried move
  if (!ReplayProtocolWithoutSharing(upload_ms, latency_ms, options, &run).ok()) return 0;
  double count = 0;
  for (const ProtocolQuery& q : run.queries) {
    if (q.end_ms <= window_ms) {
      count += 1;
    } else if (q.start_ms < window_ms) {
      count += (window_ms - q.start_ms) / (q.end_ms - q.start_ms);  // the one in flight, by its done share
    }
  }
  return count;
}

namespace {

// Units to order at most for trying every ordered partition of them
// (Fubini's number: 4,683 orders of 6 units).
constexpr size_t kExhaustiveUnits = 6;
constexpr double kMinGain = 1e-9;
// Latency updates the moves of partitions ahead may take in all (each a
// minimum cut on a DAG): a bound on the planner's time on large graphs.
constexpr int64_t kMoveBudget = 20000;

class WindowObjective {
 public:
  WindowObjective(const LatencyModel& model, std::vector<int> tail, double window_ms)
      : model_(model), runs_(model), tail_(std::move(tail)), window_ms_(window_ms) {}

  // The count for `parts` (then the tail), latencies computed anew.
  double Evaluate(const UnitPartitions& parts, std::vector<double>* latency, std::vector<double>* upload) {
    const CostGraph& g = model_.graph();
    LayerMask uploaded(g.num_layers(), 0);
    latency->clear(), upload->clear();
    for (const auto& p : parts) {
      for (int u : p) uploaded[u] = 1;
      runs_.Update(uploaded);
      latency->push_back(runs_.base_ms());
      upload->push_back(g.UploadMs(p));
    }
    return Count(*latency, *upload);
  }

  // The count with a tail partition after `latency`/`upload` (not stored there).
  double Count(std::vector<double> latency, std::vector<double> upload) const {
    if (!tail_.empty()) latency.push_back(model_.OptimalMs()), upload.push_back(model_.graph().UploadMs(tail_));
    return ExpectedQueriesInWindow(latency, upload, window_ms_);
  }

  // L(S) for the units in `parts[0..k)` and `extra`.
  double PrefixMs(const UnitPartitions& parts, size_t k, const std::vector<int>& extra) {
    LayerMask uploaded(model_.graph().num_layers(), 0);
    for (size_t i = 0; i < k; ++i) {
      for (int u : parts[i]) uploaded[u] = 1;
    }
    for (int u : extra) uploaded[u] = 1;
    runs_.Update(uploaded);
    return runs_.base_ms();
  }

 private:
  const LatencyModel& model_;
  RunLatency runs_;
  std::vector<int> tail_;
  double window_ms_;
};

// Every ordered partition of `units`, the best kept (ties: the first found).
UnitPartitions Exhaustive(WindowObjective& objective, const std::vector<int>& units, const UnitPartitions& start,
                          double start_count) {
  UnitPartitions best = start, current;
  double best_count = start_count;
  std::vector<double> latency, upload;
  std::function<void(std::vector<int>)> place = [&](std::vector<int> left) {
    if (left.empty()) {
      const double c = objective.Evaluate(current, &latency, &upload);
      if (c > best_count + kMinGain * std::max(1.0, best_count)) best = current, best_count = c;
      return;
    }
    // The next partition: any nonempty subset of what is left.
    const size_t n = left.size();
    for (uint32_t mask = 1; mask < (1u << n); ++mask) {
      std::vector<int> part, rest;
      for (size_t i = 0; i < n; ++i) ((mask >> i) & 1 ? part : rest).push_back(left[i]);
      current.push_back(part);
      place(rest);
      current.pop_back();
    }
  };
  place(units);
  return best;
}

}  // namespace

UnitPartitions PlanWindowSearch(const LatencyModel& model, UnitPartitions parts, double window_ms) {
  const CostGraph& g = model.graph();
  const int n = g.num_layers();
  std::vector<int> units;
  LayerMask placed(n, 0);
  for (const auto& p : parts) {
    for (int u : p) units.push_back(u), placed[u] = 1;
  }
  std::vector<int> tail;  // MakePlan's last partition: counted, never moved
  for (int u = 0; u < n; ++u) {
    if (!placed[u]) tail.push_back(u);
  }
  if (n <= static_cast<int>(kExhaustiveUnits)) {
    // Few units: every ordered partition of all of them, the tail's too
    // (a unit outside the optimal set may serve an intermediate set).
    if (!tail.empty()) parts.push_back(tail);
    WindowObjective objective(model, {}, window_ms);
    std::vector<double> latency, upload;
    const double start = objective.Evaluate(parts, &latency, &upload);
    std::vector<int> all(n);
    for (int u = 0; u < n; ++u) all[u] = u;
    return Exhaustive(objective, all, parts, start);
  }
  WindowObjective objective(model, tail, window_ms);
  std::vector<double> latency, upload;
  double best = objective.Evaluate(parts, &latency, &upload);
  if (units.empty()) return parts;
  const auto better = [&](double tried) { return tried > best + kMinGain * std::max(1.0, best); };
  int64_t budget = kMoveBudget;
  for (int pass = 0; pass < 100; ++pass) {
    bool improved = false;
    for (size_t k = 0; k < parts.size(); ++k) {
      // Split the first unit (topological order) of partition k off, ahead of the rest.
      if (parts[k].size() > 1) {
        const std::vector<int> first = {parts[k].front()};
        std::vector<double> l = latency, u = upload;
        l.insert(l.begin() + k, objective.PrefixMs(parts, k, first));
        u[k] = g.UploadMs(std::vector<int>(parts[k].begin() + 1, parts[k].end()));
        u.insert(u.begin() + k, g.UploadMs(first));
        const double tried = objective.Count(l, u);
        if (better(tried)) {
          parts.insert(parts.begin() + k + 1, std::vector<int>(parts[k].begin() + 1, parts[k].end()));
          parts[k] = first;
          latency = std::move(l), upload = std::move(u), best = tried, improved = true;
          continue;
        }
      }
      if (k + 1 >= parts.size()) continue;
      {  // Swap partitions k and k+1.
        std::vector<double> l = latency, u = upload;
        l[k] = objective.PrefixMs(parts, k, parts[k + 1]);
        std::swap(u[k], u[k + 1]);
        const double tried = objective.Count(l, u);
        if (better(tried)) {
          std::swap(parts[k], parts[k + 1]);
          latency = std::move(l), upload = std::move(u), best = tried, improved = true;
          continue;
        }
      }
      if (g.partition_overhead_ms() > 0) {  // Merge partitions k and k+1.
        std::vector<double> l = latency, u = upload;
        std::vector<int> merged = parts[k];
        merged.insert(merged.end(), parts[k + 1].begin(), parts[k + 1].end());
        std::sort(merged.begin(), merged.end());
        l.erase(l.begin() + k);
        u[k] = g.UploadMs(merged);
        u.erase(u.begin() + k + 1);
        const double tried = objective.Count(l, u);
        if (better(tried)) {
          parts[k] = std::move(merged);
          parts.erase(parts.begin() + k + 1);
          latency = std::move(l), upload = std::move(u), best = tried, improved = true;
        }
      }
    }
    // Move a partition ahead of earlier ones (what adjacent swaps cannot
    // reach when the states between are worse): its latencies from the new
    // place on change, so within a budget of latency updates.
    for (size_t j = 1; j < parts.size() && !improved && budget > 0; ++j) {
      for (size_t i = 0; i + 1 < j && !improved && budget > 0; ++i) {
        UnitPartitions moved = parts;
        std::rotate(moved.begin() + i, moved.begin() + j, moved.begin() + j + 1);
        std::vector<double> l = latency, u = upload;
        std::rotate(u.begin() + i, u.begin() + j, u.begin() + j + 1);
        for (size_t k = i; k < j; ++k) l[k] = objective.PrefixMs(moved, k + 1, {});
        budget -= static_cast<int64_t>(j - i);
        const double tried = objective.Count(l, u);
        if (better(tried)) {
          parts = std::move(moved);
          latency = std::move(l), upload = std::move(u), best = tried, improved = true;
        }
      }
    }
    if (!improved) break;
  }
  return parts;
}

Result<SlicedPlan> PlanBestSlices(const std::function<Result<CostGraph>(int)>& costs_for,
                                  const std::function<Result<UploadPlan>(const CostGraph&)>& plan_for,
                                  const std::vector<int>& counts) {
  if (counts.empty()) return Status::Invalid("no slice count to try");
  std::optional<SlicedPlan> best;
  double best_count = -1;
  for (int n : counts) {
    IONN_ASSIGN_OR_RETURN(CostGraph costs, costs_for(n));
    IONN_ASSIGN_OR_RETURN(UploadPlan plan, plan_for(costs));
    std::vector<double> latency, upload;
    for (const Partition& p : plan.partitions) latency.push_back(p.latency_ms), upload.push_back(p.upload_ms);
    const double count = ExpectedQueriesInWindow(latency, upload, AllAtOnceUploadMs(costs));
    if (count > best_count + 1e-9) best_count = count, best = SlicedPlan{n, std::move(costs), std::move(plan)};
  }
  return std::move(*best);
}

}  // namespace ionn
