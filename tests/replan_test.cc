// Re-planning from the upload (replan.h): the rate estimate against hand
// counts, a graph re-rated by hand, the protocol loop following an
// observer's schedule on a hand-worked timeline, and the simulator
// re-planning on the paper's profiles: never a query lost or a layer
// uploaded twice, nothing changed on a constant link, more queries after
// a step up, and the estimate settled within 2 s of the step.
#include "ionn/replan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ionn/model_costs.h"
#include "ionn/protocol.h"
#include "ionn/sim.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

TEST(RateEstimator, CountsTheProgressOverTheLastWindow) {
  RateEstimator e(1000);
  EXPECT_LT(e.Estimate(), 0);
  // 2 units per ms, acknowledged every 10 ms.
  double t = 0;
  for (; t < 490; t += 10) e.AddInterval(t + 10, 10, 20);
  EXPECT_LT(e.Estimate(), 0);  // less than half the window
  e.AddInterval(t += 10, 10, 20);
  EXPECT_DOUBLE_EQ(e.Estimate(), 2);
  for (; t < 3000; t += 10) e.AddInterval(t + 10, 10, 20);
  EXPECT_DOUBLE_EQ(e.Estimate(), 2);
  // From 3000 ms on 0.5 per ms: a window later only the new rate counts.
  for (; t < 3500; t += 10) e.AddInterval(t + 10, 10, 5);
  EXPECT_NEAR(e.Estimate(), (500 * 0.5 + 500 * 2) / 1000, 1e-9);
  for (; t < 4000; t += 10) e.AddInterval(t + 10, 10, 5);
  EXPECT_DOUBLE_EQ(e.Estimate(), 0.5);
  // A pause between partitions does not count: 300 ms of sending after
  // 2 s without, at 3 per ms; the window holds that alone (and half of it
  // is needed).
  e.AddInterval(6300, 300, 900);
  EXPECT_LT(e.Estimate(), 0);
  e.AddInterval(6500, 200, 600);
  EXPECT_DOUBLE_EQ(e.Estimate(), 3);
  // Another flow's bytes on the shared link count with the upload's.
  e.AddAlongside(6500, 500);
  EXPECT_DOUBLE_EQ(e.Estimate(), 4);
}

TEST(Replan, ModesParseAndBandsHold) {
  EXPECT_EQ(ParseReplanMode("passive").value(), ReplanMode::kPassive);
  EXPECT_EQ(ParseReplanMode("off").value(), ReplanMode::kOff);
  EXPECT_EQ(ParseReplanMode("oracle").value(), ReplanMode::kOracle);
  EXPECT_FALSE(ParseReplanMode("Passive").ok());
  EXPECT_FALSE(LeavesBand(1.2, 0.25));
  EXPECT_FALSE(LeavesBand(0.75, 0.25));
  EXPECT_TRUE(LeavesBand(0.74, 0.25));
  EXPECT_TRUE(LeavesBand(1.26, 0.25));
  EXPECT_FALSE(LeavesBand(-1, 0.25));  // no estimate yet
}

TEST(Replan, WithLinkRatesScalesTheBytesNotTheRoundTrip) {
  // rtt 10 ms: every transfer is 5 ms + its bytes' time.
  const CostGraph g =
      CostGraph::Create({{"x", 15}}, {{"a", {"x"}, 1, 2, 100, 25, 45}}, {"a"}, /*partition_overhead_ms=*/3).value();
  const CostGraph h = g.WithLinkRates(2, 4, 10).value();
  EXPECT_DOUBLE_EQ(h.inputs()[0].up_ms, 5 + 10 / 2.0);
  EXPECT_DOUBLE_EQ(h.layer(0).upload_ms, 50);
  EXPECT_DOUBLE_EQ(h.layer(0).up_ms, 5 + 20 / 2.0);
  EXPECT_DOUBLE_EQ(h.layer(0).down_ms, 5 + 40 / 4.0);
  EXPECT_DOUBLE_EQ(h.layer(0).client_ms, 1);
  EXPECT_DOUBLE_EQ(h.layer(0).server_ms, 2);
  EXPECT_DOUBLE_EQ(h.partition_overhead_ms(), 3);
  EXPECT_DOUBLE_EQ(h.fp32_all_at_once_ms(), 3 + 50);
  EXPECT_FALSE(g.WithLinkRates(0, 1, 10).ok());
  EXPECT_FALSE(g.WithLinkRates(1, std::nan(""), 10).ok());
}

// Replaces the second partition and the first one's query steps at the
// first arrival; records every call.
class ScriptedObserver : public UploadObserver {
 public:
  struct Call {
    double now, sent;
    int arrived;
    bool in_flight;
  };
  double ack_ms() const override { return 5; }
  const ProtocolSchedule* OnProgress(double now_ms, double upload_sent_ms, double, int arrived,
                                     bool in_flight) override {
    calls.push_back({now_ms, upload_sent_ms, arrived, in_flight});
    if (arrived == 1 && !in_flight && !replaced) {
      replaced = true;
      return &schedule;
    }
    return bad && arrived == 1 && in_flight ? &schedule : nullptr;
  }
  ProtocolSchedule schedule{{10, 30}, {{}, {{false, 2}}, {{false, 1}}}};
  std::vector<Call> calls;
  bool replaced = false, bad = false;
};

TEST(Replan, TheProtocolFollowsTheObserversSchedule) {
  // Given: two partitions of 10 ms; a query 4 ms after the first, 1 ms
  // after both. At the first arrival (10 ms) the observer makes the second
  // 30 ms and a query after the first 2 ms: the upload ends at 40, queries
  // of 2 ms run from 10 to 40 (15), then 5 of 1 ms.
  ScriptedObserver observer;
  ProtocolOptions o;
  o.observer = &observer;
  o.sharing = LinkSharing::kFair;  // no query sends: sharing changes nothing here
  const ProtocolRun run = ReplayProtocol({10, 10}, {{}, {{false, 4}}, {{false, 1}}}, o).value();
  EXPECT_NEAR(run.upload_ms, 40, 1e-9);
  ASSERT_EQ(run.partition_done_ms.size(), 2u);
  EXPECT_NEAR(run.partition_done_ms[0], 10, 1e-9);
  EXPECT_EQ(run.queries_during_upload, 15);
  ASSERT_EQ(run.queries.size(), 20u);
  EXPECT_NEAR(run.queries[0].end_ms, 12, 1e-9);
  EXPECT_NEAR(run.queries.back().end_ms, 45, 1e-9);
  // Told every 5 ms of upload and at each arrival, in flight or not.
  std::vector<double> times;
  for (const auto& c : observer.calls) times.push_back(c.now);
  EXPECT_EQ(times, (std::vector<double>{5, 10, 15, 20, 25, 30, 35, 40}));
  EXPECT_TRUE(observer.calls[0].in_flight);
  EXPECT_FALSE(observer.calls[1].in_flight);
  EXPECT_EQ(observer.calls[1].arrived, 1);
  EXPECT_NEAR(observer.calls[6].sent, 35, 1e-9);
  EXPECT_FALSE(observer.calls.back().in_flight);
  EXPECT_EQ(observer.calls.back().arrived, 2);

  // A schedule that changes the partition in flight is refused.
  ScriptedObserver bad;
  bad.replaced = true;  // not at the arrival: at the next acknowledgement
  bad.bad = true;
  bad.schedule.upload_ms = {10, 12};
  ProtocolOptions ob = o;
  ob.observer = &bad;
  const auto refused = ReplayProtocol({10, 10}, {{}, {{false, 4}}, {{false, 1}}}, ob);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("changed partition 1 (arrived or on its way) from 10"), std::string::npos)
      << refused.status().message();
}

// Rewrites its one schedule in place (as the simulator's re-planner
// does): a query that started before a change keeps the steps it started
// with.
class InPlaceObserver : public UploadObserver {
 public:
  double ack_ms() const override { return 5; }
  const ProtocolSchedule* OnProgress(double now_ms, double, double, int arrived, bool in_flight) override {
    if (now_ms == 5) return &schedule;  // as given
    if (now_ms == 15 && arrived == 1 && in_flight) {
      schedule.steps_after[1] = {{false, 1}};
      schedule.steps_after[1].shrink_to_fit();
      return &schedule;
    }
    return nullptr;
  }
  ProtocolSchedule schedule{{10, 10}, {{}, {{false, 4}, {false, 4}}, {{false, 1}}}};
};

TEST(Replan, AQueryKeepsTheStepsItStartedWith) {
  // The query started at 10 (two steps of 4 ms) ends at 18 although the
  // schedule changed at 15; the next ones take 1 ms until the second
  // partition arrives at 20.
  InPlaceObserver observer;
  ProtocolOptions o;
  o.observer = &observer;
  o.queries_after_upload = 1;
  const ProtocolRun run = ReplayProtocol(observer.schedule.upload_ms, observer.schedule.steps_after, o).value();
  ASSERT_GE(run.queries.size(), 4u);
  EXPECT_NEAR(run.queries[0].end_ms, 18, 1e-9);
  EXPECT_NEAR(run.queries[1].end_ms, 19, 1e-9);
  EXPECT_NEAR(run.queries[2].end_ms, 20, 1e-9);
  EXPECT_EQ(run.queries[3].partitions_uploaded, 2);
}

struct PaperModel {
  CostGraph costs;
  UploadPlan plan;
};

PaperModel PaperSetup(const std::string& model, double mbps, const std::string& algorithm = "recursive-efficiency") {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  const Graph g = BuildZooModel(model, 1, /*with_weights=*/false).value();
  CostGraph costs = LoadModelCosts(g, PaperCostSources(model, dir).value(), MakeLinkSpec(mbps)).value();
  PlannerOptions po;
  po.algorithm = algorithm;
  UploadPlan plan = MakePlan(costs, po).value();
  return {std::move(costs), std::move(plan)};
}

SimOptions OnTrace(std::vector<RateTrace::Step> steps, double planned_mbps, ReplanMode mode) {
  SimOptions o;
  for (auto& s : steps) s.bytes_per_ms *= kBytesPerMsPerMbps;
  o.uplink_trace = std::make_shared<RateTrace>(RateTrace::Create(std::move(steps), 0).value());
  o.uplink_bytes_per_ms = planned_mbps * kBytesPerMsPerMbps;
  o.replan.mode = mode;
  return o;
}

// Every layer once in the plan as it ran; queries back to back from the
// first arrival, none lost.
void ExpectWhole(const CostGraph& costs, const SimResult& r) {
  ASSERT_TRUE(r.executed_plan);
  std::vector<int> seen(costs.num_layers(), 0);
  for (const Partition& p : r.executed_plan->partitions) {
    for (int k : p.layers) ++seen[k];
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  EXPECT_EQ(r.partitions, static_cast<int>(r.executed_plan->partitions.size()));
  for (size_t i = 1; i < r.queries.size(); ++i) {
    EXPECT_NEAR(r.queries[i].start_ms, r.queries[i - 1].end_ms, 1e-6);
    EXPECT_GT(r.queries[i].latency_ms, 0);
  }
}

TEST(SimReplan, AConstantLinkChangesNothing) {
  for (const auto& entry : ZooModels()) {
    SCOPED_TRACE(entry.name);
    const PaperModel s = PaperSetup(entry.name, 80);
    for (LinkSharing sharing : {LinkSharing::kNone, LinkSharing::kFair}) {
      SimOptions off = OnTrace({{0, 80}}, 80, ReplanMode::kOff), passive = off;
      off.sharing = passive.sharing = sharing;
      passive.replan.mode = ReplanMode::kPassive;
      const SimResult a = Simulate(s.costs, s.plan, off).value(), b = Simulate(s.costs, s.plan, passive).value();
      EXPECT_EQ(b.replan, "passive");
      EXPECT_TRUE(b.replans.empty());
      EXPECT_FALSE(b.rate_samples.empty());
      EXPECT_EQ(a.queries_in_window, b.queries_in_window);
      ASSERT_EQ(a.queries.size(), b.queries.size());
      EXPECT_NEAR(a.upload_ms, b.upload_ms, 1e-6 * a.upload_ms);
    }
  }
}

TEST(SimReplan, AStepUpIsSeenWithinTwoSecondsAndServesMoreQueries) {
  // AlexNet planned for 20 Mbps; 80 Mbps from 30 s on.
  const PaperModel s = PaperSetup("alexnet", 20);
  const double step_ms = 30000;
  SimOptions off = OnTrace({{0, 20}, {step_ms, 80}}, 20, ReplanMode::kOff);
  SimOptions passive = off, oracle = off;
  passive.replan.mode = ReplanMode::kPassive;
  oracle.replan.mode = ReplanMode::kOracle;
  const SimResult a = Simulate(s.costs, s.plan, off).value();
  const SimResult p = Simulate(s.costs, s.plan, passive).value();
  const SimResult o = Simulate(s.costs, s.plan, oracle).value();
  EXPECT_TRUE(a.replans.empty());
  EXPECT_FALSE(p.replans.empty());
  ExpectWhole(s.costs, p);
  ExpectWhole(s.costs, o);
  EXPECT_GT(p.queries_in_window, a.queries_in_window);
  EXPECT_GE(p.queries_in_window, 0.95 * o.queries_in_window);
  // Before the step the estimate stays at the planned rate (no re-plan);
  // from 2 s after it, within 10% of the true rate.
  EXPECT_GE(p.replans.front().at_ms, step_ms);
  // (1 MiB acknowledgements: 0.4 s apart at 20 Mbps.)
  for (const SimRateSample& e : p.rate_samples) {
    if (e.at_ms >= step_ms + 2000) {
      EXPECT_NEAR(e.estimated_mbps, 80, 8) << "at " << e.at_ms;
    } else if (e.at_ms < step_ms && e.estimated_mbps >= 0) {
      EXPECT_NEAR(e.estimated_mbps, 20, 1e-6) << "at " << e.at_ms;
    }
  }
}

TEST(SimReplan, ReplansWithArrivalsSharingAndTheOracleOnADownlinkTrace) {
  // ResNet-50 planned for 80 Mbps on 80 -> 20 at 5 s, a camera's 10 frames
  // a second, fair sharing: re-plans, every layer once, every query's
  // latency from its arrival.
  const PaperModel s = PaperSetup("resnet50", 80);
  for (ReplanMode mode : {ReplanMode::kPassive, ReplanMode::kOracle}) {
    SimOptions o = OnTrace({{0, 80}, {5000, 20}}, 80, mode);
    o.sharing = LinkSharing::kFair;
    o.arrivals = ParseArrivals("periodic:10").value();
    o.downlink_trace = o.uplink_trace;
    o.downlink_bytes_per_ms = o.uplink_bytes_per_ms;
    const SimResult r = Simulate(s.costs, s.plan, o).value();
    EXPECT_FALSE(r.replans.empty());
    ASSERT_TRUE(r.executed_plan);
    std::vector<int> seen(s.costs.num_layers(), 0);
    for (const Partition& p : r.executed_plan->partitions) {
      for (int k : p.layers) ++seen[k];
    }
    EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
    for (const SimQuery& q : r.queries) {
      EXPECT_GE(q.start_ms, q.arrival_ms);
      EXPECT_GT(q.latency_ms, 0);
    }
  }
}

TEST(SimReplan, RefusesWhatItCannotRePlan) {
  const PaperModel s = PaperSetup("alexnet", 80);
  SimOptions passive = OnTrace({{0, 80}, {1000, 20}}, 80, ReplanMode::kPassive);
  UploadPlan given = s.plan;
  given.algorithm = "given";
  EXPECT_FALSE(Simulate(s.costs, given, passive).ok());
  passive.replan.ack_bytes = 0;
  EXPECT_FALSE(Simulate(s.costs, s.plan, passive).ok());
}

}  // namespace
}  // namespace ionn
