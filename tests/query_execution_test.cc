// A query executed as its schedule says, with real layers: a client engine
// holding the whole model and a server engine grown from the architecture
// as the plan's partitions arrive, in one process; tensors are copied only
// where the schedule sends them. Every query must equal a whole-model run.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ionn/engine.h"
#include "ionn/latency.h"
#include "ionn/plan.h"
#include "ionn/schedule.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

// A cost graph over the model's layers with seeded times and transfers
// (what matters here is the placements they produce, not their realism).
CostGraph SeededCosts(const Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> ms(0.1, 10);
  std::vector<CostInput> inputs;
  for (const auto& in : g.inputs) inputs.push_back({in.name, ms(rng)});
  std::vector<CostLayer> layers;
  for (const auto& l : g.layers) {
    layers.push_back({l.name, l.inputs, ms(rng), ms(rng) / 5, LayerWeightBytes(l) / 1e5, ms(rng) / 3, ms(rng) / 3});
  }
  return CostGraph::Create(inputs, layers, g.outputs).value();
}

std::string TensorName(const CostGraph& c, int t) {
  return t < c.num_inputs() ? c.inputs()[t].name : c.layer(c.producer(t)).name;
}

// Runs one query of `schedule`; returns the model outputs on the client.
Result<TensorMap> ExecuteSchedule(const CostGraph& c, const QuerySchedule& schedule, const Engine& client,
                                  const Engine& server, const TensorMap& input) {
  TensorMap held[2];  // what each side holds: 0 client, 1 server
  held[0] = input;
  for (const QuerySegment& seg : schedule.segments) {
    const int here = seg.side == Side::kServer ? 1 : 0;
    for (int t : seg.receives) {
      const std::string name = TensorName(c, t);
      auto it = held[1 - here].find(name);
      if (it == held[1 - here].end()) return Status::Internal("'" + name + "' sent from a side that lacks it");
      held[here][name] = it->second;  // the copy that crosses the link
    }
    if (seg.layers.empty()) continue;
    // Keep what layers outside the segment, or the query's end, read.
    std::vector<uint8_t> in_segment(c.num_layers(), 0);
    for (int k : seg.layers) in_segment[k] = 1;
    std::vector<std::string> keep;
    for (int k : seg.layers) {
      const int t = c.tensor_of_layer(k);
      bool needed = c.is_output(t);
      for (int r : c.consumers(t)) needed = needed || !in_segment[r];
      if (needed) keep.push_back(c.layer(k).name);
    }
    const Engine& engine = here ? server : client;
    IONN_ASSIGN_OR_RETURN(auto run, engine.Prepare(seg.layers, keep));
    IONN_ASSIGN_OR_RETURN(TensorMap out, engine.Execute(*run, held[here]));
    for (auto& [name, tensor] : out) held[here][name] = std::move(tensor);
  }
  TensorMap outputs;
  for (const auto& name : c.output_names()) {
    auto it = held[0].find(name);
    if (it == held[0].end()) return Status::Internal("output '" + name + "' never reached the client");
    outputs[name] = it->second;
  }
  return outputs;
}

void ExpectClose(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape, want.shape) << what;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want.data.size(); ++i) {
    diff = std::max(diff, double(std::fabs(got.data[i] - want.data[i])));
    scale = std::max(scale, double(std::fabs(want.data[i])));
  }
  EXPECT_LE(diff, 1e-5 * scale) << what;
}

TEST(QueryExecution, EveryPlannedQueryEqualsTheWholeModel) {
  for (const char* name : {"alexnet", "googlenet"}) {
    SCOPED_TRACE(name);
    auto full = BuildZooModel(name, 9);
    auto arch = BuildZooModel(name, 9, /*with_weights=*/false);
    ASSERT_TRUE(full.ok() && arch.ok());
    auto client = Engine::Create(*full);
    auto server = Engine::Create(*arch);
    ASSERT_TRUE(client.ok() && server.ok());
    const TensorMap input = {{full->inputs[0].name, SeededInput(full->inputs[0].shape, 3)}};
    auto whole = (*client)->RunAll(input);
    ASSERT_TRUE(whole.ok());
    const CostGraph costs = SeededCosts(*full, 4);
    auto plan = MakePlan(costs, PlannerOptions{});
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    const LatencyModel model(costs);
    LayerMask uploaded(costs.num_layers(), 0);
    int offloaded = 0, round_trips = 0;
    for (const Partition& p : plan->partitions) {
      for (int k : p.layers) {
        uploaded[k] = 1;
        if (!(*server)->is_built(k)) {
          ASSERT_TRUE((*server)->AddLayer(k, full->layers[k].weights).ok());
        }
      }
      const Placement best = model.Best(uploaded);
      const QuerySchedule schedule = ScheduleQuery(costs, best.on_server);
      EXPECT_NEAR(schedule.latency_ms, p.latency_ms, 1e-6 * p.latency_ms);
      offloaded += schedule.server_segments() > 0;
      round_trips += schedule.server_segments();
      auto out = ExecuteSchedule(costs, schedule, **client, **server, input);
      ASSERT_TRUE(out.ok()) << out.status().message();
      for (const auto& o : full->outputs) ExpectClose(out->at(o), whole->at(o), o);
    }
    EXPECT_GT(offloaded, 0) << "no placement used the server; the test would prove nothing";
    RecordProperty(std::string(name) + "_server_round_trips", round_trips);
  }
}

// Random placements over what has been uploaded: many alternations between
// the sides, tensors read on both sides, outputs computed on the server.
TEST(QueryExecution, RandomPlacementsEqualTheWholeModel) {
  auto full = BuildZooModel("googlenet", 5);
  ASSERT_TRUE(full.ok());
  auto client = Engine::Create(*full);
  auto server = Engine::Create(*full);
  ASSERT_TRUE(client.ok() && server.ok());
  const TensorMap input = {{full->inputs[0].name, SeededInput(full->inputs[0].shape, 8)}};
  auto whole = (*client)->RunAll(input);
  ASSERT_TRUE(whole.ok());
  const CostGraph costs = SeededCosts(*full, 1);
  std::mt19937 rng(6);
  int most_round_trips = 0;
  for (int trial = 0; trial < 6; ++trial) {
    LayerMask on_server(costs.num_layers());
    const unsigned odds = 2 + trial % 3;
    for (auto& b : on_server) b = rng() % odds == 0;
    const QuerySchedule schedule = ScheduleQuery(costs, on_server);
    most_round_trips = std::max(most_round_trips, schedule.server_segments());
    auto out = ExecuteSchedule(costs, schedule, **client, **server, input);
    ASSERT_TRUE(out.ok()) << out.status().message();
    for (const auto& o : full->outputs) ExpectClose(out->at(o), whole->at(o), o);
  }
  EXPECT_GT(most_round_trips, 10);
}

}  // namespace
}  // namespace ionn
