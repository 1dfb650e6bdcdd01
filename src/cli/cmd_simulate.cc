#include <iostream>

#include "commands.h"
#include "ionn/sim.h"

namespace ionn::cli {

Action RegisterSimulate(CLI::App& app) {
  struct Args {
    CostOptions costs;
    PlanOptions plan;
    OutputOptions out;
    std::string sharing = "none";
    ArrivalOptions arrivals;
    LinkTraceOptions traces;
    SimOptions sim;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("simulate", "Replay the paper's experiment for one plan: upload + queries (back to back, or as --arrivals says)");
  args->costs.Add(cmd);
  args->plan.Add(cmd, /*with_algorithm=*/true, /*with_plan_file=*/true);
  cmd->add_option("--link-sharing", args->sharing, "How query tensors share the uplink with the upload: none, fair or priority")
      ->capture_default_str();
  cmd->add_option("--window-ms", args->sim.window_ms, "Count queries finished within this time (default: the all-at-once upload time)")
      ->check(FiniteIn(0, 1e12, "a time in ms", /*lo_exclusive=*/true));
  cmd->add_option("--queries-after-upload", args->sim.queries_after_upload, "Queries raised after the upload ends")
      ->capture_default_str()->check(CLI::Range(0, 1000000));
  args->traces.Add(cmd);
  args->arrivals.Add(cmd);
  args->out.Add(cmd, {"table", "json"});
  return args->out.Wrap([args]() {
    auto sharing = ParseLinkSharing(args->sharing);
    if (!sharing.ok()) return Fail(sharing.status());
    args->sim.sharing = *sharing;
    auto arrivals = args->arrivals.Get();
    if (!arrivals.ok()) return Fail(arrivals.status());
    args->sim.arrivals = std::move(arrivals).value();
    args->sim.deadline_ms = args->arrivals.deadline_ms;
    // A link trace: the simulator replays it; the planner assumes the rate
    // given, or the trace's planning rate (RateTrace::PlanningBytesPerMs).
    const LinkTraceOptions& traces = args->traces;
    if (traces.any() && !args->costs.costs_file.empty()) {
      return Fail(Status::Invalid("--uplink-trace and --downlink-trace need the rates the costs are computed at: give "
                                  "a model (and --uplink-mbps), not --costs"));
    }
    auto up = LinkTraceOptions::Read(traces.uplink, "--uplink-trace");
    if (!up.ok()) return Fail(up.status());
    auto down = LinkTraceOptions::Read(traces.downlink, "--downlink-trace");
    if (!down.ok()) return Fail(down.status());
    LinkRateOptions& link = args->costs.link;
    const bool downlink_given = link.options[1]->count() > 0;
    const auto planning_mbps = [](const RateTrace& t, const char* option, const std::string& file) -> Result<double> {
      const double mbps = t.PlanningBytesPerMs() / kBytesPerMsPerMbps;
      if (!(mbps >= 1e-3)) {
        return Status::Invalid(std::string(option) + " '" + file + "' starts at 0 Mbps: give the rate the planner " +
                               "assumes (" + (option[2] == 'u' ? "--uplink-mbps" : "--downlink-mbps") + ")");
      }
      return mbps;
    };
    if (*up && link.options[0]->count() == 0) {
      auto mbps = planning_mbps(**up, "--uplink-trace", traces.uplink);
      if (!mbps.ok()) return Fail(mbps.status());
      link.uplink_mbps = *mbps;
    }
    if (*down && !downlink_given) {
      auto mbps = planning_mbps(**down, "--downlink-trace", traces.downlink);
      if (!mbps.ok()) return Fail(mbps.status());
      link.downlink_mbps = *mbps;
    }
    if (!*down && !downlink_given && *up) link.downlink_mbps = link.uplink_mbps;  // the planned uplink's, as always
    args->sim.uplink_trace = *up;
    args->sim.downlink_trace = *down;
    args->sim.uplink_bytes_per_ms = link.uplink_mbps * kBytesPerMsPerMbps;
    args->sim.downlink_bytes_per_ms = link.downlink() * kBytesPerMsPerMbps;
    auto m = LoadAndPlan(args->costs, args->plan);
    if (!m.ok()) return Fail(m.status());
    auto r = Simulate(m->costs, m->plan, args->sim);
    if (!r.ok()) return Fail(r.status());
    RunSetting setting = args->costs.Setting();
    setting.link_sharing = LinkSharingName(args->sim.sharing);
    setting.slices = m->slices;
    setting.uplink_trace = traces.uplink;
    setting.downlink_trace = traces.downlink;
    std::cout << (args->out.format == "json" ? SimResultToJson(m->costs, *r, m->plan, setting)
                                         : SimResultToTable(*r, m->plan));
    return 0;
  });
}

}  // namespace ionn::cli
