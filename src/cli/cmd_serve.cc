// `ionn serve`: the edge server. Offers its prediction functions (fitted
// here at start, or read from a file), serves sessions until SIGINT or
// SIGTERM, then drains in-flight calls and exits 0.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include "commands.h"
#include "ionn/calibrate.h"
#include "ionn/server.h"

namespace ionn::cli {

Action RegisterServe(CLI::App& app) {
  struct Args {
    ServerOptions server;
    ProfileOptions profiles;
    EngineFlags engine;
    std::string tls_cert, tls_key, secret_file, when_full = "refuse";
    bool quick_calibration = false;
    double drain_s = 5;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("serve", "Run an edge server: sessions, incremental model upload, query steps (gRPC)");
  ServerOptions& s = args->server;
  cmd->add_option("--listen", s.listen, "host:port to listen on (loopback by default; 0.0.0.0:PORT to expose)")
      ->capture_default_str();
  args->profiles.Add(cmd, kRegression);  // to offer; default: calibrate here at start
  cmd->add_flag("--quick-calibration", args->quick_calibration, "Calibrate with fewer, smaller configurations");
  cmd->add_option("--name", s.name, "Server identity offered at Hello")->capture_default_str();
  args->engine.Add(cmd);
  cmd->add_flag("--winograd", s.winograd,
                "Large 3x3 convolutions by Winograd's algorithm: faster, but each worker thread keeps a scratchpad "
                "of up to 24 times the largest tensor (15 MB for GoogLeNet), which --max-memory-bytes does not count");
  cmd->add_option("--workers", s.workers, "Calls served at once; more are refused at once as busy, with retry advice")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--max-calls-per-peer", s.max_calls_per_peer, "Calls of one client address served at once")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--call-idle-s", s.call_idle_s, "Cancel an upload whose next chunk does not come for this long")
      ->capture_default_str()->check(FiniteIn(0.001, 1e6, "a time in s"));
  cmd->add_option("--call-max-s", s.call_max_s, "Cancel a call other than an upload that runs longer than this")
      ->capture_default_str()->check(FiniteIn(0.001, 1e6, "a time in s"));
  cmd->add_option("--upload-min-bytes-per-s", s.upload_min_bytes_per_s,
                  "Cancel an upload that, after --call-idle-s, has averaged less than this (0: no minimum)")
      ->capture_default_str()->check(FiniteIn(0, 1e12, "a rate in bytes/s"));
  cmd->add_option("--max-sessions", s.max_sessions, "Sessions held at once")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--max-activation-bytes", s.max_activation_bytes,
                  "Tensors one query of a model may make on the server (larger models are refused)")
      ->capture_default_str()->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--max-sessions-per-peer", s.max_sessions_per_peer, "Sessions one client address holds at once")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--upload-dir", s.upload_dir,
                  "Keep the weight bytes uploads receive in this folder (within --store-bytes): started again on it, "
                  "the server resumes the clients' uploads where they stopped");
  cmd->add_option("--max-cut-uploads-per-peer", s.max_cut_uploads_per_peer,
                  "Uploads of one client address cut before their end within --session-idle-s; beyond, its uploads "
                  "are refused until older cuts age out")
      ->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--max-model-bytes", s.max_model_bytes, "Weight bytes of all sessions' models together")
      ->capture_default_str()->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--max-memory-bytes", s.max_memory_bytes,
                  "Memory for models in all: sessions' weights and two queries' tensors each, and the layer store's "
                  "cached kernels; a session that would pass it is refused (or see --when-full). 0: no limit")
      ->capture_default_str()->check(CLI::Range(uint64_t{0}, uint64_t{1} << 44));
  cmd->add_option("--when-full", args->when_full,
                  "When a new session passes a memory limit: refuse it, or evict-idle (close sessions idle for "
                  "--evict-idle-s, least recently used first, then refuse if it still does not fit)")
      ->capture_default_str()->check(CLI::IsMember({"refuse", "evict-idle"}));
  cmd->add_option("--evict-idle-s", s.evict_idle_s, "With --when-full evict-idle: how long a session must be idle")
      ->capture_default_str()->check(FiniteIn(0, 1e7, "a time in s"));
  cmd->add_option("--store-bytes", s.store_bytes,
                  "Layer store: weight bytes of built layers kept for clients that come back, beyond those open "
                  "sessions use (least recently used evicted first; 0: keep none)")
      ->capture_default_str()->check(CLI::Range(uint64_t{0}, uint64_t{1} << 40));
  cmd->add_option("--max-chunk-bytes", s.max_chunk_bytes, "Largest upload chunk")
      ->capture_default_str()->check(CLI::Range(uint64_t{1024}, uint64_t{64} << 20));
  cmd->add_option("--session-idle-s", s.session_idle_s, "Close sessions idle this long")
      ->capture_default_str()->check(FiniteIn(0.001, 1e7, "a time in s"));
  cmd->add_option("--metrics", s.metrics_listen,
                  "Serve Prometheus metrics on host:port (GET /metrics), e.g. 127.0.0.1:9100; off by default");
  auto* cert = cmd->add_option("--tls-cert", args->tls_cert, "TLS: this server's certificate chain (PEM); with --tls-key");
  auto* key = cmd->add_option("--tls-key", args->tls_key, "TLS: the certificate's private key (PEM)");
  cert->needs(key);
  key->needs(cert);
  cmd->add_option("--secret-file", args->secret_file,
                  "Refuse calls without this shared secret (the file's first line: 16-1024 printable characters, "
                  "e.g. `openssl rand -hex 32`); use with TLS, or it crosses the link in clear");
  cmd->add_option("--drain-s", args->drain_s, "On SIGINT/SIGTERM, wait this long for in-flight calls")
      ->capture_default_str()->check(FiniteIn(0, 3600, "a time in s"));
  return [args]() {
    auto log = StderrLog("serve");
    ServerOptions options = args->server;
    auto eo = args->engine.Get();
    if (!eo.ok()) return Fail(eo.status());
    options.threads = eo->threads;
    options.backend = eo->backend;
    options.log = log;
    options.when_full = args->when_full == "evict-idle" ? ServerOptions::WhenFull::kEvictIdle : ServerOptions::WhenFull::kRefuse;
    if (!args->tls_cert.empty()) {
      auto cert = ReadSmallFile(args->tls_cert, "--tls-cert");
      if (!cert.ok()) return Fail(cert.status());
      auto key = ReadSmallFile(args->tls_key, "--tls-key");
      if (!key.ok()) return Fail(key.status());
      options.tls_cert_pem = std::move(cert).value();
      options.tls_key_pem = std::move(key).value();
    }
    if (!args->secret_file.empty()) {
      auto secret = ReadSecretFile(args->secret_file);
      if (!secret.ok()) return Fail(secret.status());
      options.secret = std::move(secret).value();
    }
    if (!args->profiles.regression.empty()) {
      auto r = ReadRegressionCsv(args->profiles.regression);
      if (!r.ok()) return Fail(r.status());
      options.regression = std::move(r).value();
      // Clients plan with these functions: a model with a type they lack
      // cannot plan here. Say so now, not at each client's Hello.
      std::set<std::string> missing;
#define IONN_KIND_TYPE(e, onnx, caffe) \
  if (!options.regression.by_type.count(caffe)) missing.insert(caffe);
      IONN_LAYER_KINDS(IONN_KIND_TYPE)
#undef IONN_KIND_TYPE
      if (!missing.empty()) {
        std::string types;
        for (const auto& t : missing) types += (types.empty() ? "" : ", ") + t;
        std::fprintf(stderr,
                     "ionn: warning: --regression '%s' has no function for %s: clients whose models have such "
                     "layers cannot plan with this server (ionn calibrate -o FILE fits every type)\n",
                     args->profiles.regression.c_str(), types.c_str());
      }
    } else {
      log("calibrating the prediction functions (--regression FILE skips this)");
      CalibrationOptions co;
      co.threads = options.threads;
      co.backend = options.backend;
      co.winograd = options.winograd;
      co.quick = args->quick_calibration;
      auto c = CalibrateServer(co);
      if (!c.ok()) return Fail(c.status());
      options.regression = c->fit.regression;
      log("calibrated " + std::to_string(options.regression.by_type.size()) + " layer types");
    }
    StopSignals stop;  // before gRPC starts its threads
    auto server = OffloadServer::Start(options);
    if (!server.ok()) return Fail(server.status());
    log("got " + stop.Wait() + "; draining in-flight calls");
    (*server)->Shutdown(args->drain_s * 1000);
    const ServerStats st = (*server)->stats();
    log("served " + std::to_string(st.query_steps) + " query steps, " + std::to_string(st.bytes_uploaded) +
        " bytes uploaded, " + std::to_string(st.held_bytes) + " bytes held from the layer store (" +
        std::to_string(st.held_layers) + " layers), " + std::to_string(st.failed_calls) + " calls refused");
    return 0;
  };
}

}  // namespace ionn::cli
