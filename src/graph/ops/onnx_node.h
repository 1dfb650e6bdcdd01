// Internal to the graph part: an ONNX node as an operator's descriptor
// (ionn/op.h) reads it at import and writes it at export, without ONNX's
// protobuf classes. Values from the file are unchecked until the
// descriptor checks them; every accessor of a missing or mistyped one is an
// error, never a crash.
#pragma once

#include <string>
#include <vector>

#include "ionn/graph.h"

namespace ionn {

class OnnxNodeReader {
 public:
  virtual ~OnnxNodeReader() = default;
  virtual const std::string& op_type() const = 0;
  virtual int opset() const = 0;
  // Whether input i is listed and not "" (an omitted optional one).
  virtual bool HasInput(int i) const = 0;
  virtual int InputCount() const = 0;  // inputs listed, omitted ones ("") included
  // Input i, a tensor computed at run time, becomes the layer's next input.
  virtual Status AddInput(int i) = 0;
  virtual Result<Shape> InputShape(int i) = 0;
  // Whether input i is known at import (an initializer, a constant, a
  // computed shape), and its values (integers as doubles: exact to 2^53).
  virtual bool Known(int i) const = 0;
  virtual Result<std::vector<double>> KnownValues(int i, Shape* dims) = 0;
  // Input i, a float32 initializer, becomes the layer's next weight; an
  // error naming `role` when it is missing or computed at run time.
  virtual Status AddWeight(int i, const std::string& role) = 0;

  virtual bool HasAttr(const char* name) const = 0;
  virtual Result<int64_t> Int(const char* name, int64_t fallback) const = 0;
  virtual Result<float> Float(const char* name, float fallback) const = 0;
  virtual Result<std::string> String(const char* name, std::string fallback) const = 0;
  virtual Result<std::vector<int64_t>> Ints(const char* name, std::vector<int64_t> fallback) const = 0;
  virtual Result<std::vector<float>> Floats(const char* name, std::vector<float> fallback) const = 0;
};

class OnnxNodeWriter {
 public:
  virtual ~OnnxNodeWriter() = default;
  virtual const Shape& InputShape(int i) const = 0;         // of the layer's input i
  // Inputs after the layer's own and its weights: constants of the model.
  virtual void AddIntsInput(const std::vector<int64_t>& values) = 0;  // 1-D int64
  virtual void AddIntsInput(const std::vector<int64_t>& values, const Shape& dims) = 0;  // int64 of shape dims
  virtual void AddFloatsInput(const std::vector<float>& values) = 0;  // 1-D float
  // The operator written, when not the kind's name.
  virtual void SetOpType(const char* op_type) = 0;
  // Input j of the node becomes what input order[j] was (the layer's
  // inputs, then its weights, then the constants added above).
  virtual void OrderInputs(const std::vector<int>& order) = 0;
  virtual void SetInt(const char* name, int64_t value) = 0;
  virtual void SetInts(const char* name, const std::vector<int64_t>& values) = 0;
  virtual void SetFloat(const char* name, float value) = 0;
  virtual void SetString(const char* name, const std::string& value) = 0;
};

}  // namespace ionn
