// SliceForClient (client.h): the client's --slices, by the simulator's rule.
#include "ionn/client.h"
#include "ionn/slices.h"

namespace ionn {

Result<ClientSlices> SliceForClient(const Graph& whole, int count, ClientOptions* o,
                                    const std::function<Result<UploadPlan>(const CostGraph&)>& plan_for) {
  if (count == 0) {
    if (!o->server_profile) {
      return Status::Invalid("--slices auto chooses with the server's layer times before connecting: give "
                             "--server-profile, or a count (2 to 64)");
    }
    const auto costs_for = [&](int n) -> Result<CostGraph> {
      const std::vector<LayerSlices> cut = ChooseSlices(whole, SliceOptions{n});
      IONN_ASSIGN_OR_RETURN(const Graph g, SliceGraph(whole, cut));
      const Profile server = SliceProfile(*o->server_profile, cut);
      IONN_ASSIGN_OR_RETURN(const CostGraph fp32,
                            BuildCostGraph(g, SliceProfile(o->client_profile, cut), &server, nullptr, o->link));
      return EncodeUploads(fp32, g, o->upload_encoding, o->link);
    };
    IONN_ASSIGN_OR_RETURN(const SlicedPlan best, PlanBestSlices(costs_for, plan_for));
    count = best.slices;
  }
  ClientSlices out;
  const std::vector<LayerSlices> cut = ChooseSlices(whole, SliceOptions{count});
  if (cut.empty()) return out;
  out.slices = count;
  IONN_ASSIGN_OR_RETURN(out.model, SliceGraph(whole, cut));
  o->client_profile = SliceProfile(o->client_profile, cut);
  if (o->server_profile) o->server_profile = SliceProfile(*o->server_profile, cut);
  return out;
}

}  // namespace ionn
