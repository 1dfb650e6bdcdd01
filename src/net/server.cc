#include "ionn/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/rand.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "ionn.grpc.pb.h"
#include "ionn/engine.h"
#include "layer_store.h"
#include "ionn/weight_codec.h"
#include "partial_uploads.h"
#include "upload_files.h"
#include "wire.h"

namespace ionn {

namespace {

grpc::Status ToGrpc(const Status& s) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (s.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kInvalidArgument: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case StatusCode::kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case StatusCode::kUnsupported: code = grpc::StatusCode::UNIMPLEMENTED; break;
    case StatusCode::kIoError: code = grpc::StatusCode::INTERNAL; break;
    case StatusCode::kInternal: code = grpc::StatusCode::INTERNAL; break;
    case StatusCode::kUnavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    case StatusCode::kDeadlineExceeded: code = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case StatusCode::kCancelled: code = grpc::StatusCode::CANCELLED; break;
    case StatusCode::kResourceExhausted: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
  }
  return grpc::Status(code, s.message());
}

grpc::Status Precondition(const std::string& m) { return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, m); }

// One layer of a partition being uploaded: its bytes go at `start` of the
// partition's; the first `skip` of them are a proven prefix of a cut upload
// (`prefix`), not sent again.
struct UploadPart {
  int layer = 0;
  uint64_t start = 0, size = 0, skip = 0;
  std::shared_ptr<const std::string> prefix;
};

// One client's model: its architecture, the engine growing on the server,
// and the tensors its queries keep between their server segments.
struct Session {
  ~Session() {
    {
      std::lock_guard<std::mutex> lock(mu);
      prepared.clear();
      queries.clear();
    }
    challenged.clear();  // their kernels too
    engine.reset();
    // Its memory counts until the last call using it has ended (an upload
    // in flight holds the engine and its bytes past CloseSession).
    if (counted_model_bytes) *counted_model_bytes -= model_bytes;
    if (counted_memory_bytes) *counted_memory_bytes -= memory_bytes;
    if (store) store->Trim();  // its kernels may be unused now: keep the store within its budget
  }

  std::string id;
  std::string peer;  // the client's address, as gRPC names it, without the port
  Graph arch;
  std::vector<std::string> hashes;  // per layer, as declared at OpenSession
  // Per layer, the layer store's key: the structure the server computed
  // itself (kind, attributes, shapes) and the declared content hash, which
  // uploaded bytes are checked against. A declared hash alone never names
  // a kernel of another structure.
  std::vector<std::string> keys;
  std::shared_ptr<net::LayerStore> store;
  std::unique_ptr<Engine> engine;
  std::vector<std::vector<int>> fusions;  // the engine's fusion groups
  std::vector<int> fusion_of;             // layer -> its group, or -1
  uint64_t model_bytes = 0;
  // What the session may make the server hold (ServerOptions::max_memory_bytes):
  // its weights and the tensors of two queries.
  uint64_t memory_bytes = 0;
  uint64_t activation_bytes = 0;  // every tensor of one query
  // The server's totals this session is counted in (set once it is open).
  std::atomic<uint64_t>* counted_model_bytes = nullptr;
  std::atomic<uint64_t>* counted_memory_bytes = nullptr;

  std::mutex mu;  // guards what follows
  double last_used_ms = 0;
  uint32_t next_partition = 0;
  bool uploading = false;
  bool stepping = false;  // a query step runs (one at a time: the memory count holds one running query)
  // Layers with weights the store holds, until ProveHeld (once per session).
  struct Challenge {
    net::LayerStore::Held held;
    std::vector<uint64_t> blocks;  // which blocks of its weight bytes the client must hash
  };
  std::map<int, Challenge> challenged;
  // Layers of which the server keeps the first bytes of a cut upload
  // (PartialUploads), until ProveHeld; then those proven, which this
  // session's upload of the layer resumes after.
  struct PrefixChallenge {
    net::PartialUploads::Prefix prefix;
    std::vector<uint64_t> blocks;
  };
  std::map<int, PrefixChallenge> prefix_challenged;
  std::map<int, std::shared_ptr<const std::string>> resumable;
  bool proved = false;
  std::vector<uint8_t> uploaded;  // layers whose partition was accepted (progressive: its high half)
  std::map<uint64_t, TensorMap> queries;  // query id -> tensors kept on the server
  // Prepared runs by layers and wanted, with whether one of their layers
  // was approximate, valid while `generation` (bumped when a layer gets its
  // exact weights in place of approximate ones) is theirs.
  struct Prepared {
    std::shared_ptr<const PreparedRun> run;
    bool approximate = false;
    uint64_t generation = 0;
  };
  std::map<std::string, Prepared> prepared;
  uint64_t generation = 0;
  // How the weights travel (OpenSessionRequest::upload_encoding).
  UploadEncoding encoding = UploadEncoding::kExact;
  std::vector<uint8_t> approximate;        // per layer: runs without its exact weights
  std::map<int, std::string> high_halves;  // progressive: a layer's high half as uploaded, until its low half
};

// Clears a session's uploading flag when the call that set it ends.
struct UploadingDone {
  Session* s;
  ~UploadingDone() {
    std::lock_guard<std::mutex> lock(s->mu);
    s->uploading = false;
  }
};

// The server's counters and gauges as Prometheus reads them: a snapshot
// of stats() at every scrape.
class StatsMetrics final : public prometheus::Collectable {
 public:
  explicit StatsMetrics(std::function<ServerStats()> stats) : stats_(std::move(stats)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    const ServerStats st = stats_();
    std::vector<prometheus::MetricFamily> out;
    auto add = [&out](const char* name, const char* help, prometheus::MetricType type, double value) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      prometheus::ClientMetric m;
      (type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value) = value;
      f.metric.push_back(m);
      out.push_back(std::move(f));
    };
    using prometheus::MetricType;
    add("ionn_sessions", "Open sessions", MetricType::Gauge, st.sessions);
    add("ionn_model_bytes", "Declared weight bytes of the open sessions' models", MetricType::Gauge, double(st.model_bytes));
    add("ionn_uploaded_bytes_total", "Weight bytes received in uploads", MetricType::Counter, double(st.bytes_uploaded));
    add("ionn_held_layers_total", "Layers sessions got from the layer store instead of an upload", MetricType::Counter,
        double(st.held_layers));
    add("ionn_held_bytes_total", "Weight bytes of those layers (uploads saved)", MetricType::Counter, double(st.held_bytes));
    add("ionn_query_steps_total", "Query steps run", MetricType::Counter, double(st.query_steps));
    add("ionn_failed_calls_total", "Calls answered with an error", MetricType::Counter, double(st.failed_calls));
    add("ionn_sessions_evicted_total", "Idle sessions closed to make room for a new one (--when-full evict-idle)",
        MetricType::Counter, double(st.sessions_evicted));
    add("ionn_busy_refusals_total", "Calls refused because too many were in flight (retry advised)",
        MetricType::Counter, double(st.busy_refusals));
    add("ionn_calls_cancelled_total", "Calls the server cancelled: stalled, or running too long", MetricType::Counter,
        double(st.calls_cancelled));
    add("ionn_calls_in_flight", "Calls admitted and not yet ended", MetricType::Gauge, double(st.calls_in_flight));
    add("ionn_partial_bytes", "First bytes of cut uploads kept for the clients that resume them", MetricType::Gauge,
        double(st.partial_bytes));
    add("ionn_resumed_bytes_total", "Weight bytes uploads did not send again, resuming after a kept prefix",
        MetricType::Counter, double(st.resumed_bytes));
    add("ionn_store_entries", "Kernels in the layer store", MetricType::Gauge, double(st.store_entries));
    add("ionn_store_bytes", "Weight bytes of the layer store's kernels", MetricType::Gauge, double(st.store_bytes));
    add("ionn_store_cached_bytes", "Of which no open session uses", MetricType::Gauge, double(st.store_cached_bytes));
    add("ionn_store_evictions_total", "Kernels evicted from the layer store", MetricType::Counter,
        double(st.store_evictions));
    return out;
  }

 private:
  std::function<ServerStats()> stats_;
};

// The client's address as gRPC names it, without the port: what the
// per-address limits count.
std::string PeerAddress(const grpc::ServerContext& ctx) {
  const std::string peer = ctx.peer();
  return peer.substr(0, peer.rfind(':'));
}

// Why gRPC could not listen on `listen` (host:port, [v6]:port): a bind of
// our own says it ("Address already in use", "Cannot assign requested
// address"), or "" when it binds (gRPC failed for another reason).
std::string ListenProblem(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return "not host:port";
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int e = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); e != 0) {
    return gai_strerror(e);
  }
  std::string problem;
  for (addrinfo* a = found; a; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as gRPC: a port in TIME_WAIT is free
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
      problem = std::strerror(errno);
      if (errno == EADDRINUSE) problem += " (another server listens there)";
    } else {
      problem.clear();
    }
    close(fd);
    if (problem.empty()) break;
  }
  freeaddrinfo(found);
  return problem;
}

// An encrypted key is refused rather than prompting for its passphrase.
int NoPassphrase(char*, int, int, void*) { return 0; }

// The certificate chain and key parse as PEM and belong together (gRPC
// would only fail to start, saying nothing of why).
Status CheckTlsPair(const std::string& cert_pem, const std::string& key_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())),
                                                     BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())),
                                                    BIO_free);
  if (!cert_bio || !key_bio) return Status::Internal("out of memory reading the TLS files");
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr),
                                                   X509_free);
  if (!cert) {
    ERR_clear_error();
    return Status::Invalid("the TLS certificate is not a PEM certificate");
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr), EVP_PKEY_free);
  if (!key) {
    ERR_clear_error();
    return Status::Invalid("the TLS key is not an unencrypted PEM private key");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Status::Invalid("the TLS key does not belong to the certificate");
  }
  return Status::Ok();
}

}  // namespace

struct OffloadServer::Impl final : public v1::Offload::Service {
  ServerOptions options;
  net::WireLimits limits;
  Clock* clock = nullptr;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  // What open sessions, and closed ones still used by a call in flight,
  // count (added under mu at OpenSession, taken off by ~Session). Declared
  // before `sessions`, which ~Session outlives.
  std::atomic<uint64_t> model_bytes{0}, memory_bytes{0};
  std::mutex mu;  // guards sessions
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions;
  std::atomic<uint64_t> sessions_evicted{0};
  std::atomic<uint64_t> bytes_uploaded{0}, query_steps{0}, failed_calls{0}, held_layers{0}, held_bytes{0};
  std::shared_ptr<net::LayerStore> store;  // sessions hold it too: they trim it when they end
  std::unique_ptr<net::PartialUploads> partials;
  std::unique_ptr<net::UploadFiles> files;  // ServerOptions::upload_dir; null without one
  std::atomic<uint64_t> resumed_bytes{0};
  std::mutex cuts_mu;  // guards cuts
  std::unordered_map<std::string, std::deque<double>> cuts;  // per client address, when its uploads were cut

  // Counts a cut upload of `peer`, or (count false) whether `peer` may
  // upload: fewer than max_cut_uploads_per_peer cuts within session_idle_s.
  bool CutUploads(const std::string& peer, bool count) {
    const double now = clock->NowMs();
    std::lock_guard<std::mutex> lock(cuts_mu);
    for (auto it = cuts.begin(); it != cuts.end();) {
      while (!it->second.empty() && now - it->second.front() > options.session_idle_s * 1000) it->second.pop_front();
      it = it->second.empty() ? cuts.erase(it) : std::next(it);
    }
    if (count) cuts[peer].push_back(now);
    auto it = cuts.find(peer);
    return it == cuts.end() || static_cast<int>(it->second.size()) < options.max_cut_uploads_per_peer;
  }
  std::atomic<bool> stopped{false};
  std::mutex stop_mu;
  // The metrics endpoint (ServerOptions::metrics_listen), when asked for.
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<prometheus::Registry> registry;
  std::shared_ptr<StatsMetrics> stats_metrics;
  prometheus::Histogram* step_seconds = nullptr;  // a query step's execution on the server

  void Log(const std::string& line) {
    if (options.log) options.log(line);
  }

  grpc::Status Fail(grpc::Status s) {
    ++failed_calls;
    return s;
  }

  // Calls in flight: at most `workers` at once (and `max_calls_per_peer`
  // of one address); beyond, a call is refused at once with UNAVAILABLE
  // and retry advice (trailing metadata net::kRetryAfterMetadata) rather
  // than queued. The watchdog cancels calls that stall (no progress within
  // call_idle_s: a slow or stopped sender) or run past call_max_s.
  struct Call {
    grpc::ServerContext* ctx = nullptr;
    std::string peer;
    double started_ms = 0, progress_ms = 0;
    bool upload = false;  // bound by the idle time and a minimum rate, not call_max_s
    uint64_t bytes = 0;   // received, for an upload
    bool cancelled = false;
  };
  std::mutex calls_mu;  // guards what follows
  std::list<Call> calls;
  std::unordered_map<std::string, int> calls_per_peer;
  bool watchdog_stop = false;
  std::condition_variable watchdog_cv;
  std::thread watchdog;
  std::atomic<uint64_t> busy_refusals{0}, calls_cancelled{0};

  class Slot {
   public:
    Slot(Impl* impl, grpc::ServerContext* ctx, bool upload = false) : impl_(impl) {
      const std::string peer = PeerAddress(*ctx);
      std::lock_guard<std::mutex> lock(impl->calls_mu);
      const int of_peer = impl->calls_per_peer.count(peer) ? impl->calls_per_peer[peer] : 0;
      if (static_cast<int>(impl->calls.size()) >= impl->options.workers) {
        refusal_ = "server busy: " + std::to_string(impl->calls.size()) + " calls in flight (its --workers)";
      } else if (of_peer >= impl->options.max_calls_per_peer) {
        refusal_ = "server busy: " + std::to_string(of_peer) + " calls in flight from " + peer.substr(0, 64) +
                   " (its --max-calls-per-peer)";
      }
      if (!refusal_.empty()) {
        ++impl->busy_refusals;
        ctx->AddTrailingMetadata(net::kRetryAfterMetadata, std::to_string(kRetryAfterMs));
        return;
      }
      const double now = impl->clock->NowMs();
      it_ = impl->calls.insert(impl->calls.end(), Call{ctx, peer, now, now, upload, 0, false});
      ++impl->calls_per_peer[peer];
      admitted_ = true;
    }
    ~Slot() {
      if (!admitted_) return;
      std::lock_guard<std::mutex> lock(impl_->calls_mu);
      if (--impl_->calls_per_peer[it_->peer] == 0) impl_->calls_per_peer.erase(it_->peer);
      impl_->calls.erase(it_);
    }
    bool admitted() const { return admitted_; }
    grpc::Status refusal() const {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, refusal_ + "; retry in " + std::to_string(kRetryAfterMs) + " ms");
    }
    // The call advanced (a chunk of `bytes` arrived): the idle clock starts again.
    void Progress(uint64_t bytes = 0) {
      std::lock_guard<std::mutex> lock(impl_->calls_mu);
      it_->progress_ms = impl_->clock->NowMs();
      it_->bytes += bytes;
    }
    // The upload has all its bytes: from here (checks, builds) only
    // call_max_s bounds it.
    void DoneReceiving() {
      std::lock_guard<std::mutex> lock(impl_->calls_mu);
      it_->upload = false;
      it_->started_ms = impl_->clock->NowMs();
    }
    // Whether the watchdog cancelled the call.
    bool cancelled() const {
      std::lock_guard<std::mutex> lock(impl_->calls_mu);
      return it_->cancelled;
    }

   private:
    static constexpr int kRetryAfterMs = 200;
    Impl* impl_;
    std::list<Call>::iterator it_;
    bool admitted_ = false;
    std::string refusal_;
  };

  void Watch() {
    std::unique_lock<std::mutex> lock(calls_mu);
    while (!watchdog_cv.wait_for(lock, std::chrono::milliseconds(100), [this] { return watchdog_stop; })) {
      const double now = clock->NowMs();
      std::vector<std::string> lines;
      for (Call& c : calls) {
        if (c.cancelled) continue;
        std::string why;
        const double age_s = (now - c.started_ms) / 1000;
        if (c.upload && now - c.progress_ms > options.call_idle_s * 1000) {  // a unary call's request is in whole
          why = "no progress for " + std::to_string(options.call_idle_s) + " s";
        } else if (!c.upload && age_s > options.call_max_s) {
          why = "running for more than " + std::to_string(options.call_max_s) + " s";
        } else if (c.upload && age_s > options.call_idle_s && c.bytes < options.upload_min_bytes_per_s * age_s) {
          why = "uploading " + std::to_string(static_cast<uint64_t>(c.bytes / age_s)) + " bytes/s, under " +
                std::to_string(static_cast<uint64_t>(options.upload_min_bytes_per_s));
        } else {
          continue;
        }
        c.cancelled = true;
        ++calls_cancelled;
        c.ctx->TryCancel();
        lines.push_back("call from " + c.peer + " cancelled: " + why);
      }
      lock.unlock();  // the log may block (stderr): not with calls waiting for calls_mu
      for (const auto& line : lines) Log(line);
      lock.lock();
    }
  }

  // With a shared secret set, every call must carry it (metadata
  // net::kSecretMetadata), compared in constant time.
  bool Authorized(const grpc::ServerContext* ctx) const {
    if (options.secret.empty()) return true;
    const auto& md = ctx->client_metadata();
    const auto it = md.find(net::kSecretMetadata);
    return it != md.end() && it->second.size() == options.secret.size() &&
           CRYPTO_memcmp(it->second.data(), options.secret.data(), options.secret.size()) == 0;
  }

  // A call without the secret, or with another: each says which.
  static grpc::Status Unauthenticated(const grpc::ServerContext* ctx) {
    if (ctx->client_metadata().count(net::kSecretMetadata) == 0) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "this server needs its shared secret (ionn client --secret-file FILE)");
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the shared secret is not this server's (check the --secret-file of client and server)");
  }

  // The session named by a call, or NOT_FOUND; expires idle sessions first.
  Result<std::shared_ptr<Session>> Find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    ExpireIdleLocked();
    auto it = sessions.find(id);
    if (it == sessions.end()) {
      return Status::NotFound("no session '" + id.substr(0, 64) + "' (closed, expired or never opened)");
    }
    std::lock_guard<std::mutex> slock(it->second->mu);
    it->second->last_used_ms = clock->NowMs();
    return it->second;
  }

  // Whether session `s` fits in the server's memory limit beside the open
  // sessions and the layer store's cached kernels (its weight limit is
  // checked apart).
  bool FitsLocked(const Session& s) {
    if (options.max_memory_bytes == 0) return true;
    partials->Expire(clock->NowMs());
    return memory_bytes + s.memory_bytes + store->stats().cached_bytes + partials->bytes() <= options.max_memory_bytes;
  }

  // Makes room for `s` by evicting cached kernels no session uses (least
  // recently used first), then, by policy, idle sessions. Whether it fits.
  bool MakeRoomLocked(const Session& s) {
    if (FitsLocked(s)) return true;
    const uint64_t held = memory_bytes + s.memory_bytes;
    if (held <= options.max_memory_bytes) store->TrimCachedTo(options.max_memory_bytes - held);
    const uint64_t cached = held + store->stats().cached_bytes;
    if (!FitsLocked(s) && cached <= options.max_memory_bytes) partials->TrimTo(options.max_memory_bytes - cached);
    if (!FitsLocked(s) && options.when_full == ServerOptions::WhenFull::kEvictIdle) EvictIdleLocked(s);
    return FitsLocked(s);
  }

  // Closes the least recently used idle sessions (no upload, unused for
  // evict_idle_s) until `s` fits, but only if closing every idle one would
  // make it fit: a session that cannot fit closes none.
  void EvictIdleLocked(const Session& s) {
    const double now = clock->NowMs();
    std::vector<std::pair<double, std::string>> idle;  // last used, id
    uint64_t freed = 0;
    for (const auto& [id, other] : sessions) {
      std::lock_guard<std::mutex> slock(other->mu);
      if (other->uploading || other->stepping || now - other->last_used_ms < options.evict_idle_s * 1000) continue;
      idle.emplace_back(other->last_used_ms, id);
      freed += other->memory_bytes;
    }
    if (memory_bytes - std::min<uint64_t>(freed, memory_bytes) + s.memory_bytes > options.max_memory_bytes) return;
    std::sort(idle.begin(), idle.end());
    for (const auto& [last_used, id] : idle) {
      if (FitsLocked(s)) break;
      const uint64_t after = memory_bytes - std::min<uint64_t>(memory_bytes, sessions.at(id)->memory_bytes) + s.memory_bytes;
      if (after <= options.max_memory_bytes) store->TrimCachedTo(options.max_memory_bytes - after);
      auto it = sessions.find(id);
      Log("session " + id + " evicted after " + std::to_string(static_cast<int>((now - last_used) / 1000)) +
          " s idle: the server's memory is full");
      ++sessions_evicted;
      it->second.reset();  // ~Session takes its bytes off and trims the store (its lock nests inside ours)
      sessions.erase(it);
    }
  }

  void ExpireIdleLocked() {
    const double now = clock->NowMs();
    for (auto it = sessions.begin(); it != sessions.end();) {
      std::unique_lock<std::mutex> slock(it->second->mu);
      const bool idle = !it->second->uploading && now - it->second->last_used_ms > options.session_idle_s * 1000;
      slock.unlock();
      if (idle) {
        Log("session " + it->first + " expired after " + std::to_string(options.session_idle_s) + " s idle");
        it = sessions.erase(it);  // ~Session trims the store (its lock nests inside ours, never the other way)
      } else {
        ++it;
      }
    }
  }

  // Up to kProofBlocks distinct block indices below `blocks`, at random
  // (all of them when there are no more); empty without randomness.
  static std::vector<uint64_t> RandomBlocks(uint64_t blocks) {
    std::vector<uint64_t> picked;
    if (blocks <= net::LayerStore::kProofBlocks) {
      for (uint64_t b = 0; b < blocks; ++b) picked.push_back(b);
      return picked;
    }
    while (picked.size() < net::LayerStore::kProofBlocks) {
      uint64_t r = 0;
      if (RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) != 1) return {};
      r %= blocks;
      if (std::find(picked.begin(), picked.end(), r) == picked.end()) picked.push_back(r);
    }
    return picked;
  }

  // The layers of a new session the store holds: those without weights
  // count as uploaded at once (their structure is all there is to them);
  // those with weights wait for ProveHeld, each with a block of its weight
  // bytes to prove, picked at random.
  void FindHeld(Session& s) {
    for (size_t k = 0; k < s.arch.layers.size(); ++k) {
      net::LayerStore::Held held = store->Find(s.keys[k]);
      if (!held.kernel) continue;
      const uint64_t bytes = net::LayerUploadBytes(s.arch.layers[k]);
      if (bytes == 0) {
        const int layer = static_cast<int>(k);
        if (!s.engine->is_built(layer) && !s.engine->AdoptLayer(layer, std::move(held.kernel)).ok()) continue;
        s.uploaded[k] = 1;
        continue;
      }
      if (!held.blocks) continue;
      auto blocks = RandomBlocks(net::LayerStore::Blocks(bytes));
      if (!blocks.empty()) s.challenged[static_cast<int>(k)] = {std::move(held), std::move(blocks)};
    }
    const double now = clock->NowMs();
    for (size_t k = 0; k < s.arch.layers.size() && s.encoding == UploadEncoding::kExact; ++k) {
      if (s.uploaded[k] || s.challenged.count(static_cast<int>(k))) continue;
      net::PartialUploads::Prefix prefix = partials->Find(s.keys[k], now);
      if (!prefix.bytes) continue;
      auto blocks = RandomBlocks(net::LayerStore::Blocks(prefix.bytes->size()));
      if (!blocks.empty()) s.prefix_challenged[static_cast<int>(k)] = {std::move(prefix), std::move(blocks)};
    }
    for (size_t g = 0; g < s.fusions.size(); ++g) AdoptFused(s, static_cast<int>(g));
  }

  static std::string FusionKey(const Session& s, int g) {
    std::vector<std::string> keys;
    for (int m : s.fusions[g]) keys.push_back(s.keys[m]);
    return net::LayerStore::FusionKey(keys);
  }

  // A fusion group whose members are all built but some adopted: its fused
  // kernel can only come from the store.
  void AdoptFused(Session& s, int g) {
    for (int m : s.fusions[g]) {
      if (!s.engine->is_built(m)) return;
    }
    if (s.engine->FusedKernel(g)) return;
    if (auto fused = store->Find(FusionKey(s, g)).kernel) (void)s.engine->AdoptFused(g, std::move(fused));
  }

  // What the built kernel of layer k holds.
  static uint64_t KernelBytes(const Session& s, int k) {
    return net::LayerUploadBytes(s.arch.layers[k]) + s.engine->KernelExtraBytes(k);
  }

  // Puts the session's newly built layers (and the fused kernels they
  // complete) into the store, for the sessions that come after.
  // `blocks`: the block hashes of each layer's uploaded weight bytes.
  void StoreBuilt(Session& s, const std::vector<int>& layers,
                  const std::map<int, std::shared_ptr<const std::string>>& blocks = {}) {
    std::vector<int> groups;
    for (int k : layers) {
      auto b = blocks.find(k);
      store->Put(s.keys[k], s.engine->LayerKernel(k), KernelBytes(s, k), b == blocks.end() ? nullptr : b->second);
      if (s.fusion_of[k] >= 0) groups.push_back(s.fusion_of[k]);
    }
    for (int g : groups) {
      AdoptFused(s, g);
      auto fused = s.engine->FusedKernel(g);
      if (!fused) continue;
      uint64_t bytes = 0;  // the fused kernel keeps its own (folded) copy of the members' weights
      for (int m : s.fusions[g]) bytes += KernelBytes(s, m);
      store->Put(FusionKey(s, g), std::move(fused), bytes);
    }
  }

  grpc::Status Hello(grpc::ServerContext* ctx, const v1::HelloRequest* req, v1::HelloReply* reply) override {
    if (!Authorized(ctx)) return Fail(Unauthenticated(ctx));
    Slot slot(this, ctx);
    if (!slot.admitted()) return Fail(slot.refusal());
    if (req->protocol_version() != net::kProtocolVersion) {
      return Fail(Precondition("protocol version " + std::to_string(req->protocol_version()) + " is not supported (server speaks " +
                               std::to_string(net::kProtocolVersion) + ")"));
    }
    reply->set_protocol_version(net::kProtocolVersion);
    reply->set_server_name(options.name);
    reply->set_server_version("ionn 0.1.0");
    auto* l = reply->mutable_limits();
    l->set_max_message_bytes(limits.max_message_bytes);
    l->set_max_chunk_bytes(limits.max_chunk_bytes);
    l->set_max_model_bytes(limits.max_model_bytes);
    l->set_max_layers(limits.max_layers);
    l->set_max_name_bytes(limits.max_name_bytes);
    net::RegressionToProto(options.regression, reply);
    for (UploadEncoding e : UploadEncodings()) reply->add_upload_encodings(UploadEncodingName(e));
    return grpc::Status::OK;
  }

  grpc::Status OpenSession(grpc::ServerContext* ctx, const v1::OpenSessionRequest* req,
                           v1::OpenSessionReply* reply) override {
    if (!Authorized(ctx)) return Fail(Unauthenticated(ctx));
    Slot slot(this, ctx);
    if (!slot.admitted()) return Fail(slot.refusal());
    auto arch = net::ArchitectureFromProto(req->model(), limits);
    if (!arch.ok()) return Fail(ToGrpc(arch.status().WithContext("OpenSession: architecture")));
    uint64_t activation = 0;  // bytes of every tensor one query makes (shapes were checked: no overflow)
    for (const auto& in : arch->inputs) activation += static_cast<uint64_t>(ElementCount(in.shape)) * 4;
    for (const auto& l : arch->layers) {
      const int64_t n = ElementCount(l.output_shape);
      if (n < 0) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "OpenSession: layer '" + l.name + "' outputs a tensor too large to count"));
      }
      activation += static_cast<uint64_t>(n) * 4;
    }
    if (activation > options.max_activation_bytes) {
      return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "OpenSession: one query of model '" + arch->name + "' makes " + std::to_string(activation) +
                                   " bytes of tensors, over the server's limit of " +
                                   std::to_string(options.max_activation_bytes) + " (--max-activation-bytes)"));
    }
    auto s = std::make_shared<Session>();
    if (!req->upload_encoding().empty()) {
      auto encoding = ParseUploadEncoding(req->upload_encoding());
      if (!encoding.ok()) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "OpenSession: this server does not decode the upload encoding: " +
                                     encoding.status().message()));
      }
      s->encoding = *encoding;
    }
    s->arch = std::move(arch).value();
    s->activation_bytes = activation;
    s->memory_bytes = 2 * activation;
    for (const auto& l : req->model().layers()) s->hashes.push_back(l.content_hash());
    for (size_t k = 0; k < s->arch.layers.size(); ++k) {
      const Layer& l = s->arch.layers[k];
      s->model_bytes += net::LayerUploadBytes(l);
      s->memory_bytes += net::LayerUploadBytes(l);
      const std::string structure = net::LayerContentHash(s->arch, l);  // shapes only: the architecture has no data
      if (l.weights.empty() && structure != s->hashes[k]) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "OpenSession: architecture layer " + std::to_string(k) + " '" + l.name +
                                     "': its content_hash is not the SHA-256 of its kind, attributes and shapes "
                                     "(a layer without weights has nothing else to hash)"));
      }
      s->keys.push_back(net::LayerStore::LayerKey(structure + s->hashes[k]));
    }
    s->store = store;
    s->peer = PeerAddress(*ctx);
    EngineOptions eo;
    eo.threads = options.threads;
    eo.winograd = options.winograd;
    eo.backend = options.backend;
    auto engine = Engine::Create(s->arch, eo);
    if (!engine.ok()) return Fail(ToGrpc(engine.status().WithContext("OpenSession")));
    s->engine = std::move(engine).value();
    s->uploaded.assign(s->arch.layers.size(), 0);
    s->approximate.assign(s->arch.layers.size(), 0);
    // A progressive session keeps each layer's high half until its low half
    // arrives: up to half the weights again.
    if (s->encoding == UploadEncoding::kProgressive) s->memory_bytes += s->model_bytes / 2;
    s->fusions = s->engine->FusionGroups();
    s->fusion_of.assign(s->arch.layers.size(), -1);
    for (size_t g = 0; g < s->fusions.size(); ++g) {
      for (int m : s->fusions[g]) s->fusion_of[m] = static_cast<int>(g);
    }
    // Kernels that hold more than the weights they were built from
    // (Winograd's transformed weights), in the layer's own kernel and again
    // in its fused kernel. The fused kernels' copies of plain weights are
    // not counted here, as before (only once they are cached in the store).
    for (size_t k = 0; k < s->arch.layers.size(); ++k) {
      s->memory_bytes += s->engine->KernelExtraBytes(static_cast<int>(k)) * (s->fusion_of[k] >= 0 ? 2 : 1);
    }
    if (!req->ignore_held()) FindHeld(*s);
    // Layers built without weights (pooling, ReLU, ...) go to the store as
    // uploaded ones do once built; listed before the session is published.
    std::vector<int> built_now;
    for (const auto& [k, c] : s->challenged) {
      auto* challenge = reply->add_challenges();
      challenge->set_layer(static_cast<uint32_t>(k));
      for (uint64_t b : c.blocks) challenge->add_blocks(b);
    }
    for (const auto& [k, c] : s->prefix_challenged) {
      auto* challenge = reply->add_prefixes();
      challenge->set_layer(static_cast<uint32_t>(k));
      challenge->set_bytes(c.prefix.bytes->size());
      for (uint64_t b : c.blocks) challenge->add_blocks(b);
    }
    for (size_t k = 0; k < s->arch.layers.size(); ++k) {
      if (s->uploaded[k]) reply->add_held_layers(static_cast<uint32_t>(k));
      if (s->engine->is_built(static_cast<int>(k)) && !s->uploaded[k]) built_now.push_back(static_cast<int>(k));
    }
    s->last_used_ms = clock->NowMs();
    {
      std::lock_guard<std::mutex> lock(mu);
      ExpireIdleLocked();
      if (static_cast<int>(sessions.size()) >= options.max_sessions) {
        return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "the server holds its maximum of " + std::to_string(options.max_sessions) +
                                     " sessions; retry later"));
      }
      int of_peer = 0;
      for (const auto& [id, other] : sessions) of_peer += other->peer == s->peer;
      if (of_peer >= options.max_sessions_per_peer) {
        return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "the client address " + s->peer + " holds the server's maximum of " +
                                     std::to_string(options.max_sessions_per_peer) +
                                     " sessions per address; close one or retry later"));
      }
      // Refusals first; only then is room made (cached kernels, idle sessions).
      if (s->model_bytes > options.max_model_bytes) {
        return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "the model's " + std::to_string(s->model_bytes) +
                                     " weight bytes are more than the server's limit of " +
                                     std::to_string(options.max_model_bytes) + " on its own"));
      }
      if (options.max_memory_bytes > 0 && s->memory_bytes > options.max_memory_bytes) {
        return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "the model needs " + std::to_string(s->memory_bytes) +
                                     " bytes (weights and two queries' tensors), more than the server's memory limit of " +
                                     std::to_string(options.max_memory_bytes) + " on its own"));
      }
      if (model_bytes + s->model_bytes > options.max_model_bytes) {
        return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "the model's " + std::to_string(s->model_bytes) + " weight bytes would pass the server's limit of " +
                                     std::to_string(options.max_model_bytes) + " (" + std::to_string(model_bytes) +
                                     " held); retry later"));
      }
      if (!MakeRoomLocked(*s)) {
        return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "the model needs " + std::to_string(s->memory_bytes) +
                                     " bytes (weights and two queries' tensors), which would pass the server's memory "
                                     "limit of " + std::to_string(options.max_memory_bytes) + " (" +
                                     std::to_string(memory_bytes + store->stats().cached_bytes) +
                                     " held by sessions and the layer store); retry later"));
      }
      // The session id is the client's token for its session on every call:
      // 128 random bits, not guessable from the ids of other sessions.
      unsigned char token[16];
      if (RAND_bytes(token, sizeof token) != 1) {
        return Fail(grpc::Status(grpc::StatusCode::UNAVAILABLE, "no randomness for a session token; retry later"));
      }
      s->id.clear();
      for (unsigned char b : token) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", b);
        s->id += hex;
      }
      model_bytes += s->model_bytes;
      memory_bytes += s->memory_bytes;
      s->counted_model_bytes = &model_bytes;
      s->counted_memory_bytes = &memory_bytes;
      sessions[s->id] = s;
    }
    reply->set_session_id(s->id);
    held_layers += static_cast<uint64_t>(reply->held_layers_size());
    StoreBuilt(*s, built_now);
    Log("session " + s->id + " opened by " + ctx->peer() + ": model '" + s->arch.name + "', " +
        std::to_string(s->arch.layers.size()) + " layers, " + std::to_string(s->model_bytes) + " weight bytes, " +
        std::to_string(reply->held_layers_size()) + " layers without weights held, " +
        std::to_string(reply->challenges_size()) + " with weights held if proven" +
        (reply->prefixes_size() > 0 ? ", " + std::to_string(reply->prefixes_size()) + " with a cut upload to resume" : "") +
        (req->ignore_held() ? " (held layers ignored on request)" : ""));
    return grpc::Status::OK;
  }

  grpc::Status ProveHeld(grpc::ServerContext* ctx, const v1::ProveHeldRequest* req, v1::ProveHeldReply* reply) override {
    if (!Authorized(ctx)) return Fail(Unauthenticated(ctx));
    Slot slot(this, ctx);
    if (!slot.admitted()) return Fail(slot.refusal());
    auto found = Find(req->session_id());
    if (!found.ok()) return Fail(ToGrpc(found.status()));
    std::shared_ptr<Session> s = *found;
    const std::string where = "ProveHeld: session " + s->id;
    std::map<int, Session::Challenge> challenged;
    std::map<int, Session::PrefixChallenge> prefix_challenged;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->proved || s->next_partition > 0 || s->uploading) {
        return Fail(Precondition(where + ": proofs come once, before the first upload"));
      }
      s->proved = true;
      s->uploading = true;  // no upload while the proven layers are built
      challenged = std::move(s->challenged);
      s->challenged.clear();
      prefix_challenged = std::move(s->prefix_challenged);
      s->prefix_challenged.clear();
    }
    UploadingDone done{s.get()};
    const int n = static_cast<int>(s->arch.layers.size());
    for (int list = 0; list < 2; ++list) {
      const auto& proofs = list == 0 ? req->proofs() : req->prefix_proofs();
      const std::string what = list == 0 ? "" : "'s prefix";
      std::vector<uint8_t> seen(n, 0);
      for (const auto& proof : proofs) {
        const uint32_t k = proof.layer();
        const bool asked = list == 0 ? challenged.count(static_cast<int>(k)) > 0
                                     : prefix_challenged.count(static_cast<int>(k)) > 0;
        if (k >= static_cast<uint32_t>(n) || !asked) {
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   where + ": layer " + std::to_string(k) + what + " was not challenged"));
        }
        if (seen[k]++) {
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   where + ": layer " + std::to_string(k) + what + " is proven twice"));
        }
      }
    }
    uint64_t prefix_bytes = 0;
    for (const auto& proof : req->prefix_proofs()) {
      const int k = static_cast<int>(proof.layer());
      Session::PrefixChallenge& c = prefix_challenged.at(k);
      const bool proven =
          net::LayerStore::CheckBlocks(*c.prefix.hashes, c.prefix.bytes->size(), c.blocks, proof.block_hashes());
      partials->Proved(s->keys[k], proven, clock->NowMs());
      if (!proven) continue;  // sent from its first byte
      {
        std::lock_guard<std::mutex> lock(s->mu);
        s->resumable[k] = c.prefix.bytes;
      }
      auto* granted = reply->add_prefixes();
      granted->set_layer(static_cast<uint32_t>(k));
      granted->set_bytes(c.prefix.bytes->size());
      prefix_bytes += c.prefix.bytes->size();
    }
    uint64_t bytes = 0;
    for (const auto& proof : req->proofs()) {
      const int k = static_cast<int>(proof.layer());
      Session::Challenge& c = challenged.at(k);
      const uint64_t weight_bytes = net::LayerUploadBytes(s->arch.layers[k]);
      if (!net::LayerStore::CheckBlocks(*c.held.blocks, weight_bytes, c.blocks, proof.block_hashes())) continue;  // upload it
      if (!s->engine->AdoptLayer(k, std::move(c.held.kernel)).ok()) continue;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        s->uploaded[k] = 1;
      }
      reply->add_held_layers(static_cast<uint32_t>(k));
      bytes += weight_bytes;
    }
    for (size_t g = 0; g < s->fusions.size(); ++g) AdoptFused(*s, static_cast<int>(g));
    held_layers += static_cast<uint64_t>(reply->held_layers_size());
    held_bytes += bytes;
    Log("session " + s->id + ": " + std::to_string(reply->held_layers_size()) + " of " +
        std::to_string(challenged.size()) + " layers with weights proven held (" + std::to_string(bytes) + " bytes)" +
        (prefix_challenged.empty() ? ""
                                   : ", " + std::to_string(reply->prefixes_size()) + " of " +
                                         std::to_string(prefix_challenged.size()) + " cut uploads to resume (" +
                                         std::to_string(prefix_bytes) + " bytes)"));
    return grpc::Status::OK;
  }

  grpc::Status Upload(grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadChunk>* reader,
                      v1::UploadReply* reply) override {
    if (!Authorized(ctx)) return Fail(Unauthenticated(ctx));
    Slot slot(this, ctx, /*upload=*/true);
    if (!slot.admitted()) return Fail(slot.refusal());
    v1::UploadChunk chunk;
    if (!reader->Read(&chunk)) return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Upload: empty stream"));
    auto found = Find(chunk.session_id());
    if (!found.ok()) return Fail(ToGrpc(found.status()));
    std::shared_ptr<Session> s = *found;
    const uint32_t partition = chunk.partition();
    const std::string where = "Upload: session " + s->id + ", partition " + std::to_string(partition);
    const std::string peer = PeerAddress(*ctx);
    if (!CutUploads(peer, /*count=*/false)) {
      return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               where + ": " + std::to_string(options.max_cut_uploads_per_peer) + " uploads from " +
                                   peer.substr(0, 64) + " were cut within " + std::to_string(options.session_idle_s) +
                                   " s (its --max-cut-uploads-per-peer); retry later"));
    }
    std::vector<UploadPart> parts;
    uint64_t expected = 0, skipped = 0;
    const bool exact = s->encoding == UploadEncoding::kExact;  // fixed at OpenSession
    const WeightCodec& codec = CodecFor(s->encoding);
    if (chunk.phase() > 2) {
      return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": phase " + std::to_string(chunk.phase()) +
                                                                       " (0 whole, 1 high half, 2 low half)"));
    }
    const UnitPhase phase = static_cast<UnitPhase>(chunk.phase());
    {
      const std::vector<UnitPhase> phases = EncodingPhases(s->encoding);
      if (std::find(phases.begin(), phases.end(), phase) == phases.end()) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 where + ": the session's upload encoding '" + UploadEncodingName(s->encoding) +
                                     "' has no '" + UnitPhaseName(phase) + "' phase"));
      }
    }
    if (!exact && (chunk.resume_from_size() != 0 || chunk.encoded_bytes_size() != chunk.layers_size())) {
      return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               where + ": a session with upload encoding '" + UploadEncodingName(s->encoding) +
                                   "' declares encoded_bytes, one per layer, and resumes nothing"));
    }
    if (exact && chunk.encoded_bytes_size() != 0) {
      return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": encoded_bytes in an exact session"));
    }
    {
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->uploading) return Fail(Precondition(where + ": another partition of this session is uploading (or ProveHeld runs)"));
      if (partition != s->next_partition) {
        return Fail(Precondition(where + ": partitions arrive in plan order; expected partition " +
                                 std::to_string(s->next_partition)));
      }
      if (chunk.layers_size() == 0) return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": names no layers"));
      if (chunk.resume_from_size() != 0 && chunk.resume_from_size() != chunk.layers_size()) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 where + ": resume_from has " + std::to_string(chunk.resume_from_size()) +
                                     " offsets for " + std::to_string(chunk.layers_size()) + " layers"));
      }
      std::vector<uint8_t> seen(s->arch.layers.size(), 0);
      for (int i = 0; i < chunk.layers_size(); ++i) {
        const uint32_t k = chunk.layers(i);
        if (k >= s->arch.layers.size()) {
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   where + ": layer index " + std::to_string(k) + " does not exist (the model has " +
                                       std::to_string(s->arch.layers.size()) + " layers)"));
        }
        const std::string lname = "layer " + std::to_string(k) + " '" + s->arch.layers[k].name + "'";
        if (phase == UnitPhase::kLow) {
          if (!s->high_halves.count(static_cast<int>(k))) {
            return Fail(Precondition(where + ": " + lname + " has no high half here (or its low half arrived)"));
          }
        } else if (s->uploaded[k]) {
          return Fail(Precondition(where + ": " + lname + " was already uploaded"));
        }
        if (seen[k]) return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": " + lname + " is listed twice"));
        seen[k] = 1;
        uint64_t size = static_cast<uint64_t>(net::LayerUploadBytes(s->arch.layers[k]));
        if (!exact) {
          // Bounded by what the codec can make of the declared layer, before a byte is read.
          const uint64_t most = codec.MaxEncodedBytes(s->arch.layers[k], phase);
          size = chunk.encoded_bytes(i);
          const bool fixed = s->encoding != UploadEncoding::kLossless;
          if (size > most || (fixed && size != most)) {
            return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     where + ": " + lname + " declares " + std::to_string(size) + " encoded bytes; its " +
                                         UploadEncodingName(s->encoding) + " encoding takes " +
                                         (fixed ? "exactly " : "at most ") + std::to_string(most)));
          }
        }
        UploadPart part{static_cast<int>(k), expected, size, chunk.resume_from_size() ? chunk.resume_from(i) : 0,
                        nullptr};
        auto held = s->resumable.find(part.layer);
        const uint64_t proven = held == s->resumable.end() ? 0 : held->second->size();
        if (part.skip > part.size) {
          return Fail(grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                   where + ": " + lname + ": resume offset " + std::to_string(part.skip) +
                                       " is past its " + std::to_string(part.size) + " weight bytes"));
        }
        // Exactly after the proven prefix, or from byte 0 (the client gives
        // the prefix up: a lost ProveHeld reply, a prefix that failed).
        if (part.skip != proven && part.skip != 0) {
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   where + ": " + lname + ": resumes at byte " + std::to_string(part.skip) +
                                       ", but this session holds " +
                                       (proven ? "a proven prefix of " + std::to_string(proven) + " bytes" : "no prefix of it") +
                                       " (resume exactly after what ProveHeld proved, or at 0)"));
        }
        if (part.skip > 0) part.prefix = held->second;
        parts.push_back(std::move(part));
        expected += parts.back().size;
        skipped += parts.back().skip;
      }
      for (const UploadPart& part : parts) {
        if (part.skip == 0) s->resumable.erase(part.layer);
      }
      s->uploading = true;
      s->proved = true;  // a client that uploads without proving gives up its held layers with weights
      s->challenged.clear();
      s->prefix_challenged.clear();
    }
    // The partition's bytes in order: each layer's resumed prefix as the
    // stream reaches the layer, then what arrives of it. The next byte
    // received goes to layer parts[at], its byte `pos`.
    std::string data;
    data.reserve(expected);
    size_t at = 0;
    uint64_t pos = 0, received = 0;
    std::unique_ptr<net::UploadFiles::Writer> file;  // of parts[at], with an upload folder
    const auto enter = [&](size_t i) {
      at = i;
      pos = i < parts.size() ? parts[i].skip : 0;
      if (i < parts.size() && parts[i].skip) data.append(*parts[i].prefix, 0, parts[i].skip);
      file.reset();
      if (files && exact && i < parts.size() && parts[i].size > pos) {
        file = files->Start(s->keys[parts[i].layer], parts[i].size, s->id, data.data() + parts[i].start, pos);
      }
    };
    enter(0);
    const auto skip_full = [&] {
      while (at < parts.size() && pos >= parts[at].size) enter(at + 1);
    };
    skip_full();
    bool first = true;
    do {
      if (!first && (!chunk.session_id().empty() || chunk.partition() != 0 || chunk.layers_size() != 0 ||
                     chunk.resume_from_size() != 0 || chunk.phase() != 0 || chunk.encoded_bytes_size() != 0)) {
        if (file) file->Abandon();
        UploadingDone done{s.get()};
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 where + ": only the first chunk names the session, partition, layers and resume offsets"));
      }
      first = false;
      const std::string& bytes = chunk.data();
      if (bytes.size() > limits.max_chunk_bytes) {
        if (file) file->Abandon();
        UploadingDone done{s.get()};
        return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 where + ": a chunk of " + std::to_string(bytes.size()) + " bytes passes the limit of " +
                                     std::to_string(limits.max_chunk_bytes)));
      }
      if (received + bytes.size() > expected - skipped) {
        if (file) file->Abandon();
        UploadingDone done{s.get()};
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 where + ": more than the " + std::to_string(expected - skipped) +
                                     " weight bytes its layers declare, less the resumed prefixes"));
      }
      for (size_t off = 0; off < bytes.size();) {
        const uint64_t n = std::min<uint64_t>(bytes.size() - off, parts[at].size - pos);
        data.append(bytes, off, n);
        if (file) file->Append(bytes.data() + off, n);
        off += n, pos += n;
        skip_full();
      }
      received += bytes.size();
      bytes_uploaded += bytes.size();
      slot.Progress(bytes.size());
    } while (reader->Read(&chunk));
    slot.DoneReceiving();
    file.reset();
    UploadingDone done{s.get()};
    if (slot.cancelled() || received != expected - skipped) {
      // Cut: what arrived of each layer waits for the session that resumes it.
      CutUploads(peer, /*count=*/true);
      const uint64_t kept = exact ? KeepPrefixes(*s, parts, data, at, pos) : 0;  // prefixes are of exact bytes
      const std::string got = std::to_string(received + skipped) + " of " + std::to_string(expected) + " bytes";
      if (slot.cancelled()) {
        return Fail(grpc::Status(grpc::StatusCode::CANCELLED, where + ": cancelled after " + got +
                                                                  " (stalled, or too long); " + std::to_string(kept) +
                                                                  " bytes newly kept to resume from"));
      }
      return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               where + ": the stream ended after " + got + " its layers declare; " +
                                   std::to_string(kept) + " bytes newly kept to resume from"));
    }
    // Decode each layer's weights (an encoding other than exact), check
    // those that are exact now against their declared hash, then build them.
    struct Decoded {
      int layer = 0;
      std::vector<Weight> weights;
      std::string high;  // progressive: the high half as uploaded, for its low half
    };
    std::vector<Decoded> built;
    std::map<int, std::shared_ptr<const std::string>> blocks;  // for proofs of possession of later sessions
    const bool exact_after = ExactAfter(s->encoding, phase);
    for (const UploadPart& part : parts) {
      const int k = part.layer;
      const Layer& declared = s->arch.layers[k];
      const std::string lname = "layer " + std::to_string(k) + " '" + declared.name + "'";
      Layer full = declared;
      const std::string_view bytes(data.data() + part.start, part.size);
      if (exact) {
        full.weights = net::WeightsFromBytes(declared, bytes.data());
      } else {
        Status st;
        if (phase == UnitPhase::kLow) {
          std::string high;
          {
            std::lock_guard<std::mutex> lock(s->mu);
            high = s->high_halves[k];
          }
          st = codec.Decode(declared, UnitPhase::kHigh, high, &full.weights);
          if (st.ok()) st = codec.Decode(declared, UnitPhase::kLow, bytes, &full.weights);
        } else {
          st = codec.Decode(declared, phase, bytes, &full.weights);
        }
        if (!st.ok()) {
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": " + lname + ": " + st.message()));
        }
      }
      if (exact_after) {
        // Proofs and the store are of the exact fp32 bytes, whatever travelled.
        std::string exact_bytes;
        if (!exact) net::AppendLayerWeights(full, &exact_bytes);
        const std::string_view raw = exact ? bytes : std::string_view(exact_bytes);
        if (!raw.empty()) {
          blocks[k] = std::make_shared<const std::string>(net::LayerStore::BlockHashes(raw.data(), raw.size()));
        }
        if (net::LayerContentHash(s->arch, full) != s->hashes[k]) {
          if (files && exact) files->Remove(s->keys[k]);
          if (part.skip) {  // a prefix that passed its proof but not the whole hash: not offered again
            partials->Erase(s->keys[k]);
            std::lock_guard<std::mutex> lock(s->mu);
            s->resumable.erase(k);
          }
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   where + ": " + lname + ": its weights do not match the content hash declared at OpenSession" +
                                       (part.skip ? " (resumed after a kept prefix of " + std::to_string(part.skip) +
                                                        " bytes, now dropped: upload it whole)"
                                                  : "")));
        }
      }
      built.push_back({k, std::move(full.weights), phase == UnitPhase::kHigh ? std::string(bytes) : std::string()});
    }
    for (Decoded& d : built) {
      const int k = d.layer;
      if (s->arch.layers[k].weights.empty()) continue;  // weightless layers are built at OpenSession
      Status st;
      if (phase == UnitPhase::kLow) {
        // A retry after a call that replaced some of its layers: those are exact already.
        if (s->engine->is_provisional(k)) st = s->engine->ReplaceLayer(k, std::move(d.weights));
      } else if (!s->engine->is_built(k)) {
        st = s->engine->AddLayer(k, std::move(d.weights), /*provisional=*/phase == UnitPhase::kHigh);
      }
      if (!st.ok()) return Fail(ToGrpc(st.WithContext(where)));
    }
    std::vector<int> layers;
    for (const UploadPart& part : parts) layers.push_back(part.layer);
    if (exact_after) {  // the store holds exact layers only; only their hash-checked bytes retire a kept prefix
      for (int k : layers) partials->Erase(s->keys[k]);
      StoreBuilt(*s, layers, blocks);
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!sessions.count(s->id)) {
        return Fail(grpc::Status(grpc::StatusCode::NOT_FOUND, where + ": the session was closed during the upload"));
      }
    }
    {
      std::lock_guard<std::mutex> lock(s->mu);
      for (Decoded& d : built) {
        const int k = d.layer;
        if (phase != UnitPhase::kLow) s->uploaded[k] = 1;
        s->approximate[k] = !exact_after && !s->arch.layers[k].weights.empty();
        if (phase == UnitPhase::kHigh) s->high_halves[k] = std::move(d.high);
        if (phase == UnitPhase::kLow) s->high_halves.erase(k);
        s->resumable.erase(k);
        reply->add_built_layers(k);
      }
      if (phase == UnitPhase::kLow) {  // runs prepared with the approximate kernels are stale
        ++s->generation;
        s->prepared.clear();
      }
      ++s->next_partition;
    }
    resumed_bytes += skipped;
    reply->set_partition(partition);
    reply->set_bytes_received(received);
    Log("session " + s->id + " partition " + std::to_string(partition) + " built: " + std::to_string(layers.size()) +
        " layers, " + std::to_string(received) + " bytes" +
        (skipped ? " after " + std::to_string(skipped) + " resumed" : ""));
    std::lock_guard<std::mutex> lock(s->mu);
    s->last_used_ms = clock->NowMs();
    return grpc::Status::OK;
  }

  // After a cut upload: keeps the first bytes that arrived of each of its
  // layers up to parts[at] (whole proof blocks, or the whole layer once its
  // bytes match its content hash) for the session that resumes it; `data`
  // holds them, through byte `pos` of parts[at]. Returns the bytes newly kept.
  uint64_t KeepPrefixes(const Session& s, const std::vector<UploadPart>& parts, const std::string& data, size_t at,
                        uint64_t pos) {
    uint64_t kept = 0;
    const double now = clock->NowMs();
    for (size_t i = 0; i <= at && i < parts.size(); ++i) {
      const UploadPart& part = parts[i];
      const uint64_t arrived = i < at ? part.size : pos;
      if (part.size == 0 || arrived <= part.skip) continue;  // nothing new of it
      if (arrived == part.size) {
        Layer full = s.arch.layers[part.layer];
        full.weights = net::WeightsFromBytes(s.arch.layers[part.layer], data.data() + part.start);
        if (net::LayerContentHash(s.arch, full) != s.hashes[part.layer]) {
          if (files) files->Remove(s.keys[part.layer]);
          continue;
        }
      }
      kept += partials->Put(s.keys[part.layer], data.data() + part.start, arrived, part.size, now);
    }
    return kept;
  }

  grpc::Status QueryStep(grpc::ServerContext* ctx, const v1::QueryStepRequest* req, v1::QueryStepReply* reply) override {
    if (!Authorized(ctx)) return Fail(Unauthenticated(ctx));
    Slot slot(this, ctx);
    if (!slot.admitted()) return Fail(slot.refusal());
    auto found = Find(req->session_id());
    if (!found.ok()) return Fail(ToGrpc(found.status()));
    std::shared_ptr<Session> s = *found;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->stepping) {  // not run: as busy, with retry advice
        ctx->AddTrailingMetadata(net::kRetryAfterMetadata, "50");
        return Fail(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "QueryStep: session " + s->id + " runs another step; one at a time; retry in 50 ms"));
      }
      s->stepping = true;
    }
    struct SteppingDone {
      Session* s;
      ~SteppingDone() {
        std::lock_guard<std::mutex> lock(s->mu);
        s->stepping = false;
      }
    } stepping_done{s.get()};
    const std::string where = "QueryStep: session " + s->id + ", query " + std::to_string(req->query_id());
    const int n = static_cast<int>(s->arch.layers.size());
    std::vector<int> layers;
    std::string key;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      std::vector<uint8_t> listed(n, 0);
      for (uint32_t k : req->layers()) {
        if (k < static_cast<uint32_t>(n) && listed[k]++) {
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": layer index " + std::to_string(k) + " is listed twice"));
        }
        if (k >= static_cast<uint32_t>(n)) {
          return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": layer index " + std::to_string(k) + " does not exist"));
        }
        if (!s->uploaded[k]) {
          return Fail(Precondition(where + ": layer " + std::to_string(k) + " '" + s->arch.layers[k].name +
                                   "' has not been uploaded and built yet"));
        }
        layers.push_back(static_cast<int>(k));
        key += std::to_string(k) + ",";
      }
    }
    if (layers.empty()) return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": names no layers"));
    TensorMap given;
    for (const auto& t : req->tensors()) {
      const Shape* shape = s->arch.TensorShape(t.name());
      if (!shape) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 where + ": tensor '" + t.name().substr(0, 64) + "' is not a tensor of the model"));
      }
      auto tensor = net::TensorFromProto(t, *shape);
      if (!tensor.ok()) return Fail(ToGrpc(tensor.status().WithContext(where)));
      if (!given.emplace(t.name(), std::move(tensor).value()).second) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": tensor '" + t.name() + "' is sent twice"));
      }
    }
    std::vector<std::string> wanted(req->wanted().begin(), req->wanted().end());
    for (const auto& name : wanted) {
      if (!s->arch.TensorShape(name)) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 where + ": wanted tensor '" + name.substr(0, 64) + "' is not a tensor of the model"));
      }
    }
    std::vector<std::string> produce = wanted;  // + what later steps of the query read here
    for (const auto& name : req->keep()) {
      if (!s->arch.TensorShape(name)) {
        return Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 where + ": kept tensor '" + name.substr(0, 64) + "' is not a tensor of the model"));
      }
      produce.push_back(name);
    }
    for (const auto& name : produce) key += "|" + name;
    std::shared_ptr<const PreparedRun> run;
    bool approximate = false;
    uint64_t generation = 0;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      auto held = s->queries.find(req->query_id());
      if (held != s->queries.end()) {
        for (auto& [name, t] : held->second) given.emplace(name, t);
      }
      auto it = s->prepared.find(key);
      if (it != s->prepared.end() && it->second.generation == s->generation) {
        run = it->second.run, approximate = it->second.approximate;
      }
      // Read before Prepare: a layer made exact meanwhile is still called
      // approximate (never the other way round).
      generation = s->generation;
      if (!run) {
        for (int k : layers) approximate = approximate || s->approximate[k];
      }
    }
    if (!run) {
      auto prepared = s->engine->Prepare(layers, produce);
      if (!prepared.ok()) return Fail(ToGrpc(prepared.status().WithContext(where)));
      run = *prepared;
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->prepared.size() > 256) s->prepared.clear();
      if (generation == s->generation) s->prepared[key] = {run, approximate, generation};
    }
    reply->set_approximate(approximate);
    const double t0 = clock->NowMs();
    auto out = s->engine->Execute(*run, given);
    if (!out.ok()) return Fail(ToGrpc(out.status().WithContext(where)));
    reply->set_server_ms(clock->NowMs() - t0);
    if (step_seconds) step_seconds->Observe(reply->server_ms() / 1000);
    for (const auto& name : wanted) net::TensorToProto(name, out->at(name), reply->add_tensors());
    ++query_steps;
    std::lock_guard<std::mutex> lock(s->mu);
    if (req->last_step()) {
      s->queries.erase(req->query_id());
    } else {
      TensorMap& kept = s->queries[req->query_id()];
      for (auto& [name, t] : given) kept.emplace(name, std::move(t));
      for (const auto& name : req->keep()) kept[name] = out->at(name);
      // At most max_queries_in_flight queries, and one query's worth of
      // tensors in all (a session's memory counts two: these and a running
      // step's); the oldest queries go first.
      auto kept_bytes = [&] {
        uint64_t n = 0;
        for (const auto& [id, tensors] : s->queries) {
          for (const auto& [name, t] : tensors) n += t.data.size() * sizeof(float);
        }
        return n;
      };
      while (static_cast<int>(s->queries.size()) > options.max_queries_in_flight ||
             (s->queries.size() > 1 && kept_bytes() > s->activation_bytes)) {
        s->queries.erase(s->queries.begin());
      }
    }
    return grpc::Status::OK;
  }

  // Never refused as busy: closing frees memory.
  grpc::Status CloseSession(grpc::ServerContext* ctx, const v1::CloseSessionRequest* req, v1::CloseSessionReply*) override {
    if (!Authorized(ctx)) return Fail(Unauthenticated(ctx));
    std::unique_lock<std::mutex> lock(mu);
    auto it = sessions.find(req->session_id());
    if (it == sessions.end()) {
      return Fail(grpc::Status(grpc::StatusCode::NOT_FOUND, "no session '" + req->session_id().substr(0, 64) + "'"));
    }
    Log("session " + it->first + " closed");
    std::shared_ptr<Session> closed = std::move(it->second);
    sessions.erase(it);
    lock.unlock();
    closed.reset();  // ~Session trims the store, now or when the last call in flight ends
    return grpc::Status::OK;
  }
};

Result<std::unique_ptr<OffloadServer>> OffloadServer::Start(const ServerOptions& options) {
  if (options.threads < 1 || options.threads > kMaxEngineThreads || options.workers < 1 || options.max_sessions < 1 ||
      options.max_sessions_per_peer < 1 || options.max_cut_uploads_per_peer < 1) {
    return Status::Invalid("threads must be 1 to " + std::to_string(kMaxEngineThreads) +
                           "; workers, max sessions, max sessions and cut uploads per peer at least 1");
  }
  if (!(options.session_idle_s > 0)) return Status::Invalid("session idle time must be > 0 s");
  if (options.max_calls_per_peer < 1 || !(options.call_idle_s > 0) || !(options.call_max_s > 0) ||
      !(options.upload_min_bytes_per_s >= 0)) {
    return Status::Invalid("calls per peer must be at least 1, call idle and maximum times > 0 s, the minimum "
                           "upload rate >= 0");
  }
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return Status::Invalid("TLS needs both a certificate and its private key");
  }
  if (!options.tls_cert_pem.empty()) IONN_RETURN_IF_ERROR(CheckTlsPair(options.tls_cert_pem, options.tls_key_pem));
  if (!options.secret.empty()) IONN_RETURN_IF_ERROR(net::ValidateSecret(options.secret));
  std::unique_ptr<OffloadServer> server(new OffloadServer());
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  impl.options = options;
  impl.clock = options.clock ? options.clock : &Clock::System();
  impl.limits.max_message_bytes = options.max_message_bytes;
  impl.limits.max_chunk_bytes = options.max_chunk_bytes;
  impl.limits.max_model_bytes = options.max_model_bytes;
  impl.limits.max_layers = options.max_layers;
  impl.store = std::make_shared<net::LayerStore>(options.store_bytes);
  // Cut uploads' prefixes: within the store's budget, as long as a session.
  impl.partials = std::make_unique<net::PartialUploads>(options.store_bytes, options.session_idle_s * 1000);
  if (!options.upload_dir.empty()) {
    auto files = net::UploadFiles::Open(options.upload_dir, options.store_bytes, options.log);
    if (!files.ok()) return files.status().WithContext("--upload-dir");
    impl.files = std::move(files).value();
    const double now = impl.clock->NowMs();
    impl.files->Load([&impl, now](const std::string& key, uint64_t layer_bytes, const std::string& bytes) {
      impl.partials->Put(key, bytes.data(), bytes.size(), layer_bytes, now);
    });
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options.tls_cert_pem.empty()) {
    grpc::SslServerCredentialsOptions tls;
    tls.pem_key_cert_pairs.push_back({options.tls_key_pem, options.tls_cert_pem});
    credentials = grpc::SslServerCredentials(tls);
  }
  builder.AddListeningPort(options.listen, credentials, &impl.port);
  builder.RegisterService(&impl);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<uint64_t>(options.max_message_bytes, INT32_MAX)));
  builder.SetMaxSendMessageSize(static_cast<int>(std::min<uint64_t>(options.max_message_bytes, INT32_MAX)));
  // A connection carries at most 16 calls at once (a client uses one
  // each for its upload and its queries); dead peers are found by
  // keepalive pings, idle connections closed with their sessions.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 16);
  // gRPC binds with SO_REUSEPORT by default: a second server on a port in
  // use would start and share its clients. One server a port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(std::min(options.session_idle_s * 1000, double(INT32_MAX))));
  grpc::ResourceQuota quota("ionn-serve");
  // Threads beyond `workers` answer the calls past it (busy) at once.
  quota.SetMaxThreads(options.workers + 8);
  builder.SetResourceQuota(quota);
  impl.server = builder.BuildAndStart();
  if (!impl.server || impl.port == 0) {
    const std::string why = ListenProblem(options.listen);
    return Status::Invalid("cannot listen on '" + options.listen + "': " +
                           (why.empty() ? "gRPC could not bind it" : why));
  }
  impl.watchdog = std::thread([&impl] { impl.Watch(); });
  impl.Log("listening on " + options.listen + " (port " + std::to_string(impl.port) + ")" +
           (options.tls_cert_pem.empty() ? ", no TLS" : ", TLS") +
           (options.secret.empty() ? "" : ", shared secret required"));
  if (!options.metrics_listen.empty()) {
    try {
      impl.exposer = std::make_unique<prometheus::Exposer>(options.metrics_listen);
    } catch (const std::exception& e) {  // the gRPC server stops with `server`
      return Status::Unavailable("cannot serve metrics on '" + options.metrics_listen + "': " + e.what());
    }
    impl.registry = std::make_shared<prometheus::Registry>();
    impl.step_seconds = &prometheus::BuildHistogram()
                             .Name("ionn_query_step_seconds")
                             .Help("Execution of a query step on the server")
                             .Register(*impl.registry)
                             .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                                                              0.1, 0.2, 0.5, 1, 2, 5});
    OffloadServer* self = server.get();
    impl.stats_metrics = std::make_shared<StatsMetrics>([self] { return self->stats(); });
    impl.exposer->RegisterCollectable(impl.registry);
    impl.exposer->RegisterCollectable(impl.stats_metrics);
    impl.Log("metrics on " + options.metrics_listen + " (port " + std::to_string(server->metrics_port()) + "), GET /metrics");
  }
  return server;
}

OffloadServer::~OffloadServer() {
  if (impl_) Shutdown(0);
}

int OffloadServer::port() const { return impl_->port; }

int OffloadServer::metrics_port() const {
  if (!impl_->exposer) return 0;
  const auto ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

ServerStats OffloadServer::stats() const {
  ServerStats st;
  {
    std::lock_guard<std::mutex> lock(impl_->calls_mu);  // never held with mu
    st.calls_in_flight = impl_->calls.size();
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  st.sessions = static_cast<int>(impl_->sessions.size());
  st.model_bytes = impl_->model_bytes;
  st.memory_bytes = impl_->memory_bytes;
  st.sessions_evicted = impl_->sessions_evicted;
  st.bytes_uploaded = impl_->bytes_uploaded;
  st.query_steps = impl_->query_steps;
  st.failed_calls = impl_->failed_calls;
  st.held_layers = impl_->held_layers;
  st.held_bytes = impl_->held_bytes;
  const auto store = impl_->store->stats();
  st.store_entries = store.entries;
  st.store_bytes = store.bytes;
  st.store_cached_bytes = store.cached_bytes;
  st.store_evictions = store.evictions;
  st.busy_refusals = impl_->busy_refusals;
  st.calls_cancelled = impl_->calls_cancelled;
  st.partial_bytes = impl_->partials->bytes();
  st.resumed_bytes = impl_->resumed_bytes;
  return st;
}

void OffloadServer::Shutdown(double deadline_ms) {
  std::lock_guard<std::mutex> lock(impl_->stop_mu);
  if (impl_->stopped.exchange(true)) return;
  if (impl_->server) {  // null when it never started (Start failed)
    impl_->server->Shutdown(std::chrono::system_clock::now() +
                            std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, deadline_ms) * 1000)));
    impl_->server->Wait();
  }
  {
    std::lock_guard<std::mutex> calls_lock(impl_->calls_mu);
    impl_->watchdog_stop = true;
  }
  impl_->watchdog_cv.notify_all();
  if (impl_->watchdog.joinable()) impl_->watchdog.join();
  impl_->exposer.reset();  // no scrape reads a stopped server
  impl_->files.reset();    // no upload writes any more: the folder's lock goes (a new server may take it)
  impl_->Log("stopped");
}

void OffloadServer::Wait() { impl_->server->Wait(); }

void TuneAllocatorForQuerySteps() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

}  // namespace ionn
