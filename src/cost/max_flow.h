// Internal to the cost part: Dinic's maximum flow on the small graphs the
// latency model cuts (layers, their tensors, the client and server sides).
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <vector>

namespace ionn {

constexpr double kCapInf = 1e18;  // "cannot be cut"; far above any finite cut

// Dinic's maximum flow on a small graph, capacities in ms. Edges keep
// their capacities, so a flow can be reset and solved again on the same
// graph, and a capacity changed after a solve: the next Run then finds the
// maximum flow of the changed graph from the current one (what sweeping a
// run of forced layers one layer at a time needs).
class MaxFlow {
  static constexpr double kFlowEps = 1e-9;

 public:
  explicit MaxFlow(int nodes = 0) : head_(nodes, -1), level_(nodes), it_(nodes), queue_(nodes) {}
  // The new edge's id. Edges of capacity 0 are kept only when `keep`
  // (to be given a capacity later).
  int AddEdge(int u, int v, double cap, bool keep = false) {
    if (cap <= 0 && !keep) return -1;
    const int e = static_cast<int>(to_.size());
    to_.push_back(v), cap_.push_back(cap), next_.push_back(head_[u]), head_[u] = e;
    to_.push_back(u), cap_.push_back(0), next_.push_back(head_[v]), head_[v] = e + 1;
    capacity_.push_back(cap);
    return e;
  }
  // No flow; every edge at capacity `caps[id / 2]` (edges in the order added).
  void Reset(const std::vector<double>& caps) {
    for (size_t i = 0; i < capacity_.size(); ++i) {
      capacity_[i] = caps[i];
      cap_[2 * i] = caps[i];
      cap_[2 * i + 1] = 0;
    }
  }
  std::vector<double> capacities() const { return capacity_; }
  // Sets edge e's capacity. When its flow is above the new capacity the
  // excess goes back from `t` to the edge's head (the flow stays valid,
  // smaller); Run again then maximises it. Lowering below the flow is for
  // edges that leave the source `s` only (their tail needs no balancing).
  void SetCapacity(int e, double cap, int s, int t) {
    const double flow = cap_[e ^ 1];
    assert(flow <= cap || to_[e ^ 1] == s);
    (void)s;
    capacity_[e / 2] = cap;
    if (flow <= cap) {
      cap_[e] = cap - flow;
      return;
    }
    cap_[e] = 0;
    cap_[e ^ 1] = cap;
    Push(t, to_[e], flow - cap);
  }
  void Run(int s, int t) { (void)Push(s, t, kCapInf * 4); }
  // Nodes that can still reach t in the residual graph: the smallest sink side.
  const std::vector<uint8_t>& SinkSide(int t) {
    seen_.assign(head_.size(), 0);
    int n = 0;
    queue_[n++] = t;
    seen_[t] = 1;
    while (n) {
      const int v = queue_[--n];
      for (int e = head_[v]; e != -1; e = next_[e]) {
        // Edge e is v->u; its reverse u->v has residual cap_[e ^ 1].
        const int u = to_[e];
        if (!seen_[u] && cap_[e ^ 1] > kFlowEps) seen_[u] = 1, queue_[n++] = u;
      }
    }
    return seen_;
  }
  // After Run: the capacity of the minimum cut whose source side is what
  // the source still reaches (Run's last search), summed from the edges'
  // capacities (not the flow's, which carries the augmenting paths' rounding).
  double MinCutValue() const {
    double sum = 0;
    for (size_t i = 0; i < capacity_.size(); ++i) {
      if (level_[to_[2 * i + 1]] >= 0 && level_[to_[2 * i]] < 0) sum += capacity_[i];
    }
    return sum;
  }

 private:
  // Sends up to `limit` from s to t; returns how much went.
  double Push(int s, int t, double limit) {
    double sent = 0;
    while (limit - sent > kFlowEps && Bfs(s, t)) {
      it_ = head_;
      while (limit - sent > kFlowEps) {
        const double d = Dfs(s, t, limit - sent);
        if (!(d > kFlowEps)) break;
        sent += d;
      }
    }
    return sent;
  }
  bool Bfs(int s, int t) {
    std::fill(level_.begin(), level_.end(), -1);
    int read = 0, write = 0;
    level_[s] = 0;
    queue_[write++] = s;
    while (read < write) {
      const int v = queue_[read++];
      for (int e = head_[v]; e != -1; e = next_[e]) {
        if (cap_[e] > kFlowEps && level_[to_[e]] < 0) level_[to_[e]] = level_[v] + 1, queue_[write++] = to_[e];
      }
    }
    return level_[t] >= 0;
  }
  double Dfs(int v, int t, double f) {
    if (v == t) return f;
    for (int& e = it_[v]; e != -1; e = next_[e]) {
      const int u = to_[e];
      if (cap_[e] > kFlowEps && level_[u] == level_[v] + 1) {
        const double d = Dfs(u, t, std::min(f, cap_[e]));
        if (d > kFlowEps) {
          cap_[e] -= d;
          cap_[e ^ 1] += d;
          return d;
        }
      }
    }
    return 0;
  }
  std::vector<int> head_, level_, it_, queue_, to_, next_;
  std::vector<double> cap_;       // residual, per direction
  std::vector<double> capacity_;  // per edge (id / 2)
  std::vector<uint8_t> seen_;
};

// The edges of one tensor in a cut where the source side is the client and
// the sink side the server: it is sent up once when its producer is on the
// client and any reader on the server, and down once the other way (an
// output also comes down when made on the server). `edge(u, v, cap)` adds
// an edge, `new_node()` returns a fresh node; `producer` is the source for
// a model input, which is never sent down.
template <class Edge, class NewNode>
void AddTensorEdges(Edge&& edge, NewNode&& new_node, int source, int producer, bool has_producer,
                    const std::vector<int>& readers, bool is_output, double up, double down) {
  if (readers.size() == 1 && !is_output) {
    edge(producer, readers[0], up);  // producer client, reader server
    if (has_producer) edge(readers[0], producer, down);
    return;
  }
  if (!readers.empty()) {
    const int on_server = new_node();  // sink side iff the tensor is sent up
    edge(producer, on_server, up);
    for (int r : readers) edge(on_server, r, kCapInf);
  }
  if (has_producer) {
    const int on_client = new_node();  // source side iff the tensor comes down
    edge(on_client, producer, down);
    for (int r : readers) edge(r, on_client, kCapInf);
    if (is_output) edge(source, on_client, kCapInf);
  }
}

}  // namespace ionn
