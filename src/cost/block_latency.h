// Internal to the cost part: fast L(S; run) on DAGs made of IONN blocks.
//
// The graph is cut at ChainCutPoints into blocks. A block is "parallel"
// when its entry tensor (the previous block's last layer, or the model
// input) feeds chains of single-input, single-reader layers that all end in
// the block's last layer (the merge: a concat, an eltwise add or, for a
// one-layer block, the layer itself). Inception modules, residual blocks
// and plain chains are parallel. For such graphs the exact semantics
// decompose: blocks interact only through the side of their last layer,
// chains within a block only through whether the entry tensor was sent
// across once. Prefix/suffix dynamic programs per chain and per block then
// answer each forced-run query in O(chains) instead of a minimum cut.
// Other blocks (attention's fan-out to queries, keys and values, a GELU
// read twice) are "general": their costs come from a minimum cut of the
// block's layers alone, the entry and last layer pinned to their sides,
// cached per run while the block's uploaded layers do not change.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "ionn/cost_graph.h"
#include "max_flow.h"

namespace ionn {

class BlockChainLatency {
 public:
  // Null when the graph has several inputs or an output before its last
  // layer (callers fall back to minimum cuts of the whole graph).
  static std::unique_ptr<BlockChainLatency> Decompose(const CostGraph& graph);

  // Sets the uploaded set S; recomputes only the blocks whose uploaded
  // layers changed since the last call, then O(blocks + layers).
  // Not thread-safe: queries fill caches.
  void Prepare(const LayerMask& allowed);
  double BaseMs() const { return base_ms_; }
  // L(S; layers first..last forced to the server).
  double ForcedRunMs(int first, int last) const;
  // ForcedRunMs(first, j) for j = first..last into out[j - first].
  void ForcedRunRowMs(int first, int last, double* out) const;

 private:
  explicit BlockChainLatency(const CostGraph& graph) : g_(graph) {}
  using Pair = std::array<double, 2>;  // by side: 0 client, 1 server
  enum Avail { kClientOnly = 0, kServerOnly = 1, kBoth = 2 };
  struct Branch {
    std::vector<int> layers;                     // positions, in order
    std::vector<double> server_prefix;           // sums of server_ms
    std::array<std::vector<Pair>, 3> forward;    // [avail][k][side]
    std::array<std::vector<Pair>, 2> backward;   // [end side][k][side]
  };
  static constexpr int kSource = 0, kSink = 1;  // client and server sides in a cut
  struct Net {
    MaxFlow flow;  // scratch: each Sweep resets it
    std::vector<double> caps;  // as built: tensors' edges; layers' and pins' 0
    std::vector<int> server_edge, client_edge;  // per layer from the block's first
    int entry_client = -1, entry_server = -1, merge_client = -1, merge_server = -1;  // pins
  };
  struct Block {
    int entry_tensor = 0;
    int merge = 0;  // position of the block's last layer
    int first = 0;  // position of its first layer
    bool merge_reads_entry = false;
    bool general = false;  // not parallel: its costs come from minimum cuts of its layers
    std::vector<Branch> branches;
    std::unique_ptr<Net> net;  // general blocks
    std::array<Pair, 2> cost{};  // [entry side][exit side], nothing forced
    double all_forced = 0;       // entry and exit on the server, every layer forced
    // Costs of runs inside the block, [first][last] flattened, filled on
    // demand and kept while the block's uploaded layers do not change.
    mutable std::vector<std::array<Pair, 2>> within_cache;
    mutable std::vector<uint8_t> within_valid;
  };
  static constexpr size_t kMaxCachedBlock = 512;  // layers; larger blocks are not cached
  double Exec(int layer, int side, bool forced) const;
  double Cross(int tensor, int from, int to) const;
  // A branch's cost with layers first..last forced, [entry availability][end side].
  void BranchMs(const Branch& br, int first, int last, double out[3][2]) const;
  // A parallel block's cost with layers first..last forced, [entry side][exit side].
  void BlockMs(const Block& b, int first, int last, Pair out[2]) const;
  // A general block's network: its layers, the entry tensor's producer and
  // the last layer's pins to either side.
  std::unique_ptr<Net> BuildNet(const Block& b) const;
  // A general block's cost, entry and last layer pinned to their sides, for
  // a run forced from `anchor` and growing one layer at a time to `end`
  // (either way): out[i] for the run of i + 1 layers. With anchor < 0, the
  // cost with nothing forced in out[0]. One flow, updated per layer.
  void Sweep(const Block& b, int entry_side, int exit_side, int anchor, int end, double* out) const;
  // A general block's cost, head_block_, tail_block_ and all_forced.
  void PrepareGeneral(Block& b);
  // A general block's costs of the runs first..j, j = first..last, in out[j - first].
  void WithinRow(const Block& b, int first, int last, std::array<Pair, 2>* out) const;
  // A run inside block bi whose block costs are m ([entry side][exit side]),
  // with the best before and after the block.
  double WithinMs(int bi, const Pair m[2]) const;
  // Fills b's branches; false when it is not parallel.
  bool ParseBranches(Block* b) const;

  const CostGraph& g_;
  LayerMask allowed_;
  std::vector<Block> blocks_;
  std::vector<int> block_of_;          // layer position -> block
  std::vector<Pair> prefix_, suffix_;  // best cost before block b by side of its entry; after
  std::vector<double> all_forced_prefix_;
  // For runs spanning blocks: best cost up to the end of the first block
  // when the run starts at layer k, and from the start of the last block on
  // when it ends at layer k.
  std::vector<double> run_head_, run_tail_;
  // The block parts of those: the block of layer k forced from k to its end,
  // and from its start to k ([entry side][exit side]); kept per block.
  std::vector<std::array<Pair, 2>> head_block_, tail_block_;
  double base_ms_ = 0;
  mutable std::vector<double> sweep_;  // scratch
};

}  // namespace ionn
