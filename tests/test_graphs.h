// Seeded random cost graphs for the cost, plan and sim tests.
#pragma once

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "ionn/cost_graph.h"

namespace ionn::testing {

enum class Shape { kChain, kResidual, kBranches, kAny, kModules, kLocal, kAttention };

// A random cost graph of `n` layers with times in [0, 20) ms. kResidual adds
// skip connections, kBranches fans out to parallel branches and joins them,
// kAny mixes arbitrary earlier inputs and an extra output, kModules chains
// inception-like modules: 1 to 3 branches of 0 to 3 layers into a merge,
// kLocal reads one more of the last 5 layers at random (one output),
// kAttention chains transformer blocks: the entry normalised, read by
// three chains (queries, keys, values) joined by two two-input layers,
// then a projection added to the entry.
inline CostGraph RandomCostGraph(int n, Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> ms(0.0, 20.0);
  std::uniform_int_distribution<int> coin(0, 3);
  std::vector<CostInput> inputs = {{"in", ms(rng)}};
  std::vector<CostLayer> layers;
  std::vector<std::string> outputs;
  auto name = [](int k) { return "L" + std::to_string(k); };
  int branch_root = -1;
  std::vector<int> open;  // kModules: the last layer of each open branch
  for (int k = 0; k < n; ++k) {
    CostLayer l;
    l.name = name(k);
    l.client_ms = ms(rng);
    l.server_ms = ms(rng) / 4;
    l.upload_ms = coin(rng) == 0 ? 0.0 : ms(rng);
    l.up_ms = ms(rng) / 2;
    l.down_ms = ms(rng) / 2;
    const std::string prev = k ? name(k - 1) : "in";
    switch (shape) {
      case Shape::kChain:
        l.inputs = {prev};
        break;
      case Shape::kResidual:
        l.inputs = {prev};
        if (k >= 3 && coin(rng) == 0) l.inputs.push_back(name(k - 3));
        break;
      case Shape::kBranches:
        if (branch_root < 0 || coin(rng) == 0) {
          l.inputs = {prev};
          if (branch_root >= 0 && branch_root + 1 < k - 1) l.inputs.push_back(name(branch_root + 1));
          branch_root = k;
        } else {
          l.inputs = {coin(rng) < 2 ? name(branch_root) : prev};
        }
        break;
      case Shape::kModules: {
        if (branch_root < 0 || coin(rng) == 0 || k == n - 1) {  // a merge (or a plain layer)
          l.inputs = {};
          for (int b = k - 1; b > branch_root; --b) {
            if (layers[b].name != "" && std::find(open.begin(), open.end(), b) != open.end()) l.inputs.push_back(name(b));
          }
          if (l.inputs.empty() || coin(rng) == 0) l.inputs.push_back(branch_root < 0 ? "in" : name(branch_root));
          open.clear();
          branch_root = k;
        } else if (open.empty() || coin(rng) < 2) {  // start a branch at the module's entry
          l.inputs = {branch_root < 0 ? "in" : name(branch_root)};
          open.push_back(k);
        } else {  // extend the latest branch
          l.inputs = {name(open.back())};
          open.back() = k;
        }
        break;
      }
      case Shape::kLocal: {
        l.inputs = {prev};
        std::uniform_int_distribution<int> back(2, 5);
        const int extra = k - back(rng);
        if (coin(rng) < 2 && extra >= -1) l.inputs.push_back(extra < 0 ? "in" : name(extra));
        break;
      }
      case Shape::kAttention: {
        // Per block of 9 from its entry e: norm(e), q, k, v (each of norm),
        // scores(q, k), softmax, mix(softmax, v), projection, add(proj, e).
        const int at = k % 9, base = k - at;
        const std::string entry = base ? name(base - 1) : "in";
        switch (base + 8 < n ? at : -1) {  // a last, partial block: a chain
          case 0: l.inputs = {entry}; break;
          case 1: case 2: case 3: l.inputs = {name(base)}; break;
          case 4: l.inputs = {name(base + 1), name(base + 2)}; break;
          case 6: l.inputs = {name(base + 5), name(base + 3)}; break;
          case 8: l.inputs = {prev, entry}; break;
          default: l.inputs = {prev};
        }
        break;
      }
      case Shape::kAny: {
        std::uniform_int_distribution<int> pick(-1, k - 1);
        l.inputs = {prev};
        int extra = pick(rng);
        if (coin(rng) < 2 && extra != k - 1) l.inputs.push_back(extra < 0 ? "in" : name(extra));
        break;
      }
    }
    layers.push_back(l);
  }
  outputs.push_back(name(n - 1));
  if (shape == Shape::kAny && n > 3) outputs.push_back(name(n / 2));
  return CostGraph::Create(inputs, layers, outputs).value();
}

}  // namespace ionn::testing
