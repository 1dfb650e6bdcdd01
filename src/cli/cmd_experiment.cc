// `ionn experiment`: the paper's experiment (section 4) on the five zoo
// models with the published profiles, every planner, both granularities,
// the three link-sharing policies and a bandwidth sweep (RunPaperGrid,
// experiment.h). Writes the rendered CSVs, gnuplot script and markdown
// summary, and runs gnuplot for the figures. With a model (--model FILE or
// --zoo NAME): every planner at each rate on that model alone
// (own_experiment.cc).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "ionn/engine.h"
#include "ionn/experiment.h"
#include "ionn/zoo.h"

namespace ionn::cli {

namespace fs = std::filesystem;

namespace {

// The live runs of `model` at the paper's bandwidth: "live" rows (measured)
// and "live-sim" rows (the simulator on the same cost graph) at layer
// granularity with link sharing fair.
Status AddLiveRows(const std::string& model, EngineBackend backend, ExperimentTable* table) {
  std::fprintf(stderr, "experiment: live, %s: measuring the server's layer times here\n", model.c_str());
  IONN_ASSIGN_OR_RETURN(Graph g, BuildZooModel(model, 1));
  TensorMap input;
  for (const auto& in : g.inputs) input[in.name] = SeededInput(in.shape, 1);
  LiveOptions lo;
  lo.backend = backend;
  IONN_ASSIGN_OR_RETURN(const CostSources sources, PaperCostSources(model, PaperProfileDir()));
  IONN_ASSIGN_OR_RETURN(lo.client_profile, ReadProfileCsv(sources.client_profile));
  lo.link = MakeLinkSpec(kPaperUplinkMbps);
  // The paper's two, and ionn's planner for the window with progressive
  // uploads and sub-layer slices (DESIGN.md, "Beyond the paper").
  lo.variants = {{"original"},
                 {"recursive-efficiency"},
                 {"window-search", UploadEncoding::kLossless, 0},
                 {"window-search", UploadEncoding::kProgressive, 0},
                 {"window-search", UploadEncoding::kInt8, 0}};
  lo.input = input;
  IONN_ASSIGN_OR_RETURN(lo.server_times, MeasureServerTimes(g, input, backend));
  lo.starting = [&model](const std::string& algorithm) {
    std::fprintf(stderr, "experiment: live, %s, %s (server, link and client in this process)\n", model.c_str(),
                 algorithm.c_str());
  };
  IONN_ASSIGN_OR_RETURN(std::vector<LiveRun> runs, RunLiveExperiment(g, lo));
  for (const LiveRun& r : runs) {
    ExperimentKey key{model, Granularity::kLayer, r.algorithm, LinkSharing::kFair, kPaperUplinkMbps, "live"};
    const double input_up_ms = r.costs.num_inputs() > 0 ? r.costs.inputs()[0].up_ms : 0;
    table->Add(key, {r.live.plan, MeasuredResult(r.live), input_up_ms});
    key.source = "live-sim";
    table->Add(key, {r.live.plan, r.sim, input_up_ms});
  }
  return Status::Ok();
}

}  // namespace

Action RegisterExperiment(CLI::App& app) {
  struct Args {
    std::string out = "experiment-out", markdown;
    std::vector<double> sweep = {10, 20, 40, 80, 120, 160, 200};
    bool no_plots = false, live = false;
    std::string live_model = "alexnet";
    std::string upload_encoding = "exact", slices = "off";
    OwnExperimentOptions own;
    EngineFlags engine;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("experiment",
                                     "The paper's experiment: every planner on the five zoo models with the published "
                                     "profiles; CSVs, figures (gnuplot) and a markdown summary. With a model (MODEL, "
                                     "--model or --zoo): every planner at each of --rates on that model, with its "
                                     "profiles or, without them, this machine's times and a client --client-slowdown "
                                     "times (default 10) slower");
  args->own.model.Add(cmd);
  args->own.profiles.Add(cmd, kClientProfile | kServerProfile | kRegression | kPaperProfiles | kClientSlowdown);
  cmd->add_option("--plan", args->own.plans,
                  "With a model: a plan made elsewhere, as NAME=FILE (JSON as for `ionn simulate --plan`), run "
                  "beside the planners at every rate; repeatable")
      ->type_name("NAME=FILE")
      ->group(kPlanGroup);
  cmd->add_option("--rates", args->sweep, "Uplink rates of the sweep, Mbps, e.g. 10,20,40,80 (the paper's grid: must include 80)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(RateMbps());
  cmd->add_option("-o,--output", args->out, "Write the report to this folder: CSVs, figures and a markdown summary")
      ->type_name("DIR")
      ->capture_default_str()
      ->check(OutputFolder())
      ->group(kOutputGroup);
  cmd->add_option("--markdown", args->markdown, "Markdown summary file (default: OUTPUT/EXPERIMENTS.md)")
      ->type_name("FILE")
      ->check(OutputFile())
      ->group(kOutputGroup);
  cmd->add_flag("--no-plots", args->no_plots, "Write CSVs and the gnuplot script only")->group(kOutputGroup);
  cmd->add_flag("--live", args->live,
                "Also run the experiment for real here (server, link at 80 Mbps, client emulating the ODROID XU4; "
                "the paper's two planners, then window-search with sub-layer slices and lossless, progressive and int8 "
                "uploads; under a minute each) beside the simulator on the same cost graph");
  args->engine.Add(cmd, /*with_threads=*/false);
  AddUploadEncodingOption(cmd, &args->upload_encoding);
  AddSlicesOption(cmd, &args->slices);
  cmd->add_option("--live-model", args->live_model, "Zoo model of the live runs")
      ->capture_default_str()
      ->check(CLI::IsMember({"alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"}));
  return [args]() {
    auto engine = args->engine.Get();
    if (!engine.ok()) return Fail(engine.status());
    if (args->own.model.given()) {
      if (args->live) return Fail(Status::Invalid("--live runs the paper's grid only (give no --model)"));
      if (args->upload_encoding != "exact" || args->slices != "off") {
        return Fail(Status::Invalid("--upload-encoding and --slices run the paper's grid only (give no --model)"));
      }
      if (args->own.profiles.any() && args->own.profiles.client_slowdown > 0) {
        return Fail(Status::Invalid("--client-slowdown scales the times measured here: give it without profiles"));
      }
      std::vector<double> rates = args->sweep;
      std::sort(rates.begin(), rates.end());
      if (std::adjacent_find(rates.begin(), rates.end()) != rates.end()) {
        return Fail(Status::Invalid("--rates: a rate given twice"));
      }
      OwnExperimentOptions o = args->own;
      o.rates = rates;
      o.out = args->out;
      o.markdown = args->markdown;
      o.no_plots = args->no_plots;
      o.backend = engine->backend;
      return RunOwnModelExperiment(o);
    }
    const ProfileOptions& p = args->own.profiles;
    if (p.any() || p.client_slowdown > 0 || !args->own.model.shapes.specs.empty() || !args->own.plans.empty()) {
      return Fail(Status::Invalid("profiles, --client-slowdown, --input-shape and --plan go with --model or --zoo (the paper's grid uses the "
                                  "published profiles)"));
    }
    if (std::find(args->sweep.begin(), args->sweep.end(), kPaperUplinkMbps) == args->sweep.end()) {
      return Fail(Status::Invalid("--rates must include 80, the paper's bandwidth"));
    }
    std::error_code ec;
    fs::create_directories(args->out, ec);
    if (ec) return FailOutput(Status::Io("cannot create '" + args->out + "': " + ec.message()));
    ExperimentTable table;
    PaperGridOptions grid;
    grid.sweep_mbps = args->sweep;
    grid.paper_profile_dir = PaperProfileDir();
    grid.encoding = ParseUploadEncoding(args->upload_encoding).value();  // checked by the option
    grid.slices = SliceCount(args->slices);
    std::string variant;
    if (args->upload_encoding != "exact") variant += "--upload-encoding " + args->upload_encoding;
    if (args->slices != "off") variant += std::string(variant.empty() ? "" : " ") + "--slices " + args->slices;
    Status s = RunPaperGrid(grid, &table, [](const std::string& model) {
      std::fprintf(stderr, "experiment: %s\n", model.c_str());
    });
    if (!s.ok()) return Fail(s);
    if (args->live) {
      s = AddLiveRows(args->live_model, engine->backend, &table);
      if (!s.ok()) return Fail(s);
    }
    ExperimentReportOptions report;
    report.sweep_mbps = args->sweep;
    report.variant = variant;
    auto files = RenderExperimentFiles(table, report);
    if (!files.ok()) return Fail(files.status());
    if (args->live) {  // the measured rows and the simulator's on their cost graphs, in the summary's columns
      (*files)["summary_live.csv"] = RenderSummaryCsv(table, "live");
      (*files)["summary_live_sim.csv"] = RenderSummaryCsv(table, "live-sim");
    }
    fs::create_directories(args->out + "/data", ec);
    if (ec) return FailOutput(Status::Io("cannot create '" + args->out + "/data': " + ec.message()));
    for (const auto& [name, text] : *files) {
      s = WriteTextFile(args->out + "/" + name, text);
      if (!s.ok()) return FailOutput(s);
    }
    if (!args->no_plots) {
      s = RunGnuplot(args->out);
      if (!s.ok()) return Fail(s);
    }
    const std::string md = args->markdown.empty() ? args->out + "/EXPERIMENTS.md" : args->markdown;
    report.files_dir = fs::relative(fs::absolute(args->out), fs::absolute(md).parent_path()).string();
    auto markdown = RenderExperimentMarkdown(table, report);
    if (!markdown.ok()) return Fail(markdown.status());
    // Sections other scripts write into the same file (between "<!-- begin:
    // NAME -->" and "<!-- end: NAME -->" lines) are kept, at the end.
    std::string kept;
    if (fs::exists(md)) {
      auto old = ReadSmallFile(md, "--markdown", size_t{16} << 20);
      if (!old.ok()) return Fail(old.status());
      std::istringstream lines(*old);
      bool inside = false;
      for (std::string line; std::getline(lines, line);) {
        inside = inside || line.rfind("<!-- begin: ", 0) == 0;
        if (inside) kept += line + "\n";
        if (line.rfind("<!-- end: ", 0) == 0) inside = false, kept += "\n";
      }
    }
    s = WriteTextFile(md, kept.empty() ? *markdown : *markdown + "\n" + kept.substr(0, kept.size() - 1));
    if (!s.ok()) return FailOutput(s);
    std::fprintf(stderr, "experiment: wrote %s and %s/\n", md.c_str(), args->out.c_str());
    return 0;
  };
}

}  // namespace ionn::cli
