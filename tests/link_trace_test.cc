// A link whose rate changes: both trace formats against hand-counted rates,
// bad traces refused naming the line, and the protocol replayed on a trace
// against hand-worked cases (no sharing and fair sharing).
#include "ionn/link_trace.h"

#include <gtest/gtest.h>

#include "ionn/model_costs.h"
#include "ionn/protocol.h"

namespace ionn {
namespace {

TEST(LinkTrace, MahimahiRatesAreTheOpportunitiesPerMs) {
  // Opportunities at 1, 1, 3 and 4 ms; the period is 4 ms and the one at
  // 4 is the next loop's at 0: 1500 B/ms in [0,1), 3000 in [1,2), none in
  // [2,3), 1500 in [3,4).
  const RateTrace t = ParseMahimahiTrace("1\n1\n\n3\n4\n").value();
  EXPECT_EQ(t.period_ms(), 4);
  ASSERT_EQ(t.steps().size(), 4u);
  EXPECT_DOUBLE_EQ(t.RateAt(0.5), 1500);
  EXPECT_DOUBLE_EQ(t.RateAt(1), 3000);
  EXPECT_DOUBLE_EQ(t.RateAt(2.5), 0);
  EXPECT_DOUBLE_EQ(t.RateAt(3.2), 1500);
  EXPECT_DOUBLE_EQ(t.RateAt(5.5), 3000);  // looping
  EXPECT_DOUBLE_EQ(t.NextChange(1.5), 2);
  EXPECT_DOUBLE_EQ(t.NextChange(3.5), 4);
  EXPECT_DOUBLE_EQ(t.NextChange(4), 5);
  EXPECT_DOUBLE_EQ(t.MeanBytesPerMs(), 1500);
  EXPECT_DOUBLE_EQ(t.PlanningBytesPerMs(), 1500);  // looping: the mean
  EXPECT_DOUBLE_EQ(t.FinishMs(0, 4500), 2);         // 1500 then 3000
  EXPECT_DOUBLE_EQ(t.FinishMs(0, 6000), 4);         // a whole period: the last 1500 in [3,4)
  EXPECT_DOUBLE_EQ(t.FinishMs(2, 750), 3.5);        // nothing in [2,3)
  EXPECT_DOUBLE_EQ(t.FinishMs(0, 6000 * 100 + 1500), 401);  // whole periods at once, then [0,1)
  EXPECT_DOUBLE_EQ(t.BytesBetween(0, 4), 6000);
  EXPECT_DOUBLE_EQ(t.BytesBetween(0.5, 1.5), 750 + 1500);
  EXPECT_DOUBLE_EQ(t.BytesBetween(2, 3), 0);
  EXPECT_DOUBLE_EQ(t.BytesBetween(0, 401), 6000 * 100 + 1500);
  EXPECT_DOUBLE_EQ(t.MaxBytesPerMs(), 3000);
}

TEST(LinkTrace, CsvRatesHoldUntilTheNextLineAndTheLastForEver) {
  const RateTrace t = ParseRateCsv("t_ms,mbps\n# steps\n0,80\n10000,20\n20000,80\n").value();
  const double r80 = 80 * kBytesPerMsPerMbps, r20 = 20 * kBytesPerMsPerMbps;
  EXPECT_EQ(t.period_ms(), 0);
  EXPECT_DOUBLE_EQ(t.RateAt(9999), r80);
  EXPECT_DOUBLE_EQ(t.RateAt(10000), r20);
  EXPECT_DOUBLE_EQ(t.RateAt(1e9), r80);
  EXPECT_DOUBLE_EQ(t.NextChange(15000), 20000);
  EXPECT_EQ(t.NextChange(25000), std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(t.MeanBytesPerMs(), 50 * kBytesPerMsPerMbps);  // over [0, 20 s)
  EXPECT_DOUBLE_EQ(t.PlanningBytesPerMs(), r80);                  // the first rate
  // 10 s at 80, 10 s at 20, then 80 again.
  EXPECT_DOUBLE_EQ(t.FinishMs(0, r80 * 10000 + r20 * 10000 + r80 * 500), 20500);
  EXPECT_DOUBLE_EQ(t.FinishMs(5000, r80 * 5000 + r20 * 2000), 12000);
  // ParseRateTrace tells the formats apart by the comma.
  EXPECT_EQ(ParseRateTrace("0,10\n").value().period_ms(), 0);
  EXPECT_EQ(ParseRateTrace("# mahimahi\n5\n10\n").value().period_ms(), 10);
}

TEST(LinkTrace, BadTracesAreRefusedNamingTheLine) {
  struct Case {
    std::string text, want;
    bool csv;
  };
  const std::vector<Case> cases = {
      {"", "empty", false},
      {"# only a comment\n", "empty", false},
      {"5\n3\n", "line 2", false},
      {"1\n-2\n", "line 2", false},
      {"1\n2.5\n", "line 2", false},
      {"0\n0\n", "period", false},
      {"1\nabc\n", "line 2", false},
      {"", "empty", true},
      {"t_ms,mbps\n", "empty", true},
      {"5,80\n", "line 1", true},
      {"0,80\n0,20\n", "line 2", true},
      {"0,80\n10,-1\n", "line 2", true},
      {"0,80\n10,nan\n", "line 2", true},
      {"0,80\n10,0\n", "line 2", true},  // 0 for ever
      {"0,80\nx,1\n", "line 2", true},
      {"0,80,3\n", "line 1", true},
      {"1\n99999999999\n", "line 2", false},      // past 1e9 ms
      {"0,80\n2e9,20\n", "line 2", true},         // past 1e9 ms
      {"0,80\n10,1e-310\n", "line 2", true},      // a rate that is not 0 but next to it
  };
  for (const Case& c : cases) {
    auto t = c.csv ? ParseRateCsv(c.text) : ParseMahimahiTrace(c.text);
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_NE(t.status().message().find(c.want), std::string::npos) << c.text << ": " << t.status().message();
  }
  EXPECT_FALSE(RateTrace::Create({{0, 0}}, 10).ok());  // no opportunity at all
  EXPECT_TRUE(ParseRateCsv("0,0\n10,5\n").ok());       // an outage, then a rate
}

// Partitions of 4 and 6 ms (at the planned rate), queries of an uplink
// step of 2 ms then 3 ms of execution, on a link at the planned rate until
// 5 ms and at half of it after.
struct HandCase {
  std::vector<double> upload_ms = {4, 6};
  std::vector<std::vector<QueryStep>> steps = {{}, {{true, 2}, {false, 3}}, {{true, 2}, {false, 3}}};
  ProtocolOptions options;
  HandCase() {
    options.uplink_factor = std::make_shared<RateTrace>(RateTrace::Create({{0, 1}, {5, 0.5}}, 0).value());
    options.queries_after_upload = 1;
  }
};

TEST(LinkTrace, TheProtocolOnATraceByHand) {
  HandCase c;
  // No sharing. Partition 0 arrives at 4; query 1's uplink step: 1 ms of
  // it by 5, the other at half rate by 7, then 3 ms: ends at 10. Partition
  // 1: 1 ms of it by 5, 5 ms at half rate: arrives at 15. Query 2 from 10:
  // 4 ms up, 3 ms: ends at 17.
  ProtocolRun run = ReplayProtocol(c.upload_ms, c.steps, c.options).value();
  ASSERT_GE(run.queries.size(), 2u);
  EXPECT_NEAR(run.partition_done_ms[0], 4, 1e-9);
  EXPECT_NEAR(run.upload_ms, 15, 1e-9);
  EXPECT_NEAR(run.queries[0].end_ms, 10, 1e-9);
  EXPECT_NEAR(run.queries[1].end_ms, 17, 1e-9);
  EXPECT_EQ(run.queries_during_upload, 1);

  // Fair sharing: query 1's uplink step shares the link with partition 1,
  // each at half the link's rate: 0.5 ms each by 5, then 0.25 per ms: the
  // step's other 1.5 ms end at 11 (partition 1 at 2 ms). 3 ms of
  // execution to 14 (partition 1 alone at 0.5 per ms: 3.5 ms). Query 2's
  // step from 14 shares again: 2 ms at 0.25 per ms end at 22 (partition 1
  // at 5.5 ms), execution to 25; partition 1's last 0.5 ms alone at 0.5
  // per ms: arrives at 23.
  c.options.sharing = LinkSharing::kFair;
  run = ReplayProtocol(c.upload_ms, c.steps, c.options).value();
  ASSERT_GE(run.queries.size(), 2u);
  EXPECT_NEAR(run.queries[0].end_ms, 14, 1e-9);
  EXPECT_NEAR(run.queries[1].end_ms, 25, 1e-9);
  EXPECT_NEAR(run.upload_ms, 23, 1e-9);
  EXPECT_EQ(run.queries_during_upload, 1);
}

// A downlink trace slows only downlink steps; an outage holds the upload.
TEST(LinkTrace, DownlinkStepsAndOutages) {
  ProtocolOptions o;
  o.queries_after_upload = 1;
  o.downlink_factor = std::make_shared<RateTrace>(RateTrace::Create({{0, 0.25}}, 0).value());
  // One partition of 2 ms; a query: 1 ms up, 1 ms execution, 1 ms down
  // (4 ms at a quarter of the rate): ends at 2 + 1 + 1 + 4 = 8.
  const std::vector<std::vector<QueryStep>> steps = {{}, {{true, 1}, {false, 1}, {false, 1, true}}};
  ProtocolRun run = ReplayProtocol({2}, steps, o).value();
  EXPECT_NEAR(run.queries.at(0).end_ms, 8, 1e-9);
  // The uplink out from 1 to 3 ms: the 2 ms partition arrives at 4.
  ProtocolOptions out;
  out.queries_after_upload = 1;
  out.uplink_factor = std::make_shared<RateTrace>(RateTrace::Create({{0, 1}, {1, 0}, {3, 1}}, 0).value());
  run = ReplayProtocol({2}, {{}, {{false, 1}}}, out).value();
  EXPECT_NEAR(run.upload_ms, 4, 1e-9);
  // A looping trace, up 1 ms of every 2: 3 ms of upload arrive at 5.
  out.uplink_factor = std::make_shared<RateTrace>(RateTrace::Create({{0, 1}, {1, 0}}, 2).value());
  run = ReplayProtocol({3}, {{}, {{false, 1}}}, out).value();
  EXPECT_NEAR(run.upload_ms, 5, 1e-9);
}

}  // namespace
}  // namespace ionn
