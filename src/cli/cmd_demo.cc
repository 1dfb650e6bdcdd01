// The quick-start demo: the local pipeline (model, engine, costs, plans,
// simulation), then the real system in this process: an edge server, a
// link shaped by `ionn link`'s proxy (80 Mbps by default) and an emulated
// client, for recursive-efficiency and original, beside the simulator's
// figures for the same cost graph. A zoo model (zoo AlexNet by default)
// runs on the paper's profiles, its client the ODROID XU4; one's own ONNX
// file on this machine's times, its client --client-slowdown times slower.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include <unistd.h>

#include "ionn/client.h"
#include "ionn/engine.h"
#include "ionn/link.h"
#include "ionn/server.h"
#include "ionn/model_costs.h"
#include "ionn/onnx_io.h"
#include "ionn/sim.h"
#include "ionn/zoo.h"

namespace ionn::cli {

Action RegisterDemo(CLI::App& app) {
  struct Args {
    ModelOptions model;
    ProfileOptions profiles;  // --client-slowdown alone
    LinkRateOptions link;
    bool no_live = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run the whole pipeline on a model: a zoo model with the paper's profiles (default: AlexNet), or your "
              "own ONNX file with a client emulated --client-slowdown times (default 10) slower than this machine");
  args->model.Add(cmd);
  args->link.Add(cmd);
  args->profiles.Add(cmd, kClientSlowdown);  // your own model; not given: 10
  cmd->add_flag("--no-live", args->no_live, "Skip part 6, the real server, link and client (about a minute)");
  return [args]() {
    const double slowdown = args->profiles.client_slowdown > 0 ? args->profiles.client_slowdown : 10;
    const bool zoo = !args->model.given() || !args->model.zoo.empty();
    const std::string zoo_name = args->model.zoo.empty() ? "alexnet" : args->model.zoo;
    if (zoo && args->profiles.client_slowdown > 0) {
      return Fail(Status::Invalid("--client-slowdown is for your own model: a zoo model's client is the paper's "
                                  "ODROID XU4 (its published times)"));
    }
    Result<Graph> g = Status::Internal("no model");
    if (zoo) {
      std::printf("== 1. model: building zoo %s with seeded weights\n", zoo_name.c_str());
      auto built = BuildZooModel(zoo_name, 1);
      if (!built.ok()) return Fail(built.status());
      const std::string path = (std::filesystem::temp_directory_path() / ("ionn-demo-" + zoo_name + ".onnx")).string();
      Status s = WriteOnnxFile(*built, path);
      if (!s.ok()) return Fail(s);
      g = ReadOnnxFile(path);
      std::filesystem::remove(path);
      if (!g.ok()) return Fail(g.status());
      std::printf("   wrote and re-read %s: %zu layers, %lld parameters (%.1f MB)\n\n", path.c_str(), g->layers.size(),
                  static_cast<long long>(g->ParameterCount()), g->ParameterCount() * 4 / 1e6);
    } else {
      std::printf("== 1. model: reading %s\n", args->model.file.c_str());
      g = args->model.Load(/*with_weights=*/true);
      if (!g.ok()) return Fail(g.status());
      std::printf("   %s: %zu layers, %lld parameters (%.1f MB)\n\n", g->name.c_str(), g->layers.size(),
                  static_cast<long long>(g->ParameterCount()), g->ParameterCount() * 4 / 1e6);
    }

    std::printf("== 2. engine: profiling every layer on this machine (1 thread, median of 9 runs)\n");
    auto engine = Engine::Create(*g, EngineOptions{1});
    if (!engine.ok()) return Fail(engine.status());
    TensorMap input;
    for (const auto& in : g->inputs) input[in.name] = SeededInput(in.shape, 1);
    auto here = (*engine)->ProfileLayers(input, 2, 9);
    if (!here.ok()) return Fail(here.status());
    auto whole = (*engine)->RunAll(input);
    if (!whole.ok()) return Fail(whole.status());
    const Tensor& out = whole->at(g->outputs[0]);
    size_t top = 0;
    for (size_t i = 1; i < out.data.size(); ++i) top = out.data[i] > out.data[top] ? i : top;
    std::printf(zoo ? "   whole model ran: output %s, top class %zu (p = %.4f; the weights are random)\n\n"
                    : "   whole model ran: output %s, top class %zu (%.4f; on a seeded random input)\n\n",
                ShapeToString(out.shape).c_str(), top, out.data[top]);

    // The server's times: measured here; the client's: the paper's ODROID
    // XU4 for a zoo model, this machine's times the slowdown for a file.
    const Profile server_times = ProfileFromTimes(*g, *here, /*server_column=*/true);
    Profile client_times = ProfileFromTimes(*g, *here, /*server_column=*/false, slowdown);
    char link[96];
    std::snprintf(link, sizeof link, "%g Mbps up, %g down, rtt %g ms", args->link.uplink_mbps, args->link.downlink(),
                  args->link.rtt_ms);
    Result<CostGraph> costs = Status::Internal("no costs");
    if (zoo) {
      std::printf("== 3. costs: paper profiles (ODROID XU4 client, GTX 1080 Ti server), link %s\n", link);
      CostSources sources;
      sources.paper_profiles = true;
      sources.paper_profile_dir = PaperProfileDir();
      auto paper = PaperCostSources(zoo_name, PaperProfileDir());
      if (!paper.ok()) return Fail(paper.status());
      auto published = ReadProfileCsv(paper->client_profile);
      if (!published.ok()) return Fail(published.status());
      client_times = std::move(published).value();
      auto shapes = BuildZooModel(zoo_name, 1, /*with_weights=*/false);
      if (!shapes.ok()) return Fail(shapes.status());
      costs = LoadModelCosts(*shapes, sources, args->link.Spec());
    } else {
      std::printf("== 3. costs: server = this machine (step 2), client = %g times slower, link %s\n", slowdown,
                  link);
      costs = BuildCostGraph(*g, client_times, &server_times, nullptr, args->link.Spec());
    }
    if (!costs.ok()) return Fail(costs.status());
    std::printf("   %-10s %-10s %-15s %10s %10s %11s %11s %11s\n", "layer", "kind", "output", "weights MB",
                "here ms", "client ms", "server ms", "upload ms");
    for (size_t k = 0; k < g->layers.size(); ++k) {
      const Layer& l = g->layers[k];
      const CostLayer& c = costs->layer(static_cast<int>(k));
      std::printf("   %-10s %-10s %-15s %10.2f %10.3f %11.3f %11.4f %11.1f\n", l.name.c_str(), LayerKindName(l.kind),
                  ShapeToString(l.output_shape).c_str(), LayerWeightBytes(l) / 1e6, (*here)[k].median_ms, c.client_ms,
                  c.server_ms, c.upload_ms);
    }
    std::printf(zoo ? "   (here: measured now by ionn's engine; client and server: the paper's published profiles)\n"
                    : "   (here: measured now by ionn's engine; the server's times, the client's are here x slowdown)\n");
    std::printf("\n== 4. plans and 5. simulated experiment (queries back to back while uploading)\n");
    std::printf("   %-22s %10s %10s %14s %16s %14s\n", "algorithm", "partitions", "largest", "upload ms",
                "queries (upload)", "first query ms");
    for (const auto& name : PlannerNames()) {
      PlannerOptions po;
      po.algorithm = name;
      auto plan = MakePlan(*costs, po);
      if (!plan.ok()) return Fail(plan.status());
      auto r = Simulate(*costs, *plan, SimOptions{});
      if (!r.ok()) return Fail(r.status());
      std::printf("   %-22s %10d %9.1f%% %14.1f %16d %14.1f\n", name.c_str(), r->partitions,
                  100 * r->largest_partition_share, r->upload_ms, r->queries_during_upload, r->first_query_end_ms);
    }
    if (zoo && zoo_name == "alexnet") {
      std::printf("\n   The paper (EMDL'19) measured 56.8 queries during upload with original and 88.1 with\n"
                  "   recursive-efficiency on AlexNet at 80 Mbps.");
    } else if (zoo) {
      std::printf("\n   The paper (EMDL'19) reports its figures for AlexNet at 80 Mbps (56.8 queries during upload\n"
                  "   with original, 88.1 with recursive-efficiency); for %s it saw %s.",
                  zoo_name.c_str(), zoo_name == "resnet50" ? "a gain" : "no clear difference");
    }
    if (zoo) std::printf(" Try: build/bin/ionn plan --zoo %s --paper-profiles\n", zoo_name.c_str());
    if (args->no_live) return 0;

    std::printf("\n== 6. the real system here: ionn serve, ionn link (%s), ionn client emulating\n"
                "   %s (each local segment computed, then padded to its times)\n",
                link, zoo ? "the ODROID XU4" : "a device this many times slower");
    const bool tty = isatty(STDOUT_FILENO);
    LiveOptions lo;
    lo.client_profile = client_times;
    lo.link = args->link.Spec();
    lo.returning = true;
    lo.server_times = server_times;
    lo.input = input;
    lo.starting = [tty, first = true](const std::string& algorithm) mutable {
      std::printf("%s   %s:\n", tty && !first ? "\n" : "", algorithm.c_str());
      first = false;
    };
    lo.progress = [tty](const ClientProgress& p) {
      if (!tty) return;
      std::printf("\r   upload %5.1f%% (%d/%d partitions) | queries %d | last %.0f ms, %d layers on the server   ",
                  p.bytes_total ? 100.0 * p.bytes_acked / p.bytes_total : 100.0, p.partitions_acked, p.partitions,
                  p.queries, p.last_latency_ms, p.last_server_layers);
      std::fflush(stdout);
    };
    auto runs = RunLiveExperiment(*g, lo);
    if (tty) std::printf("\n");
    if (!runs.ok()) return Fail(runs.status());
    std::printf("\n   %-22s %22s %22s %18s\n", "", "queries during upload", "first offloaded query", "upload s");
    std::printf("   %-22s %11s %10s %11s %10s %9s %8s\n", "algorithm", "live", "sim", "live ms", "sim ms", "live", "sim");
    for (const LiveRun& r : *runs) {
      if (r.algorithm == "returning client") continue;
      std::printf("   %-22s %11d %10d %11.0f %10.0f %9.1f %8.1f\n", r.algorithm.c_str(), r.live.queries_during_upload,
                  r.sim.queries_during_upload, FirstOffloadedQueryEndMs(r.live.plan, MeasuredResult(r.live)),
                  FirstOffloadedQueryEndMs(r.live.plan, r.sim), r.live.upload_ms / 1000, r.sim.upload_ms / 1000);
    }
    std::printf("   (live: this machine through ionn link; sim: the simulator on the same cost graph, link sharing fair)\n");
    const ClientResult& again = runs->back().live;
    std::printf("\n   the client comes back: the server holds %d of %zu layers (%.1f MB not uploaded); its first query\n"
                "   ends at %.0f ms with %d layers on the server (planned %.0f ms: the optimal placement)\n",
                again.held_layers, g->layers.size(), again.held_bytes / 1e6, again.first_query_end_ms,
                again.queries.empty() ? 0 : again.queries[0].server_layers,
                again.queries.empty() ? 0.0 : again.queries[0].predicted_ms);
    return 0;
  };
}

}  // namespace ionn::cli
