// `ionn client`: offload a model to an edge server while using it. Says
// Hello, plans with the server's prediction functions and this device's
// profile, uploads partition by partition and raises queries meanwhile;
// reports the run with the simulator's names for the same quantities.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "ionn/client.h"
#include "ionn/client_report.h"
#include "ionn/format.h"
#include "ionn/model_source.h"
#include "ionn/npy.h"

namespace ionn::cli {
Action RegisterClient(CLI::App& app) {
  struct Args {
    ModelOptions model;
    InputOptions input;
    ProfileOptions profiles;
    LinkRateOptions link;
    std::string upload_encoding = "exact", slices = "off";
    EngineFlags engine;
    OutputOptions out;
    PlanOptions plan;
    ArrivalOptions arrivals;
    ReplanFlags replan;
    std::string server = "127.0.0.1:7070", emulate_profile, trace;
    OutputTensorOptions tensors;
    std::string tls_ca, tls_server_name, secret_file;
    bool tls = false;
    bool profile_now = false, quiet = false, ignore_held = false, verify = false;
    int queries = -1, chunk_kib = 1024, reconnects = 8;
    double duration_s = -1, deadline_s = 60, backoff_s = 0.25;
    double upload_min_bytes_per_s = 64 << 10, upload_idle_s = 30;
    int stalled_attempts = 3;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "client", "Offload a model to an edge server while using it: planned upload, queries during it, a report");
  args->model.Add(cmd);
  args->input.Add(cmd);
  cmd->add_option("--server", args->server,
                  "host:port of `ionn serve`; a comma-separated list: the first that answers, the next after a loss")
      ->capture_default_str();
  args->plan.Add(cmd, /*with_algorithm=*/true, /*with_plan_file=*/true);
  args->profiles.Add(cmd, kClientProfile | kServerProfile | kPaperProfiles | kClientSlowdown);
  CLI::Option* slow = args->profiles.slowdown_option;
  CLI::Option* cp = cmd->get_option("--client-profile");
  CLI::Option* paper = cmd->get_option("--paper-profiles");
  CLI::Option* now = cmd->add_flag("--profile-now", args->profile_now, "Measure this device's layer times now (the default)")
                         ->group(kProfileGroup);
  CLI::Option* em = cmd->add_option("--emulate-profile", args->emulate_profile,
                                    "Plan with this client profile and pad every local segment to its times "
                                    "(emulates a slower device; layers are still computed)")
                        ->type_name("CSV")
                        ->group(kProfileGroup);
  slow->excludes(paper)->excludes(em);
  cp->excludes(now)->excludes(paper)->excludes(em);
  now->excludes(paper)->excludes(em);
  paper->excludes(em);
  args->link.Add(cmd);
  args->replan.Add(cmd, /*with_oracle=*/false);
  AddUploadEncodingOption(cmd, &args->upload_encoding);
  AddSlicesOption(cmd, &args->slices);
  args->engine.Add(cmd);
  cmd->add_option("--queries", args->queries, "Stop after this many queries (default: the paper's protocol: "
                                              "until the upload is done, then 5 more)")->check(CLI::Range(1, 100000000));
  cmd->add_option("--duration-s", args->duration_s, "Stop raising queries after this long")->check(FiniteIn(0.001, 1e7, "a time in s"));
  cmd->add_option("--chunk-kib", args->chunk_kib, "Upload chunk size (KiB)")->capture_default_str()->check(CLI::Range(1, 65536));
  cmd->add_option("--deadline-s", args->deadline_s,
                  "Deadline of each call to the server; an upload call adds its bytes at --upload-min-bytes-per-s")
      ->capture_default_str()->check(FiniteIn(0.001, 1e6, "a time in s"));
  cmd->add_option("--upload-min-bytes-per-s", args->upload_min_bytes_per_s,
                  "The slowest upload rate not taken for a lost link (as `ionn serve`'s option of the same name)")
      ->capture_default_str()->check(FiniteIn(1, 1e12, "a rate in bytes/s"));
  cmd->add_option("--upload-idle-s", args->upload_idle_s, "Cut an upload whose bytes have not moved for this long")
      ->capture_default_str()->check(FiniteIn(0.001, 1e6, "a time in s"));
  cmd->add_option("--stalled-attempts", args->stalled_attempts,
                  "Stop uploading after this many attempts of one partition that each got no further")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--reconnects", args->reconnects,
                  "After losing the server: connection attempts in all, to the listed servers in turn (0: stay local)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--backoff-s", args->backoff_s, "Wait before the first reconnection; each next one waits twice as long, at most 8 s (or this, if longer)")
      ->capture_default_str()
      ->check(FiniteIn(0.001, 3600, "a time in s"));
  auto* tls = cmd->add_flag("--tls", args->tls, "Connect with TLS, trusting the system's certificate authorities");
  cmd->add_option("--tls-ca", args->tls_ca, "Connect with TLS, trusting certificates this CA (PEM) signed")->excludes(tls);
  cmd->add_option("--tls-server-name", args->tls_server_name,
                  "The name the server's certificate must carry (default: the host of --server)");
  cmd->add_option("--secret-file", args->secret_file, "The server's shared secret (the file's first line)");
  cmd->add_flag("--verify", args->verify,
                "Check every query's outputs against a whole-model run here (max |diff| <= 1e-4 of the largest |output|)");
  args->arrivals.Add(cmd);
  args->out.Add(cmd, {"table", "json"});
  args->tensors.Add(cmd, "the last query's");
  cmd->add_option("--trace", args->trace, "CSV with one row per query, partition and upload call (columns: docs/formats/README.md)")
      ->type_name("FILE")
      ->check(OutputFile())
      ->group(kOutputGroup);
  cmd->add_flag("--quiet", args->quiet, "No progress line")->group(kOutputGroup);
  cmd->add_flag("--ignore-held", args->ignore_held,
                "Upload every layer, even those the server holds from earlier sessions (measures a first meeting)");
  return args->out.Wrap([args]() {
    auto g = args->model.Load(/*with_weights=*/true);
    if (!g.ok()) return Fail(g.status());
    if (auto files = args->tensors.Get(*g); !files.ok()) return Fail(files.status());
    auto planner = args->plan.Get();
    if (!planner.ok()) return Fail(planner.status());
    ClientOptions o;
    auto servers = ParseServerList(args->server);
    if (!servers.ok()) return Fail(Status::Invalid("--server: " + servers.status().message()));
    o.servers = std::move(servers).value();
    o.max_reconnects = args->reconnects;
    o.tls = args->tls || !args->tls_ca.empty();
    if (!args->tls_ca.empty()) {
      auto ca = ReadSmallFile(args->tls_ca, "--tls-ca");
      if (!ca.ok()) return Fail(ca.status());
      o.tls_ca_pem = std::move(ca).value();
    }
    if (!args->tls_server_name.empty() && !o.tls) return Fail(Status::Invalid("--tls-server-name needs --tls or --tls-ca"));
    o.tls_server_name = args->tls_server_name;
    if (!args->secret_file.empty()) {
      auto secret = ReadSecretFile(args->secret_file);
      if (!secret.ok()) return Fail(secret.status());
      o.secret = std::move(secret).value();
    }
    o.reconnect_backoff_ms = args->backoff_s * 1000;
    o.reconnect_backoff_max_ms = std::max(8000.0, o.reconnect_backoff_ms);
    o.planner = *planner;
    o.link = args->link.Spec();
    o.upload_encoding = ParseUploadEncoding(args->upload_encoding).value();  // checked by the option
    // Re-planning: passive by default where the planner plans an exact
    // upload; a plan from --plan, or a lossy encoding, runs as planned.
    auto replan = args->replan.Get(/*with_oracle=*/false, /*has_uplink_trace=*/false);
    if (!replan.ok()) return Fail(replan.status());
    o.replan = *replan;
    o.replan.rtt_ms = o.link.rtt_ms;
    o.replan.penalties = planner->penalties;
    auto mode = args->replan.Resolve(o.replan.mode,
                                     !args->plan.plan_file.empty()
                                         ? "re-planning needs the planner, and --plan gives a plan made elsewhere"
                                         : WhyNoReplan(o.upload_encoding, planner->algorithm));
    if (!mode.ok()) return Fail(mode.status());
    o.replan.mode = *mode;
    auto arrivals = args->arrivals.Get();
    if (!arrivals.ok()) return Fail(arrivals.status());
    o.arrivals = std::move(arrivals).value();
    o.deadline_ms = args->arrivals.deadline_ms;
    o.max_queries = args->queries;
    o.duration_ms = args->duration_s > 0 ? args->duration_s * 1000 : -1;
    auto eo = args->engine.Get();
    if (!eo.ok()) return Fail(eo.status());
    o.threads = eo->threads;
    o.backend = eo->backend;
    o.use_held = !args->ignore_held;
    o.chunk_bytes = static_cast<size_t>(args->chunk_kib) * 1024;
    o.call_deadline_ms = args->deadline_s * 1000;
    o.upload_min_bytes_per_s = args->upload_min_bytes_per_s;
    o.upload_idle_ms = args->upload_idle_s * 1000;
    o.max_stalled_attempts = args->stalled_attempts;
    auto inputs = args->input.Get(*g);
    if (!inputs.ok()) return Fail(inputs.status());
    o.inputs = std::move(inputs).value();
    const ProfileOptions& profiles = args->profiles;
    std::string profile = profiles.client_profile.empty() ? args->emulate_profile : profiles.client_profile;
    if (profiles.paper_profiles) {
      auto sources = PaperCostSources(g->name, PaperProfileDir());
      if (!sources.ok()) return Fail(Status::Invalid("--paper-profiles needs a zoo model: " + sources.status().message()));
      profile = sources->client_profile;
    }
    o.emulate_profile = !args->emulate_profile.empty();
    if (!profiles.server_profile.empty()) {
      auto sp = ReadProfileCsv(profiles.server_profile);
      if (!sp.ok()) return Fail(sp.status());
      o.server_profile = std::move(sp).value();
    }
    if (!profile.empty()) {
      auto p = ReadProfileCsv(profile);
      if (!p.ok()) return Fail(p.status());
      o.client_profile = std::move(p).value();
    } else {
      if (!args->quiet) std::fprintf(stderr, "client: profiling %zu layers here (--client-profile F.csv skips this)\n", g->layers.size());
      auto engine = Engine::Create(*g, *eo);
      if (!engine.ok()) return Fail(engine.status());
      auto t = (*engine)->ProfileLayers(o.inputs, 2, 7);
      if (!t.ok()) return Fail(t.status());
      o.client_profile = ProfileFromTimes(*g, *t, /*server_column=*/false);
    }
    if (profiles.client_slowdown > 0) {
      // A device X times slower than this one (or than the profile given):
      // planned with, and every local segment padded to, X times the times.
      for (auto& [name, row] : o.client_profile.rows) {
        if (row.client_ms) row.client_ms = *row.client_ms * profiles.client_slowdown;
      }
      o.emulate_profile = true;
    }
    // --slices: the model the run uploads and computes is the sliced one
    // (slices.h), its profiles sliced by the simulator's rule; --verify
    // still checks every query against the whole model.
    auto sliced = SliceForClient(*g, SliceCount(args->slices), &o, [&](const CostGraph& c) { return args->plan.Make(c); });
    if (!sliced.ok()) return Fail(sliced.status());
    const Graph& model = sliced->model ? *sliced->model : *g;
    if (!args->plan.plan_file.empty()) {
      // Checked against the model now, before connecting.
      auto text = ReadSmallFile(args->plan.plan_file, "--plan", size_t{64} << 20);
      if (!text.ok()) return Fail(text.status());
      Status checked = CheckPlanForModel(model, *text);
      if (!checked.ok()) return Fail(Status::Invalid("--plan '" + args->plan.plan_file + "': " + checked.message()));
      o.plan_json = std::move(text).value();
    }
    const bool show = !args->quiet && args->out.format == "table" && isatty(STDERR_FILENO);
    auto progress = [show](const ClientProgress& p) {
      if (!show) return;
      std::fprintf(stderr, "\rupload %5.1f%% (%d/%d partitions) | queries %d | last %.1f ms, %d layers on the server   ",
                   p.bytes_total ? 100.0 * p.bytes_acked / p.bytes_total : 100.0, p.partitions_acked, p.partitions,
                   p.queries, p.last_latency_ms, p.last_server_layers);
    };
    // --verify: every query's outputs against a whole-model run here.
    std::optional<OutputCheck> verified;
    if (args->verify) {
      auto engine = Engine::Create(*g, *eo);
      if (!engine.ok()) return Fail(engine.status());
      auto out = (*engine)->RunAll(o.inputs);
      if (!out.ok()) return Fail(out.status());
      verified.emplace(std::move(out).value());
    }
    auto check = [&](const ClientQuery& q, const TensorMap& outputs) {
      if (verified) (*verified)(q, outputs);
    };
    auto r = RunClient(model, o, progress, check);
    if (show) std::fprintf(stderr, "\n");
    if (!r.ok()) return Fail(r.status());
    const int wrong = verified ? verified->wrong() : 0;
    if (wrong > 0) {
      std::fprintf(stderr, "client: %d queries differ from a whole-model run here (largest relative error %g)\n", wrong,
                   verified->worst_exact());
    }
    if (!args->tensors.specs.empty()) {
      if (r->last_outputs.empty()) {
        return Fail(Status::Invalid("--output-tensor: no query finished (is --duration-s too short?)"));
      }
      if (Status s = args->tensors.Write(*g, r->last_outputs); !s.ok()) return FailOutput(s);
    }
    if (!args->trace.empty()) {
      Status s = WriteTextFile(args->trace, ClientTraceCsv(*r));
      if (!s.ok()) return FailOutput(s);
    }
    int offloaded = 0, fell_back = 0;
    for (const auto& q : r->queries) offloaded += q.server_layers > 0, fell_back += q.fell_back;
    std::vector<double> overhead;
    for (size_t i = 0; i < r->step_round_trip_ms.size(); ++i) {
      overhead.push_back(r->step_round_trip_ms[i] - r->step_server_ms[i]);
    }
    int64_t weight_bytes = 0;
    for (const auto& l : g->layers) weight_bytes += LayerWeightBytes(l);
    const QueryCounts& counts = r->counts;
    if (const auto d = FirstDivergence(r->queries)) {
      std::fprintf(stderr,
                   "ionn: warning: queries %zu to %zu took %.1f ms against %.1f ms planned (medians, %+.0f%%): %s\n",
                   d->first, d->last, d->measured_ms, d->predicted_ms, 100 * (d->measured_ms / d->predicted_ms - 1),
                   d->on_server ? "the link or the devices are not what the plan assumed; say the link with "
                                  "--uplink-mbps, --downlink-mbps and --rtt-ms, this device's times with "
                                  "--client-profile or --profile-now"
                                : "this device's layer times are not those of its profile; measure them here with "
                                  "--profile-now, or give the right --client-profile");
    }
    if (args->out.format == "json") {
      ClientReportSetting report;
      RunSetting& setting = report.run;
      setting.model = args->model.Name();  // Load succeeded: a model was given
      setting.uplink_mbps = args->link.uplink_mbps;
      setting.downlink_mbps = args->link.downlink();
      setting.rtt_ms = args->link.rtt_ms;
      setting.model_sha256 = args->model.FileSha256();
      setting.client_profile = args->profiles.client_profile.empty() ? args->emulate_profile
                                                                     : args->profiles.client_profile;
      setting.server_profile = args->profiles.server_profile;
      setting.paper_profiles = args->profiles.paper_profiles;
      setting.client_slowdown = args->profiles.client_slowdown;
      report.ignore_held = args->ignore_held;
      report.arrivals = ArrivalsName(o.arrivals);
      report.deadline_ms = o.deadline_ms;
      report.emulated_profile = o.emulate_profile;
      if (verified) verified->Report(&report);
      setting.slices = sliced->slices;
      const nlohmann::json j = ClientResultToJson(model, *r, report);
      std::printf("%s\n", j.dump(1).c_str());
      return wrong > 0 ? 1 : 0;
    }
    std::printf("server %s (%s), model %s, %s at %s granularity%s\n", r->server.c_str(), r->server_name.c_str(),
                g->name.c_str(), r->plan.algorithm.c_str(), GranularityName(r->plan.granularity),
                sliced->slices > 1 ? (", largest layers in " + std::to_string(sliced->slices) + " slices").c_str() : "");
    std::printf("  partitions uploaded      %d of %zu%s\n", r->sessions.back().acked, r->plan.partitions.size(),
                r->upload_complete ? "" : " (upload incomplete)");
    if (r->held_layers > 0) {
      std::printf("  held by the server       %d layers, %.1f MB not uploaded (partition 0)\n", r->held_layers,
                  r->held_bytes / 1e6);
    }
    if (r->upload_complete) std::printf("  upload                   %.1f ms\n", r->upload_ms);
    {
      const size_t failed = static_cast<size_t>(std::count_if(r->upload_attempts.begin(), r->upload_attempts.end(),
                                                              [](const ClientUploadAttempt& a) { return !a.acked; }));
      std::printf("  weights sent             %.1f MB of %.1f MB in %zu upload calls (%zu cut or refused)%s\n",
                  r->bytes_sent / 1e6, weight_bytes / 1e6, r->upload_attempts.size(), failed,
                  r->resumed_bytes > 0 ? (", " + Fixed(r->resumed_bytes / 1e6, 1) + " MB resumed, not sent again").c_str()
                                       : "");
    }
    std::printf("  queries                  %zu (%d ran layers on the server)\n", r->queries.size(), offloaded);
    if (r->upload_complete) std::printf("  queries during upload    %d\n", r->queries_during_upload);
    std::printf("  first query ends at      %.1f ms\n", r->first_query_end_ms);
    if (!r->queries.empty()) {
      std::vector<double> predicted;
      for (const auto& q : r->queries) predicted.push_back(q.predicted_ms);
      std::printf("  query latency            p50 %.1f ms, p90 %.1f ms, p99 %.1f ms (planned p50 %.1f ms); "
                  "%.2f queries/s\n",
                  counts.latency_p50_ms, counts.latency_p90_ms, counts.latency_p99_ms, NearestRank(predicted, 0.5),
                  counts.throughput_qps);
    }
    if (o.arrivals.kind != Arrivals::Kind::kBackToBack) {
      std::printf("  arrivals                 %s: %zu served, %d dropped, mean wait %.1f ms\n",
                  ArrivalsName(o.arrivals).c_str(), r->queries.size(), r->queries_dropped, counts.wait_mean_ms);
    }
    if (o.deadline_ms >= 0) {
      std::printf("  deadline %.0f ms          met by %.1f%% of the queries\n", o.deadline_ms,
                  100 * counts.deadline_met_share);
    }
    if (!overhead.empty()) {
      std::printf("  query steps              %zu, round trip p50 %.2f ms p99 %.2f ms, of which not server "
                  "execution p50 %.2f ms p99 %.2f ms\n",
                  overhead.size(), NearestRank(r->step_round_trip_ms, 0.5), NearestRank(r->step_round_trip_ms, 0.99),
                  NearestRank(overhead, 0.5), NearestRank(overhead, 0.99));
    }
    std::printf("  planned latency          local %.1f ms, all uploaded %.1f ms%s\n", r->plan.latency_local_ms,
                r->plan.latency_optimal_ms, o.emulate_profile ? " (emulated client profile)" : "");
    if (r->server_lost) {
      std::printf("  server lost              %d of %zu sessions; %d queries recomputed here; %d reconnection attempts\n",
                  static_cast<int>(std::count_if(r->sessions.begin(), r->sessions.end(),
                                                 [](const ClientSession& s) { return !s.lost.empty(); })),
                  r->sessions.size(), fell_back, r->reconnect_attempts);
      for (size_t i = 0; i < r->sessions.size(); ++i) {
        const auto& s = r->sessions[i];
        std::printf("    session %zu at %-16s from %8.1f ms: %d layers held, %d of %d partitions%s%s\n", i,
                    s.server.c_str(), s.opened_ms, s.held_layers, s.acked, s.partitions,
                    s.lost.empty() ? "" : "; lost: ", s.lost.c_str());
      }
      std::printf("  last failure: %s\n", r->server_error.c_str());
    }
    if (verified) {
      std::printf("  verified                 %d of %zu exact queries wrong (largest relative error %.2g)\n", wrong,
                  r->queries.size() - r->queries_approximate, verified->worst_exact());
      if (r->queries_approximate > 0) {
        std::printf("  approximate queries      %d, largest relative error %.2g (not held to the tolerance)\n",
                    r->queries_approximate, verified->worst_approximate());
      }
    }
    if (!r->upload_error.empty()) std::printf("  upload stopped: %s\n", r->upload_error.c_str());
    return wrong > 0 ? 1 : 0;
  });
}

}  // namespace ionn::cli
