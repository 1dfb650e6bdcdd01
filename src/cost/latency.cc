#include "ionn/latency.h"

#include <algorithm>
#include <array>
#include <limits>

#include "block_latency.h"
#include "ionn/schedule.h"
#include "max_flow.h"

namespace ionn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double Extra(const std::vector<double>* extra, int k) { return extra ? (*extra)[k] : 0.0; }


}  // namespace

double PlacementLatencyMs(const CostGraph& g, const LayerMask& on_server,
                          const std::vector<double>* extra) {
  return ScheduleQuery(g, on_server, extra).latency_ms;
}

Placement LatencyModel::Best(const LayerMask& allowed, const LayerMask* forced,
                             const std::vector<double>* extra) const {
  return graph_.is_chain() ? BestByChainPath(allowed, forced, extra)
                           : BestByMinCut(allowed, forced, extra);
}

double LatencyModel::LocalMs() const {
  return Best(LayerMask(graph_.num_layers(), 0)).latency_ms;
}

double LatencyModel::OptimalMs() const {
  return Best(LayerMask(graph_.num_layers(), 1)).latency_ms;
}

Placement LatencyModel::BestByChainPath(const LayerMask& allowed, const LayerMask* forced,
                                        const std::vector<double>* extra) const {
  const CostGraph& g = graph_;
  const int n = g.num_layers();
  // dist[k][s]: best cost through layer k with layer k on side s.
  std::vector<double> dist[2] = {std::vector<double>(n), std::vector<double>(n)};
  std::vector<uint8_t> from[2] = {std::vector<uint8_t>(n), std::vector<uint8_t>(n)};
  for (int k = 0; k < n; ++k) {
    const CostLayer& l = g.layer(k);
    const double exec[2] = {forced && (*forced)[k] ? kInf : l.client_ms,
                            allowed[k] || (forced && (*forced)[k]) ? l.server_ms + Extra(extra, k)
                                                                   : kInf};
    const int t = k;  // tensor consumed by layer k (see CostGraph::is_chain)
    const double prev[2] = {k ? dist[0][k - 1] : 0.0, k ? dist[1][k - 1] : kInf};
    const double up = g.tensor_up_ms(t), down = g.tensor_down_ms(t);
    // to client: stay (prev client) or come down; to server: come up or stay
    const double c_stay = prev[0], c_down = prev[1] + down;
    const double s_up = prev[0] + up, s_stay = prev[1];
    dist[0][k] = (c_down < c_stay ? c_down : c_stay) + exec[0];
    from[0][k] = c_down < c_stay ? 1 : 0;
    dist[1][k] = (s_stay < s_up ? s_stay : s_up) + exec[1];
    from[1][k] = s_stay < s_up ? 1 : 0;
  }
  const double end_client = dist[0][n - 1], end_server = dist[1][n - 1] + g.layer(n - 1).down_ms;
  Placement p;
  p.on_server.assign(n, 0);
  int side = end_server < end_client ? 1 : 0;
  p.latency_ms = side ? end_server : end_client;
  for (int k = n - 1; k >= 0; --k) {
    p.on_server[k] = static_cast<uint8_t>(side);
    side = from[side][k];
  }
  return p;
}

Placement LatencyModel::BestByMinCut(const LayerMask& allowed, const LayerMask* forced,
                                     const std::vector<double>* extra) const {
  const CostGraph& g = graph_;
  const int n = g.num_layers();
  // Source side = client, sink side = server. Node ids: 0 source, 1 sink,
  // 2 + k layer k, then auxiliary tensor nodes.
  const int source = 0, sink = 1;
  auto layer_node = [](int k) { return 2 + k; };
  int next_node = 2 + n;
  std::vector<std::array<int, 3>> edges;  // u, v, cap index into caps
  std::vector<double> caps;
  auto edge = [&](int u, int v, double cap) {
    edges.push_back({u, v, static_cast<int>(caps.size())});
    caps.push_back(cap);
  };
  for (int k = 0; k < n; ++k) {
    const bool must = forced && (*forced)[k];
    const bool may = allowed[k] || must;
    edge(source, layer_node(k), may ? g.layer(k).server_ms + Extra(extra, k) : kCapInf);
    edge(layer_node(k), sink, must ? kCapInf : g.layer(k).client_ms);
  }
  std::vector<int> readers;
  for (int t = 0; t < g.num_tensors(); ++t) {
    readers.clear();
    for (int c : g.consumers(t)) readers.push_back(layer_node(c));
    const int p = g.producer(t);
    AddTensorEdges(edge, [&] { return next_node++; }, source, p < 0 ? source : layer_node(p), p >= 0, readers,
                   g.is_output(t), g.tensor_up_ms(t), g.tensor_down_ms(t));
  }
  MaxFlow flow(next_node);
  for (const auto& e : edges) flow.AddEdge(e[0], e[1], caps[e[2]]);
  flow.Run(source, sink);
  const std::vector<uint8_t> server_side = flow.SinkSide(sink);
  Placement pl;
  pl.on_server.assign(n, 0);
  for (int k = 0; k < n; ++k) pl.on_server[k] = server_side[layer_node(k)];
  pl.latency_ms = PlacementLatencyMs(g, pl.on_server, extra);
  return pl;
}

RunLatency::RunLatency(const LatencyModel& model) : model_(model), chain_(model.graph().is_chain()) {
  if (!chain_) blocks_ = BlockChainLatency::Decompose(model.graph());
}

RunLatency::RunLatency(const LatencyModel& model, const LayerMask& uploaded) : RunLatency(model) {
  Update(uploaded);
}

void RunLatency::Update(const LayerMask& uploaded) {
  uploaded_ = uploaded;
  const CostGraph& g = model_.graph();
  const int n = g.num_layers();
  if (!chain_) {
    if (blocks_) {
      blocks_->Prepare(uploaded_);
      base_ms_ = blocks_->BaseMs();
    } else {
      base_ms_ = model_.LatencyMs(uploaded_);
    }
    return;
  }
  if (server_prefix_.empty()) {  // first Update: sizes and the uploaded-independent prefix sums
    for (int s = 0; s < 2; ++s) fwd_[s].resize(n), bwd_[s].resize(n);
    server_prefix_.assign(n + 1, 0);
    for (int k = 0; k < n; ++k) server_prefix_[k + 1] = server_prefix_[k] + g.layer(k).server_ms;
  }
  for (int k = 0; k < n; ++k) {
    const CostLayer& l = g.layer(k);
    const double exec_server = uploaded_[k] ? l.server_ms : kInf;
    const double prev_c = k ? fwd_[0][k - 1] : 0.0, prev_s = k ? fwd_[1][k - 1] : kInf;
    const double up = g.tensor_up_ms(k), down = g.tensor_down_ms(k);
    fwd_[0][k] = std::min(prev_c, prev_s + down) + l.client_ms;
    fwd_[1][k] = std::min(prev_s, prev_c + up) + exec_server;
  }
  bwd_[0][n - 1] = 0;
  bwd_[1][n - 1] = g.layer(n - 1).down_ms;
  for (int k = n - 2; k >= 0; --k) {
    const CostLayer& next = g.layer(k + 1);
    const double next_c = next.client_ms + bwd_[0][k + 1];
    const double next_s = (uploaded_[k + 1] ? next.server_ms : kInf) + bwd_[1][k + 1];
    const double up = g.tensor_up_ms(k + 1), down = g.tensor_down_ms(k + 1);
    bwd_[0][k] = std::min(next_c, up + next_s);
    bwd_[1][k] = std::min(next_s, down + next_c);
  }
  base_ms_ = std::min(fwd_[0][n - 1] + bwd_[0][n - 1], fwd_[1][n - 1] + bwd_[1][n - 1]);
}

double RunLatency::ForcedRunMs(int first, int last) const {
  if (blocks_) return blocks_->ForcedRunMs(first, last);
  if (!chain_) {
    LayerMask forced(uploaded_.size(), 0);
    std::fill(forced.begin() + first, forced.begin() + last + 1, 1);
    return model_.LatencyMs(uploaded_, &forced);
  }
  const CostGraph& g = model_.graph();
  const double enter = first == 0 ? g.tensor_up_ms(0)
                                  : std::min(fwd_[1][first - 1],
                                             fwd_[0][first - 1] + g.tensor_up_ms(first));
  return enter + (server_prefix_[last + 1] - server_prefix_[first]) + bwd_[1][last];
}

}  // namespace ionn

namespace ionn {

void RunLatency::ForcedRunRowMs(int first, int last, double* out) const {
  if (blocks_) return blocks_->ForcedRunRowMs(first, last, out);
  if (!chain_) {
    for (int j = first; j <= last; ++j) out[j - first] = ForcedRunMs(first, j);
    return;
  }
  const CostGraph& g = model_.graph();
  const double enter =
      first == 0 ? g.tensor_up_ms(0) : std::min(fwd_[1][first - 1], fwd_[0][first - 1] + g.tensor_up_ms(first));
  const double before = server_prefix_[first];
  const double* prefix = server_prefix_.data() + 1;
  const double* tail = bwd_[1].data();
  for (int j = first; j <= last; ++j) out[j - first] = enter + (prefix[j] - before) + tail[j];
}

}  // namespace ionn
