// The protocol replay against a direct count of back-to-back queries, and
// the planner's expected count as that replay with one step per query.
#include "ionn/protocol.h"

#include <gtest/gtest.h>

#include <random>

#include "ionn/plan.h"

namespace ionn {
namespace {

// Queries back to back from the first arrival, each as long as the latency
// after the partitions that had arrived at its start; counted up to the
// last arrival, the one in flight by its done share.
double DirectCount(const std::vector<double>& latency, const std::vector<double>& upload) {
  std::vector<double> arrival;
  double t = 0;
  for (double u : upload) arrival.push_back(t += u);
  const double end = arrival.back();
  t = arrival[0];
  double queries = 0;
  while (true) {
    size_t arrived = 0;
    while (arrived < arrival.size() && arrival[arrived] <= t) ++arrived;
    const double l = latency[arrived - 1];
    if (t + l > end) return queries + (end - t) / l;
    queries += 1;
    t += l;
  }
}

TEST(Protocol, ExpectedQueriesMatchADirectCount) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> ms(0.5, 40);
  for (int trial = 0; trial < 200; ++trial) {
    const int parts = 1 + trial % 12;
    std::vector<double> latency(parts), upload(parts);
    for (int p = 0; p < parts; ++p) latency[p] = ms(rng), upload[p] = trial % 3 == 0 && p % 2 ? 0.0 : ms(rng) * 10;
    EXPECT_NEAR(ExpectedQueriesDuringUpload(latency, upload), DirectCount(latency, upload), 1e-9) << trial;
  }
}

TEST(Protocol, HandWorkedCounts) {
  // Partitions arrive at 10 and 40; queries take 7 ms with one partition,
  // 3 ms with both: 10-17, 17-24, 24-31, 31-38, 38-45 (the one in flight,
  // 2/7 done at 40).
  EXPECT_NEAR(ExpectedQueriesDuringUpload({7, 3}, {10, 30}), 4 + 2.0 / 7, 1e-12);
  std::vector<std::vector<QueryStep>> steps = {{}, {{false, 7}}, {{false, 3}}};
  ProtocolOptions o;
  o.queries_after_upload = 2;
  auto run = ReplayProtocol({10, 30}, steps, o);
  ASSERT_TRUE(run.ok()) << run.status().message();
  EXPECT_EQ(run->partition_done_ms, (std::vector<double>{10, 40}));
  ASSERT_EQ(run->queries.size(), 7u);  // 5 raised during the upload + 2 after
  EXPECT_DOUBLE_EQ(run->queries[5].start_ms, 45);
  EXPECT_DOUBLE_EQ(run->queries[5].end_ms, 48);
  EXPECT_EQ(run->queries[5].partitions_uploaded, 2);
  EXPECT_EQ(run->queries_during_upload, 4);
}

// Queries that end exactly when a partition arrives (in exact arithmetic)
// must see it arrived; the counts were worked out with fractions.
TEST(Protocol, ExactTiesSeeTheArrivedPartition) {
  EXPECT_NEAR(ExpectedQueriesDuringUpload({.4, .7, .1, .4, .7}, {.7, .1, .6, 1.1, .5}), 10.25, 1e-9);
  EXPECT_NEAR(ExpectedQueriesDuringUpload({.5, .8, .2, .5, .8}, {.4, .9, .3, .8, .2}), 4.4, 1e-9);
  EXPECT_NEAR(ExpectedQueriesDuringUpload({.1, .05}, {1, .3}), 3, 1e-9);
}

// Without sharing the replay skips the event loop; with "fair" sharing but
// no uplink step the event loop runs and must give the same run.
TEST(Protocol, IndependentReplayEqualsTheEventLoop) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> ms(0.5, 40);
  for (int trial = 0; trial < 300; ++trial) {
    const int parts = 1 + trial % 9;
    std::vector<double> upload(parts);
    std::vector<std::vector<QueryStep>> steps(parts + 1);
    for (int p = 0; p < parts; ++p) {
      upload[p] = trial % 4 == 0 && p % 3 == 1 ? 0.0 : ms(rng) * 6;
      for (int s = 0; s < 1 + trial % 3; ++s) steps[p + 1].push_back({false, ms(rng)});
    }
    ProtocolOptions none, loop;
    none.queries_after_upload = loop.queries_after_upload = trial % 6;
    loop.sharing = LinkSharing::kFair;
    auto a = ReplayProtocol(upload, steps, none);
    auto b = ReplayProtocol(upload, steps, loop);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->queries.size(), b->queries.size()) << trial;
    for (size_t i = 0; i < a->queries.size(); ++i) {
      EXPECT_NEAR(a->queries[i].end_ms, b->queries[i].end_ms, 1e-9 * b->queries[i].end_ms) << trial;
      EXPECT_EQ(a->queries[i].partitions_uploaded, b->queries[i].partitions_uploaded) << trial;
    }
    EXPECT_EQ(a->queries_during_upload, b->queries_during_upload) << trial;
    EXPECT_NEAR(a->queries_during_upload_fractional, b->queries_during_upload_fractional, 1e-9) << trial;
    EXPECT_NEAR(a->upload_ms, b->upload_ms, 1e-9 * b->upload_ms);
  }
}

TEST(Protocol, RejectsQueriesThatTakeNoTimeAndEmptyPlans) {
  EXPECT_FALSE(ReplayProtocol({}, {{}}, {}).ok());
  EXPECT_FALSE(ReplayProtocol({5}, {{}, {}}, {}).ok());
  EXPECT_EQ(ExpectedQueriesDuringUpload({0}, {5}), 0);
}

// The rule every report counts by, against a count by hand: ten queries
// of latencies 10, 20, ..., 100 ms back to back from t = 0 (ends 10, 30,
// 60, 100, 150, 210, 280, 360, 450, 550), the upload ending at 150 ms.
TEST(Protocol, QueryCountsByHand) {
  std::vector<ProtocolQuery> queries;
  double t = 0;
  for (int i = 1; i <= 10; ++i) {
    queries.push_back({t, t + 10.0 * i, i});
    t += 10.0 * i;
  }
  const QueryCounts c = CountQueries(queries, {40, 70, 150}, /*upload_ms=*/150, /*upload_complete=*/true,
                                     /*window_ms=*/300);
  EXPECT_EQ(c.queries, 10);
  EXPECT_EQ(c.during_upload, 5);  // ends 10, 30, 60, 100, 150 (a tie counts)
  EXPECT_EQ(c.in_window, 7);      // and 210, 280
  EXPECT_DOUBLE_EQ(c.first_query_end_ms, 10);
  EXPECT_EQ(c.partitions_first_half, 2);  // 40 and 70 by 75 ms
  EXPECT_EQ(c.partitions_second_half, 1);
  EXPECT_DOUBLE_EQ(c.latency_mean_ms, 55);
  EXPECT_DOUBLE_EQ(c.latency_p50_ms, 50);   // rank ceil(0.5 * 10) = 5
  EXPECT_DOUBLE_EQ(c.latency_p90_ms, 90);   // rank 9
  EXPECT_DOUBLE_EQ(c.latency_p99_ms, 100);  // rank ceil(9.9) = 10
  EXPECT_DOUBLE_EQ(c.throughput_qps, 10 / 0.55);
  // An upload that did not complete has no queries during it.
  EXPECT_EQ(CountQueries(queries, {40}, 40, /*upload_complete=*/false, 300).during_upload, 0);
  EXPECT_EQ(CountQueries({}, {}, 0, true, 100).queries, 0);
  EXPECT_DOUBLE_EQ(NearestRank({3, 1, 2}, 0.5), 2);
  EXPECT_DOUBLE_EQ(NearestRank({7}, 0.99), 7);
  EXPECT_DOUBLE_EQ(NearestRank({}, 0.5), 0);
}

// Arrivals (DESIGN.md): one partition of 100 ms; a query takes 50 ms
// locally and 20 ms once it arrived. Ten frames a second arrive at 0, 100,
// 200, ...: the one at 0 runs locally (0-50); the one at 100 sees the
// partition that arrived at 100 (100-120), and so on, five after the
// upload: 6 queries, one during the upload, no waiting.
TEST(Arrivals, PeriodicByHand) {
  const std::vector<std::vector<QueryStep>> steps = {{{false, 50}}, {{false, 20}}};
  ProtocolOptions o;
  o.arrivals = ParseArrivals("periodic:10").value();
  for (LinkSharing sharing : {LinkSharing::kNone, LinkSharing::kFair}) {
    o.sharing = sharing;
    auto r = ReplayProtocol({100}, steps, o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->queries.size(), 6u);
    EXPECT_DOUBLE_EQ(r->queries[0].end_ms, 50);
    EXPECT_EQ(r->queries[0].partitions_uploaded, 0);
    for (int i = 1; i < 6; ++i) {
      EXPECT_DOUBLE_EQ(r->queries[i].arrived_ms(), 100.0 * i);
      EXPECT_DOUBLE_EQ(r->queries[i].end_ms, 100.0 * i + 20);
    }
    EXPECT_EQ(r->queries_during_upload, 1);
    EXPECT_EQ(r->queries_dropped, 0);
  }
}

// Four queries arrive at once with room for one to wait: one starts, one
// waits (its latency counts the wait), two are dropped; the trace ends
// before the upload, which then ends with no query.
TEST(Arrivals, QueueDropsTheOldestPastItsBound) {
  ProtocolOptions o;
  o.arrivals.kind = Arrivals::Kind::kTrace;
  o.arrivals.times_ms = {0, 0, 0, 0};
  o.arrivals.max_queue = 1;
  auto r = ReplayProtocol({1000}, {{{false, 50}}, {{false, 20}}}, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->queries.size(), 2u);
  EXPECT_EQ(r->queries_dropped, 2);
  EXPECT_DOUBLE_EQ(r->queries[1].start_ms, 50);
  EXPECT_DOUBLE_EQ(r->queries[1].latency_ms(), 100);
  EXPECT_DOUBLE_EQ(r->upload_ms, 1000);
  const QueryCounts c = CountQueries(r->queries, r->partition_done_ms, r->upload_ms, true, 1000, /*deadline_ms=*/60);
  EXPECT_DOUBLE_EQ(c.wait_mean_ms, 25);
  EXPECT_DOUBLE_EQ(c.deadline_met_share, 0.5);
  EXPECT_DOUBLE_EQ(c.latency_p95_ms, 100);
  // Unbounded, all four run one after another, each waiting for the last.
  o.arrivals.max_queue = -1;
  r = ReplayProtocol({1000}, {{{false, 50}}, {{false, 20}}}, o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->queries.size(), 4u);
  EXPECT_DOUBLE_EQ(r->queries[3].latency_ms(), 200);
}

// No room to wait: what arrives while a query runs is dropped; what
// arrives while none runs starts at once (the client's clock never lands
// on an arrival exactly: "while none runs" is since the last query ended).
TEST(Arrivals, NoQueueServesOnlyWhatArrivesWhileIdle) {
  Arrivals a;
  a.kind = Arrivals::Kind::kTrace;
  a.times_ms = {0, 10, 20, 100};
  a.max_queue = 0;
  ArrivalQueue q(a);
  EXPECT_DOUBLE_EQ(q.Take(0, 0), 0);     // idle: starts, runs 0-50
  EXPECT_LT(q.Take(50, 50), 0);          // 10 and 20 came while it ran
  EXPECT_EQ(q.dropped(), 2);
  EXPECT_DOUBLE_EQ(q.Take(103, 50), 100);  // came while none ran, seen a little late
  EXPECT_TRUE(q.Exhausted());
}

// Back to back through the event loop is the paper's protocol: the same
// queries as the loop without events.
TEST(Arrivals, BackToBackEventLoopEqualsTheDirectReplay) {
  const std::vector<double> upload = {30, 0, 50, 20};
  const std::vector<std::vector<QueryStep>> steps = {{}, {{false, 9}}, {{false, 7}}, {{false, 3}}, {{false, 2}}};
  ProtocolOptions o;
  ProtocolRun a, b;
  ASSERT_TRUE(ReplayProtocol(upload, steps, o, &a).ok());
  ASSERT_TRUE(ReplayProtocolEvents(upload, steps, o, &b).ok());
  ASSERT_EQ(a.queries.size(), b.queries.size());
  for (size_t i = 0; i < a.queries.size(); ++i) EXPECT_NEAR(a.queries[i].end_ms, b.queries[i].end_ms, 1e-9);
  EXPECT_EQ(a.queries_during_upload, b.queries_during_upload);
}

TEST(Arrivals, ParsesSpecsAndTraces) {
  EXPECT_EQ(ParseArrivals("back-to-back")->kind, Arrivals::Kind::kBackToBack);
  EXPECT_EQ(ArrivalsName(ParseArrivals("periodic:30").value()), "periodic:30");
  EXPECT_EQ(ArrivalsName(ParseArrivals("poisson:2.5").value()), "poisson:2.5:1");
  EXPECT_EQ(ParseArrivals("poisson:2:7")->seed, 7u);
  for (const char* bad : {"", "periodic", "periodic:0", "periodic:-1", "periodic:nan", "periodic:5:3", "poisson:1:x",
                          "poisson:1e7", "trace:x", "fifo"}) {
    EXPECT_FALSE(ParseArrivals(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseArrivalTrace("# ms\n0\n\n12.5\r\n12.5\n").value(), (std::vector<double>{0, 12.5, 12.5}));
  EXPECT_EQ(ParseArrivalTrace("5\n3\n").status().message().rfind("line 2:", 0), 0u);
  EXPECT_EQ(ParseArrivalTrace("1\n-2\n").status().message().rfind("line 2:", 0), 0u);
  EXPECT_EQ(ParseArrivalTrace("1\ninf\n").status().message().rfind("line 2:", 0), 0u);
  EXPECT_FALSE(ParseArrivalTrace("# nothing\n").ok());
}

// Poisson arrivals: the same times for a seed, others for another, and a
// mean gap of 1/rate (10000 gaps: within 3%, about 3 standard errors).
TEST(Arrivals, PoissonIsSeededWithTheRightRate) {
  auto times = [](const std::string& spec, int n) {
    const Arrivals a = ParseArrivals(spec).value();
    ArrivalQueue q(a);
    std::vector<double> t;
    for (int i = 0; i < n; ++i) t.push_back(q.NextArrivalMs()), q.Take(q.NextArrivalMs(), 0);
    return t;
  };
  EXPECT_EQ(times("poisson:4:3", 50), times("poisson:4:3", 50));
  EXPECT_NE(times("poisson:4:3", 50), times("poisson:4:4", 50));
  const std::vector<double> t = times("poisson:4", 10001);
  EXPECT_GT(t[0], 0);  // the first after a gap too
  EXPECT_NEAR((t.back() - t.front()) / 10000, 250, 250 * 0.03);
  for (size_t i = 1; i < t.size(); ++i) ASSERT_GE(t[i], t[i - 1]);
}

TEST(Protocol, LinkSharingNames) {
  for (LinkSharing s : {LinkSharing::kNone, LinkSharing::kFair, LinkSharing::kPriority}) {
    EXPECT_EQ(*ParseLinkSharing(LinkSharingName(s)), s);
  }
  EXPECT_FALSE(ParseLinkSharing("fastest").ok());
}

}  // namespace
}  // namespace ionn
