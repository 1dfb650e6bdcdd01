#include "ionn/client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "ionn.grpc.pb.h"
#include "ionn/format.h"
#include "ionn/latency.h"
#include "ionn/schedule.h"
#include "ionn/sim.h"
#include "layer_store.h"
#include "wire.h"

namespace ionn {
namespace {

Status FromGrpc(const grpc::Status& s, const std::string& context) {
  StatusCode code = StatusCode::kInternal;
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE: code = StatusCode::kInvalidArgument; break;
    case grpc::StatusCode::NOT_FOUND: code = StatusCode::kNotFound; break;
    case grpc::StatusCode::UNIMPLEMENTED: code = StatusCode::kUnsupported; break;
    case grpc::StatusCode::UNAVAILABLE: code = StatusCode::kUnavailable; break;
    case grpc::StatusCode::DEADLINE_EXCEEDED: code = StatusCode::kDeadlineExceeded; break;
    case grpc::StatusCode::CANCELLED: code = StatusCode::kCancelled; break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: code = StatusCode::kResourceExhausted; break;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: code = StatusCode::kInvalidArgument; break;  // our secret is wrong
    default: break;
  }
  return Status(code, context + ": " + s.error_message());
}

// What a failed Hello most likely means, in the user's terms: gRPC words a
// closed socket, a refused connection and a certificate it does not trust
// all as "failed to connect".
std::string HelloHint(const std::string& message, bool tls) {
  const auto has = [&](const char* s) { return message.find(s) != std::string::npos; };
  if (has("certificate verify failed")) {
    return " (TLS: the server's certificate is not signed by a CA this client trusts; give its CA with --tls-ca)";
  }
  if (has("is not in peer certificate")) {
    return " (TLS: the server's certificate does not carry the name asked for; check --server or --tls-server-name)";
  }
  if (has("wrong version number") || has("WRONG_VERSION_NUMBER")) {
    return " (TLS: the server did not answer in TLS; drop --tls/--tls-ca, or start it with --tls-cert and --tls-key)";
  }
  if (!tls && (has("Socket closed") || has("Connection reset"))) {
    return " (the server closed the connection: it may expect TLS (--tls or --tls-ca), or not be `ionn serve`)";
  }
  if (has("Connection refused")) return " (nothing listens there: is `ionn serve` running, and is --server right?)";
  if (has("Failed parsing HTTP/2") || has("Trying to connect an http1.x server") ||
      has("Received http2 header with status")) {
    return " (that port does not speak ionn's gRPC: is it the server's metrics port? give --server its --listen)";
  }
  return "";
}

// A call's deadline, and the shared secret when there is one.
void SetUpCall(grpc::ClientContext* ctx, double ms, const std::string& secret) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
  if (!secret.empty()) ctx->AddMetadata(net::kSecretMetadata, secret);
}

std::string TensorName(const CostGraph& c, int t) {
  return t < c.num_inputs() ? c.inputs()[t].name : c.layer(c.producer(t)).name;
}

// What one segment must leave behind: outputs of its layers that layers
// outside it read (`later`), and those that later server segments read
// (`later_on_server`).
struct SegmentNeeds {
  std::vector<std::string> later, later_on_server;
};

SegmentNeeds Needs(const CostGraph& c, const QuerySchedule& s, size_t i) {
  std::vector<int> side_of(c.num_layers(), -1), segment_of(c.num_layers(), -1);
  for (size_t j = 0; j < s.segments.size(); ++j) {
    for (int k : s.segments[j].layers) side_of[k] = static_cast<int>(s.segments[j].side), segment_of[k] = static_cast<int>(j);
  }
  SegmentNeeds needs;
  for (int k : s.segments[i].layers) {
    const int t = c.tensor_of_layer(k);
    bool later = c.is_output(t), on_server = false;
    for (int r : c.consumers(t)) {
      if (segment_of[r] != static_cast<int>(i)) {
        later = true;
        on_server = on_server || side_of[r] == static_cast<int>(Side::kServer);
      }
    }
    if (later) needs.later.push_back(c.layer(k).name);
    if (on_server) needs.later_on_server.push_back(c.layer(k).name);
  }
  return needs;
}

// The wait a busy server advised (a call it refused without running it,
// net::kRetryAfterMetadata), or a negative number when it did not refuse it so.
double RetryAfterMs(const grpc::ClientContext& ctx, const grpc::Status& s) {
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return -1;
  const auto& md = ctx.GetServerTrailingMetadata();
  const auto it = md.find(net::kRetryAfterMetadata);
  if (it == md.end()) return -1;
  const std::string v(it->second.data(), std::min<size_t>(it->second.size(), 9));
  char* end = nullptr;
  const double ms = std::strtod(v.c_str(), &end);
  return end != v.c_str() && ms >= 0 ? std::min(ms, 10000.0) : -1;
}

// Whether a failed call means the server or the link is gone (reconnect)
// rather than that the server refused what was sent (it still serves).
bool IsLoss(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED: return false;
    default: return true;  // UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, NOT_FOUND (expired), INTERNAL, ...
  }
}

// One session with one server: its plan and the schedule of a query for
// every count of acknowledged partitions. Fixed once made, except the
// fields under "guarded by Run::mu_".
struct Connection {
  int index = 0;  // into ClientResult::sessions
  std::string server, server_name, session_id;
  std::unique_ptr<v1::Offload::Stub> stub, upload_stub;  // calls and queries; the upload
  CostGraph costs;
  UploadPlan plan;
  // By acknowledged partitions; replaced whole by a re-plan (queries hold
  // the one they started with), `plan_version` counting the re-plans.
  std::shared_ptr<const std::vector<QuerySchedule>> schedules;
  int plan_version = 0;
  double planned_factor = 1;  // the uplink rate the plan assumed, as a multiple of ClientOptions::link's
  size_t first_upload = 0;  // the plan's first partition sent (1: partition 0 is the held layers)
  size_t chunk_bytes = 1 << 20;
  int held_layers = 0;
  int64_t held_bytes = 0;
  bool use_held = true;  // false: the first session of a run with ClientOptions::use_held false
  std::map<int, uint64_t> resumable;  // layer -> its proven prefix, kept by the server from a cut upload
  // Guarded by Run::mu_.
  int acked = 0;
  bool upload_over = false, lost = false, closed = false;
};

class Run {
 public:
  Run(const Graph& model, const ClientOptions& o, const std::function<void(const ClientProgress&)>& progress,
      const QueryOutputCallback& on_output)
      : model_(model), o_(o), progress_(progress), on_output_(on_output), clock_(o.clock ? *o.clock : Clock::System()) {}

  Result<ClientResult> Go() {
    if (o_.servers.empty()) return Status::Invalid("no server to connect to");
    if (!o_.secret.empty()) IONN_RETURN_IF_ERROR(net::ValidateSecret(o_.secret));
    if (o_.replan.mode == ReplanMode::kOracle) {
      return Status::Invalid("re-planning oracle is the simulator's bound: passive or off for a client");
    }
    if (o_.replan.mode == ReplanMode::kPassive) {
      if (o_.plan_json || o_.plan_function) {
        return Status::Invalid("re-planning needs the planner, and the plan is made elsewhere: re-plan off");
      }
      const std::string why_not = WhyNoReplan(o_.upload_encoding, o_.planner.algorithm);
      if (!why_not.empty()) return Status::Invalid(why_not);
      if (!(o_.replan.window_ms > 0) || !(o_.replan.band > 0)) {
        return Status::Invalid("re-planning: a window > 0 ms (" + std::to_string(o_.replan.window_ms) +
                               ") and a band > 0 (" + std::to_string(o_.replan.band) + ") needed");
      }
      replanning_ = true;
      estimator_ = RateEstimator(o_.replan.window_ms);
      r_.replan = ReplanModeName(o_.replan.mode);
    }
    EngineOptions eo;
    eo.threads = o_.threads;
    eo.backend = o_.backend;
    IONN_ASSIGN_OR_RETURN(engine_, Engine::Create(model_, eo));
    sent_this_run_.assign(model_.layers.size(), 0);
    Status first = Status::Ok();
    bool full = false;  // a server refused for now (its memory or sessions full, or busy)
    for (size_t i = 0; i < o_.servers.size(); ++i) {
      auto c = Connect(o_.servers[i], /*stop_aware=*/false, /*first=*/true);
      if (c.ok()) {
        next_server_ = i + 1;
        conn_ = std::move(c).value();
        break;
      }
      if (first.ok()) first = c.status();
      // The server's refusals that may pass say "retry" (see server.cc).
      const StatusCode code = c.status().code();
      full = full || ((code == StatusCode::kResourceExhausted || code == StatusCode::kUnavailable) &&
                      c.status().message().find("retry") != std::string::npos);
    }
    // Every server refused for want of room (or of time, busy): run here and
    // let the worker try again, as after a loss. Unreachable servers, or
    // ones that refuse this model, are an error.
    if (!conn_ && !(full && o_.max_reconnects > 0)) return first;
    const bool placeholder = !conn_;
    if (placeholder) {
      conn_ = std::make_shared<Connection>();
      conn_->server = o_.servers[0];
      next_server_ = 1;
    }
    start_ms_ = clock_.NowMs();
    r_.started_unix_ms = static_cast<double>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    Adopt(conn_, 0);
    if (placeholder) Lose(conn_.get(), first.message());
    worker_ = std::thread([this] { Work(); });
    const bool back_to_back = o_.arrivals.kind == Arrivals::Kind::kBackToBack;
    if (back_to_back) {  // the paper's protocol: queries from the first acknowledgement on
      const std::shared_ptr<Connection> first_session = conn_;
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return first_session->acked > 0 || first_session->upload_over || first_session->lost; });
    }
    ArrivalQueue arrivals(o_.arrivals);
    double free_since = 0;  // when the last query ended
    int raised_after_upload = 0, local_after_loss = 0;
    uint64_t query_id = 0;
    while (true) {
      std::shared_ptr<Connection> c;
      std::shared_ptr<const std::vector<QuerySchedule>> schedules;
      int acked, version;
      double local_ms;
      bool complete, gave_up;
      {
        std::lock_guard<std::mutex> lock(mu_);
        c = conn_;
        schedules = c->schedules;
        version = c->plan_version;
        local_ms = c->plan.latency_local_ms;
        acked = c->lost ? 0 : c->acked;
        complete = !c->lost && c->acked == static_cast<int>(c->plan.partitions.size());
        gave_up = gave_up_ || (c->upload_over && !c->lost && !complete);
      }
      const double now = clock_.NowMs() - start_ms_;
      const int done = static_cast<int>(r_.queries.size());
      if (o_.max_queries >= 0 && done >= o_.max_queries) break;
      if (o_.duration_ms >= 0 && now >= o_.duration_ms) break;
      if (o_.max_queries < 0 && o_.duration_ms < 0) {
        // An upload of fewer bytes than fp32 ends before the window does:
        // queries go on to its end, as in the simulator.
        const bool window_over = o_.upload_encoding == UploadEncoding::kExact || now >= AllAtOnceUploadMs(c->costs);
        if (complete && raised_after_upload >= o_.queries_after_upload && window_over) break;
        if (gave_up && local_after_loss >= o_.queries_after_upload) break;
      }
      double arrival = now;  // back to back: one is always waiting
      if (!back_to_back) {
        arrival = arrivals.Take(now, free_since);
        if (arrivals.waiting() > 10000000) {
          return Status::Invalid("more than 10 million queries waiting: arrivals outpace the queries (bound the "
                                 "queue with --max-queue)");
        }
        if (arrival < 0) {  // none waits: until the next arrives (or, past the last, the upload ends)
          if (arrivals.Exhausted() && (complete || gave_up)) break;
          const double next = arrivals.NextArrivalMs();
          clock_.SleepMs(std::min(next - now, 50.0));
          continue;
        }
      }
      raised_after_upload += complete;
      local_after_loss += gave_up;
      ClientQuery started;
      started.start_ms = clock_.NowMs() - start_ms_;
      started.predicted_ms = local_ms;
      IONN_ASSIGN_OR_RETURN(ClientQuery q, acked > 0 ? Query(*c, *schedules, version, ++query_id, acked)
                                                     : LocalQuery(started, false));
      q.arrival_ms = back_to_back ? q.start_ms : arrival;
      free_since = q.end_ms;
      r_.queries.push_back(q);
      if (on_output_) on_output_(q, r_.last_outputs);
      Report(q);
    }
    Finish();
    const Connection& last = *conn_;
    r_.server = last.server;
    r_.server_name = last.server_name;
    r_.session_id = last.session_id;
    r_.costs = last.costs;
    r_.plan = last.plan;
    r_.held_layers = last.held_layers;
    r_.held_bytes = last.held_bytes;
    r_.upload_error = upload_error_;
    r_.upload_complete = !last.lost && last.acked == static_cast<int>(last.plan.partitions.size());
    if (r_.upload_complete) r_.upload_ms = r_.partitions.back().acked_ms;
    std::vector<ProtocolQuery> times;
    for (const auto& q : r_.queries) times.push_back({q.start_ms, q.end_ms, q.partitions_uploaded, q.arrival_ms});
    std::vector<double> acked;  // of the last session, whose plan this is
    for (const auto& p : r_.partitions) {
      if (p.session + 1 == static_cast<int>(r_.sessions.size())) acked.push_back(p.acked_ms);
    }
    r_.counts = CountQueries(times, acked, r_.upload_ms, r_.upload_complete, AllAtOnceUploadMs(r_.costs),
                             o_.deadline_ms);
    r_.queries_dropped = arrivals.dropped();
    r_.queries_during_upload = r_.counts.during_upload;
    r_.first_query_end_ms = r_.counts.first_query_end_ms;
    for (const auto& q : r_.queries) {
      if (r_.near_optimal_ms < 0 && NearOptimal(q.end_ms - q.arrival_ms, r_.plan.latency_optimal_ms)) {
        r_.near_optimal_ms = q.end_ms;
      }
      r_.queries_approximate += !q.exact;
    }
    r_.exact_from_ms = r_.upload_complete && ExactInTheEnd(r_.costs, r_.plan) ? r_.upload_ms : -1;
    return std::move(r_);
  }

  // Also on an early return with an error: no worker thread left running,
  // no session left open on the server.
  ~Run() { Finish(); }

 private:
  // Stops the worker and closes the session (once; the server would keep
  // it until it expires otherwise).
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (active_ctx_) active_ctx_->TryCancel();
      cv_.notify_all();
    }
    if (worker_.joinable()) worker_.join();
    if (conn_) Close(conn_.get());
  }

  // Closes a session on its server, unless it is closed already; also a
  // lost one: a lost link may come back (the session then frees its memory
  // now rather than at expiry); a dead server answers at once.
  void Close(Connection* c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (c->closed || c->session_id.empty()) return;
      c->closed = true;
    }
    grpc::ClientContext ctx;
    SetUpCall(&ctx, std::min(o_.call_deadline_ms, 2000.0), o_.secret);
    v1::CloseSessionRequest req;
    req.set_session_id(c->session_id);
    v1::CloseSessionReply reply;
    (void)c->stub->CloseSession(&ctx, req, &reply);
  }

  // Hello, the cost graph with that server's prediction functions, a
  // session (proving what it holds) and the plan. `stop_aware`: calls are
  // cancelled when the run stops (the worker's reconnections). `first`: the
  // run's first session (where ClientOptions::use_held applies).
  Result<std::shared_ptr<Connection>> Connect(const std::string& server, bool stop_aware, bool first) {
    auto c = std::make_shared<Connection>();
    c->server = server;
    c->use_held = o_.use_held || !first;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // A channel of its own, not a subchannel shared with the lost session's
    // (which may be waiting out gRPC's own reconnect backoff).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
    if (o_.tls) {
      grpc::SslCredentialsOptions tls;
      tls.pem_root_certs = o_.tls_ca_pem;  // empty: the system's roots
      credentials = grpc::SslCredentials(tls);
      if (!o_.tls_server_name.empty()) args.SetSslTargetNameOverride(o_.tls_server_name);
    }
    c->stub = v1::Offload::NewStub(grpc::CreateCustomChannel(server, credentials, args));
    // The upload gets a connection of its own (a distinct channel argument
    // keeps gRPC from sharing the subchannel), so that query tensors do not
    // queue behind megabytes of weights in one TCP send buffer: on a shared
    // link the two flows then share it as two TCP flows do.
    grpc::ChannelArguments upload_args = args;
    upload_args.SetInt("ionn.upload_connection", 1);
    c->upload_stub =
        v1::Offload::NewStub(grpc::CreateCustomChannel(server, credentials, upload_args));
    v1::HelloReply hello;
    {
      v1::HelloRequest req;
      req.set_protocol_version(net::kProtocolVersion);
      req.set_client_name("ionn-client");
      const grpc::Status said =
          Call(stop_aware, [&](grpc::ClientContext* ctx) { return c->stub->Hello(ctx, req, &hello); });
      const Status status = FromGrpc(said, "Hello to " + server);
      if (!status.ok()) return Status(status.code(), status.message() + HelloHint(said.error_message(), o_.tls));
    }
    c->server_name = hello.server_name();
    if (o_.upload_encoding != UploadEncoding::kExact) {
      const std::string want = UploadEncodingName(o_.upload_encoding);
      std::string offered;
      bool decodes = false;
      for (const auto& e : hello.upload_encodings()) {
        decodes = decodes || e == want;
        offered += (offered.empty() ? "" : ", ") + e.substr(0, 32);
      }
      if (!decodes) {
        return Status::Unsupported("server " + server + " does not decode the upload encoding '" + want +
                                   "' (it decodes: " + (offered.empty() ? "exact" : offered) + ")");
      }
    }
    IONN_ASSIGN_OR_RETURN(ServerRegression regression, net::RegressionFromProto(hello));
    const Profile* server_times = o_.server_profile ? &*o_.server_profile : nullptr;
    IONN_ASSIGN_OR_RETURN(const CostGraph fp32, BuildCostGraph(model_, o_.client_profile, server_times,
                                                               server_times ? nullptr : &regression, o_.link));
    IONN_ASSIGN_OR_RETURN(c->costs, EncodeUploads(fp32, model_, o_.upload_encoding, o_.link));
    c->chunk_bytes = std::max<size_t>(1, std::min<size_t>(o_.chunk_bytes, hello.limits().max_chunk_bytes()));
    LayerMask held(model_.layers.size(), 0);
    {
      v1::OpenSessionRequest req;
      *req.mutable_model() = net::ArchitectureToProto(model_);
      req.set_ignore_held(!c->use_held);
      if (o_.upload_encoding != UploadEncoding::kExact) req.set_upload_encoding(UploadEncodingName(o_.upload_encoding));
      v1::OpenSessionReply reply;
      IONN_RETURN_IF_ERROR(FromGrpc(
          Call(stop_aware, [&](grpc::ClientContext* ctx) { return c->stub->OpenSession(ctx, req, &reply); }),
          "OpenSession at " + server));
      c->session_id = reply.session_id();
      Status s = AddHeld(c.get(), reply.held_layers(), "OpenSession", &held);
      if (s.ok() && (reply.challenges_size() > 0 || reply.prefixes_size() > 0) && c->use_held) {
        ProveHeld(c.get(), reply, stop_aware, &held);
      }
      Result<UploadPlan> plan = s;
      if (s.ok() && (o_.plan_json || o_.plan_function)) {
        auto given = o_.plan_function ? o_.plan_function(c->costs) : PlanFromJson(c->costs, *o_.plan_json);
        plan = given.ok() ? WithHeldFirst(c->costs, *given, held)
                          : Result<UploadPlan>(Status::Invalid("the plan given: " + given.status().message()));
      } else if (s.ok()) {
        plan = MakePlanWithHeld(c->costs, held, o_.planner);
      }
      if (!plan.ok()) {
        Close(c.get());
        return plan.status();
      }
      c->plan = std::move(plan).value();
    }
    c->first_upload = c->held_layers > 0 ? 1 : 0;
    const LatencyModel latency(c->costs);
    LayerMask uploaded(c->costs.num_layers(), 0);
    auto schedules = std::make_shared<std::vector<QuerySchedule>>();
    schedules->push_back(ScheduleQuery(c->costs, uploaded));
    for (const Partition& p : c->plan.partitions) {
      for (int k : p.layers) uploaded[k] = 1;
      schedules->push_back(ScheduleQuery(c->costs, latency.Best(uploaded).on_server));
    }
    c->schedules = std::move(schedules);
    return c;
  }

  // Runs one call with its deadline; with `stop_aware`, Finish cancels it.
  // A busy server's refusal is retried after the wait it advises (a few
  // times). `call` makes the call with the context it is given.
  grpc::Status Call(bool stop_aware, const std::function<grpc::Status(grpc::ClientContext*)>& call) {
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext ctx;
      SetUpCall(&ctx, o_.call_deadline_ms, o_.secret);
      if (stop_aware) {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return grpc::Status(grpc::StatusCode::CANCELLED, "the client is stopping");
        active_ctx_ = &ctx;
      }
      grpc::Status st = call(&ctx);
      if (stop_aware) {
        std::lock_guard<std::mutex> lock(mu_);
        active_ctx_ = nullptr;
      }
      const double wait_ms = RetryAfterMs(ctx, st);
      if (wait_ms < 0 || attempt >= kBusyRetries || !Wait(wait_ms)) return st;
    }
  }

  // Sleeps `ms`; false if the run stops meanwhile.
  bool Wait(double ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, std::chrono::microseconds(static_cast<int64_t>(ms * 1000)), [this] { return stop_; });
  }

  // Makes `c` the session queries use, and records it (with its held
  // layers' partition, acknowledged at once).
  void Adopt(const std::shared_ptr<Connection>& c, double opened_ms) {
    std::lock_guard<std::mutex> lock(mu_);
    conn_ = c;
    // A new session plans for the rate given: the estimate starts again
    // (what a failing link showed before the loss says nothing of the next).
    estimator_ = RateEstimator(o_.replan.window_ms);
    c->index = static_cast<int>(r_.sessions.size());
    ClientSession rec;
    rec.server = c->server;
    rec.server_name = c->server_name;
    rec.session_id = c->session_id;
    rec.opened_ms = opened_ms;
    rec.held_layers = c->held_layers;
    rec.held_bytes = c->held_bytes;
    rec.partitions = static_cast<int>(c->plan.partitions.size());
    r_.sessions.push_back(rec);
    upload_error_.clear();  // an earlier session's refusal
    bytes_total_ = 0;
    bytes_acked_ = 0;
    for (size_t p = c->first_upload; p < c->plan.partitions.size(); ++p) {
      for (int k : c->plan.partitions[p].layers) {  // lossless: its raw bytes, an upper bound
        bytes_total_ += o_.upload_encoding == UploadEncoding::kExact
                            ? net::LayerUploadBytes(model_.layers[k])
                            : static_cast<int64_t>(CodecFor(o_.upload_encoding)
                                                       .MaxEncodedBytes(model_.layers[k], c->plan.partitions[p].phase));
      }
    }
    if (c->first_upload > 0) {  // the held layers: on the server from the start
      ClientPartition held;
      held.session = c->index;
      held.layers = c->held_layers;
      held.held = true;
      held.start_ms = held.acked_ms = opened_ms;
      r_.partitions.push_back(held);
      c->acked = 1;
      r_.sessions.back().acked = 1;
    }
    cv_.notify_all();
  }

  // Marks `c` lost (once): queries run here until another session is made.
  // Its other call in flight, if any, is cancelled rather than left to
  // wait out its deadline on a stalled link.
  void Lose(Connection* c, const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (c->lost) return;
    c->lost = true;
    if (active_ctx_ && active_conn_ == c) active_ctx_->TryCancel();
    if (query_ctx_ && query_conn_ == c) query_ctx_->TryCancel();
    r_.server_lost = true;
    r_.server_error = why;
    r_.sessions[c->index].lost = why;
    cv_.notify_all();
  }

  // The worker: uploads the current session's plan; when the session is
  // lost, reconnects with backoff and goes on with the new one.
  void Work() {
    std::shared_ptr<Connection> c = conn_;
    int attempts = 0;
    while (true) {
      Upload(c.get());
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || c->lost; });
        if (stop_) return;
      }
      Close(c.get());
      double wait_ms = o_.reconnect_backoff_ms;
      std::shared_ptr<Connection> next;
      while (!next) {
        {
          std::unique_lock<std::mutex> lock(mu_);
          if (attempts >= o_.max_reconnects) {
            gave_up_ = true;
            cv_.notify_all();
            return;
          }
          if (cv_.wait_for(lock, std::chrono::microseconds(static_cast<int64_t>(wait_ms * 1000)), [&] { return stop_; })) return;
          ++attempts;
          ++r_.reconnect_attempts;
        }
        const std::string& server = o_.servers[next_server_++ % o_.servers.size()];
        auto made = Connect(server, /*stop_aware=*/true, /*first=*/false);
        if (made.ok()) {
          next = std::move(made).value();
        } else {
          std::lock_guard<std::mutex> lock(mu_);
          r_.server_error = made.status().message();
          wait_ms = std::min(wait_ms * 2, o_.reconnect_backoff_max_ms);
        }
      }
      Adopt(next, clock_.NowMs() - start_ms_);
      c = next;
    }
  }

  // The server holds layers with weights: prove we have them too, by the
  // hashes of the blocks it asked for. A challenge that names no layer of
  // ours, or a failed call, only means those layers are uploaded.
  void ProveHeld(Connection* c, const v1::OpenSessionReply& reply, bool stop_aware, LayerMask* held) {
    v1::ProveHeldRequest prove;
    prove.set_session_id(c->session_id);
    LayerMask challenged(model_.layers.size(), 0);
    // Without use_held (a first meeting measured), a reconnection proves
    // only what this run sent: not what the server held before it.
    const auto ours = [&](uint32_t k) { return o_.use_held || sent_this_run_[k]; };
    for (const auto& ch : reply.challenges()) {
      if (ch.layer() >= model_.layers.size() || challenged[ch.layer()] || (*held)[ch.layer()] || !ours(ch.layer())) {
        continue;
      }
      const Layer& layer = model_.layers[ch.layer()];
      auto hashes = BlockAnswers(layer, static_cast<uint64_t>(net::LayerUploadBytes(layer)), ch.blocks());
      if (!hashes) continue;
      challenged[ch.layer()] = 1;
      auto* proof = prove.add_proofs();
      proof->set_layer(ch.layer());
      proof->set_block_hashes(*hashes);
    }
    // Prefixes of cut uploads: the same proof over the bytes the server kept.
    std::map<int, uint64_t> prefix_asked;
    for (const auto& ch : reply.prefixes()) {
      if (ch.layer() >= model_.layers.size() || prefix_asked.count(ch.layer()) || (*held)[ch.layer()] ||
          challenged[ch.layer()] || !ours(ch.layer())) {
        continue;
      }
      const Layer& layer = model_.layers[ch.layer()];
      const uint64_t size = net::LayerUploadBytes(layer), kept = ch.bytes();
      if (kept == 0 || kept > size || (kept < size && kept % net::kProofBlockBytes != 0)) continue;
      auto hashes = BlockAnswers(layer, kept, ch.blocks());
      if (!hashes) continue;
      prefix_asked[ch.layer()] = kept;
      auto* proof = prove.add_prefix_proofs();
      proof->set_layer(ch.layer());
      proof->set_block_hashes(*hashes);
    }
    if (prove.proofs_size() == 0 && prove.prefix_proofs_size() == 0) return;
    v1::ProveHeldReply proven;
    if (!Call(stop_aware, [&](grpc::ClientContext* ctx) { return c->stub->ProveHeld(ctx, prove, &proven); }).ok()) return;
    for (const auto& p : proven.prefixes()) {
      auto it = prefix_asked.find(static_cast<int>(p.layer()));
      if (it != prefix_asked.end() && it->second == p.bytes()) c->resumable[it->first] = it->second, prefix_asked.erase(it);
    }
    std::vector<uint32_t> ok;
    for (uint32_t k : proven.held_layers()) {
      if (k < challenged.size() && challenged[k]) ok.push_back(k), challenged[k] = 0;  // each once, only those asked
    }
    google::protobuf::RepeatedField<uint32_t> layers(ok.begin(), ok.end());
    (void)AddHeld(c, layers, "ProveHeld", held);
  }

  // The answer to a challenge of `blocks` of the first `kept` weight bytes
  // of `layer` (net::LayerStore::BlockHashes of each block, in order), or
  // nothing when it names no block, or one past them.
  static std::optional<std::string> BlockAnswers(const Layer& layer, uint64_t kept,
                                                 const google::protobuf::RepeatedField<uint64_t>& blocks) {
    if (blocks.empty()) return std::nullopt;
    const uint64_t count = (kept + net::kProofBlockBytes - 1) / net::kProofBlockBytes;
    std::string hashes;
    for (uint64_t b : blocks) {
      if (b >= count) return std::nullopt;
      const uint64_t at = b * net::kProofBlockBytes;
      const std::string bytes = net::LayerWeightBytesAt(layer, at, std::min(net::kProofBlockBytes, kept - at));
      hashes += net::LayerStore::BlockHashes(bytes.data(), bytes.size());
    }
    return hashes;
  }

  Status AddHeld(Connection* c, const google::protobuf::RepeatedField<uint32_t>& layers, const std::string& call,
                 LayerMask* held) {
    for (uint32_t k : layers) {
      if (k >= held->size() || (*held)[k] || !c->use_held) {
        return Status::Invalid(call + " at " + c->server + ": the server named held layer " + std::to_string(k) +
                               (c->use_held ? " (out of range or twice)" : " although asked to ignore held layers"));
      }
      (*held)[k] = 1;
      ++c->held_layers;
      c->held_bytes += net::LayerUploadBytes(model_.layers[k]);
    }
    return Status::Ok();
  }

  // Uploads `c`'s partitions in order until all are acknowledged, the run
  // stops, the server refuses one (the session goes on with what it has),
  // the session is lost, or a partition's attempts stall.
  void Upload(Connection* c) {
    int busy_retries = 0;  // of the partition being sent
    bool resent_whole = false;  // a partition sent again without resuming, after the server refused its resumed bytes
    for (size_t p = c->first_upload; p < c->plan.partitions.size(); ++p) {
      const Partition part = c->plan.partitions[p];  // a copy: a re-plan may change the plan meanwhile
      const uint32_t upload_index = static_cast<uint32_t>(p - c->first_upload);  // the server numbers what it receives
      for (int k : part.layers) sent_this_run_[k] = 1;
      ClientUploadAttempt attempt;
      attempt.session = c->index;
      attempt.partition = static_cast<int>(p);
      attempt.start_ms = clock_.NowMs() - start_ms_;
      // Each layer's weights, less the prefix the server kept of a cut
      // upload; or as their codec encodes them (never resumed).
      std::string bytes;
      std::vector<uint64_t> resume_from, encoded_bytes;
      bool unencodable = false;
      for (int k : part.layers) {
        const size_t at = bytes.size();
        if (o_.upload_encoding != UploadEncoding::kExact) {
          CodecOptions codec;
          codec.uplink_bytes_per_ms = o_.link.uplink_mbps * kBytesPerMsPerMbps;
          auto encoded = CodecFor(o_.upload_encoding).Encode(model_.layers[k], part.phase, codec);
          if (!encoded.ok()) {
            std::lock_guard<std::mutex> lock(mu_);
            upload_error_ = "partition " + std::to_string(p) + ": " + encoded.status().message();
            unencodable = true;
            break;
          }
          bytes += *encoded;
          encoded_bytes.push_back(encoded->size());
          attempt.bytes += static_cast<int64_t>(encoded->size());
          continue;
        }
        net::AppendLayerWeights(model_.layers[k], &bytes);
        auto kept = c->resumable.find(k);
        const uint64_t skip = kept == c->resumable.end() ? 0 : std::min<uint64_t>(kept->second, bytes.size() - at);
        attempt.bytes += static_cast<int64_t>(bytes.size() - at);
        attempt.resumed += static_cast<int64_t>(skip);
        bytes.erase(at, skip);
        resume_from.push_back(skip);
      }
      if (unencodable) break;
      if (busy_retries == 0 && AttemptsWithoutProgress(part.layers, attempt.resumed) >= o_.max_stalled_attempts) {
        std::lock_guard<std::mutex> lock(mu_);
        upload_error_ = "partition " + std::to_string(p) + ": " + std::to_string(o_.max_stalled_attempts) +
                        " attempts got no further (the last: " + last_failure_ + ")";
        break;
      }
      grpc::ClientContext ctx;
      // Not cut for taking long: its bytes at the slowest rate allowed.
      const double floor_ms = o_.upload_min_bytes_per_s > 0 ? bytes.size() / o_.upload_min_bytes_per_s * 1000 : 1e12;
      SetUpCall(&ctx, o_.call_deadline_ms + std::min(floor_ms, 1e12), o_.secret);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_ || c->lost) break;
        active_ctx_ = &ctx;
        active_conn_ = c;
      }
      v1::UploadReply reply;
      UploadWatch watch(&ctx, o_.upload_idle_ms, clock_);
      auto writer = c->upload_stub->Upload(&ctx, &reply);
      size_t offset = 0;
      bool first = true;
      SetUploading(true);
      PacedWrites paced;  // this call's
      while (first || offset < bytes.size()) {
        v1::UploadChunk chunk;
        if (first) {
          chunk.set_session_id(c->session_id);
          chunk.set_partition(upload_index);
          for (int k : part.layers) chunk.add_layers(k);
          if (attempt.resumed > 0) {
            for (uint64_t skip : resume_from) chunk.add_resume_from(skip);
          }
          chunk.set_phase(static_cast<uint32_t>(part.phase));
          for (uint64_t n : encoded_bytes) chunk.add_encoded_bytes(n);
        }
        const size_t n = std::min(c->chunk_bytes, bytes.size() - offset);
        chunk.set_data(bytes.data() + offset, n);
        first = false;
        const double write_start = clock_.NowMs();
        if (!writer->Write(chunk)) break;
        offset += n;
        watch.Moved();
        if (replanning_) Paced(c, write_start, n, &paced, /*kept=*/static_cast<int>(p) + 1, /*acked=*/static_cast<int>(p));
      }
      SetUploading(false);
      writer->WritesDone();
      const bool idle_cut = watch.Stop();  // the server may take long to build what it got: the deadline bounds that
      const grpc::Status st = writer->Finish();
      attempt.sent = static_cast<int64_t>(offset);
      attempt.end_ms = clock_.NowMs() - start_ms_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_ctx_ = nullptr;
        active_conn_ = nullptr;
        r_.bytes_sent += attempt.sent;
        if (stop_ && !st.ok()) break;  // cancelled by Finish
      }
      const double busy_ms = RetryAfterMs(ctx, st);
      if (busy_ms >= 0 && busy_retries++ < kBusyRetries) {  // not run: send it again after the advised wait
        Record(attempt, "refused as busy");
        if (!Wait(busy_ms)) break;
        --p;  // unsigned: wraps at 0, and the loop's ++p brings it back
        continue;
      }
      busy_retries = 0;
      if (!st.ok()) {
        std::string why = FromGrpc(st, "Upload of partition " + std::to_string(p) + " to " + c->server).message();
        if (idle_cut) why += " (no bytes moved for " + Fixed(o_.upload_idle_ms / 1000, 1) + " s)";
        Record(attempt, why);
        if (!IsLoss(st) && attempt.resumed > 0 && !resent_whole) {
          // The server refused the resumed bytes (its prefix did not make
          // the layer's hash, or it lost our proof): once more from byte 0.
          resent_whole = true;
          for (int k : part.layers) c->resumable.erase(k);
          --p;
          continue;
        }
        stalls_[part.layers] = {attempt.resumed, stalls_[part.layers].second};
        last_failure_ = why;
        if (IsLoss(st)) {
          Lose(c, why);
        } else {
          std::lock_guard<std::mutex> lock(mu_);
          upload_error_ = why;
        }
        break;
      }
      stalls_.erase(part.layers);
      resent_whole = false;
      for (int k : part.layers) c->resumable.erase(k);
      attempt.acked = true;
      Record(attempt, "acknowledged");
      ClientPartition rec;
      rec.session = c->index;
      rec.layers = static_cast<int>(part.layers.size());
      rec.bytes = attempt.sent;
      rec.resumed = attempt.resumed;
      rec.start_ms = attempt.start_ms;
      ClientProgress pr;
      {
        std::lock_guard<std::mutex> lock(mu_);
        rec.acked_ms = clock_.NowMs() - start_ms_;
        r_.partitions.push_back(rec);
        r_.resumed_bytes += attempt.resumed;
        c->acked = static_cast<int>(p) + 1;
        r_.sessions[c->index].acked = c->acked;
        bytes_acked_ += attempt.bytes;
        cv_.notify_all();
        pr = ProgressLocked();
      }
      Notify(pr);
      if (replanning_) MaybeReplan(c, /*kept=*/static_cast<int>(p) + 1, /*acked=*/static_cast<int>(p) + 1);
    }
    std::lock_guard<std::mutex> lock(mu_);
    c->upload_over = true;
    cv_.notify_all();
  }

  void SetUploading(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    uploading_ = on;
  }

  // An upload call's writes: the last one the link held back, and the
  // bytes the transport took since.
  struct PacedWrites {
    double last_end_ms = -1;  // the last paced write's end; < 0: none yet in this call
    double bytes_since = 0;   // written since it
    int paced = 0;  // writes held back so far in this call
  };

  // A chunk the transport took. Writes go at once while the buffers and
  // the flow-control window have room, and one is held back (paced) when
  // they are full; from one paced write to the next, the bytes written
  // crossed the link in that time (DESIGN.md, "Re-planning from the
  // upload"). What went before the call's second paced write (its buffers
  // filling) does not count. Then maybe re-plan.
  void Paced(Connection* c, double write_start, size_t bytes, PacedWrites* w, int kept, int acked) {
    const double now = clock_.NowMs(), took = now - write_start;
    w->bytes_since += static_cast<double>(bytes);
    // Held back for a share of the time the bytes written since the last
    // paced write take at the rate the current plan assumed: the link
    // drains the buffers in bursts (HTTP/2 window updates), so a write
    // may wait for many chunks' time, while a stall of the machine's own
    // (seen under load while the buffers fill) is short beside what it
    // wrote since.
    // Before the call's first paced write, by the write's own bytes (what
    // went before filled the buffers).
    const double counted = w->last_end_ms < 0 ? static_cast<double>(bytes) : w->bytes_since;
    const double planned_ms = counted / (c->planned_factor * o_.link.uplink_mbps * kBytesPerMsPerMbps);
    if (!(took >= std::max(kPacedMinMs, kPacedShare * planned_ms))) return;
    const double since = w->last_end_ms;
    w->last_end_ms = now;
    const double amount = w->bytes_since;
    w->bytes_since = 0;
    // Nor does the interval after the call's first paced write: under load
    // the machine may hold back a write before the buffers are full, and
    // the next interval then carries what filled them (seen: 13.8 Mbps
    // estimated on a 5 Mbps link). So a call gives an estimate from its
    // third paced write on: a partition that fits in the buffers and two
    // bursts of the link gives none.
    if (++w->paced <= 2) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      estimator_.AddInterval(now - start_ms_, now - since, amount);
    }
    MaybeReplan(c, kept, acked);
    w->last_end_ms = clock_.NowMs();  // the re-plan's own time is not the link's
  }

  // Re-plans what follows the first `kept` partitions of `c` (and where
  // queries from `acked` acknowledged partitions on run) when the
  // estimate has left the band around the rate its plan assumed.
  void MaybeReplan(Connection* c, int kept, int acked) {
    const double now = clock_.NowMs();
    double estimate;
    {
      std::lock_guard<std::mutex> lock(mu_);
      estimate = estimator_.Estimate();
      r_.rate_samples.push_back({now - start_ms_, estimate >= 0 ? estimate / kBytesPerMsPerMbps : -1});
    }
    const double factor = estimate / (o_.link.uplink_mbps * kBytesPerMsPerMbps);
    if (!LeavesBand(factor / c->planned_factor, o_.replan.band)) return;
    std::vector<std::vector<int>> parts;
    for (const Partition& p : c->plan.partitions) parts.push_back(p.layers);
    auto next = ReplanUpload(c->costs, parts, kept, factor, 1, o_.link.rtt_ms, o_.planner);
    Result<UploadPlan> plan = next.ok() ? EvaluatePartitions(c->costs, c->plan.algorithm, c->plan.granularity,
                                                             next->parts, static_cast<int>(c->first_upload))
                                        : Result<UploadPlan>(next.status());
    if (!plan.ok()) {  // the plan goes on as it was, and re-planning stops
      std::lock_guard<std::mutex> lock(mu_);
      r_.replan_error = plan.status().message();
      replanning_ = false;
      return;
    }
    plan->encoding = c->plan.encoding;
    auto schedules = std::make_shared<std::vector<QuerySchedule>>(c->schedules->begin(),
                                                                  c->schedules->begin() + acked);
    for (size_t n = acked; n < next->on_server_after.size(); ++n) {
      schedules->push_back(ScheduleQuery(c->costs, next->on_server_after[n]));
    }
    const double plan_ms = clock_.NowMs() - now;
    std::lock_guard<std::mutex> lock(mu_);
    const int left = static_cast<int>(plan->partitions.size()) - acked;
    c->plan = std::move(plan).value();
    c->schedules = std::move(schedules);
    ++c->plan_version;
    c->planned_factor = factor;
    r_.sessions[c->index].partitions = static_cast<int>(c->plan.partitions.size());
    r_.replans.push_back({now - start_ms_, estimate / kBytesPerMsPerMbps, plan_ms, c->index, acked, left});
  }

  void Record(ClientUploadAttempt attempt, const std::string& ended) {
    attempt.ended = ended;
    std::lock_guard<std::mutex> lock(mu_);
    r_.upload_attempts.push_back(std::move(attempt));
  }

  // Counts a new attempt of the partition of `layers`, resuming after
  // `resumed` bytes: how many attempts in a row, this one included, start
  // no further than the failed one before them (0 when it never failed).
  int AttemptsWithoutProgress(const std::vector<int>& layers, int64_t resumed) {
    auto it = stalls_.find(layers);
    if (it == stalls_.end()) return 0;
    auto& [last_resumed, count] = it->second;
    count = resumed > last_resumed ? 0 : count + 1;
    return count;
  }

  // Cancels an upload call whose bytes have not moved (no chunk accepted
  // by the transport) for `idle_ms`; Stop says whether it did.
  class UploadWatch {
   public:
    UploadWatch(grpc::ClientContext* ctx, double idle_ms, Clock& clock) : clock_(clock), moved_ms_(clock.NowMs()) {
      if (!(idle_ms > 0)) return;
      thread_ = std::thread([this, ctx, idle_ms] {
        std::unique_lock<std::mutex> lock(mu_);
        while (!cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return done_; })) {
          if (clock_.NowMs() - moved_ms_ > idle_ms) {
            cut_ = true;
            ctx->TryCancel();
            return;
          }
        }
      });
    }
    ~UploadWatch() { Stop(); }
    void Moved() {
      std::lock_guard<std::mutex> lock(mu_);
      moved_ms_ = clock_.NowMs();
    }
    bool Stop() {
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_ = true;
      }
      cv_.notify_all();
      if (thread_.joinable()) thread_.join();
      return cut_;
    }

   private:
    Clock& clock_;
    std::mutex mu_;
    std::condition_variable cv_;
    double moved_ms_;
    bool done_ = false, cut_ = false;
    std::thread thread_;
  };

  void Report(const ClientQuery& q) {
    ClientProgress pr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++queries_reported_;
      last_latency_ = q.end_ms - q.start_ms;
      last_server_layers_ = q.server_layers;
      pr = ProgressLocked();
    }
    Notify(pr);
  }

  ClientProgress ProgressLocked() const {
    return ClientProgress{conn_->lost ? 0 : conn_->acked, static_cast<int>(conn_->plan.partitions.size()),
                          bytes_acked_, bytes_total_, queries_reported_, last_latency_, last_server_layers_};
  }

  // The progress callback, outside mu_ (it may be slow, or call into the
  // server), one call at a time.
  void Notify(const ClientProgress& pr) {
    if (!progress_) return;
    std::lock_guard<std::mutex> lock(progress_mu_);
    progress_(pr);
  }

  // Prepared local segments, by session, plan version (re-plans),
  // acknowledged partitions and segment.
  Result<std::shared_ptr<const PreparedRun>> Prepared(int session, int version, int acked, size_t segment,
                                                      const std::vector<int>& layers,
                                                      const std::vector<std::string>& keep) {
    const auto key = std::make_tuple(session, version, acked, segment);
    auto it = prepared_.find(key);
    if (it != prepared_.end()) return it->second;
    IONN_ASSIGN_OR_RETURN(auto run, engine_->Prepare(layers, keep));
    if (session != last_session_ || version != last_version_) {  // earlier ones are not run again
      prepared_.clear();
      last_session_ = session;
      last_version_ = version;
    }
    prepared_[key] = run;
    return run;
  }

  Status RunLocal(std::shared_ptr<const PreparedRun> run, double exec_ms, TensorMap* held) {
    const double t0 = clock_.NowMs();
    IONN_ASSIGN_OR_RETURN(TensorMap out, engine_->Execute(*run, *held));
    for (auto& [name, t] : out) (*held)[name] = std::move(t);
    if (o_.emulate_profile) clock_.SleepMs(exec_ms - (clock_.NowMs() - t0));
    return Status::Ok();
  }

  Result<ClientQuery> Query(Connection& c, const std::vector<QuerySchedule>& schedules, int version, uint64_t id,
                            int acked) {
    ClientQuery q;
    q.start_ms = clock_.NowMs() - start_ms_;
    q.partitions_uploaded = acked;
    q.session = c.index;
    const QuerySchedule& s = schedules[acked];
    q.predicted_ms = s.latency_ms;
    TensorMap held = o_.inputs;
    int last_server = -1;
    for (size_t i = 0; i < s.segments.size(); ++i) {
      if (s.segments[i].side == Side::kServer) last_server = static_cast<int>(i);
    }
    for (size_t i = 0; i < s.segments.size(); ++i) {
      const QuerySegment& seg = s.segments[i];
      if (seg.layers.empty()) continue;
      const SegmentNeeds needs = Needs(c.costs, s, i);
      if (seg.side == Side::kClient) {
        IONN_ASSIGN_OR_RETURN(auto run, Prepared(c.index, version, acked, i, seg.layers, needs.later));
        IONN_RETURN_IF_ERROR(RunLocal(run, seg.exec_ms, &held));
        continue;
      }
      v1::QueryStepRequest req;
      req.set_session_id(c.session_id);
      req.set_query_id(id);
      for (int k : seg.layers) req.add_layers(k);
      for (int t : seg.receives) {
        const std::string name = TensorName(c.costs, t);
        net::TensorToProto(name, held.at(name), req.add_tensors());
        q.bytes_up += static_cast<int64_t>(held.at(name).data.size() * 4);
      }
      for (int t : s.returned_by(i)) req.add_wanted(TensorName(c.costs, t));
      for (const auto& name : needs.later_on_server) req.add_keep(name);
      req.set_last_step(static_cast<int>(i) == last_server);
      grpc::ClientContext ctx;
      SetUpCall(&ctx, o_.call_deadline_ms, o_.secret);
      v1::QueryStepReply reply;
      const double sent_ms = clock_.NowMs();
      {
        std::lock_guard<std::mutex> lock(mu_);
        query_ctx_ = &ctx;
        query_conn_ = &c;
      }
      const grpc::Status st = c.stub->QueryStep(&ctx, req, &reply);
      {
        std::lock_guard<std::mutex> lock(mu_);
        query_ctx_ = nullptr;
        query_conn_ = nullptr;
      }
      if (replanning_ && st.ok()) {  // its tensors shared the uplink with the upload, if one was sending
        std::lock_guard<std::mutex> lock(mu_);
        if (uploading_) estimator_.AddAlongside(clock_.NowMs() - start_ms_, static_cast<double>(req.ByteSizeLong()));
      }
      if (st.ok()) {
        r_.step_round_trip_ms.push_back(clock_.NowMs() - sent_ms);
        r_.step_server_ms.push_back(reply.server_ms());
      }
      Status ok = FromGrpc(st, "QueryStep at " + c.server);
      for (const auto& t : reply.tensors()) {
        if (!ok.ok()) break;
        const Shape* shape = model_.TensorShape(t.name());
        if (!shape) {
          ok = Status::Invalid("QueryStep: the server returned unknown tensor '" + t.name().substr(0, 64) + "'");
          break;
        }
        auto tensor = net::TensorFromProto(t, *shape);
        if (!tensor.ok()) {
          ok = tensor.status().WithContext("QueryStep reply");
          break;
        }
        q.bytes_down += static_cast<int64_t>(t.data().size());
        held[t.name()] = std::move(tensor).value();
      }
      for (int t : s.returned_by(i)) {
        if (ok.ok() && !held.count(TensorName(c.costs, t))) ok = Status::Invalid("QueryStep: the server left out a wanted tensor");
      }
      if (!ok.ok()) {
        // Recompute here. The session is lost (the next queries run here
        // until a new one is made) when the server or link is gone, or the
        // server refused three steps in a row.
        const bool busy = RetryAfterMs(ctx, st) >= 0;  // not run: no sign of a broken session
        refused_steps_ = busy ? refused_steps_ : st.ok() || IsLoss(st) ? kMaxRefusedSteps : refused_steps_ + 1;
        if (refused_steps_ >= kMaxRefusedSteps) Lose(&c, ok.message());
        return LocalQuery(q, /*fell_back=*/true);
      }
      refused_steps_ = 0;
      q.exact = q.exact && !reply.approximate();
      q.server_steps++;
      q.server_layers += static_cast<int>(seg.layers.size());
    }
    for (const auto& name : model_.outputs) r_.last_outputs[name] = held.at(name);
    q.end_ms = clock_.NowMs() - start_ms_;
    return q;
  }

  // The whole model here, for query `q` (started): one without a session,
  // or one recomputed after a failed call (`fell_back`).
  Result<ClientQuery> LocalQuery(ClientQuery q, bool fell_back) {
    q.fell_back = fell_back;
    q.server_layers = 0;
    q.partitions_uploaded = 0;
    if (!whole_model_) {  // prepared once: after a loss every query runs here
      std::vector<int> all(model_.layers.size());
      for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
      IONN_ASSIGN_OR_RETURN(whole_model_, engine_->Prepare(all, model_.outputs));
      for (const auto& l : model_.layers) {
        auto it = o_.client_profile.rows.find(l.name);
        if (it != o_.client_profile.rows.end()) whole_model_ms_ += it->second.client_ms.value_or(0);
      }
    }
    TensorMap held = o_.inputs;
    IONN_RETURN_IF_ERROR(RunLocal(whole_model_, whole_model_ms_, &held));
    for (const auto& name : model_.outputs) r_.last_outputs[name] = held.at(name);
    q.end_ms = clock_.NowMs() - start_ms_;
    return q;
  }

  const Graph& model_;
  const ClientOptions& o_;
  std::function<void(const ClientProgress&)> progress_;
  QueryOutputCallback on_output_;
  Clock& clock_;
  std::unique_ptr<Engine> engine_;
  std::map<std::tuple<int, int, int, size_t>, std::shared_ptr<const PreparedRun>> prepared_;  // main thread only
  int last_session_ = 0, last_version_ = 0;
  std::shared_ptr<const PreparedRun> whole_model_;  // LocalQuery's, and its profile time
  double whole_model_ms_ = 0;
  static constexpr int kMaxRefusedSteps = 3;
  static constexpr int kBusyRetries = 20;  // a connection's calls refused as busy, each
  int refused_steps_ = 0;  // query steps the server refused in a row
  // Re-planning (ClientOptions::replan): a write is paced when it took at
  // least kPacedShare of the time of the bytes written since the last paced
  // write at the planned rate, and 1 ms.
  static constexpr double kPacedMinMs = 1, kPacedShare = 0.05;
  std::atomic<bool> replanning_{false};  // set before the worker starts; the worker clears it when a re-plan fails
  std::thread worker_;
  size_t next_server_ = 0;  // the worker's, after the start
  // The worker's: per partition (its layers) that failed, the bytes its
  // last attempt resumed after and the attempts in a row that got no further.
  std::map<std::vector<int>, std::pair<int64_t, int>> stalls_;
  std::string last_failure_;
  LayerMask sent_this_run_;  // the worker's (and Go's before it starts): layers whose upload this run began
  double start_ms_ = 0;
  ClientResult r_;

  std::mutex mu_;  // guards what follows, shared with the worker thread
  std::condition_variable cv_;
  std::shared_ptr<Connection> conn_;  // the session queries use
  bool stop_ = false, gave_up_ = false;
  grpc::ClientContext* active_ctx_ = nullptr;  // the worker's upload or connection call in flight
  const Connection* active_conn_ = nullptr;    // the session of that upload
  grpc::ClientContext* query_ctx_ = nullptr;   // the main thread's query step in flight
  const Connection* query_conn_ = nullptr;
  std::mutex progress_mu_;  // one progress callback at a time, outside mu_
  std::string upload_error_;
  RateEstimator estimator_;  // the uplink's, from paced writes and query tensors beside them
  bool uploading_ = false;   // a partition's bytes are being written
  int64_t bytes_total_ = 0, bytes_acked_ = 0;
  int queries_reported_ = 0, last_server_layers_ = 0;
  double last_latency_ = 0;
};

}  // namespace

// "A,B,C" -> {A, B, C}; each host:port (an IPv6 host in brackets) with a
// port 1..65535, or a gRPC unix:PATH target.
Result<std::vector<std::string>> ParseServerList(const std::string& list) {
  std::vector<std::string> servers;
  std::stringstream in(list);
  std::string s;
  while (std::getline(in, s, ',')) {
    const bool unix_socket = s.rfind("unix:", 0) == 0 && s.size() > 5;
    const size_t colon = s.rfind(':');
    const std::string host = colon == std::string::npos ? "" : s.substr(0, colon);
    const std::string port = colon == std::string::npos ? "" : s.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
    const bool host_ok = !host.empty() && host.find_first_of(" \t[]") == std::string::npos;
    if (unix_socket) {
      if (s.find_first_of(" \t") != std::string::npos) return Status::Invalid("server '" + s.substr(0, 80) + "' has a space");
    } else if (!(bracketed || (host_ok && host.find(':') == std::string::npos)) || !digits || std::stoi(port) < 1 ||
               std::stoi(port) > 65535) {
      return Status::Invalid("server '" + s.substr(0, 80) +
                             "' is not host:port (port 1..65535, an IPv6 host in brackets, no spaces)");
    }
    servers.push_back(s);
  }
  if (servers.empty() || list.back() == ',') return Status::Invalid("an empty server in '" + list.substr(0, 80) + "'");
  return servers;
}

Status CheckPlanForModel(const Graph& model, const std::string& plan_json) {
  // The same plan on costs of one unit each: its layers and order do not
  // depend on the times, which come with each session.
  Profile unit;
  for (const Layer& l : model.layers) {
    unit.order.push_back(l.name);
    unit.rows[l.name].client_ms = unit.rows[l.name].server_ms = 1;
  }
  IONN_ASSIGN_OR_RETURN(const CostGraph shape, BuildCostGraph(model, unit, &unit, nullptr, MakeLinkSpec(80)));
  return PlanFromJson(shape, plan_json).status();
}

Result<ClientResult> RunClient(const Graph& model, const ClientOptions& options,
                               const std::function<void(const ClientProgress&)>& progress,
                               const QueryOutputCallback& on_output) {
  for (const auto& in : model.inputs) {
    auto it = options.inputs.find(in.name);
    if (it == options.inputs.end()) return Status::Invalid("no value for model input '" + in.name + "'");
    if (it->second.shape != in.shape) {
      return Status::Invalid("model input '" + in.name + "' has shape " + ShapeToString(it->second.shape) + ", expected " +
                             ShapeToString(in.shape));
    }
  }
  if (options.plan_json) {
    Status s = CheckPlanForModel(model, *options.plan_json);
    if (!s.ok()) return Status::Invalid("the plan given: " + s.message());
  }
  Run run(model, options, progress, on_output);
  return run.Go();
}

}  // namespace ionn
