// Query latency under the shared execution semantics (DESIGN.md): every
// layer runs on one side, a tensor crosses each direction at most once,
// latency = execution times + transfer times. Pure code: no I/O, no clocks.
#pragma once

#include <memory>
#include <vector>

#include "ionn/cost_graph.h"

namespace ionn {

// Where each layer runs in one query, and what that query costs.
struct Placement {
  double latency_ms = 0;
  LayerMask on_server;  // 1 = the layer runs on the server
};

// The latency of one given placement: its schedule's (ScheduleQuery in
// include/ionn/schedule.h). `server_extra_ms` (optional, one value per
// layer) is added to the server time of layers on the server.
double PlacementLatencyMs(const CostGraph& graph, const LayerMask& on_server,
                          const std::vector<double>* server_extra_ms = nullptr);

// Exact best placement. Chains use IONN's shortest path (dynamic programming
// over the NN execution graph); other DAGs a minimum s-t cut, which is exact
// for these semantics. Among equally fast placements the one with fewer
// server layers is preferred. Holds a reference to `graph`.
class LatencyModel {
 public:
  explicit LatencyModel(const CostGraph& graph) : graph_(graph) {}
  const CostGraph& graph() const { return graph_; }

  // L(S; X): layers in `allowed` (S) may run on the server, layers in
  // `forced` (X, may be null) must. X need not be a subset of S.
  Placement Best(const LayerMask& allowed, const LayerMask* forced = nullptr,
                 const std::vector<double>* server_extra_ms = nullptr) const;
  double LatencyMs(const LayerMask& allowed, const LayerMask* forced = nullptr) const {
    return Best(allowed, forced).latency_ms;
  }
  // Everything on the client.
  double LocalMs() const;
  // Everything allowed on the server (L of the whole model uploaded).
  double OptimalMs() const;

  // The two engines, exposed so tests can compare them.
  Placement BestByChainPath(const LayerMask& allowed, const LayerMask* forced,
                            const std::vector<double>* server_extra_ms) const;
  Placement BestByMinCut(const LayerMask& allowed, const LayerMask* forced,
                         const std::vector<double>* server_extra_ms) const;

 private:
  const CostGraph& graph_;
};

class BlockChainLatency;

// L(S; run) for many runs first..last (positions in topological order)
// against one uploaded set S: what the efficiency planners ask thousands of
// times per step. On chains each query is O(1) from prefix and suffix
// shortest-path distances; on other DAGs with one input and one output the
// graph is cut into blocks at its chain cut points: a run across blocks is
// O(1), one inside a block of parallel chains (inception modules, residual
// blocks) O(branches), one inside any other block (attention) comes from
// minimum cuts of that block's layers, kept while they do not change; on
// the rest it solves one minimum cut of the whole graph.
class RunLatency {
 public:
  RunLatency(const LatencyModel& model, const LayerMask& uploaded);
  // Without an uploaded set yet: call Update before any query.
  explicit RunLatency(const LatencyModel& model);
  // Sets the uploaded set S, reusing the structures of the graph: O(layers)
  // on chains, and the blocks whose uploaded layers changed recomputed.
  void Update(const LayerMask& uploaded);
  double base_ms() const { return base_ms_; }  // L(S)
  double ForcedRunMs(int first, int last) const;
  // ForcedRunMs(first, j) for j = first..last, into out[0..last-first].
  void ForcedRunRowMs(int first, int last, double* out) const;
  // Whether queries avoid minimum cuts (chain or block decomposition).
  bool fast() const { return chain_ || blocks_ != nullptr; }

 private:
  const LatencyModel& model_;
  LayerMask uploaded_;
  double base_ms_ = 0;
  bool chain_ = false;
  // Chain only: best cost up to and including layer k with layer k on side
  // s (0 client, 1 server), best cost after layer k given layer k on side s,
  // and prefix sums of server times.
  std::vector<double> fwd_[2], bwd_[2], server_prefix_;
  std::shared_ptr<BlockChainLatency> blocks_;  // DAGs cut into blocks
};

}  // namespace ionn
