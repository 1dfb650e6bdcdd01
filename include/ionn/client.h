// The mobile client (`ionn client`): says Hello to an edge server, plans
// the upload with the server's prediction functions and its own profile,
// opens a session (proving it holds the weights of the layers the server
// already holds, which it then plans as uploaded at time 0 and never
// sends), uploads partition by partition in the background and
// raises queries back to back meanwhile (the paper's protocol, section
// 4.1). Every query takes the best placement for the partitions
// acknowledged when it started and runs as its schedule says
// (include/ionn/schedule.h): local segments with the engine here, server
// segments as one QueryStep call each.
//
// Faults: when a call to the server fails, the query in flight is
// recomputed here and the next ones run here while a background thread
// reconnects, with exponential backoff, to the next server of the list
// (the same one when there is one): a new session, in which the layers
// that server still holds (proven, as at any OpenSession) are planned as
// uploaded and only the rest is sent. The result records every session.
//
// Slow and broken links: an upload call is never cut for taking long, only
// for not moving (no chunk accepted by the transport for `upload_idle_ms`)
// or for falling under `upload_min_bytes_per_s` (its deadline is the bytes
// it sends at that rate, plus `call_deadline_ms`). A cut upload leaves the
// server the whole 1 KiB blocks that arrived of each layer; the next
// session proves it holds them (as for held layers) and sends only the
// rest. After `max_stalled_attempts` attempts of one partition that each
// got no further, the upload stops (ClientResult::upload_error).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ionn/clock.h"
#include "ionn/cost_graph.h"
#include "ionn/engine.h"
#include "ionn/model_costs.h"
#include "ionn/plan.h"
#include "ionn/replan.h"
#include "ionn/protocol.h"

namespace ionn {

struct ClientOptions {
  // host:port of the edge servers, tried in this order at the start (the
  // first that answers) and in turn after a loss.
  std::vector<std::string> servers = {"127.0.0.1:7070"};
  PlannerOptions planner;              // algorithm and granularity
  // A plan made elsewhere (PlanFromJson's JSON) instead of the planner's:
  // evaluated on each session's costs, the server's held layers first.
  std::optional<std::string> plan_json;
  // Or a planner of one's own, called with each session's costs (from the
  // thread opening the session: the first, or a reconnection's).
  std::function<Result<UploadPlan>(const CostGraph&)> plan_function;
  Profile client_profile;              // client_ms per layer (measured or read)
  // Server times to plan with instead of the server's prediction functions
  // (server_ms per layer, e.g. measured on that server with `ionn profile`).
  std::optional<Profile> server_profile;
  LinkSpec link;                       // the link as the planner assumes it
  // Re-planning from the upload (replan.h): off by default here (`ionn
  // client` makes passive its default); passive estimates the uplink from
  // the upload's paced writes and re-plans what is not sent yet when the
  // estimate leaves the band. Needs the planner (no plan_json or
  // plan_function) and an exact upload (exact, lossless); refused otherwise.
  ReplanOptions replan{ReplanMode::kOff};
  // How the weights travel (weight_codec.h): a server that does not decode
  // it is refused at Hello; lossless compresses where it pays at link's rate.
  UploadEncoding upload_encoding = UploadEncoding::kExact;
  // When queries arrive (protocol.h): back to back (the paper's protocol,
  // from the first acknowledgement on) or from the upload's start,
  // periodically, by a Poisson process or from a trace, waiting FIFO.
  Arrivals arrivals;
  double deadline_ms = -1;             // >= 0: count the queries whose latency met it
  int max_queries = -1;                // stop after this many queries (< 0: no limit)
  double duration_ms = -1;             // stop raising queries after this long (< 0: no limit)
  int queries_after_upload = 5;        // the protocol's queries after the upload
  TensorMap inputs;                    // the model inputs of every query
  double call_deadline_ms = 60000;     // per RPC; an upload call adds its bytes at upload_min_bytes_per_s
  double upload_min_bytes_per_s = 64 << 10;  // the slowest upload not taken for a lost link (64 KiB/s, 0.5 Mbps)
  double upload_idle_ms = 30000;       // an upload whose bytes do not move this long is cut
  int max_stalled_attempts = 3;        // of one partition, each getting no further than the one before
  size_t chunk_bytes = 1 << 20;        // upload chunk size (at most the server's limit)
  // After a loss: at most this many connection attempts in all (0: stay
  // local for the rest of the run), the first after `reconnect_backoff_ms`,
  // each later one after twice the wait of the one before, at most
  // `reconnect_backoff_max_ms`.
  int max_reconnects = 8;
  double reconnect_backoff_ms = 250, reconnect_backoff_max_ms = 8000;
  // Emulation: pad every local segment to the profile's time of its layers
  // (the layers are still computed), e.g. to reproduce a slow device.
  bool emulate_profile = false;
  // Layers the server already holds (its layer store, from an earlier
  // session of this or another client) are planned as uploaded at time 0
  // and never sent. false: ask the server to ignore them at the first
  // session, as at a first meeting (experiments measuring the paper's
  // setting on a warm server); a reconnection uses only what this run sent
  // (acknowledged layers, and prefixes of cut uploads).
  bool use_held = true;
  // TLS to the servers: trust certificates signed by `tls_ca_pem` (PEM;
  // empty: the system's roots); `tls_server_name` overrides the name the
  // certificate must carry (default: the host of each server's address).
  bool tls = false;
  std::string tls_ca_pem, tls_server_name;
  std::string secret;                  // the servers' shared secret, if they need one
  int threads = 1;                     // engine threads here
  EngineBackend backend = EngineBackend::kAuto;  // which library computes the convolutions here
  Clock* clock = nullptr;              // null: Clock::System()
};

struct ClientQuery;
// Called after every query with its record and model outputs (optional).
using QueryOutputCallback = std::function<void(const ClientQuery&, const TensorMap& outputs)>;

struct ClientQuery {
  double arrival_ms = 0;            // since the upload started (= start_ms back to back)
  double start_ms = 0, end_ms = 0;  // since the upload started
  int partitions_uploaded = 0;      // acknowledged when it started
  int server_layers = 0;            // layers it ran on the server
  int server_steps = 0;             // QueryStep calls
  int64_t bytes_up = 0, bytes_down = 0;
  double predicted_ms = 0;          // the planner's latency for its placement
  bool fell_back = false;           // recomputed here after a failed call
  bool exact = true;                // no layer ran on the server without its exact weights
  int session = -1;                 // index into ClientResult::sessions (-1: run here without one)
};

struct ClientPartition {
  int session = 0;      // index into ClientResult::sessions
  int layers = 0;
  int64_t bytes = 0;    // sent by the call acknowledged (0 for the held layers' partition)
  int64_t resumed = 0;  // not sent: kept by the server from a cut upload
  bool held = false;    // the layers the server held: not sent, acknowledged at 0
  double start_ms = 0, acked_ms = 0;  // since the upload started
};

// One upload call of one partition: acknowledged, or why it ended.
struct ClientUploadAttempt {
  int session = 0;        // index into ClientResult::sessions
  int partition = 0;      // in that session's plan
  int64_t bytes = 0;      // the partition's weight bytes
  int64_t resumed = 0;    // of which the server kept from a cut upload: not sent again
  int64_t sent = 0;       // handed to the transport by this call
  double start_ms = 0, end_ms = 0;  // since the upload started
  bool acked = false;
  std::string ended;      // "acknowledged", or the failure that ended it
};

// One session with one server: the first, and one per reconnection.
struct ClientSession {
  std::string server, server_name, session_id;
  double opened_ms = 0;      // since the upload started (the first: 0)
  int held_layers = 0;       // layers the server held at OpenSession
  int64_t held_bytes = 0;
  int partitions = 0;        // planned, the held layers' partition included
  int acked = 0;             // of which acknowledged
  std::string lost;          // the failure that ended it (empty: it lasted)
};

// One re-plan during the upload (ClientOptions::replan).
struct ClientReplan {
  double at_ms = 0;           // since the upload started
  double estimated_mbps = 0;  // the uplink rate re-planned for
  double plan_ms = 0;         // the re-plan's own time (planner and schedules), wall clock
  int session = 0;
  int partitions_acked = 0;   // then
  int partitions_left = 0;    // planned after it, the one on its way included
};
// The uplink estimate after a paced write or an acknowledgement.
struct ClientRateSample {
  double at_ms = 0;
  double estimated_mbps = -1;  // < 0: not enough paced writes yet
};

struct ClientResult {
  // The last session's server, plan and held layers (the first session's
  // when the client never lost one).
  std::string server, server_name, session_id;
  CostGraph costs;   // what the client planned with
  UploadPlan plan;   // with held layers: its first partition holds them, uploaded at time 0
  int held_layers = 0;       // layers the server held at OpenSession
  int64_t held_bytes = 0;    // their weight bytes, not uploaded
  std::vector<ClientSession> sessions;
  int reconnect_attempts = 0;  // after losses, those that failed included
  std::vector<ClientQuery> queries;
  std::vector<ClientPartition> partitions;  // the acknowledged ones, of every session
  std::vector<ClientUploadAttempt> upload_attempts;  // every upload call, in order
  int64_t bytes_sent = 0;     // weight bytes handed to the transport, every attempt together
  int64_t resumed_bytes = 0;  // weight bytes not sent again after cut uploads
  bool upload_complete = false;             // the last session's plan, all acknowledged
  double upload_ms = 0;            // last acknowledgement (when complete)
  int queries_during_upload = 0;   // finished no later than upload_ms
  int queries_dropped = 0;         // arrived, and dropped from a full queue (ClientOptions::arrivals)
  double first_query_end_ms = 0;
  // DESIGN.md, "The window": the end of the first query at most 1.1x the
  // plan's optimal latency (< 0: none), when the server held every layer
  // exactly (the upload's end; < 0: incomplete, or fp16 / int8), and the
  // queries that ran an approximate layer.
  double near_optimal_ms = -1, exact_from_ms = -1;
  int queries_approximate = 0;
  // By the simulator's rule (CountQueries), the window being the planned
  // all-at-once upload time; latency quantiles and throughput of `queries`.
  QueryCounts counts;
  bool server_lost = false;        // a session was lost (see sessions[i].lost)
  std::string server_error;        // the last failure: of a call, or of a reconnection
  std::string upload_error;        // why the upload stopped early (empty: it did not)
  TensorMap last_outputs;          // the last query's model outputs
  // Every QueryStep call: its round trip as the client saw it, and the
  // server's execution time within it (the rest is protocol and transfer).
  std::vector<double> step_round_trip_ms, step_server_ms;
  double started_unix_ms = 0;  // the upload's start (time 0 of the times above), by the wall clock
  // Re-planning: "off" or "passive", each re-plan, and the estimate as it went.
  std::string replan = "off";
  std::string replan_error;  // why re-planning stopped (a failed re-plan; the plan went on as it was), or empty
  std::vector<ClientReplan> replans;
  std::vector<ClientRateSample> rate_samples;
};

struct ClientProgress {
  int partitions_acked = 0, partitions = 0;
  int64_t bytes_acked = 0, bytes_total = 0;
  int queries = 0;
  double last_latency_ms = 0;
  int last_server_layers = 0;
};

// "A,B,C" -> {A, B, C}: each host:port (an IPv6 host in brackets, a port
// 1..65535, no spaces) or a gRPC unix:PATH target; errors name the entry.
Result<std::vector<std::string>> ParseServerList(const std::string& list);

// Whether `plan_json` (PlanFromJson's JSON) is a plan for `model`: every
// layer exactly once, in partitions that are not empty (any order runs: a
// layer not uploaded yet runs here). RunClient checks it before connecting.
Status CheckPlanForModel(const Graph& model, const std::string& plan_json);

// The client's sub-layer slices (`--slices`, slices.h): `count` slices
// per sliced layer (1: none; 0: auto, PlanBestSlices on the costs the
// client will plan with, which needs o->server_profile before connecting;
// `plan_for` the planner). Returns the count and, when a layer was cut,
// the rewritten model to give RunClient; o's profiles are sliced alike
// (SliceProfile: the simulator's rule).
struct ClientSlices {
  int slices = 1;
  std::optional<Graph> model;  // empty: nothing cut, the whole model runs
};
Result<ClientSlices> SliceForClient(const Graph& whole, int count, ClientOptions* o,
                                    const std::function<Result<UploadPlan>(const CostGraph&)>& plan_for);

// `model` holds weights. Returns an error when no server of the list can
// be reached at Hello or each refuses the session; failures after that are
// survived (see above). `progress` (optional) is called after every query
// and acknowledgement, from the calling thread or the upload thread.
Result<ClientResult> RunClient(const Graph& model, const ClientOptions& options,
                               const std::function<void(const ClientProgress&)>& progress = nullptr,
                               const QueryOutputCallback& on_output = nullptr);

}  // namespace ionn
