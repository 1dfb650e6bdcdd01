// The descriptors of IONN_OP_KINDS, found by kind and by ONNX operator.
#include "ionn/op.h"

#include "onnx_node.h"

namespace ionn {

#define IONN_DECLARE_OP(e, onnx, caffe) extern const OpDescriptor e##Op;
IONN_OP_KINDS(IONN_DECLARE_OP)
#undef IONN_DECLARE_OP

const std::vector<const OpDescriptor*>& RegisteredOps() {
  static const std::vector<const OpDescriptor*> ops = {
#define IONN_LIST_OP(e, onnx, caffe) &e##Op,
      IONN_OP_KINDS(IONN_LIST_OP)
#undef IONN_LIST_OP
  };
  return ops;
}

const OpDescriptor* FindOp(LayerKind kind) {
  for (const OpDescriptor* op : RegisteredOps()) {
    if (op->kind == kind) return op;
  }
  return nullptr;
}

const OpDescriptor* FindOnnxOp(const std::string& op_type) {
  for (const OpDescriptor* op : RegisteredOps()) {
    for (const OnnxOpArity& row : op->onnx) {
      if (op_type == row.op_type) return op;
    }
  }
  return nullptr;
}

Result<const LayerAttr*> RequiredAttr(const Layer& layer, const char* name) {
  auto it = layer.attrs.find(name);
  if (it == layer.attrs.end()) return Status::Invalid(std::string("missing attribute '") + name + "'");
  return &it->second;
}

Status CheckAttrNames(const Layer& layer, const std::vector<std::string>& known) {
  for (const auto& [name, value] : layer.attrs) {
    bool found = false;
    for (const auto& k : known) found = found || k == name;
    if (!found) {
      return Status::Invalid("unknown attribute '" + name.substr(0, 64) + "' for " + LayerKindName(layer.kind));
    }
  }
  return Status::Ok();
}

}  // namespace ionn
