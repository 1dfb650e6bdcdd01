// The one schedule of a query: which side runs each layer, in which order,
// and which tensors cross the link where. The planner's latency, the
// simulator's steps and the runtime's execution are all read off it, so a
// planned, a simulated and a real query do the same steps. Pure code: no
// I/O, no clocks.
//
// Rules (DESIGN.md, execution semantics): layers run in the cost graph's
// topological order, grouped into segments of consecutive layers on one
// side. The client drives: before a server segment it sends the tensors the
// segment reads that the server does not hold yet (model inputs, client
// outputs); the server answers at the end of the segment with every tensor
// it produced there that the client will read later (a later client layer
// or a model output). Each tensor crosses each direction at most once per
// query and stays where it arrived, so the server keeps a query's tensors
// across its segments. A query whose last layers run on the server ends
// with a client segment without layers that only receives what they made
// for the client (possibly nothing, when their outputs are never read).
// Latency = every transfer + every execution, one after another.
#pragma once

#include <cstdint>
#include <vector>

#include "ionn/cost_graph.h"

namespace ionn {

enum class Side : uint8_t { kClient = 0, kServer = 1 };
const char* SideName(Side side);  // "client" or "server"

struct QuerySegment {
  Side side = Side::kClient;
  // Tensors (CostGraph tensor ids) that cross to `side` before `layers` run:
  // client -> server for a server segment (the request), server -> client
  // for a client segment (the previous server segment's response).
  std::vector<int> receives;
  std::vector<int> layers;  // layer positions, ascending (topological order)
  double transfer_ms = 0;   // sending `receives`
  double exec_ms = 0;       // running `layers` on `side`
};

struct QuerySchedule {
  // Alternating sides. The first segment is on the client unless the first
  // layer runs on the server; the last is on the client.
  std::vector<QuerySegment> segments;
  double latency_ms = 0;

  int server_segments() const;  // round trips to the server
  double uplink_ms() const;     // transfer time client -> server
  double downlink_ms() const;   // transfer time server -> client
  // The tensors a server segment must send back: the receives of the
  // segment after it (empty for a client segment).
  const std::vector<int>& returned_by(size_t segment) const;
};

// The schedule of one query with the layers in `on_server` on the server.
// `server_extra_ms` (optional, one value per layer) is added to the server
// time of layers on the server (the original planner's penalties).
QuerySchedule ScheduleQuery(const CostGraph& graph, const LayerMask& on_server,
                            const std::vector<double>* server_extra_ms = nullptr);

// One step of a query as the link sees it: a transfer on the uplink, or
// anything else (execution, downlink), in ms at full rate. Consecutive
// steps of one kind are merged.
struct QueryStep {
  bool uplink = false;
  double ms = 0;
  bool downlink = false;  // a transfer on the downlink (only with `split_downlink`)
};
// `split_downlink`: downlink transfers are steps of their own (a downlink
// whose rate changes), not merged with execution.
std::vector<QueryStep> ScheduleSteps(const QuerySchedule& schedule, bool split_downlink = false);

}  // namespace ionn
