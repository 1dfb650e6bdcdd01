// `ionn experiment`: the paper's experiment (section 4) on the five zoo
// models with the published profiles, every planner, both granularities,
// the three link-sharing policies and a bandwidth sweep (RunPaperGrid,
// experiment.h). Writes the rendered CSVs, gnuplot script and markdown
// summary, and runs gnuplot for the figures.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "ionn/experiment.h"

namespace ionn::cli {

namespace fs = std::filesystem;

Action RegisterExperiment(CLI::App& app) {
  struct Args {
    std::string out = "experiment-out", markdown;
    std::vector<double> sweep = {10, 20, 40, 80, 120, 160, 200};
    bool no_plots = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("experiment",
                                     "The paper's experiment: every planner on the five zoo models with the published "
                                     "profiles; CSVs, figures (gnuplot) and a markdown summary");
  cmd->add_option("--out", args->out, "Output folder")->capture_default_str();
  cmd->add_option("--markdown", args->markdown, "Markdown summary file (default: OUT/EXPERIMENTS.md)");
  cmd->add_option("--sweep-mbps", args->sweep, "Uplink bandwidths of the sweep (must include 80)")->capture_default_str();
  cmd->add_flag("--no-plots", args->no_plots, "Write CSVs and the gnuplot script only");
  return [args]() {
    if (std::find(args->sweep.begin(), args->sweep.end(), kPaperUplinkMbps) == args->sweep.end()) {
      return Fail(Status::Invalid("--sweep-mbps must include 80, the paper's bandwidth"));
    }
    std::error_code ec;
    fs::create_directories(args->out, ec);
    if (ec) return Fail(Status::Io("cannot create '" + args->out + "': " + ec.message()));
    ExperimentTable table;
    PaperGridOptions grid;
    grid.sweep_mbps = args->sweep;
    grid.paper_profile_dir = PaperProfileDir();
    Status s = RunPaperGrid(grid, &table, [](const std::string& model) {
      std::fprintf(stderr, "experiment: %s\n", model.c_str());
    });
    if (!s.ok()) return Fail(s);
    ExperimentReportOptions report;
    report.sweep_mbps = args->sweep;
    auto files = RenderExperimentFiles(table, report);
    if (!files.ok()) return Fail(files.status());
    fs::create_directories(args->out + "/data", ec);
    if (ec) return Fail(Status::Io("cannot create '" + args->out + "/data': " + ec.message()));
    for (const auto& [name, text] : *files) {
      s = WriteTextFile(args->out + "/" + name, text);
      if (!s.ok()) return Fail(s);
    }
    if (!args->no_plots) {
      const std::string cmd = "cd '" + args->out + "' && gnuplot plots.gp";
      if (std::system(cmd.c_str()) != 0) {
        return Fail(Status::Io("gnuplot failed (is gnuplot installed? run scripts/setup.sh)"));
      }
    }
    const std::string md = args->markdown.empty() ? args->out + "/EXPERIMENTS.md" : args->markdown;
    report.files_dir = fs::relative(fs::absolute(args->out), fs::absolute(md).parent_path()).string();
    auto markdown = RenderExperimentMarkdown(table, report);
    if (!markdown.ok()) return Fail(markdown.status());
    s = WriteTextFile(md, *markdown);
    if (!s.ok()) return Fail(s);
    std::fprintf(stderr, "experiment: wrote %s and %s/\n", md.c_str(), args->out.c_str());
    return 0;
  };
}

}  // namespace ionn::cli
