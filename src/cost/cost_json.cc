#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ionn/cost_graph.h"
#include "ionn/file.h"

namespace ionn {
namespace {

using nlohmann::json;

Result<double> GetMs(const json& obj, const char* key, const std::string& where, bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return Status::Invalid(where + ": missing \"" + key + "\"");
    return 0.0;
  }
  if (!it->is_number()) return Status::Invalid(where + "." + key + " must be a number");
  return it->get<double>();
}

Result<std::string> GetName(const json& obj, const std::string& where) {
  auto it = obj.find("name");
  if (it == obj.end() || !it->is_string()) {
    return Status::Invalid(where + ": \"name\" must be a string");
  }
  return it->get<std::string>();
}

}  // namespace

Result<CostGraph> ParseCostGraphJson(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::Invalid("not valid JSON");
  if (!doc.is_object()) return Status::Invalid("the top level must be a JSON object");
  if (doc.value("format", std::string()) != "ionn-costs/1") {
    return Status::Invalid("\"format\" must be \"ionn-costs/1\"");
  }
  for (const char* key : {"inputs", "layers", "outputs"}) {
    if (!doc.contains(key) || !doc[key].is_array()) {
      return Status::Invalid(std::string("\"") + key + "\" must be an array");
    }
  }
  std::vector<CostInput> inputs;
  for (size_t i = 0; i < doc["inputs"].size(); ++i) {
    const json& j = doc["inputs"][i];
    const std::string where = "inputs[" + std::to_string(i) + "]";
    if (!j.is_object()) return Status::Invalid(where + " must be an object");
    auto name = GetName(j, where);
    if (!name.ok()) return name.status();
    auto up = GetMs(j, "up_ms", where, false);
    if (!up.ok()) return up.status();
    inputs.push_back({*name, *up});
  }
  std::vector<CostLayer> layers;
  for (size_t i = 0; i < doc["layers"].size(); ++i) {
    const json& j = doc["layers"][i];
    const std::string where = "layers[" + std::to_string(i) + "]";
    if (!j.is_object()) return Status::Invalid(where + " must be an object");
    CostLayer l;
    auto name = GetName(j, where);
    if (!name.ok()) return name.status();
    l.name = *name;
    const std::string lw = where + " ('" + l.name + "')";
    if (!j.contains("inputs") || !j["inputs"].is_array()) {
      return Status::Invalid(lw + ": \"inputs\" must be an array of names");
    }
    for (const json& in : j["inputs"]) {
      if (!in.is_string()) return Status::Invalid(lw + ": \"inputs\" must be an array of names");
      l.inputs.push_back(in.get<std::string>());
    }
    struct Field { const char* key; double* dst; bool required; };
    for (const Field& f : {Field{"client_ms", &l.client_ms, true}, Field{"server_ms", &l.server_ms, true},
                           Field{"upload_ms", &l.upload_ms, true}, Field{"up_ms", &l.up_ms, false},
                           Field{"down_ms", &l.down_ms, false}}) {
      auto v = GetMs(j, f.key, lw, f.required);
      if (!v.ok()) return v.status();
      *f.dst = *v;
    }
    layers.push_back(std::move(l));
  }
  std::vector<std::string> outputs;
  for (const json& o : doc["outputs"]) {
    if (!o.is_string()) return Status::Invalid("\"outputs\" must be an array of layer names");
    outputs.push_back(o.get<std::string>());
  }
  double overhead = 0;
  if (doc.contains("partition_overhead_ms")) {
    if (!doc["partition_overhead_ms"].is_number()) {
      return Status::Invalid("\"partition_overhead_ms\" must be a number");
    }
    overhead = doc["partition_overhead_ms"].get<double>();
  }
  bool block_units = false;
  if (doc.contains("units")) {
    const json& u = doc["units"];
    if (!u.is_string() || (u.get<std::string>() != "layer" && u.get<std::string>() != "block")) {
      return Status::Invalid("\"units\" must be \"layer\" or \"block\"");
    }
    block_units = u.get<std::string>() == "block";
  }
  IONN_ASSIGN_OR_RETURN(CostGraph graph, CostGraph::Create(std::move(inputs), std::move(layers), std::move(outputs),
                                                           overhead, block_units));
  if (!doc.contains("upload_encoding")) {
    if (doc.contains("fp32_upload_ms")) return Status::Invalid("\"fp32_upload_ms\" needs an \"upload_encoding\"");
    return graph;
  }
  const json& e = doc["upload_encoding"];
  if (!e.is_string()) return Status::Invalid("\"upload_encoding\" must be a string");
  auto encoding = ParseUploadEncoding(e.get<std::string>());
  if (!encoding.ok()) return encoding.status().WithContext("\"upload_encoding\"");
  if (!doc.contains("fp32_upload_ms") || !doc["fp32_upload_ms"].is_number()) {
    return Status::Invalid("\"fp32_upload_ms\" (a number: the layers' upload as exact fp32) goes with \"upload_encoding\"");
  }
  std::vector<double> upload_ms;
  for (const auto& l : graph.layers()) upload_ms.push_back(l.upload_ms);
  IONN_ASSIGN_OR_RETURN(CostGraph encoded, graph.WithUploads(*encoding, upload_ms));
  return encoded.WithFp32Upload(doc["fp32_upload_ms"].get<double>());
}

Result<CostGraph> ReadCostGraphFile(const std::string& path) { return ParseFile(path, ParseCostGraphJson); }

std::string CostGraphToJson(const CostGraph& graph) {
  json doc;
  doc["format"] = "ionn-costs/1";
  if (graph.block_units()) doc["units"] = "block";
  if (graph.upload_encoding() != UploadEncoding::kExact) {
    doc["upload_encoding"] = UploadEncodingName(graph.upload_encoding());
    doc["fp32_upload_ms"] = graph.fp32_all_at_once_ms() - graph.partition_overhead_ms();
  }
  doc["inputs"] = json::array();
  for (const auto& in : graph.inputs()) doc["inputs"].push_back({{"name", in.name}, {"up_ms", in.up_ms}});
  doc["layers"] = json::array();
  for (const auto& l : graph.layers()) {
    doc["layers"].push_back({{"name", l.name}, {"inputs", l.inputs}, {"client_ms", l.client_ms},
                             {"server_ms", l.server_ms}, {"upload_ms", l.upload_ms},
                             {"up_ms", l.up_ms}, {"down_ms", l.down_ms}});
  }
  doc["outputs"] = graph.output_names();
  doc["partition_overhead_ms"] = graph.partition_overhead_ms();
  return doc.dump(1) + "\n";
}

}  // namespace ionn
