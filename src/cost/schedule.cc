#include "ionn/schedule.h"

namespace ionn {

const char* SideName(Side side) { return side == Side::kServer ? "server" : "client"; }

int QuerySchedule::server_segments() const {
  int count = 0;
  for (const auto& s : segments) count += s.side == Side::kServer;
  return count;
}

double QuerySchedule::uplink_ms() const {
  double ms = 0;
  for (const auto& s : segments) ms += s.side == Side::kServer ? s.transfer_ms : 0;
  return ms;
}

double QuerySchedule::downlink_ms() const {
  double ms = 0;
  for (const auto& s : segments) ms += s.side == Side::kClient ? s.transfer_ms : 0;
  return ms;
}

const std::vector<int>& QuerySchedule::returned_by(size_t segment) const {
  static const std::vector<int> kNone;
  if (segment + 1 >= segments.size() || segments[segment].side != Side::kServer) return kNone;
  return segments[segment + 1].receives;
}

QuerySchedule ScheduleQuery(const CostGraph& g, const LayerMask& on_server, const std::vector<double>* extra) {
  const int n = g.num_layers();
  constexpr uint8_t kOnClient = 1, kOnServer = 2;
  std::vector<uint8_t> present(g.num_tensors(), 0);
  for (int t = 0; t < g.num_inputs(); ++t) present[t] = kOnClient;
  std::vector<uint8_t> client_reads(g.num_tensors(), 0);  // read by a client layer or a model output
  for (int k = 0; k < n; ++k) {
    if (!on_server[k]) {
      for (int t : g.layer_inputs(k)) client_reads[t] = 1;
    }
  }
  for (int t = 0; t < g.num_tensors(); ++t) client_reads[t] |= g.is_output(t) ? 1 : 0;

  QuerySchedule s;
  std::vector<int> to_return;  // produced by the open server segment, read later on the client
  auto open_client_segment = [&] {
    QuerySegment seg;
    seg.side = Side::kClient;
    for (int t : to_return) {
      seg.receives.push_back(t);
      seg.transfer_ms += g.tensor_down_ms(t);
      present[t] |= kOnClient;
    }
    to_return.clear();
    s.segments.push_back(std::move(seg));
  };
  for (int k = 0; k < n; ++k) {
    const Side side = on_server[k] ? Side::kServer : Side::kClient;
    if (s.segments.empty() || s.segments.back().side != side) {
      if (side == Side::kClient) {
        open_client_segment();
      } else {
        s.segments.push_back(QuerySegment{Side::kServer, {}, {}, 0, 0});
      }
    }
    QuerySegment& seg = s.segments.back();
    const uint8_t here = side == Side::kServer ? kOnServer : kOnClient;
    for (int t : g.layer_inputs(k)) {
      if (present[t] & here) continue;
      // Only the server can lack a tensor here: the client received every
      // server tensor it reads with the response of the segment producing it.
      seg.receives.push_back(t);
      seg.transfer_ms += side == Side::kServer ? g.tensor_up_ms(t) : g.tensor_down_ms(t);
      present[t] |= here;
    }
    seg.layers.push_back(k);
    const int out = g.tensor_of_layer(k);
    present[out] = here;
    if (side == Side::kServer) {
      seg.exec_ms += g.layer(k).server_ms + (extra ? (*extra)[k] : 0.0);
      if (client_reads[out]) to_return.push_back(out);
    } else {
      seg.exec_ms += g.layer(k).client_ms;
    }
  }
  // The query ends on the client, even when the last server segment only
  // ran layers whose outputs nobody reads (its answer is then empty).
  if (!s.segments.empty() && s.segments.back().side == Side::kServer) open_client_segment();
  for (const auto& seg : s.segments) s.latency_ms += seg.transfer_ms + seg.exec_ms;
  return s;
}

std::vector<QueryStep> ScheduleSteps(const QuerySchedule& schedule, bool split_downlink) {
  std::vector<QueryStep> steps;
  auto add = [&](bool uplink, bool downlink, double ms) {
    if (ms <= 0) return;
    if (!steps.empty() && steps.back().uplink == uplink && steps.back().downlink == downlink) {
      steps.back().ms += ms;
    } else {
      steps.push_back({uplink, ms, downlink});
    }
  };
  for (const auto& seg : schedule.segments) {
    const bool up = seg.side == Side::kServer;
    add(up, !up && split_downlink, seg.transfer_ms);
    add(false, false, seg.exec_ms);
  }
  return steps;
}

}  // namespace ionn
