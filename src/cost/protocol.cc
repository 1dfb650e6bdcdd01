#include "ionn/protocol.h"

#include <algorithm>
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

Result<ProtocolRun> ReplayProtocol(const std::vector<double>& upload_ms,
                                   const std::vector<std::vector<QueryStep>>& steps_after,
                                   const ProtocolOptions& options) {
  const int num_parts = static_cast<int>(upload_ms.size());
  if (num_parts == 0) return Status::Invalid("the plan has no partitions");
  if (static_cast<int>(steps_after.size()) != num_parts + 1) {
    return Status::Internal("steps_after needs one entry per count of arrived partitions");
  }
  for (int p = 1; p <= num_parts; ++p) {
    if (steps_after[p].empty()) return Status::Invalid("queries take no time; nothing to replay");
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  ProtocolRun r;
  double now = 0;
  int part = 0;  // partition being uploaded; num_parts when done
  double part_left = upload_ms[0];
  bool query_active = false;
  int step = 0, raised_after_upload = 0;
  double step_left = 0;
  ProtocolQuery q;
  const std::vector<QueryStep>* steps = nullptr;
  while (true) {
    while (part < num_parts && part_left <= 0) {  // zero-length partitions arrive at once
      r.partition_done_ms.push_back(now);
      if (++part < num_parts) part_left = upload_ms[part];
    }
    if (!query_active && part > 0) {
      const bool upload_done = part == num_parts;
      const int finished = static_cast<int>(r.queries.size());
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
    constexpr double kSnap = 1e-9;
    part_left = dt == dt_upload ? 0 : part_left - upload_rate * dt;
    if (part < num_parts && part_left <= kSnap * upload_ms[part]) part_left = 0;
    step_left = dt == dt_query ? 0 : step_left - query_rate * dt;
    if (query_active && step_left <= kSnap * (*steps)[step].ms) step_left = 0;
    if (query_active && step_left <= 0) {
      if (++step < static_cast<int>(steps->size())) {
        step_left = (*steps)[step].ms;
      } else {
        q.end_ms = now;
        r.queries.push_back(q);
        query_active = false;
      }
    }
  }
  r.upload_ms = r.partition_done_ms.back();
  for (const auto& query : r.queries) {
    r.queries_during_upload += query.end_ms <= r.upload_ms;
    if (query.start_ms < r.upload_ms && query.end_ms > r.upload_ms) {
      r.queries_during_upload_fractional = (r.upload_ms - query.start_ms) / (query.end_ms - query.start_ms);
    }
  }
  r.queries_during_upload_fractional += r.queries_during_upload;
  return r;
}

}  // namespace ionn
