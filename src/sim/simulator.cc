#include "ionn/sim.h"

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

std::vector<QueryStep> QuerySteps(const CostGraph& g, const LayerMask& on_server) {
  std::vector<QueryStep> steps;
  auto add = [&](bool uplink, double ms) {
    if (ms <= 0) return;
    if (!steps.empty() && steps.back().uplink == uplink) {
      steps.back().ms += ms;
    } else {
      steps.push_back({uplink, ms});
    }
  };
  // present[t]: bit 0 on the client, bit 1 on the server
  std::vector<uint8_t> present(g.num_tensors(), 0);
  for (int t = 0; t < g.num_inputs(); ++t) present[t] = 1;
  for (int k = 0; k < g.num_layers(); ++k) {
    const bool server = on_server[k];
    const uint8_t bit = server ? 2 : 1;
    for (int t : g.layer_inputs(k)) {
      if (present[t] & bit) continue;
      add(server, server ? g.tensor_up_ms(t) : g.tensor_down_ms(t));
      present[t] |= bit;
    }
    add(false, server ? g.layer(k).server_ms : g.layer(k).client_ms);
    present[g.tensor_of_layer(k)] = bit;
  }
  for (int t = 0; t < g.num_tensors(); ++t) {
    if (g.is_output(t) && !(present[t] & 1)) add(false, g.tensor_down_ms(t)), present[t] |= 1;
  }
  return steps;
}

Result<SimResult> Simulate(const CostGraph& graph, const UploadPlan& plan, const SimOptions& options) {
  const int num_parts = static_cast<int>(plan.partitions.size());
  if (num_parts == 0) return Status::Invalid("the plan has no partitions");
  const LatencyModel model(graph);
  // The steps of a query that starts with partitions 0..p-1 uploaded.
  std::vector<std::vector<QueryStep>> steps_after(num_parts + 1);
  std::vector<double> latency_after(num_parts + 1);
  LayerMask uploaded(graph.num_layers(), 0);
  double weights_ms = 0;
  SimResult r;
  for (int p = 0; p <= num_parts; ++p) {
    if (p > 0) {
      for (int k : plan.partitions[p - 1].layers) uploaded[k] = 1;
    }
    const Placement placement = model.Best(uploaded);
    steps_after[p] = QuerySteps(graph, placement.on_server);
    latency_after[p] = placement.latency_ms;
    if (p < num_parts) {
      const double w = plan.partitions[p].upload_ms - graph.partition_overhead_ms();
      weights_ms += w;
      r.largest_partition_share = std::max(r.largest_partition_share, w);
    }
  }
  for (const auto& steps : steps_after) {
    if (steps.empty()) return Status::Invalid("queries take no time; nothing to simulate");
  }
  r.largest_partition_share = weights_ms > 0 ? r.largest_partition_share / weights_ms : 0;
  r.window_ms = options.window_ms >= 0 ? options.window_ms : graph.partition_overhead_ms() + weights_ms;

  constexpr double kInf = std::numeric_limits<double>::infinity();
  double now = 0;
  int part = 0;  // partition being uploaded; num_parts when done
  double part_left = plan.partitions[0].upload_ms;
  bool query_active = false;
  int step = 0, raised_after_upload = 0;
  double step_left = 0;
  SimQuery q;
  const std::vector<QueryStep>* steps = nullptr;
  while (true) {
    while (part < num_parts && part_left <= 0) {  // zero-length partitions arrive at once
      r.partition_done_ms.push_back(now);
      if (++part < num_parts) part_left = plan.partitions[part].upload_ms;
    }
    if (!query_active && part > 0) {
      const bool upload_done = part == num_parts;
      const int finished = static_cast<int>(r.queries.size());
      if (upload_done && raised_after_upload >= options.queries_after_upload && finished >= options.min_queries) break;
      if (finished >= options.max_queries) return Status::Invalid("more than max_queries queries; stopping");
      raised_after_upload += upload_done;
      q = SimQuery{now, 0, 0, part, false};
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
    if (dt == kInf) return Status::Internal("simulation stalled");
    now += dt;
    part_left = dt == dt_upload ? 0 : part_left - upload_rate * dt;
    step_left = dt == dt_query ? 0 : step_left - query_rate * dt;
    if (query_active && step_left <= 0) {
      if (++step < static_cast<int>(steps->size())) {
        step_left = (*steps)[step].ms;
      } else {
        q.end_ms = now;
        q.latency_ms = now - q.start_ms;
        r.queries.push_back(q);
        query_active = false;
      }
    }
  }

  r.upload_ms = r.partition_done_ms.back();
  r.partitions = num_parts;
  for (double t : r.partition_done_ms) (t <= r.upload_ms / 2 ? r.partitions_first_half : r.partitions_second_half)++;
  for (auto& query : r.queries) {
    query.during_upload = query.end_ms <= r.upload_ms;
    r.queries_during_upload += query.during_upload;
    r.queries_in_window += query.end_ms <= r.window_ms;
    if (query.start_ms < r.upload_ms && query.end_ms > r.upload_ms) {
      r.queries_during_upload_fractional = (r.upload_ms - query.start_ms) / query.latency_ms;
    }
  }
  r.queries_during_upload_fractional += r.queries_during_upload;
  r.first_query_end_ms = r.queries.empty() ? 0 : r.queries.front().end_ms;
  return r;
}

}  // namespace ionn
