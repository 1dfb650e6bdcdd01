// The edge server (`ionn serve`): offers its prediction functions, holds
// one session per client, builds each session's model layer by layer as
// partitions arrive, and runs query steps with the engine. Built layers go
// to a content-addressed layer store shared by all sessions: a later
// session of a model with the same layers gets them without an upload, once
// its client proves it holds their weights (docs/DESIGN.md, "The layer
// store, as built"). Protocol: src/net/ionn.proto (gRPC). Errors reach clients as gRPC status codes with
// a message naming the session, layer, tensor or field.
//
// Threading: Start returns once the server listens; calls are served on
// gRPC's pool (at most `workers` at once, the rest refused as busy); a
// watchdog thread cancels stalled calls. Shutdown may be called from any
// thread; it drains in-flight calls until the deadline, then cancels them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ionn/clock.h"
#include "ionn/engine.h"
#include "ionn/model_costs.h"
#include "ionn/status.h"

namespace ionn {

struct ServerOptions {
  std::string listen = "127.0.0.1:7070";  // host:port; port 0 picks a free one
  std::string name = "ionn";              // identity offered at Hello
  int threads = 1;                        // engine threads per query step
  // Which library computes the convolutions (EngineOptions::backend). An
  // XNNPACK kernel runs one query step at a time: sessions sharing a layer
  // through the layer store take turns on it.
  EngineBackend backend = EngineBackend::kAuto;
  // Large 3x3 convolutions by Winograd's algorithm (EngineOptions::winograd):
  // faster, and their transformed weights are counted below, but each
  // worker thread also keeps oneDNN's Winograd scratchpad (up to 24 times
  // the largest tensor: 15 MB for GoogLeNet, 51 MB for VGG-11) and two
  // reorder buffers, which max_memory_bytes does not count. Off by default
  // for that reason.
  bool winograd = false;
  // Calls served at once; beyond, a call is refused at once with
  // UNAVAILABLE and retry advice (back-pressure) rather than queued.
  int workers = 32;
  int max_calls_per_peer = 16;            // of those, from one client address
  int max_sessions = 64;
  int max_sessions_per_peer = 16;         // sessions of one client address
  // Uploads of one client address cut before their last byte (each leaves
  // prefixes to resume from) within session_idle_s; beyond, its uploads are
  // refused (RESOURCE_EXHAUSTED) until older cuts age out: a client that
  // keeps restarting partitions is bounded.
  int max_cut_uploads_per_peer = 64;
  uint64_t max_model_bytes = 2ull << 30;  // weights of all sessions together
  // Memory for models in all: each open session's weights and two queries'
  // tensors, plus the layer store's cached kernels. A new session that
  // would pass it is refused with RESOURCE_EXHAUSTED, or (kEvictIdle) the
  // least recently used sessions idle for evict_idle_s are closed to make
  // room first. 0: no limit beyond max_model_bytes and store_bytes.
  uint64_t max_memory_bytes = 0;
  enum class WhenFull { kRefuse, kEvictIdle };
  WhenFull when_full = WhenFull::kRefuse;
  double evict_idle_s = 10;
  // Built layers no session uses, kept for clients that come back (the
  // content-addressed layer store); least recently used evicted first.
  // Also the budget, apart, for the first bytes of cut uploads (kept for
  // session_idle_s, for the client that resumes after them; counted under
  // max_memory_bytes, and dropped before idle sessions are evicted).
  uint64_t store_bytes = 1ull << 30;
  // A folder for the weight bytes uploads receive, one file per layer
  // (within store_bytes, oldest removed first): a server started again on
  // it (after a crash, a SIGKILL) offers what it had received, whole layers
  // and cut ones, as prefixes the clients' next sessions prove and do not
  // send again. Empty: kept in memory only.
  std::string upload_dir;
  // The tensors one query of a model makes on the server (every layer's
  // output, the inputs): a model needing more is refused at OpenSession.
  uint64_t max_activation_bytes = 1ull << 30;
  uint64_t max_message_bytes = 64ull << 20;
  uint64_t max_chunk_bytes = 1ull << 20;  // one UploadChunk's data
  uint32_t max_layers = 10000;            // per model
  int max_queries_in_flight = 8;          // per session; the oldest is dropped beyond it
  double session_idle_s = 300;            // sessions unused this long are closed
  // An upload with no chunk for this long (a client sending slowly or not
  // at all) is cancelled, as is a call other than an upload running longer
  // than call_max_s, and an upload that, after
  // call_idle_s, has averaged under upload_min_bytes_per_s (64 KiB/s: a
  // 0.5 Mbps link).
  double call_idle_s = 30, call_max_s = 600;
  double upload_min_bytes_per_s = 64 << 10;
  ServerRegression regression;            // prediction functions offered at Hello
  Clock* clock = nullptr;                 // null: Clock::System()
  // host:port of a Prometheus metrics endpoint (GET /metrics): sessions,
  // bytes uploaded, held from the store, query steps, failed calls, the
  // layer store's size, a histogram of query-step execution. Empty: none.
  std::string metrics_listen;
  // TLS: the server's certificate chain and private key (PEM); both empty:
  // plaintext (fine on loopback; recommended whenever the port is exposed).
  std::string tls_cert_pem, tls_key_pem;
  // Non-empty: every call must carry this shared secret (printable ASCII,
  // 16 to 1024 bytes), or is refused with UNAUTHENTICATED. Without TLS it
  // crosses the link in clear.
  std::string secret;
  // One line per session event ("session 3f2a opened: alexnet, 23 layers").
  std::function<void(const std::string&)> log;
};

struct ServerStats {
  int sessions = 0;
  uint64_t model_bytes = 0;      // declared weights of open sessions
  uint64_t memory_bytes = 0;     // what open sessions may hold (max_memory_bytes' count)
  uint64_t sessions_evicted = 0; // idle sessions closed to make room
  uint64_t bytes_uploaded = 0;   // since start
  uint64_t query_steps = 0;      // since start
  uint64_t failed_calls = 0;     // calls answered with an error
  uint64_t held_layers = 0;      // layers sessions got from the store, since start
  uint64_t held_bytes = 0;       // their weight bytes (uploads saved)
  size_t store_entries = 0;      // kernels in the layer store now
  uint64_t store_bytes = 0;      // their weight bytes
  uint64_t store_cached_bytes = 0;  // of which no session uses
  uint64_t store_evictions = 0;
  uint64_t busy_refusals = 0;    // calls refused: too many in flight
  uint64_t calls_cancelled = 0;  // stalled or too long
  uint64_t partial_bytes = 0;    // first bytes of cut uploads kept for the clients that resume them
  uint64_t resumed_bytes = 0;    // weight bytes uploads did not send again thanks to them, since start
  size_t calls_in_flight = 0;    // admitted and not yet ended (a session a call holds lives on)
};

class OffloadServer {
 public:
  static Result<std::unique_ptr<OffloadServer>> Start(const ServerOptions& options);
  ~OffloadServer();  // Shutdown(0) if still running

  int port() const;  // the bound port
  int metrics_port() const;  // the metrics endpoint's port, or 0
  ServerStats stats() const;
  // Stops accepting calls, waits up to `deadline_ms` for in-flight ones.
  void Shutdown(double deadline_ms);
  void Wait();  // until Shutdown

  struct Impl;

 private:
  OffloadServer() = default;
  std::unique_ptr<Impl> impl_;
};

// Process-wide: buffers up to 32 MiB (tensors, messages) come from the
// heap, and up to 64 MiB of freed heap stays mapped, instead of a fresh
// mmap and its page faults at every query step (bench/step_bench: a 588
// KiB step's overhead 1.0 -> 0.45 ms). For programs that serve or send
// query steps; `ionn` calls it at start. glibc only; elsewhere a no-op.
void TuneAllocatorForQuerySteps();

}  // namespace ionn
