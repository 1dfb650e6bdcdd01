#include "block_latency.h"

#include <algorithm>
#include <limits>

#include "ionn/granularity.h"
#include "max_flow.h"

namespace ionn {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

std::unique_ptr<BlockChainLatency> BlockChainLatency::Decompose(const CostGraph& g) {
  const int n = g.num_layers();
  if (g.num_inputs() != 1) return nullptr;
  for (int t = 0; t < g.num_tensors(); ++t) {
    if (g.is_output(t) && t != g.tensor_of_layer(n - 1)) return nullptr;
  }
  std::unique_ptr<BlockChainLatency> bc(new BlockChainLatency(g));
  bc->block_of_.assign(n, -1);
  bc->head_block_.resize(n);
  bc->tail_block_.resize(n);
  int begin = 0;
  for (int cut : ChainCutPoints(g)) {
    Block b;
    b.first = begin;
    b.merge = cut;
    b.entry_tensor = begin == 0 ? 0 : g.tensor_of_layer(begin - 1);
    b.general = !bc->ParseBranches(&b);
    if (b.general) {
      b.branches.clear();
      b.merge_reads_entry = false;
      b.net = bc->BuildNet(b);
    }
    for (int k = begin; k <= cut; ++k) bc->block_of_[k] = static_cast<int>(bc->blocks_.size());
    bc->blocks_.push_back(std::move(b));
    begin = cut + 1;
  }
  return bc;
}

bool BlockChainLatency::ParseBranches(Block* b) const {
  const CostGraph& g = g_;
  const int begin = b->first, cut = b->merge;
  std::vector<uint8_t> seen(cut - begin, 0);
  const auto& merge_inputs = g.layer_inputs(cut);
  for (size_t i = 0; i < merge_inputs.size(); ++i) {
    const int t = merge_inputs[i];
    if (std::count(merge_inputs.begin(), merge_inputs.end(), t) != 1) return false;
    if (t == b->entry_tensor) {
      b->merge_reads_entry = true;
      continue;
    }
    Branch br;
    int p = g.producer(t);
    while (true) {
      if (p < begin || p >= cut || seen[p - begin]) return false;
      if (g.layer_inputs(p).size() != 1 || g.consumers(g.tensor_of_layer(p)).size() != 1) return false;
      seen[p - begin] = 1;
      br.layers.push_back(p);
      const int in = g.layer_inputs(p)[0];
      if (in == b->entry_tensor) break;
      p = g.producer(in);
    }
    std::reverse(br.layers.begin(), br.layers.end());
    br.server_prefix.assign(br.layers.size() + 1, 0);
    for (size_t k = 0; k < br.layers.size(); ++k) {
      br.server_prefix[k + 1] = br.server_prefix[k] + g.layer(br.layers[k]).server_ms;
    }
    b->branches.push_back(std::move(br));
  }
  return std::find(seen.begin(), seen.end(), 0) == seen.end();
}

double BlockChainLatency::Exec(int layer, int side, bool forced) const {
  if (side == 0) return forced ? kInf : g_.layer(layer).client_ms;
  return allowed_[layer] || forced ? g_.layer(layer).server_ms : kInf;
}

double BlockChainLatency::Cross(int tensor, int from, int to) const {
  if (from == to) return 0;
  return to == 1 ? g_.tensor_up_ms(tensor) : g_.tensor_down_ms(tensor);
}

void BlockChainLatency::Prepare(const LayerMask& allowed) {
  const bool first_time = allowed_.size() != allowed.size();
  std::vector<uint8_t> changed(blocks_.size(), first_time);
  for (size_t k = 0; !first_time && k < allowed.size(); ++k) {
    if (allowed[k] != allowed_[k]) changed[block_of_[k]] = 1;
  }
  allowed_ = allowed;
  for (size_t bi = 0; bi < blocks_.size(); ++bi) {
    if (!changed[bi]) continue;  // a block's own costs depend on its layers only
    Block& b = blocks_[bi];
    const size_t size = static_cast<size_t>(b.merge - b.first + 1);
    b.within_cache.clear();
    if (size <= kMaxCachedBlock) b.within_cache.assign(size * size, {{{kInf, kInf}, {kInf, kInf}}});
    b.within_valid.assign(b.within_cache.size(), 0);
    for (Branch& br : b.branches) {
      const int r = static_cast<int>(br.layers.size());
      for (int avail = 0; avail < 3; ++avail) {
        auto& f = br.forward[avail];
        f.assign(r, {kInf, kInf});
        for (int s = 0; s < 2; ++s) {
          const bool present = avail == kBoth || avail == s;
          f[0][s] = present ? Exec(br.layers[0], s, false) : kInf;
        }
        for (int k = 1; k < r; ++k) {
          const int t = g_.tensor_of_layer(br.layers[k - 1]);
          for (int s = 0; s < 2; ++s) {
            f[k][s] = std::min(f[k - 1][0] + Cross(t, 0, s), f[k - 1][1] + Cross(t, 1, s)) +
                      Exec(br.layers[k], s, false);
          }
        }
      }
      for (int end = 0; end < 2; ++end) {
        auto& bw = br.backward[end];
        bw.assign(r, {kInf, kInf});
        bw[r - 1][end] = 0;
        for (int k = r - 2; k >= 0; --k) {
          const int t = g_.tensor_of_layer(br.layers[k]);
          for (int s = 0; s < 2; ++s) {
            double best = kInf;
            for (int s2 = 0; s2 < 2; ++s2) {
              best = std::min(best, Cross(t, s, s2) + Exec(br.layers[k + 1], s2, false) + bw[k + 1][s2]);
            }
            bw[k][s] = best;
          }
        }
      }
    }
    if (b.general) {
      PrepareGeneral(b);
      continue;
    }
    BlockMs(b, 0, -1, b.cost.data());
    Pair forced[2];
    BlockMs(b, b.first, b.merge, forced);
    b.all_forced = forced[1][1];
    for (int k = b.first; k <= b.merge; ++k) {
      BlockMs(b, k, b.merge, head_block_[k].data());
      BlockMs(b, b.first, k, tail_block_[k].data());
    }
  }
  const size_t nb = blocks_.size();
  const int last = g_.num_layers() - 1;
  const Pair final_cost = {0, g_.is_output(g_.tensor_of_layer(last)) ? g_.layer(last).down_ms : 0};
  prefix_.assign(nb + 1, {kInf, kInf});
  suffix_.assign(nb + 1, {kInf, kInf});
  all_forced_prefix_.assign(nb + 1, 0);
  prefix_[0] = {0, kInf};  // the model input is on the client
  for (size_t b = 0; b < nb; ++b) {
    for (int c = 0; c < 2; ++c) {
      prefix_[b + 1][c] = std::min(prefix_[b][0] + blocks_[b].cost[0][c], prefix_[b][1] + blocks_[b].cost[1][c]);
    }
    all_forced_prefix_[b + 1] = all_forced_prefix_[b] + blocks_[b].all_forced;
  }
  suffix_[nb] = final_cost;
  for (size_t b = nb; b-- > 0;) {
    for (int a = 0; a < 2; ++a) {
      suffix_[b][a] = std::min(blocks_[b].cost[a][0] + suffix_[b + 1][0], blocks_[b].cost[a][1] + suffix_[b + 1][1]);
    }
  }
  base_ms_ = std::min(prefix_[nb][0] + final_cost[0], prefix_[nb][1] + final_cost[1]);
  // A run that leaves its first block forces that block from `first` to its
  // end and ends in a later block forced from its start to `last`: both
  // halves depend on one end of the run only.
  const int n = g_.num_layers();
  run_head_.assign(n, kInf);
  run_tail_.assign(n, kInf);
  for (int k = 0; k < n; ++k) {
    const int b = block_of_[k];
    for (int a = 0; a < 2; ++a) run_head_[k] = std::min(run_head_[k], prefix_[b][a] + head_block_[k][a][1]);
    for (int c = 0; c < 2; ++c) run_tail_[k] = std::min(run_tail_[k], tail_block_[k][1][c] + suffix_[b + 1][c]);
  }
}

void BlockChainLatency::BranchMs(const Branch& br, int first, int last, double out[3][2]) const {
  const int r = static_cast<int>(br.layers.size());
  int p = 0, q = -1;
  if (first <= br.layers.back() && last >= br.layers.front()) {
    p = static_cast<int>(std::lower_bound(br.layers.begin(), br.layers.end(), first) - br.layers.begin());
    q = static_cast<int>(std::upper_bound(br.layers.begin(), br.layers.end(), last) - br.layers.begin()) - 1;
  }
  for (int avail = 0; avail < 3; ++avail) {
    if (p > q) {
      out[avail][0] = br.forward[avail][r - 1][0];
      out[avail][1] = br.forward[avail][r - 1][1];
      continue;
    }
    double enter;
    if (p == 0) {
      enter = avail == kClientOnly ? kInf : 0;
    } else {
      const auto& f = br.forward[avail][p - 1];
      enter = std::min(f[1], f[0] + g_.tensor_up_ms(g_.tensor_of_layer(br.layers[p - 1])));
    }
    const double forced = enter + (br.server_prefix[q + 1] - br.server_prefix[p]);
    out[avail][0] = forced + br.backward[0][q][1];
    out[avail][1] = forced + br.backward[1][q][1];
  }
}

std::unique_ptr<BlockChainLatency::Net> BlockChainLatency::BuildNet(const Block& b) const {
  // Source side = client, sink side = server. Nodes: 0 source, 1 sink, 2 the
  // entry tensor's producer, 3 + k - b.first layer k, then auxiliary nodes.
  auto net = std::make_unique<Net>();
  const int size = b.merge - b.first + 1;
  auto node = [&](int k) { return 3 + k - b.first; };
  struct Edge {
    int u, v;
    double cap;
    int* id;
  };
  std::vector<Edge> edges;
  int nodes = 3 + size;
  auto edge = [&](int u, int v, double cap) { edges.push_back({u, v, cap, nullptr}); };
  net->server_edge.resize(size);
  net->client_edge.resize(size);
  edges.push_back({kSource, 2, 0, &net->entry_client});
  edges.push_back({2, kSink, 0, &net->entry_server});
  edges.push_back({kSource, node(b.merge), 0, &net->merge_client});
  edges.push_back({node(b.merge), kSink, 0, &net->merge_server});
  for (int k = b.first; k <= b.merge; ++k) {
    edges.push_back({kSource, node(k), 0, &net->server_edge[k - b.first]});
    edges.push_back({node(k), kSink, 0, &net->client_edge[k - b.first]});
  }
  std::vector<int> readers;
  auto tensor = [&](int t, int producer) {
    readers.clear();
    for (int c : g_.consumers(t)) readers.push_back(node(c));
    AddTensorEdges(edge, [&] { return nodes++; }, kSource, producer, true, readers, false, g_.tensor_up_ms(t),
                   g_.tensor_down_ms(t));
  };
  tensor(b.entry_tensor, 2);
  for (int k = b.first; k < b.merge; ++k) tensor(g_.tensor_of_layer(k), node(k));
  net->flow = MaxFlow(nodes);
  for (const Edge& e : edges) {
    const int id = net->flow.AddEdge(e.u, e.v, e.cap, /*keep=*/e.id != nullptr);
    if (e.id) *e.id = id;
  }
  net->caps = net->flow.capacities();
  return net;
}

void BlockChainLatency::Sweep(const Block& b, int entry_side, int exit_side, int anchor, int end, double* out) const {
  Net& net = *b.net;
  MaxFlow& flow = net.flow;
  flow.Reset(net.caps);  // no flow: the settings below are plain
  for (int k = b.first; k <= b.merge; ++k) {
    const CostLayer& l = g_.layer(k);
    // Pinned to the server, the last layer's server time stands whether or
    // not it may run there: the cost is infinite until it is forced.
    const bool server_ok = allowed_[k] || (k == b.merge && exit_side == 1);
    flow.SetCapacity(net.server_edge[k - b.first], server_ok ? l.server_ms : kCapInf, kSource, kSink);
    flow.SetCapacity(net.client_edge[k - b.first], l.client_ms, kSource, kSink);
  }
  flow.SetCapacity(entry_side ? net.entry_server : net.entry_client, kCapInf, kSource, kSink);
  flow.SetCapacity(exit_side ? net.merge_server : net.merge_client, kCapInf, kSource, kSink);
  // Only a pinned last layer makes a cut infinite (a layer that may not run
  // on the server is pinned to the client, one forced to the server): those
  // states are answered without a flow, which never carries an infinite one.
  bool merge_forced = false;
  auto solve = [&]() -> double {
    if (exit_side == 1 && !merge_forced && !allowed_[b.merge]) return kInf;
    flow.Run(kSource, kSink);
    return flow.MinCutValue();
  };
  if (anchor < 0) {
    out[0] = solve();
    return;
  }
  const int step = end >= anchor ? 1 : -1;
  for (int k = anchor, i = 0;; k += step, ++i) {
    if (k == b.merge) {
      merge_forced = true;
      if (exit_side == 0) {  // forced to the server, pinned to the client
        for (int r = k; r != end + step; r += step) out[i++] = kInf;
        return;
      }
    }
    flow.SetCapacity(net.client_edge[k - b.first], kCapInf, kSource, kSink);
    flow.SetCapacity(net.server_edge[k - b.first], g_.layer(k).server_ms, kSource, kSink);
    out[i] = solve();
    if (k == end) return;
  }
}

void BlockChainLatency::BlockMs(const Block& b, int first, int last, Pair out[2]) const {
  const bool merge_forced = first <= b.merge && b.merge <= last;
  // branch_sum[avail][c]: every branch, its output delivered to side c.
  double branch_sum[3][2] = {{0, 0}, {0, 0}, {0, 0}};
  double br_ms[3][2];
  for (const Branch& br : b.branches) {
    BranchMs(br, first, last, br_ms);
    const int t = g_.tensor_of_layer(br.layers.back());
    for (int avail = 0; avail < 3; ++avail) {
      for (int c = 0; c < 2; ++c) {
        branch_sum[avail][c] += std::min(br_ms[avail][0] + Cross(t, 0, c), br_ms[avail][1] + Cross(t, 1, c));
      }
    }
  }
  for (int c = 0; c < 2; ++c) {
    const double merge_ms = Exec(b.merge, c, merge_forced);
    for (int a = 0; a < 2; ++a) {
      double best = kInf;
      if (!b.merge_reads_entry || a == c) best = branch_sum[a][c];
      best = std::min(best, Cross(b.entry_tensor, a, 1 - a) + branch_sum[kBoth][c]);
      out[a][c] = best + merge_ms;
    }
  }
}

void BlockChainLatency::PrepareGeneral(Block& b) {
  const int size = b.merge - b.first + 1;
  std::vector<double> sweep(size);
  for (int a = 0; a < 2; ++a) {
    for (int c = 0; c < 2; ++c) Sweep(b, a, c, -1, -1, &b.cost[a][c]);
  }
  // Runs ending at the last layer (exit on the server), and starting at the
  // first (the entry made on the server by the run's earlier layers).
  for (int a = 0; a < 2; ++a) {
    Sweep(b, a, 1, b.merge, b.first, sweep.data());
    for (int i = 0; i < size; ++i) {
      head_block_[b.merge - i][a] = {kInf, sweep[i]};
    }
  }
  b.all_forced = head_block_[b.first][1][1];
  for (int c = 0; c < 2; ++c) {
    Sweep(b, 1, c, b.first, b.merge, sweep.data());
    for (int i = 0; i < size; ++i) {
      tail_block_[b.first + i][0] = {kInf, kInf};  // never read: a run from an earlier block enters on the server
      tail_block_[b.first + i][1][c] = sweep[i];
    }
  }
}

void BlockChainLatency::WithinRow(const Block& b, int first, int last, std::array<Pair, 2>* out) const {
  std::vector<double>& sweep = sweep_;
  sweep.resize(last - first + 1);
  for (int a = 0; a < 2; ++a) {
    for (int c = 0; c < 2; ++c) {
      Sweep(b, a, c, first, last, sweep.data());
      for (int j = first; j <= last; ++j) out[j - first][a][c] = sweep[j - first];
    }
  }
}

double BlockChainLatency::WithinMs(int bi, const Pair m[2]) const {
  double best = kInf;
  for (int a = 0; a < 2; ++a) {
    for (int c = 0; c < 2; ++c) best = std::min(best, prefix_[bi][a] + m[a][c] + suffix_[bi + 1][c]);
  }
  return best;
}

double BlockChainLatency::ForcedRunMs(int first, int last) const {
  const int bi = block_of_[first], bj = block_of_[last];
  if (bi == bj) {
    const Block& b = blocks_[bi];
    Pair computed[2];
    const Pair* m = computed;
    if (!b.within_cache.empty()) {
      const size_t row = static_cast<size_t>(first - b.first) * (b.merge - b.first + 1);
      const size_t at = row + (last - b.first);
      if (!b.within_valid[at]) {
        if (b.general) {  // the whole row at once: one sweep per pair of sides
          WithinRow(b, first, b.merge, &b.within_cache[row + (first - b.first)]);
          std::fill(b.within_valid.begin() + row + (first - b.first),
                    b.within_valid.begin() + row + (b.merge - b.first) + 1, 1);
        } else {
          BlockMs(b, first, last, b.within_cache[at].data());
          b.within_valid[at] = 1;
        }
      }
      m = b.within_cache[at].data();
    } else if (b.general) {
      std::vector<std::array<Pair, 2>> row(last - first + 1);
      WithinRow(b, first, last, &row[0]);
      computed[0] = row.back()[0];
      computed[1] = row.back()[1];
    } else {
      BlockMs(b, first, last, computed);
    }
    return WithinMs(bi, m);
  }
  return run_head_[first] + (all_forced_prefix_[bj] - all_forced_prefix_[bi + 1]) + run_tail_[last];
}

}  // namespace ionn

namespace ionn {

void BlockChainLatency::ForcedRunRowMs(int first, int last, double* out) const {
  const int bi = block_of_[first];
  const Block& b = blocks_[bi];
  const int block_end = std::min(last, b.merge);
  if (b.general && b.within_cache.empty()) {  // too large to keep: the row in one go
    std::vector<std::array<Pair, 2>> row(block_end - first + 1);
    WithinRow(b, first, block_end, row.data());
    for (int j = first; j <= block_end; ++j) out[j - first] = WithinMs(bi, row[j - first].data());
  } else {
    for (int j = first; j <= block_end; ++j) out[j - first] = ForcedRunMs(first, j);
  }
  const double head = run_head_[first], skipped = all_forced_prefix_[bi + 1];
  for (int j = block_end + 1; j <= last; ++j) {
    out[j - first] = head + (all_forced_prefix_[block_of_[j]] - skipped) + run_tail_[j];
  }
}

}  // namespace ionn
