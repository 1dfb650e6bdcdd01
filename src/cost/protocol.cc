#include "ionn/protocol.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ionn {

const char* LinkSharingName(LinkSharing s) {
  switch (s) {
    case LinkSharing::kNone: return "none";
    case LinkSharing::kFair: return "fair";
    case LinkSharing::kPriority: return "priority";
  }
  return "?";
}

Result<LinkSharing> ParseLinkSharing(const std::string& name) {
  for (LinkSharing s : {LinkSharing::kNone, LinkSharing::kFair, LinkSharing::kPriority}) {
    if (name == LinkSharingName(s)) return s;
  }
  return Status::Invalid("unknown link sharing '" + name + "' (expected none, fair or priority)");
}

namespace {

constexpr double kSnap = 1e-9;  // relative: what is left within rounding of the whole is done

// Counts one finished query: during the upload when it ends no later than
// the last arrival (`upload_end`, or still uploading), else the done share
// of the one in flight when the upload ended.
void Finish(const ProtocolQuery& q, bool uploading_still, double upload_end, const ProtocolOptions& options,
            ProtocolRun* r) {
  if (uploading_still || q.end_ms <= upload_end) {
    ++r->queries_during_upload;
  } else if (q.start_ms < upload_end) {
    r->queries_during_upload_fractional = (upload_end - q.start_ms) / (q.end_ms - q.start_ms);
  }
  if (options.keep_queries) r->queries.push_back(q);
}

}  // namespace

// Without link sharing, queries and the upload do not slow each other
// down: arrivals are running sums of the upload times and every query
// lasts its latency. The same protocol as the event loop of
// ReplayProtocol, evaluated without events.
Status ReplayProtocolWithoutSharing(const std::vector<double>& upload_ms, const std::vector<double>& latency_ms,
                                    const ProtocolOptions& options, ProtocolRun* r) {
  const int num_parts = static_cast<int>(upload_ms.size());
  if (num_parts == 0) return Status::Invalid("the plan has no partitions");
  if (static_cast<int>(latency_ms.size()) != num_parts) return Status::Internal("one latency per partition expected");
  r->queries.clear();
  r->partition_done_ms.clear();
  double t = 0;
  for (int p = 0; p < num_parts; ++p) {
    if (!(latency_ms[p] > 0)) return Status::Invalid("queries take no time; nothing to replay");
    r->partition_done_ms.push_back(t += upload_ms[p]);
  }
  const double* arrival = r->partition_done_ms.data();
  const double upload_end = arrival[num_parts - 1];
  // The first query waits for the first partition (and those arriving with it).
  int arrived = 0;
  t = arrival[0];
  int finished = 0, raised_after_upload = 0, during = 0;
  double fraction = 0;
  const int after_upload = options.queries_after_upload, min_queries = options.min_queries;
  const int max_queries = options.max_queries;
  const bool keep = options.keep_queries;
  const double near_end = kSnap * upload_end;
  while (true) {
    while (arrived < num_parts && arrival[arrived] - t <= kSnap * upload_ms[arrived]) ++arrived;
    const bool upload_done = arrived == num_parts;
    if (upload_done && raised_after_upload >= after_upload && finished >= min_queries) break;
    if (finished >= max_queries) return Status::Invalid("more than max_queries queries; stopping");
    raised_after_upload += upload_done;
    const double end = t + latency_ms[arrived - 1];
    if (!upload_done && end - upload_end <= near_end) {
      ++during;
    } else if (t < upload_end) {
      fraction = (upload_end - t) / (end - t);
    }
    if (keep) r->queries.push_back(ProtocolQuery{t, end, arrived});
    ++finished;
    t = end;
  }
  r->queries_during_upload = during;
  r->queries_during_upload_fractional = fraction;
  r->upload_ms = upload_end;
  r->queries_during_upload_fractional += r->queries_during_upload;
  return Status::Ok();
}


Result<ProtocolRun> ReplayProtocol(const std::vector<double>& upload_ms,
                                   const std::vector<std::vector<QueryStep>>& steps_after,
                                   const ProtocolOptions& options) {
  ProtocolRun run;
  IONN_RETURN_IF_ERROR(ReplayProtocol(upload_ms, steps_after, options, &run));
  return run;
}

Status ReplayProtocol(const std::vector<double>& upload_ms, const std::vector<std::vector<QueryStep>>& steps_after,
                      const ProtocolOptions& options, ProtocolRun* out) {
  const int num_parts = static_cast<int>(upload_ms.size());
  if (num_parts == 0) return Status::Invalid("the plan has no partitions");
  if (static_cast<int>(steps_after.size()) != num_parts + 1) {
    return Status::Internal("steps_after needs one entry per count of arrived partitions");
  }
  for (int p = 1; p <= num_parts; ++p) {
    if (steps_after[p].empty()) return Status::Invalid("queries take no time; nothing to replay");
  }
  ProtocolRun& r = *out;
  r.queries.clear();
  r.partition_done_ms.clear();
  r.queries_during_upload = 0;
  r.queries_during_upload_fractional = 0;
  if (options.sharing == LinkSharing::kNone) {
    thread_local std::vector<double> latency;
    latency.resize(num_parts);
    for (int p = 1; p <= num_parts; ++p) {
      double d = 0;
      for (const QueryStep& step : steps_after[p]) d += step.ms;
      latency[p - 1] = d;
    }
    return ReplayProtocolWithoutSharing(upload_ms, latency, options, &r);
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double now = 0;
  int part = 0;  // partition being uploaded; num_parts when done
  double part_left = upload_ms[0];
  bool query_active = false;
  int step = 0, raised_after_upload = 0;
  double step_left = 0;
  ProtocolQuery q;
  const std::vector<QueryStep>* steps = nullptr;
  int finished = 0;
  r.partition_done_ms.reserve(num_parts);
  while (true) {
    while (part < num_parts && part_left <= 0) {  // zero-length partitions arrive at once
      r.partition_done_ms.push_back(now);
      if (++part < num_parts) part_left = upload_ms[part];
    }
    if (!query_active && part > 0) {
      const bool upload_done = part == num_parts;
      if (upload_done && raised_after_upload >= options.queries_after_upload && finished >= options.min_queries) break;
      if (finished >= options.max_queries) return Status::Invalid("more than max_queries queries; stopping");
      raised_after_upload += upload_done;
      q = ProtocolQuery{now, 0, part};
      steps = &steps_after[part];
      step = 0;
      step_left = (*steps)[0].ms;
      query_active = true;
    }
    const bool uploading = part < num_parts;
    const bool query_up = query_active && (*steps)[step].uplink;
    double upload_rate = uploading ? 1 : 0, query_rate = query_active ? 1 : 0;
    if (uploading && query_up) {
      if (options.sharing == LinkSharing::kFair) upload_rate = query_rate = 0.5;
      if (options.sharing == LinkSharing::kPriority) upload_rate = 0;
    }
    const double dt_upload = upload_rate > 0 ? part_left / upload_rate : kInf;
    const double dt_query = query_rate > 0 ? step_left / query_rate : kInf;
    const double dt = std::min(dt_upload, dt_query);
    if (dt == kInf) return Status::Internal("replay stalled");
    now += dt;
    // What is left within rounding of the whole is done: a query that ends
    // exactly when a partition arrives must see it arrived.
    part_left = dt == dt_upload ? 0 : part_left - upload_rate * dt;
    if (part < num_parts && part_left <= kSnap * upload_ms[part]) part_left = 0;
    step_left = dt == dt_query ? 0 : step_left - query_rate * dt;
    if (query_active && step_left <= kSnap * (*steps)[step].ms) step_left = 0;
    if (query_active && step_left <= 0) {
      if (++step < static_cast<int>(steps->size())) {
        step_left = (*steps)[step].ms;
      } else {
        q.end_ms = now;
        // While partitions are still on their way the upload ends later
        // (or now); once all arrived, partition_done_ms.back() is its end.
        const bool uploading_still = part < num_parts;
        Finish(q, uploading_still, uploading_still ? now : r.partition_done_ms.back(), options, &r);
        ++finished;
        query_active = false;
      }
    }
  }
  r.upload_ms = r.partition_done_ms.back();
  r.queries_during_upload_fractional += r.queries_during_upload;
  return Status::Ok();
}

double NearestRank(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()) - 1e-9);
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  return values[i];
}

QueryCounts CountQueries(const std::vector<ProtocolQuery>& queries, const std::vector<double>& partition_done_ms,
                         double upload_ms, bool upload_complete, double window_ms) {
  QueryCounts c;
  c.queries = static_cast<int>(queries.size());
  std::vector<double> latency;
  double first_start = 0, last_end = 0, sum = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    const ProtocolQuery& q = queries[i];
    c.during_upload += FinishedDuringUpload(q.end_ms, upload_ms, upload_complete);
    c.in_window += q.end_ms <= window_ms;
    latency.push_back(q.end_ms - q.start_ms);
    sum += latency.back();
    first_start = i == 0 ? q.start_ms : std::min(first_start, q.start_ms);
    last_end = i == 0 ? q.end_ms : std::max(last_end, q.end_ms);
  }
  if (!queries.empty()) {
    c.first_query_end_ms = queries.front().end_ms;
    c.latency_mean_ms = sum / static_cast<double>(queries.size());
    c.latency_p50_ms = NearestRank(latency, 0.5);
    c.latency_p90_ms = NearestRank(latency, 0.9);
    c.latency_p99_ms = NearestRank(latency, 0.99);
    c.throughput_qps = last_end > first_start ? 1000.0 * static_cast<double>(queries.size()) / (last_end - first_start) : 0;
  }
  if (upload_complete) {  // halves of an upload that ended
    for (double t : partition_done_ms) (t <= upload_ms / 2 ? c.partitions_first_half : c.partitions_second_half)++;
  }
  return c;
}

}  // namespace ionn
