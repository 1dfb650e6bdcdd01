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

TEST(Protocol, LinkSharingNames) {
  for (LinkSharing s : {LinkSharing::kNone, LinkSharing::kFair, LinkSharing::kPriority}) {
    EXPECT_EQ(*ParseLinkSharing(LinkSharingName(s)), s);
  }
  EXPECT_FALSE(ParseLinkSharing("fastest").ok());
}

}  // namespace
}  // namespace ionn
