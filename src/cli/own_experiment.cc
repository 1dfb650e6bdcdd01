// `ionn experiment --model F.onnx`: the paper's experiment on one's own
// model: every planner at every rate of the sweep, simulated, with the
// per-layer table, CSVs, a gnuplot script and figures, and a markdown
// summary. The costs come from the profiles given, or else from this
// machine: the server's times measured here, the client's those times
// --client-slowdown times over.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "commands.h"
#include "ionn/format.h"
#include "ionn/version.h"

namespace ionn::cli {
namespace {

namespace fs = std::filesystem;

struct SweepRow {
  double mbps = 0;
  std::string algorithm;
  UploadPlan plan;
  SimResult result;
};

// The cost graph of `model` at `mbps` both ways.
using CostsAt = std::function<Result<CostGraph>(double mbps)>;

Result<CostsAt> MakeCostSource(const Graph& model, const OwnExperimentOptions& o, std::string* setup) {
  const ProfileOptions& p = o.profiles;
  if (p.any()) {
    const CostSources sources = p.Sources();
    *setup = "the profiles given (" +
             std::string(p.paper_profiles ? "the paper's for those not given" : "client " + p.client_profile) + ")";
    return CostsAt([model, sources](double mbps) { return LoadModelCosts(model, sources, MakeLinkSpec(mbps)); });
  }
  std::fprintf(stderr, "experiment: profiling %s here (1 thread, median of 9 runs per layer)\n", model.name.c_str());
  EngineOptions eo;
  eo.backend = o.backend;
  IONN_ASSIGN_OR_RETURN(auto engine, Engine::Create(model, eo));
  TensorMap input;
  for (const auto& in : model.inputs) input[in.name] = SeededInput(in.shape, 1);
  IONN_ASSIGN_OR_RETURN(auto times, engine->ProfileLayers(input, 2, 9));
  const Profile client = ProfileFromTimes(model, times, /*server_column=*/false, o.ClientSlowdown());
  const Profile server = ProfileFromTimes(model, times, /*server_column=*/true);
  *setup = "the server's layer times measured here, the client's " + Fixed(o.ClientSlowdown(), 1) +
           " times those (--client-slowdown)";
  return CostsAt([model, client, server](double mbps) {
    return BuildCostGraph(model, client, &server, nullptr, MakeLinkSpec(mbps));
  });
}

std::string LayersCsv(const Graph& model, const CostGraph& costs, double mbps) {
  std::ostringstream csv;
  csv << "layer,kind,output_shape,weight_bytes,client_ms,server_ms,uplink_mbps,upload_ms\n";
  for (size_t k = 0; k < model.layers.size(); ++k) {
    const Layer& l = model.layers[k];
    const CostLayer& c = costs.layer(static_cast<int>(k));
    csv << l.name << "," << LayerKindName(l.kind) << ",\"" << ShapeToString(l.output_shape) << "\","
        << LayerWeightBytes(l) << "," << Fixed(c.client_ms, 4) << "," << Fixed(c.server_ms, 4) << ","
        << mbps << "," << Fixed(c.upload_ms, 3) << "\n";
  }
  return csv.str();
}

// Rows by planner, then rate: each planner's rows contiguous, so that
// gnuplot draws each as one line.
std::string SweepCsv(std::vector<SweepRow> rows, const std::vector<std::string>& algorithms) {
  const auto rank = [&](const std::string& a) { return std::find(algorithms.begin(), algorithms.end(), a); };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const SweepRow& x, const SweepRow& y) { return rank(x.algorithm) < rank(y.algorithm); });
  std::ostringstream csv;
  csv << "uplink_mbps,algorithm,partitions,upload_ms,queries_during_upload,window_ms,queries_in_window,"
         "first_query_end_ms,first_offloaded_query_end_ms,latency_local_ms,latency_optimal_ms\n";
  for (const SweepRow& r : rows) {
    csv << r.mbps << "," << r.algorithm << "," << r.plan.partitions.size() << "," << Fixed(r.result.upload_ms, 2) << ","
        << r.result.queries_during_upload << "," << Fixed(r.result.window_ms, 2) << "," << r.result.queries_in_window
        << "," << Fixed(r.result.first_query_end_ms, 2) << "," << Fixed(FirstOffloadedQueryEndMs(r.plan, r.result), 2)
        << "," << Fixed(r.plan.latency_local_ms, 3) << "," << Fixed(r.plan.latency_optimal_ms, 3) << "\n";
  }
  return csv.str();
}

// Two figures against the rate, a line per planner: queries during the
// upload, and queries within the all-at-once upload time.
std::string PlotScript(const std::vector<std::string>& algorithms) {
  std::ostringstream gp;
  gp << "set datafile separator ','\nset key top left\nset logscale x 2\nset xlabel 'uplink (Mbps)'\n"
        "set terminal pngcairo size 900,560\n";
  for (const auto& [file, column, label] :
       {std::tuple{"fig_queries_during_upload", 5, "queries during upload"},
        std::tuple{"fig_queries_in_window", 7, "queries within the all-at-once upload time"}}) {
    gp << "set output '" << file << ".png'\nset ylabel '" << label << "'\nplot ";
    for (size_t i = 0; i < algorithms.size(); ++i) {
      gp << (i ? ", " : "") << "'sweep.csv' using (strcol(2) eq '" << algorithms[i] << "' ? $1 : NaN):" << column
         << " with linespoints title '" << algorithms[i] << "'";
    }
    gp << "\n";
  }
  return gp.str();
}

std::string Markdown(const Graph& model, const OwnExperimentOptions& o, const std::string& setup,
                     const std::string& files_dir, const std::vector<SweepRow>& rows,
                     const std::vector<std::string>& algorithms, const CostGraph& first_costs) {
  std::ostringstream md;
  md << "# The experiment on " << model.name << "\n\nGenerated by `ionn experiment` (ionn " << kVersion
     << ") for `" << o.model.Name() << "`";
  const std::string sha = o.model.FileSha256();
  if (!sha.empty()) md << " (SHA-256 " << sha.substr(0, 16) << "...)";
  md << ": " << model.layers.size() << " layers, " << Fixed(model.ParameterCount() * 4 / 1e6, 1)
     << " MB of weights. Costs: " << setup
     << ". Every planner, the paper's protocol (queries back to back from the first partition's arrival, link "
        "sharing none), simulated at each uplink rate (downlink the same, no round trip).\n\n";
  md << "## Queries during the upload / within the all-at-once upload time\n\n| Mbps |";
  for (const auto& a : algorithms) md << " " << a << " |";
  md << "\n| ---: |";
  for (size_t i = 0; i < algorithms.size(); ++i) md << " ---: |";
  md << "\n";
  for (size_t i = 0; i < rows.size(); i += algorithms.size()) {
    md << "| " << rows[i].mbps << " |";
    for (size_t a = 0; a < algorithms.size(); ++a) {
      const SimResult& r = rows[i + a].result;
      md << " " << r.queries_during_upload << " / " << r.queries_in_window << " |";
    }
    md << "\n";
  }
  md << "\n![queries during upload](" << files_dir << "/fig_queries_during_upload.png)\n"
     << "![queries in the window](" << files_dir << "/fig_queries_in_window.png)\n\n";
  md << "## Layers (upload at " << rows.front().mbps << " Mbps)\n\n"
     << "| layer | kind | output | weights MB | client ms | server ms | upload ms |\n"
     << "| --- | --- | --- | ---: | ---: | ---: | ---: |\n";
  for (size_t k = 0; k < model.layers.size(); ++k) {
    const Layer& l = model.layers[k];
    const CostLayer& c = first_costs.layer(static_cast<int>(k));
    md << "| " << l.name << " | " << LayerKindName(l.kind) << " | " << ShapeToString(l.output_shape) << " | "
       << Fixed(LayerWeightBytes(l) / 1e6, 2) << " | " << Fixed(c.client_ms, 3) << " | " << Fixed(c.server_ms, 4)
       << " | " << Fixed(c.upload_ms, 1) << " |\n";
  }
  md << "\nData: `" << files_dir << "/sweep.csv` (every row), `" << files_dir << "/layers.csv`.\n";
  return md.str();
}

}  // namespace

int RunOwnModelExperiment(const OwnExperimentOptions& o) {
  auto model = o.model.Load(/*with_weights=*/true);
  if (!model.ok()) return Fail(model.status());
  std::string setup;
  auto costs_at = MakeCostSource(*model, o, &setup);
  if (!costs_at.ok()) return Fail(costs_at.status());
  // The planners, then each plan given (its name, its JSON).
  std::vector<std::string> algorithms = PlannerNames();
  std::map<std::string, std::string> given;
  for (const std::string& spec : o.plans) {
    const size_t eq = spec.find('=');
    const std::string name = eq == std::string::npos ? "" : spec.substr(0, eq);
    if (name.empty() || eq + 1 >= spec.size() || name.find_first_of(",' \"") != std::string::npos) {
      return Fail(Status::Invalid("--plan: '" + spec.substr(0, 80) + "' is not NAME=FILE (a name without commas, "
                                  "quotes or spaces)"));
    }
    if (std::find(algorithms.begin(), algorithms.end(), name) != algorithms.end()) {
      return Fail(Status::Invalid("--plan: the name '" + name + "' is taken (a planner's, or given twice)"));
    }
    auto text = ReadSmallFile(spec.substr(eq + 1), "--plan " + name, size_t{64} << 20);
    if (!text.ok()) return Fail(text.status());
    given[name] = std::move(text).value();
    algorithms.push_back(name);
  }
  std::vector<SweepRow> rows;
  std::optional<CostGraph> first_costs;
  for (double mbps : o.rates) {
    auto costs = (*costs_at)(mbps);
    if (!costs.ok()) return Fail(costs.status());
    std::fprintf(stderr, "experiment: %s at %g Mbps\n", model->name.c_str(), mbps);
    if (!first_costs) first_costs = *costs;
    for (const auto& algorithm : algorithms) {
      Result<UploadPlan> plan = Status::Internal("no plan");
      if (given.count(algorithm)) {
        plan = PlanFromJson(*costs, given[algorithm]);
        if (!plan.ok()) return Fail(Status::Invalid("--plan " + algorithm + ": " + plan.status().message()));
        plan->algorithm = algorithm;
      } else {
        PlannerOptions po;
        po.algorithm = algorithm;
        plan = MakePlan(*costs, po);
      }
      if (!plan.ok()) return Fail(plan.status());
      auto r = Simulate(*costs, *plan, SimOptions{});
      if (!r.ok()) return Fail(r.status());
      rows.push_back({mbps, algorithm, std::move(plan).value(), std::move(r).value()});
    }
  }
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) return FailOutput(Status::Io("cannot create '" + o.out + "': " + ec.message()));
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"layers.csv", LayersCsv(*model, *first_costs, o.rates.front())},
           {"sweep.csv", SweepCsv(rows, algorithms)},
           {"plots.gp", PlotScript(algorithms)}}) {
    Status s = WriteTextFile(o.out + "/" + name, text);
    if (!s.ok()) return FailOutput(s);
  }
  if (!o.no_plots) {
    Status plotted = RunGnuplot(o.out);
    if (!plotted.ok()) return Fail(plotted);
  }
  const std::string md = o.markdown.empty() ? o.out + "/EXPERIMENTS.md" : o.markdown;
  const std::string files_dir = fs::relative(fs::absolute(o.out), fs::absolute(md).parent_path()).string();
  Status s = WriteTextFile(md, Markdown(*model, o, setup, files_dir, rows, algorithms, *first_costs));
  if (!s.ok()) return FailOutput(s);
  std::fprintf(stderr, "experiment: wrote %s and %s/\n", md.c_str(), o.out.c_str());
  return 0;
}

}  // namespace ionn::cli
