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
    ReplanFlags replan;
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
  args->replan.Add(cmd);
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
    LinkRateOptions& link = args->costs.link;
    auto loaded = traces.Load(&link);
    if (!loaded.ok()) return Fail(loaded.status());
    args->sim.uplink_trace = loaded->uplink;
    args->sim.downlink_trace = loaded->downlink;
    args->sim.uplink_bytes_per_ms = link.uplink_mbps * kBytesPerMsPerMbps;
    args->sim.downlink_bytes_per_ms = link.downlink() * kBytesPerMsPerMbps;
    auto replan = args->replan.Get(/*with_oracle=*/true, loaded->uplink != nullptr);
    if (!replan.ok()) return Fail(replan.status());
    args->sim.replan = *replan;
    args->sim.replan.rtt_ms = link.rtt_ms;
    auto m = LoadAndPlan(args->costs, args->plan);
    if (!m.ok()) return Fail(m.status());
    auto mode = args->replan.Resolve(args->sim.replan.mode, WhyNoReplan(m->plan.encoding, m->plan.algorithm));
    if (!mode.ok()) return Fail(mode.status());
    args->sim.replan.mode = *mode;
    auto planner = args->plan.Get();  // its penalties, for "original"
    if (!planner.ok()) return Fail(planner.status());
    args->sim.replan.penalties = planner->penalties;
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
