// The paper's experiment for real in this process (`ionn demo` part 6 and
// `ionn experiment --live`): an edge server, a link shaped by `ionn link`'s
// proxy and a client emulating the paper's ODROID XU4, beside the simulator
// on the same cost graph.
#include "commands.h"
#include "ionn/link.h"
#include "ionn/server.h"

namespace ionn::cli {

Result<Profile> MeasureServerTimes(const Graph& model, const TensorMap& input, EngineBackend backend) {
  EngineOptions eo;
  eo.backend = backend;
  IONN_ASSIGN_OR_RETURN(auto engine, Engine::Create(model, eo));
  IONN_ASSIGN_OR_RETURN(auto timings, engine->ProfileLayers(input, 2, 9));
  return ProfileFromTimes(model, timings, /*server_column=*/true);
}

Result<std::vector<LiveRun>> RunLiveExperiment(const Graph& model, const LiveOptions& o) {
  ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.backend = o.backend;
  IONN_ASSIGN_OR_RETURN(auto server, OffloadServer::Start(so));
  LinkOptions lo;
  lo.listen = "127.0.0.1:0";
  lo.connect = "127.0.0.1:" + std::to_string(server->port());
  lo.uplink_mbps = o.link.uplink_mbps;
  lo.downlink_mbps = o.link.downlink_mbps;
  lo.rtt_ms = o.link.rtt_ms;
  IONN_ASSIGN_OR_RETURN(auto link, LinkProxy::Start(lo));
  const Profile& client_profile = o.client_profile;
  // Client and simulator plan with the same costs: the published client
  // profile and the server times measured here.
  IONN_ASSIGN_OR_RETURN(CostGraph costs,
                        BuildCostGraph(model, client_profile, &o.server_times, nullptr, o.link));
  std::vector<LiveRun> runs;
  for (const auto& variant : o.variants) {
    ClientOptions co;
    co.servers = {"127.0.0.1:" + std::to_string(link->port())};
    co.planner.algorithm = variant.algorithm;
    co.upload_encoding = variant.encoding;
    co.client_profile = client_profile;
    co.server_profile = o.server_times;
    co.emulate_profile = true;
    co.backend = o.backend;
    co.link = o.link;
    co.inputs = o.input;
    co.use_held = false;  // each run a first meeting, though the server holds the layers of the run before
    co.max_reconnects = 0;  // a lost server fails the experiment (below) rather than changing it
    IONN_ASSIGN_OR_RETURN(const ClientSlices sliced,
                          SliceForClient(model, variant.slices, &co,
                                         [&co](const CostGraph& c) { return MakePlan(c, co.planner); }));
    const Graph& run_model = sliced.model ? *sliced.model : model;
    const std::string algorithm = variant.Label(sliced.slices);
    if (o.starting) o.starting(algorithm);
    IONN_ASSIGN_OR_RETURN(ClientResult live, RunClient(run_model, co, o.progress));
    if (!live.upload_complete) {
      return Status::Internal("the upload did not complete: " +
                              (live.upload_error.empty() ? live.server_error : live.upload_error));
    }
    // The simulator on the costs the client planned with.
    IONN_ASSIGN_OR_RETURN(const CostGraph fp32, BuildCostGraph(run_model, co.client_profile, &*co.server_profile,
                                                               nullptr, o.link));
    IONN_ASSIGN_OR_RETURN(const CostGraph encoded, EncodeUploads(fp32, run_model, variant.encoding, o.link));
    SimOptions sim_options;
    sim_options.sharing = LinkSharing::kFair;  // upload and queries: two TCP flows on one link
    IONN_ASSIGN_OR_RETURN(SimResult sim, Simulate(encoded, live.plan, sim_options));
    runs.push_back({algorithm, std::move(live), std::move(sim), encoded});
  }
  if (o.returning) {
    // Beyond the paper: the server keeps built layers by content, so a
    // client that comes back uploads nothing and offloads at once.
    ClientOptions back;
    back.servers = {"127.0.0.1:" + std::to_string(link->port())};
    back.client_profile = client_profile;
    back.server_profile = o.server_times;
    back.emulate_profile = true;
    back.link = o.link;
    back.inputs = o.input;
    back.max_queries = 5;
    IONN_ASSIGN_OR_RETURN(ClientResult again, RunClient(model, back));
    SimOptions sim_options;
    sim_options.sharing = LinkSharing::kFair;
    IONN_ASSIGN_OR_RETURN(SimResult sim, Simulate(costs, again.plan, sim_options));
    runs.push_back({"returning client", std::move(again), std::move(sim), costs});
  }
  return runs;
}

SimResult MeasuredResult(const ClientResult& r) {
  SimResult m;
  for (const auto& q : r.queries) {
    m.queries.push_back({q.start_ms, q.start_ms, q.end_ms, q.end_ms - q.start_ms, q.partitions_uploaded,
                         FinishedDuringUpload(q.end_ms, r.upload_ms, r.upload_complete)});
  }
  for (const auto& p : r.partitions) m.partition_done_ms.push_back(p.acked_ms);
  m.upload_ms = r.upload_ms;
  m.queries_during_upload = r.counts.during_upload;
  m.queries_during_upload_fractional = r.counts.during_upload;
  m.first_query_end_ms = r.counts.first_query_end_ms;
  m.window_ms = AllAtOnceUploadMs(r.costs);
  m.queries_in_window = r.counts.in_window;
  m.partitions = static_cast<int>(r.plan.partitions.size());
  m.partitions_first_half = r.counts.partitions_first_half;
  m.partitions_second_half = r.counts.partitions_second_half;
  m.largest_partition_share = LargestPartitionShare(r.costs, r.plan);
  m.counts = r.counts;
  m.upload_encoding = UploadEncodingName(r.plan.encoding);
  m.near_optimal_ms = r.near_optimal_ms;
  m.exact_from_ms = r.exact_from_ms;
  m.queries_approximate = r.queries_approximate;
  return m;
}

}  // namespace ionn::cli
