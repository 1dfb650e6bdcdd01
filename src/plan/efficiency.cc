// The paper's efficiency-based planners (section 3): upload the run of
// consecutive optimal layers with the best latency gain per upload time;
// the recursive variant first narrows the run to its best sub-run while
// some sub-run still gains.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ionn/plan.h"

namespace ionn {
namespace {

struct Candidate {
  int first = -1, last = -1;  // positions, inclusive
  double efficiency = 0;
  bool valid() const { return first >= 0; }
  int size() const { return last - first + 1; }
};

inline bool SameEfficiency(double a, double b) {
  if (a == b) return true;  // also equal infinities
  if (std::isinf(a) || std::isinf(b)) return false;
  return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

// DESIGN.md: higher efficiency, then the earlier first layer, then fewer layers.
inline bool Better(const Candidate& a, const Candidate& b) {
  if (!b.valid()) return true;
  // Fast rejection of the clearly worse (most candidates); SameEfficiency's
  // tolerance is 1e-9 relative, so this never rejects a tie.
  if (a.efficiency < b.efficiency - 2e-9 * std::max(1.0, std::fabs(b.efficiency))) return false;
  if (!SameEfficiency(a.efficiency, b.efficiency)) return a.efficiency > b.efficiency;
  if (a.first != b.first) return a.first < b.first;
  return a.size() < b.size();
}

class CandidateScorer {
 public:
  explicit CandidateScorer(const LatencyModel& model)
      : graph_(model.graph()), runs_(model), optimal_ms_(model.OptimalMs()) {
    upload_prefix_.assign(graph_.num_layers() + 1, 0);
    for (int k = 0; k < graph_.num_layers(); ++k) {
      upload_prefix_[k + 1] = upload_prefix_[k] + graph_.layer(k).upload_ms;
    }
    row_.resize(graph_.num_layers());
  }
  void SetUploaded(const LayerMask& uploaded) { runs_.Update(uploaded); }
  // The best run inside [lo, hi], skipping [lo, hi] itself when proper.
  // Scores a row of runs (one first layer, every last) at a time.
  Candidate BestWithin(int lo, int hi, bool proper) {
    Candidate best;
    double* row = row_.data();
    const double base = runs_.base_ms(), overhead = graph_.partition_overhead_ms();
    // Runs whose efficiency is clearly below the best so far are skipped
    // without a division: gain < threshold * upload (upload > 0).
    double threshold = -std::numeric_limits<double>::infinity();
    // No run gains more than the optimal placement does (every layer on
    // the server allowed, nothing forced), with a margin for rounding (the
    // cuts' tolerance is 1e-9 per edge): a
    // run whose upload makes even that gain fall below the threshold is
    // skipped without computing its latency (as its gain would be).
    const double max_gain = base - optimal_ms_ + 1e-6 * std::max(1.0, std::fabs(base));
    for (int i = lo; i <= hi; ++i) {
      int last = proper && i == lo ? hi - 1 : hi;
      while (last >= i && max_gain < threshold * (overhead + upload_prefix_[last + 1] - upload_prefix_[i])) --last;
      if (last < i) continue;
      runs_.ForcedRunRowMs(i, last, row);
      for (int j = i; j <= last; ++j) {
        const double upload = overhead + upload_prefix_[j + 1] - upload_prefix_[i];
        const double gain = base - row[j - i];
        if (upload > 0 && gain < threshold * upload) continue;
        const Candidate c{i, j, Efficiency(gain, upload)};
        if (Better(c, best)) {
          best = c;
          threshold = best.efficiency - 2e-9 * std::max(1.0, std::fabs(best.efficiency));
        }
      }
    }
    return best;
  }

 private:
  const CostGraph& graph_;
  RunLatency runs_;
  const double optimal_ms_;
  std::vector<double> upload_prefix_;
  std::vector<double> row_;  // scratch for one row of runs
};

}  // namespace

UnitPartitions PlanEfficiency(const LatencyModel& model, bool recursive) {
  const CostGraph& g = model.graph();
  const int n = g.num_layers();
  const LayerMask all(n, 1);
  const LayerMask optimal = model.Best(all).on_server;

  UnitPartitions parts;
  LayerMask uploaded(n, 0);
  // Initial partition: the server side with penalty 1 (benefit > cost).
  std::vector<double> extra(n);
  for (int k = 0; k < n; ++k) extra[k] = g.layer(k).upload_ms;
  const Placement initial = model.Best(all, nullptr, &extra);
  std::vector<int> first;
  for (int k = 0; k < n; ++k) {
    if (initial.on_server[k]) first.push_back(k), uploaded[k] = 1;
  }
  if (!first.empty()) parts.push_back(std::move(first));

  CandidateScorer scorer(model);
  while (true) {
    scorer.SetUploaded(uploaded);
    Candidate best;
    for (int i = 0; i < n;) {  // each maximal run of optimal, not-uploaded layers
      if (!optimal[i] || uploaded[i]) {
        ++i;
        continue;
      }
      int j = i;
      while (j + 1 < n && optimal[j + 1] && !uploaded[j + 1]) ++j;
      Candidate c = scorer.BestWithin(i, j, /*proper=*/false);
      if (Better(c, best)) best = c;
      i = j + 1;
    }
    if (!best.valid()) break;
    while (recursive && best.size() > 1) {
      Candidate sub = scorer.BestWithin(best.first, best.last, /*proper=*/true);
      if (!(sub.efficiency > 0)) break;
      best = sub;
    }
    std::vector<int> part;
    for (int k = best.first; k <= best.last; ++k) part.push_back(k), uploaded[k] = 1;
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace ionn
