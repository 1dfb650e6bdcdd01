#include "ionn/client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "ionn.grpc.pb.h"
#include "ionn/latency.h"
#include "ionn/schedule.h"
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
    default: break;
  }
  return Status(code, context + ": " + s.error_message());
}

void SetDeadline(grpc::ClientContext* ctx, double ms) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
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

class Run {
 public:
  Run(const Graph& model, const ClientOptions& o, const std::function<void(const ClientProgress&)>& progress,
      const QueryOutputCallback& on_output)
      : model_(model), o_(o), progress_(progress), on_output_(on_output), clock_(o.clock ? *o.clock : Clock::System()) {}

  Result<ClientResult> Go() {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    stub_ = v1::Offload::NewStub(grpc::CreateCustomChannel(o_.server, grpc::InsecureChannelCredentials(), args));
    // The upload gets a connection of its own (a distinct channel argument
    // keeps gRPC from sharing the subchannel), so that query tensors do not
    // queue behind megabytes of weights in one TCP send buffer: on a shared
    // link the two flows then share it as two TCP flows do.
    grpc::ChannelArguments upload_args = args;
    upload_args.SetInt("ionn.upload_connection", 1);
    upload_stub_ =
        v1::Offload::NewStub(grpc::CreateCustomChannel(o_.server, grpc::InsecureChannelCredentials(), upload_args));
    v1::HelloReply hello;
    {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, o_.call_deadline_ms);
      v1::HelloRequest req;
      req.set_protocol_version(net::kProtocolVersion);
      req.set_client_name("ionn-client");
      IONN_RETURN_IF_ERROR(FromGrpc(stub_->Hello(&ctx, req, &hello), "Hello to " + o_.server));
    }
    r_.server_name = hello.server_name();
    IONN_ASSIGN_OR_RETURN(ServerRegression regression, net::RegressionFromProto(hello));
    const Profile* server_times = o_.server_profile ? &*o_.server_profile : nullptr;
    IONN_ASSIGN_OR_RETURN(r_.costs, BuildCostGraph(model_, o_.client_profile, server_times,
                                                   server_times ? nullptr : &regression, o_.link));
    EngineOptions eo;
    eo.threads = o_.threads;
    IONN_ASSIGN_OR_RETURN(engine_, Engine::Create(model_, eo));
    chunk_bytes_ = std::max<size_t>(1, std::min<size_t>(o_.chunk_bytes, hello.limits().max_chunk_bytes()));
    LayerMask held(model_.layers.size(), 0);
    {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, o_.call_deadline_ms);
      v1::OpenSessionRequest req;
      *req.mutable_model() = net::ArchitectureToProto(model_);
      req.set_ignore_held(!o_.use_held);
      v1::OpenSessionReply reply;
      IONN_RETURN_IF_ERROR(FromGrpc(stub_->OpenSession(&ctx, req, &reply), "OpenSession at " + o_.server));
      r_.session_id = reply.session_id();
      session_open_ = true;
      IONN_RETURN_IF_ERROR(AddHeld(reply.held_layers(), "OpenSession", &held));
      if (reply.challenges_size() > 0 && o_.use_held) ProveHeld(reply, &held);
    }
    IONN_ASSIGN_OR_RETURN(r_.plan, MakePlanWithHeld(r_.costs, held, o_.planner));
    first_upload_ = r_.held_layers > 0 ? 1 : 0;
    // The schedule of a query for every count of acknowledged partitions.
    const LatencyModel latency(r_.costs);
    LayerMask uploaded(r_.costs.num_layers(), 0);
    schedules_.push_back(ScheduleQuery(r_.costs, uploaded));
    for (const Partition& p : r_.plan.partitions) {
      for (int k : p.layers) uploaded[k] = 1;
      schedules_.push_back(ScheduleQuery(r_.costs, latency.Best(uploaded).on_server));
    }
    for (size_t p = first_upload_; p < r_.plan.partitions.size(); ++p) {
      for (int k : r_.plan.partitions[p].layers) bytes_total_ += net::LayerUploadBytes(model_.layers[k]);
    }

    start_ms_ = clock_.NowMs();
    if (first_upload_ > 0) {  // the held layers: on the server from the start
      ClientPartition rec;
      rec.layers = r_.held_layers;
      rec.held = true;
      r_.partitions.push_back(rec);
      acked_ = 1;
    }
    uploader_ = std::thread([this] { Upload(); });
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return acked_ > 0 || upload_over_; });
    }
    const int parts = static_cast<int>(r_.plan.partitions.size());
    int raised_after_upload = 0, local_after_loss = 0;
    uint64_t query_id = 0;
    while (true) {
      int acked;
      bool over;
      {
        std::lock_guard<std::mutex> lock(mu_);
        acked = acked_;
        over = upload_over_;
      }
      const double now = clock_.NowMs() - start_ms_;
      const int done = static_cast<int>(r_.queries.size());
      if (o_.max_queries >= 0 && done >= o_.max_queries) break;
      if (o_.duration_ms >= 0 && now >= o_.duration_ms) break;
      if (o_.max_queries < 0 && o_.duration_ms < 0) {
        if (acked == parts && raised_after_upload >= o_.queries_after_upload) break;
        if (over && acked < parts && local_after_loss >= o_.queries_after_upload) break;
      }
      raised_after_upload += acked == parts;
      local_after_loss += over && acked < parts;
      IONN_ASSIGN_OR_RETURN(ClientQuery q, Query(++query_id, r_.server_lost ? 0 : acked));
      r_.queries.push_back(q);
      if (on_output_) on_output_(q, r_.last_outputs);
      Report(q);
    }
    Finish();
    r_.upload_error = upload_error_;
    r_.upload_complete = static_cast<int>(r_.partitions.size()) == parts;
    if (r_.upload_complete) r_.upload_ms = r_.partitions.back().acked_ms;
    for (const auto& q : r_.queries) r_.queries_during_upload += r_.upload_complete && q.end_ms <= r_.upload_ms;
    r_.first_query_end_ms = r_.queries.empty() ? 0 : r_.queries.front().end_ms;
    return std::move(r_);
  }

  // Also on an early return with an error: no upload thread left running,
  // no session left open on the server.
  ~Run() { Finish(); }

 private:
  // Stops the upload and closes the session (once; the server would keep
  // it until it expires otherwise).
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      if (upload_ctx_) upload_ctx_->TryCancel();
    }
    if (uploader_.joinable()) uploader_.join();
    if (session_open_ && !r_.server_lost) {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, o_.call_deadline_ms);
      v1::CloseSessionRequest req;
      req.set_session_id(r_.session_id);
      v1::CloseSessionReply reply;
      (void)stub_->CloseSession(&ctx, req, &reply);
    }
    session_open_ = false;
  }

  // The server holds layers with weights: prove we have them too, by the
  // hashes of the blocks it asked for. A challenge that names no layer of
  // ours, or a failed call, only means those layers are uploaded.
  void ProveHeld(const v1::OpenSessionReply& reply, LayerMask* held) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.call_deadline_ms);
    v1::ProveHeldRequest prove;
    prove.set_session_id(r_.session_id);
    LayerMask challenged(model_.layers.size(), 0);
    for (const auto& c : reply.challenges()) {
      if (c.layer() >= model_.layers.size() || challenged[c.layer()] || (*held)[c.layer()]) continue;
      const Layer& layer = model_.layers[c.layer()];
      const uint64_t blocks = (net::LayerUploadBytes(layer) + net::kProofBlockBytes - 1) / net::kProofBlockBytes;
      std::string hashes;
      bool valid = c.blocks_size() > 0;
      for (uint64_t b : c.blocks()) {
        if (b >= blocks) {
          valid = false;
          break;
        }
        const std::string bytes = net::LayerWeightBytesAt(layer, b * net::kProofBlockBytes, net::kProofBlockBytes);
        hashes += net::LayerStore::BlockHashes(bytes.data(), bytes.size());
      }
      if (!valid) continue;
      challenged[c.layer()] = 1;
      auto* proof = prove.add_proofs();
      proof->set_layer(c.layer());
      proof->set_block_hashes(hashes);
    }
    v1::ProveHeldReply proven;
    if (prove.proofs_size() == 0 || !stub_->ProveHeld(&ctx, prove, &proven).ok()) return;
    std::vector<uint32_t> ok;
    for (uint32_t k : proven.held_layers()) {
      if (k < challenged.size() && challenged[k]) ok.push_back(k), challenged[k] = 0;  // each once, only those asked
    }
    google::protobuf::RepeatedField<uint32_t> layers(ok.begin(), ok.end());
    (void)AddHeld(layers, "ProveHeld", held);
  }

  Status AddHeld(const google::protobuf::RepeatedField<uint32_t>& layers, const std::string& call, LayerMask* held) {
    for (uint32_t k : layers) {
      if (k >= held->size() || (*held)[k] || !o_.use_held) {
        return Status::Invalid(call + " at " + o_.server + ": the server named held layer " + std::to_string(k) +
                               (o_.use_held ? " (out of range or twice)" : " although asked to ignore held layers"));
      }
      (*held)[k] = 1;
      ++r_.held_layers;
      r_.held_bytes += net::LayerUploadBytes(model_.layers[k]);
    }
    return Status::Ok();
  }

  void Upload() {
    for (size_t p = first_upload_; p < r_.plan.partitions.size(); ++p) {
      const Partition& part = r_.plan.partitions[p];
      const uint32_t upload_index = static_cast<uint32_t>(p - first_upload_);  // the server numbers what it receives
      ClientPartition rec;
      rec.layers = static_cast<int>(part.layers.size());
      rec.start_ms = clock_.NowMs() - start_ms_;
      std::string bytes;
      for (int k : part.layers) net::AppendLayerWeights(model_.layers[k], &bytes);
      rec.bytes = static_cast<int64_t>(bytes.size());
      grpc::ClientContext ctx;
      SetDeadline(&ctx, o_.call_deadline_ms);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) break;
        upload_ctx_ = &ctx;
      }
      v1::UploadReply reply;
      auto writer = upload_stub_->Upload(&ctx, &reply);
      size_t offset = 0;
      bool first = true;
      while (first || offset < bytes.size()) {
        v1::UploadChunk chunk;
        if (first) {
          chunk.set_session_id(r_.session_id);
          chunk.set_partition(upload_index);
          for (int k : part.layers) chunk.add_layers(k);
        }
        const size_t n = std::min(chunk_bytes_, bytes.size() - offset);
        chunk.set_data(bytes.data() + offset, n);
        offset += n;
        first = false;
        if (!writer->Write(chunk)) break;
      }
      writer->WritesDone();
      const grpc::Status st = writer->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      upload_ctx_ = nullptr;
      if (!st.ok()) {
        if (!stop_) upload_error_ = FromGrpc(st, "Upload of partition " + std::to_string(p)).message();
        break;
      }
      rec.acked_ms = clock_.NowMs() - start_ms_;
      r_.partitions.push_back(rec);
      acked_ = static_cast<int>(p) + 1;
      bytes_acked_ += rec.bytes;
      cv_.notify_all();
      if (progress_) {
        ClientProgress pr{acked_, static_cast<int>(r_.plan.partitions.size()), bytes_acked_, bytes_total_,
                          queries_reported_, last_latency_, last_server_layers_};
        progress_(pr);
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    upload_over_ = true;
    cv_.notify_all();
  }

  void Report(const ClientQuery& q) {
    std::lock_guard<std::mutex> lock(mu_);
    ++queries_reported_;
    last_latency_ = q.end_ms - q.start_ms;
    last_server_layers_ = q.server_layers;
    if (progress_) {
      ClientProgress pr{acked_, static_cast<int>(r_.plan.partitions.size()), bytes_acked_, bytes_total_,
                        queries_reported_, last_latency_, last_server_layers_};
      progress_(pr);
    }
  }

  Result<std::shared_ptr<const PreparedRun>> Prepared(int acked, size_t segment, const std::vector<int>& layers,
                                                      const std::vector<std::string>& keep) {
    const auto key = std::make_pair(acked, segment);
    auto it = prepared_.find(key);
    if (it != prepared_.end()) return it->second;
    IONN_ASSIGN_OR_RETURN(auto run, engine_->Prepare(layers, keep));
    prepared_[key] = run;
    return run;
  }

  Status RunLocal(int acked, size_t segment, const QuerySegment& seg, const std::vector<std::string>& keep,
                  TensorMap* held) {
    const double t0 = clock_.NowMs();
    IONN_ASSIGN_OR_RETURN(auto run, Prepared(acked, segment, seg.layers, keep));
    IONN_ASSIGN_OR_RETURN(TensorMap out, engine_->Execute(*run, *held));
    for (auto& [name, t] : out) (*held)[name] = std::move(t);
    if (o_.emulate_profile) clock_.SleepMs(seg.exec_ms - (clock_.NowMs() - t0));
    return Status::Ok();
  }

  Result<ClientQuery> Query(uint64_t id, int acked) {
    ClientQuery q;
    q.start_ms = clock_.NowMs() - start_ms_;
    q.partitions_uploaded = acked;
    const QuerySchedule& s = schedules_[acked];
    q.predicted_ms = s.latency_ms;
    TensorMap held = o_.inputs;
    int last_server = -1;
    for (size_t i = 0; i < s.segments.size(); ++i) {
      if (s.segments[i].side == Side::kServer) last_server = static_cast<int>(i);
    }
    for (size_t i = 0; i < s.segments.size(); ++i) {
      const QuerySegment& seg = s.segments[i];
      if (seg.layers.empty()) continue;
      const SegmentNeeds needs = Needs(r_.costs, s, i);
      if (seg.side == Side::kClient) {
        IONN_RETURN_IF_ERROR(RunLocal(acked, i, seg, needs.later, &held));
        continue;
      }
      v1::QueryStepRequest req;
      req.set_session_id(r_.session_id);
      req.set_query_id(id);
      for (int k : seg.layers) req.add_layers(k);
      for (int t : seg.receives) {
        const std::string name = TensorName(r_.costs, t);
        net::TensorToProto(name, held.at(name), req.add_tensors());
        q.bytes_up += static_cast<int64_t>(held.at(name).data.size() * 4);
      }
      for (int t : s.returned_by(i)) req.add_wanted(TensorName(r_.costs, t));
      for (const auto& name : needs.later_on_server) req.add_keep(name);
      req.set_last_step(static_cast<int>(i) == last_server);
      grpc::ClientContext ctx;
      SetDeadline(&ctx, o_.call_deadline_ms);
      v1::QueryStepReply reply;
      const double sent_ms = clock_.NowMs();
      const grpc::Status st = stub_->QueryStep(&ctx, req, &reply);
      if (st.ok()) {
        r_.step_round_trip_ms.push_back(clock_.NowMs() - sent_ms);
        r_.step_server_ms.push_back(reply.server_ms());
      }
      Status ok = FromGrpc(st, "QueryStep");
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
        if (ok.ok() && !held.count(TensorName(r_.costs, t))) ok = Status::Invalid("QueryStep: the server left out a wanted tensor");
      }
      if (!ok.ok()) {  // go on locally, now and for the rest of the run
        r_.server_lost = true;
        r_.server_error = ok.message();
        return LocalQuery(q);
      }
      q.server_steps++;
      q.server_layers += static_cast<int>(seg.layers.size());
    }
    for (const auto& name : model_.outputs) r_.last_outputs[name] = held.at(name);
    q.end_ms = clock_.NowMs() - start_ms_;
    return q;
  }

  Result<ClientQuery> LocalQuery(ClientQuery q) {
    q.fell_back = true;
    q.server_layers = 0;
    const QuerySchedule& s = schedules_[0];
    TensorMap held = o_.inputs;
    IONN_RETURN_IF_ERROR(RunLocal(0, 0, s.segments[0], model_.outputs, &held));
    for (const auto& name : model_.outputs) r_.last_outputs[name] = held.at(name);
    q.end_ms = clock_.NowMs() - start_ms_;
    return q;
  }

  const Graph& model_;
  const ClientOptions& o_;
  std::function<void(const ClientProgress&)> progress_;
  QueryOutputCallback on_output_;
  Clock& clock_;
  std::unique_ptr<v1::Offload::Stub> stub_, upload_stub_;  // calls and queries; the upload
  std::unique_ptr<Engine> engine_;
  std::vector<QuerySchedule> schedules_;  // by acknowledged partitions
  std::map<std::pair<int, size_t>, std::shared_ptr<const PreparedRun>> prepared_;
  size_t chunk_bytes_ = 1 << 20;
  std::thread uploader_;
  bool session_open_ = false;
  size_t first_upload_ = 0;  // the plan's first partition sent (1: partition 0 is the held layers)
  double start_ms_ = 0;
  ClientResult r_;

  std::mutex mu_;  // guards what follows, shared with the upload thread
  std::condition_variable cv_;
  int acked_ = 0;
  bool upload_over_ = false, stop_ = false;
  grpc::ClientContext* upload_ctx_ = nullptr;
  std::string upload_error_;
  int64_t bytes_total_ = 0, bytes_acked_ = 0;
  int queries_reported_ = 0, last_server_layers_ = 0;
  double last_latency_ = 0;
};

}  // namespace

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
  Run run(model, options, progress, on_output);
  return run.Go();
}

}  // namespace ionn
