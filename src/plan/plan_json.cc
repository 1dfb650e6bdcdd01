#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ionn/format.h"
#include "ionn/plan.h"
#include "ionn/version.h"

namespace ionn {

void AddRunSetting(const RunSetting& setting, nlohmann::json* doc) {
  (*doc)["ionn_version"] = kVersion;
  nlohmann::json inputs = nlohmann::json::object();
  const auto add = [&](const char* key, const std::string& value) {
    if (!value.empty()) inputs[key] = value;
  };
  add("model_sha256", setting.model_sha256);
  add("costs_file", setting.costs_file);
  add("client_profile", setting.client_profile);
  add("server_profile", setting.server_profile);
  add("regression", setting.regression);
  if (setting.paper_profiles) inputs["paper_profiles"] = true;
  if (setting.client_slowdown > 0) inputs["client_slowdown"] = setting.client_slowdown;
  add("uplink_trace", setting.uplink_trace);
  add("downlink_trace", setting.downlink_trace);
  (*doc)["sources"] = inputs;
  if (!setting.model.empty()) (*doc)["model"] = setting.model;
  if (setting.uplink_mbps > 0) (*doc)["uplink_mbps"] = setting.uplink_mbps;
  if (setting.downlink_mbps > 0) (*doc)["downlink_mbps"] = setting.downlink_mbps;
  if (setting.uplink_mbps > 0) (*doc)["rtt_ms"] = setting.rtt_ms;
  if (!setting.link_sharing.empty()) (*doc)["link_sharing"] = setting.link_sharing;
  if (setting.slices > 1) (*doc)["slices"] = setting.slices;
}

void AddPartitions(const CostGraph& graph, const UploadPlan& plan, const std::vector<double>* uploaded_at_ms,
                   nlohmann::json* doc) {
  (*doc)["partitions"] = nlohmann::json::array();
  double cumulative = 0;
  for (size_t i = 0; i < plan.partitions.size(); ++i) {
    const Partition& p = plan.partitions[i];
    std::vector<std::string> names;
    for (int k : p.layers) names.push_back(graph.layer(k).name);
    cumulative += p.upload_ms;
    // Given arrival times may stop early (a live upload cut short): null.
    nlohmann::json at = cumulative;
    if (uploaded_at_ms) at = i < uploaded_at_ms->size() ? nlohmann::json((*uploaded_at_ms)[i]) : nlohmann::json();
    (*doc)["partitions"].push_back(
        {{"layers", names}, {"upload_ms", p.upload_ms}, {"uploaded_at_ms", at}, {"latency_ms", p.latency_ms}});
    if (p.phase != UnitPhase::kWhole) (*doc)["partitions"].back()["phase"] = UnitPhaseName(p.phase);
  }
}

std::string PlanToJson(const CostGraph& graph, const UploadPlan& plan, const RunSetting& setting) {
  nlohmann::json doc;
  doc["format"] = "ionn-plan/1";
  AddRunSetting(setting, &doc);
  doc["algorithm"] = plan.algorithm;
  doc["granularity"] = GranularityName(plan.granularity);
  if (plan.encoding != UploadEncoding::kExact) doc["upload_encoding"] = UploadEncodingName(plan.encoding);
  AddPartitions(graph, plan, nullptr, &doc);
  doc["latency_local_ms"] = plan.latency_local_ms;
  doc["latency_optimal_ms"] = plan.latency_optimal_ms;
  doc["upload_total_ms"] = plan.total_upload_ms();
  return doc.dump(1) + "\n";
}

namespace {

std::string LayerList(const CostGraph& graph, const std::vector<int>& layers, size_t width) {
  std::string s;
  for (int k : layers) s += (s.empty() ? "" : ",") + graph.layer(k).name;
  if (s.size() > width) {
    s = graph.layer(layers.front()).name + ".." + graph.layer(layers.back()).name + " (" +
        std::to_string(layers.size()) + " layers)";
  }
  return s;
}

}  // namespace

std::string PlanToTable(const CostGraph& graph, const UploadPlan& plan) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "plan: %s, %s granularity, %zu partitions%s\n", plan.algorithm.c_str(),
                GranularityName(plan.granularity), plan.partitions.size(),
                plan.encoding == UploadEncoding::kExact
                    ? ""
                    : (std::string(", weights ") + UploadEncodingName(plan.encoding)).c_str());
  out << line;
  std::snprintf(line, sizeof line, "latency: local %s ms, optimal %s ms\n\n", Fixed(plan.latency_local_ms, 3).c_str(),
                Fixed(plan.latency_optimal_ms, 3).c_str());
  out << line;
  std::snprintf(line, sizeof line, "%4s  %12s  %14s  %12s  %s\n", "#", "upload ms", "uploaded at ms",
                "latency ms", "layers");
  out << line;
  double cumulative = 0;
  for (size_t i = 0; i < plan.partitions.size(); ++i) {
    const auto& p = plan.partitions[i];
    cumulative += p.upload_ms;
    std::snprintf(line, sizeof line, "%4zu  %12s  %14s  %12s  %s\n", i, Fixed(p.upload_ms, 3).c_str(),
                  Fixed(cumulative, 3).c_str(), Fixed(p.latency_ms, 3).c_str(),
                  ((p.phase == UnitPhase::kWhole ? "" : std::string(UnitPhaseName(p.phase)) + ": ") +
                   LayerList(graph, p.layers, 60)).c_str());
    out << line;
  }
  return out.str();
}

Result<UploadPlan> PlanFromJson(const CostGraph& graph, const std::string& text) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::Invalid("not JSON");
  const nlohmann::json* parts = &doc;
  if (doc.is_object()) {
    if (!doc.contains("partitions")) return Status::Invalid("no \"partitions\" (an array of partitions)");
    parts = &doc["partitions"];
  }
  if (!parts->is_array()) return Status::Invalid("\"partitions\" is not an array of partitions");
  if (doc.is_object() && doc.contains("upload_encoding")) {
    const nlohmann::json& e = doc["upload_encoding"];
    if (!e.is_string() || e.get<std::string>() != UploadEncodingName(graph.upload_encoding())) {
      return Status::Invalid("the plan is for upload encoding " + e.dump().substr(0, 40) + ", the costs for \"" +
                             UploadEncodingName(graph.upload_encoding()) + "\" (give the same --upload-encoding)");
    }
  }
  std::map<std::string, int> position;
  for (int k = 0; k < graph.num_layers(); ++k) position.emplace(graph.layer(k).name, k);
  std::vector<int> partition_of(graph.num_layers(), -1);
  std::vector<std::vector<int>> layer_parts;
  std::vector<UnitPhase> phases;
  for (size_t p = 0; p < parts->size(); ++p) {
    const std::string where = "partition " + std::to_string(p);
    const nlohmann::json& part = (*parts)[p];
    const nlohmann::json* names = &part;
    UnitPhase phase = UnitPhase::kWhole;
    if (part.is_object()) {
      if (!part.contains("layers")) return Status::Invalid(where + " has no \"layers\"");
      names = &part["layers"];
      if (part.contains("phase")) {
        const nlohmann::json& ph = part["phase"];
        if (!ph.is_string() || (ph != "whole" && ph != "high" && ph != "low")) {
          return Status::Invalid(where + ": \"phase\" must be \"whole\", \"high\" or \"low\"");
        }
        phase = ph == "high" ? UnitPhase::kHigh : ph == "low" ? UnitPhase::kLow : UnitPhase::kWhole;
      }
    }
    phases.push_back(phase);
    if (!names->is_array()) return Status::Invalid(where + ": its layers are not an array of layer names");
    if (names->empty()) return Status::Invalid(where + " is empty");
    std::vector<int> layers;
    for (const nlohmann::json& name : *names) {
      if (!name.is_string()) return Status::Invalid(where + ": " + name.dump().substr(0, 40) + " is not a layer name");
      const std::string& n = name.get_ref<const std::string&>();
      auto it = position.find(n);
      if (it == position.end()) {
        return Status::Invalid(where + " names layer '" + n.substr(0, 80) + "', which the model does not have");
      }
      if (partition_of[it->second] >= 0 && !(phase == UnitPhase::kLow && phases[partition_of[it->second]] == UnitPhase::kHigh)) {
        return Status::Invalid("layer '" + n + "' is in partition " + std::to_string(partition_of[it->second]) +
                               " and in " + (partition_of[it->second] == static_cast<int>(p) ? "it again" : where));
      }
      partition_of[it->second] = static_cast<int>(p);
      layers.push_back(it->second);
    }
    std::sort(layers.begin(), layers.end());
    layer_parts.push_back(std::move(layers));
  }
  if (layer_parts.empty()) return Status::Invalid("no partitions");
  for (int k = 0; k < graph.num_layers(); ++k) {
    if (partition_of[k] < 0) return Status::Invalid("layer '" + graph.layer(k).name + "' is in no partition");
  }
  return EvaluatePartitions(graph, "given", Granularity::kLayer, std::move(layer_parts), 0, &phases);
}

}  // namespace ionn
