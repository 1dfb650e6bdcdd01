// Import as the server's boundary: nodes with the wrong number of inputs or
// outputs, names missing or odd, attributes of the wrong type. Every case is
// an error with a one-line message that names the node, never a crash.
#include <gtest/gtest.h>

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include "ionn/onnx_io.h"

namespace ionn {
namespace {

// x [1,3,8,8] -> one node `op` named `name`, with `inputs` inputs (all "x")
// and `outputs` outputs ("y0", "y1", ...); graph output "y0".
onnx::ModelProto OneNodeModel(const std::string& op, int opset, int inputs, int outputs,
                              const std::string& name = "node") {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(opset);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* type = in->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d : {1, 3, 8, 8}) type->mutable_shape()->add_dim()->set_dim_value(d);
  auto* n = g->add_node();
  n->set_name(name);
  n->set_op_type(op);
  for (int i = 0; i < inputs; ++i) n->add_input("x");
  for (int i = 0; i < outputs; ++i) n->add_output("y" + std::to_string(i));
  g->add_output()->set_name("y0");
  return m;
}

// The import must fail with a one-line message that contains `fragment`.
void ExpectError(const onnx::ModelProto& m, const std::string& fragment) {
  auto g = ParseOnnx(m.SerializeAsString());
  ASSERT_FALSE(g.ok()) << "imported, expected an error with: " << fragment;
  const std::string& msg = g.status().message();
  EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  EXPECT_EQ(msg.find_first_of("\n\r"), std::string::npos) << "not one line: " << msg;
}

void ExpectMessage(const onnx::ModelProto& m, const std::string& message) {
  auto g = ParseOnnx(m.SerializeAsString());
  ASSERT_FALSE(g.ok()) << "imported, expected: " << message;
  EXPECT_EQ(g.status().message(), message);
}

TEST(OnnxArity, OneIdentityNodeWithoutInputsIsAnError) {
  ExpectMessage(OneNodeModel("Identity", 13, 0, 1, "id"), "node 0 'id' (Identity): has 0 inputs, expects 1");

  ExpectError(OneNodeModel("Identity", 13, 0, 1, "id"), "node 0 'id' (Identity): has 0 inputs, expects 1");

  onnx::ModelProto m = OneNodeModel("Identity", 13, 0, 1, "id");
  m.mutable_graph()->clear_input();  // nor any graph input
  ExpectError(m, "node 0 'id' (Identity): has 0 inputs, expects 1");

  ExpectError(OneNodeModel("Identity", 13, 1, 0, "id"), "node 0 'id' (Identity): has 0 outputs, expects 1");
}

// The table is the ONNX spec's: compare every row with the operator schemas
// that libonnx registers, at every opset import accepts.
TEST(OnnxArity, TableMatchesTheOnnxSchemas) {
  for (const OnnxOpArity& row : OnnxOpArities()) {
    for (int opset = row.since_opset; opset <= 17; ++opset) {
      const OnnxOpArity* ours = FindOnnxOpArity(row.op_type, opset);
      const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(row.op_type, opset, "");
      ASSERT_NE(ours, nullptr) << row.op_type << " at opset " << opset;
      ASSERT_NE(schema, nullptr) << row.op_type << " at opset " << opset;
      const std::string where = std::string(row.op_type) + " at opset " + std::to_string(opset);
      EXPECT_EQ(ours->min_inputs, schema->min_input()) << where;
      EXPECT_EQ(ours->max_inputs, schema->max_input()) << where;  // kOnnxVariadic is the schema's INT_MAX
      EXPECT_EQ(ours->min_outputs, schema->min_output()) << where;
      EXPECT_EQ(ours->max_outputs, schema->max_output()) << where;
    }
  }
  EXPECT_EQ(FindOnnxOpArity("Gelu", 17), nullptr);
  EXPECT_EQ(FindOnnxOpArity("Conv", 6), nullptr);
  EXPECT_EQ(FindOnnxOpArity("Gemm", 10)->min_inputs, 3);
  EXPECT_EQ(FindOnnxOpArity("Gemm", 11)->min_inputs, 2);
}

// For every row of the table, at the opset it starts: one input too few, one
// too many, no output and one output too many.
TEST(OnnxArity, EveryOperatorRejectsTheWrongNumberOfInputsAndOutputs) {
  int cases = 0;
  for (const OnnxOpArity& row : OnnxOpArities()) {
    const std::string op = row.op_type, name = "bad_" + op;
    const int opset = row.since_opset;
    SCOPED_TRACE(op + " at opset " + std::to_string(opset));
    ASSERT_EQ(FindOnnxOpArity(op, opset), &row);
    const std::string node = "node 0 '" + name + "' (" + op + "): ";
    auto inputs = [](int n) {
      return "has " + std::to_string(n) + (n == 1 ? " input, expects " : " inputs, expects ");
    };
    auto outputs = [](int n) {
      return "has " + std::to_string(n) + (n == 1 ? " output, expects " : " outputs, expects ");
    };

    if (row.min_inputs > 0) {  // Constant has none
      ExpectError(OneNodeModel(op, opset, row.min_inputs - 1, 1, name), node + inputs(row.min_inputs - 1));
      ++cases;
    }
    if (row.max_inputs != kOnnxVariadic) {
      ExpectError(OneNodeModel(op, opset, row.max_inputs + 1, 1, name), node + inputs(row.max_inputs + 1));
      ++cases;
    }
    ExpectError(OneNodeModel(op, opset, row.min_inputs, 0, name), node + outputs(0));
    ++cases;
    if (row.max_outputs != kOnnxVariadic) {  // Split has any number
      ExpectError(OneNodeModel(op, opset, row.min_inputs, row.max_outputs + 1, name),
                  node + outputs(row.max_outputs + 1));
      ++cases;
    }
  }
  EXPECT_GE(cases, 4 * 24 - 3);
}

TEST(OnnxArity, MessagesSayWhatWasExpected) {
  ExpectError(OneNodeModel("Conv", 13, 1, 1, "conv1"), "node 0 'conv1' (Conv): has 1 input, expects 2 to 3");
  ExpectError(OneNodeModel("Conv", 13, 4, 1, "conv1"), "node 0 'conv1' (Conv): has 4 inputs, expects 2 to 3");
  ExpectError(OneNodeModel("Concat", 13, 0, 1, "cat"), "node 0 'cat' (Concat): has 0 inputs, expects at least 1");
  ExpectError(OneNodeModel("Relu", 13, 1, 2, "r"), "node 0 'r' (Relu): has 2 outputs, expects 1");
  // Where the count depends on the opset, the message says which.
  ExpectError(OneNodeModel("Gemm", 9, 2, 1, "fc"), "node 0 'fc' (Gemm): has 2 inputs, expects 3 at opset 9");
  ExpectError(OneNodeModel("Clip", 10, 3, 1, "clip"), "node 0 'clip' (Clip): has 3 inputs, expects 1 at opset 10");
  ExpectError(OneNodeModel("MaxPool", 7, 1, 2, "pool"), "node 0 'pool' (MaxPool): has 2 outputs, expects 1 at opset 7");
  ExpectError(OneNodeModel("BatchNormalization", 15, 5, 5, "bn"),
              "node 0 'bn' (BatchNormalization): has 5 outputs, expects 1 to 3 at opset 15");
  // Only there: MaxPool's inputs and BatchNormalization's inputs are the same in every opset.
  ExpectMessage(OneNodeModel("MaxPool", 11, 2, 1, "pool"), "node 0 'pool' (MaxPool): has 2 inputs, expects 1");
  ExpectMessage(OneNodeModel("BatchNormalization", 15, 3, 1, "bn"),
                "node 0 'bn' (BatchNormalization): has 3 inputs, expects 5");
  // Without a node name, the node's first output names it.
  ExpectError(OneNodeModel("Relu", 13, 0, 1, ""), "node 0 'y0' (Relu): has 0 inputs, expects 1");
  // Valid ONNX that import does not handle.
  ExpectError(OneNodeModel("Einsum", 13, 3, 1, "es"), "node 0 'es' (Einsum): attribute 'equation' is missing or empty");
  ExpectError(OneNodeModel("Gelu", 13, 1, 1, "g"),
              "node 0 'g' (Gelu): operator 'Gelu' is not supported (supported: Constant, Conv,");
}

TEST(OnnxArity, RequiredInputsAndOutputsNeedNames) {
  onnx::ModelProto m = OneNodeModel("Conv", 13, 2, 1, "conv");
  m.mutable_graph()->mutable_node(0)->set_input(1, "");
  ExpectError(m, "node 0 'conv' (Conv): input 1 has no name, but it is required");

  m = OneNodeModel("Relu", 13, 1, 1, "relu");
  m.mutable_graph()->mutable_node(0)->set_output(0, "");
  ExpectError(m, "node 0 'relu' (Relu): output 0 has no name, but it is required");

  m = OneNodeModel("Concat", 13, 2, 1, "cat");
  m.mutable_graph()->mutable_node(0)->set_input(1, "");
  ExpectError(m, "node 0 'cat' (Concat): missing input 1");
}

TEST(OnnxArity, TensorsAreDefinedOnce) {
  onnx::ModelProto m = OneNodeModel("Relu", 13, 1, 1, "a");
  auto* again = m.mutable_graph()->add_node();
  again->CopyFrom(m.graph().node(0));
  again->set_name("b");
  ExpectError(m, "node 1 'b' (Relu): writes tensor 'y0', which a graph input, an initializer or an earlier node");

  m = OneNodeModel("Relu", 13, 1, 1, "a");
  m.mutable_graph()->mutable_node(0)->set_output(0, "x");
  ExpectError(m, "node 0 'a' (Relu): writes tensor 'x'");
}

TEST(OnnxArity, AttributesMustHaveTheirType) {
  auto with_attribute = [](onnx::AttributeProto::AttributeType type, const char* name) {
    onnx::ModelProto m = OneNodeModel("MaxPool", 13, 1, 1, "pool");
    auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return m;
  };
  onnx::ModelProto m = with_attribute(onnx::AttributeProto::INT, "kernel_shape");
  m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->set_i(3);
  ExpectError(m, "node 0 'pool' (MaxPool): attribute 'kernel_shape' has type INT, expects INTS");

  m = with_attribute(onnx::AttributeProto::INTS, "kernel_shape");
  m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->add_ints(int64_t{1} << 40);
  m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->add_ints(2);
  ExpectError(m, "node 0 'pool' (MaxPool): attribute 'kernel_shape' value 0 is 1099511627776, out of range");

  m = with_attribute(onnx::AttributeProto::FLOAT, "ceil_mode");
  m.mutable_graph()->mutable_node(0)->add_attribute()->CopyFrom(m.graph().node(0).attribute(0));
  ExpectError(m, "node 0 'pool' (MaxPool): attribute 'ceil_mode' appears twice");

  m = OneNodeModel("Softmax", 13, 1, 1, "sm");
  auto* axis = m.mutable_graph()->mutable_node(0)->add_attribute();
  axis->set_name("axis");  // no type set
  axis->set_i(1);
  ExpectError(m, "node 0 'sm' (Softmax): attribute 'axis' has type UNDEFINED, expects INT");

  m = OneNodeModel("AveragePool", 13, 1, 1, "pool");
  auto* pad = m.mutable_graph()->mutable_node(0)->add_attribute();
  pad->set_name("auto_pad"), pad->set_type(onnx::AttributeProto::STRINGS);
  ExpectError(m, "node 0 'pool' (AveragePool): attribute 'auto_pad' has type STRINGS, expects STRING");
}

TEST(OnnxArity, GraphInputsNeedAFloatTensorTypeWithAShape) {
  onnx::ModelProto m = OneNodeModel("Relu", 13, 1, 1);
  m.mutable_graph()->mutable_input(0)->clear_type();
  ExpectError(m, "graph input: 'x' is not a tensor");

  m = OneNodeModel("Relu", 13, 1, 1);
  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  ExpectError(m, "graph input: 'x' has no shape");

  m = OneNodeModel("Relu", 13, 1, 1);
  m.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(-3);
  ExpectError(m, "graph input 'x' has shape [1,-3,8,8]");

  m = OneNodeModel("Relu", 13, 1, 1);
  m.mutable_graph()->mutable_input(0)->set_name("");
  m.mutable_graph()->mutable_node(0)->set_input(0, "");
  ExpectError(m, "node 0 'node' (Relu): input 0 has no name");
}

TEST(OnnxArity, OutOfRangeNumbersAreErrors) {
  onnx::ModelProto m = OneNodeModel("Relu", 13, 1, 1);
  m.mutable_opset_import(0)->set_version((int64_t{1} << 32) + 13);  // not opset 13 once cut to 32 bits
  ExpectError(m, "opset 4294967309 is not supported");

  // A Reshape target whose product overflows 64 bits.
  m = OneNodeModel("Reshape", 13, 1, 1, "r");
  m.mutable_graph()->mutable_node(0)->add_input("shape");
  auto* shape = m.mutable_graph()->add_initializer();
  shape->set_name("shape"), shape->set_data_type(onnx::TensorProto::INT64), shape->add_dims(3);
  for (int64_t d : {int64_t{-1}, int64_t{1} << 32, int64_t{1} << 32}) shape->add_int64_data(d);
  ExpectError(m, "bad target shape");
  shape->add_int64_data(5);  // 4 values for dims [3]
  ExpectError(m, "initializer 'shape' holds 4 values, its shape needs 3");
}

TEST(OnnxArity, ClipBoundsHoldOneValue) {
  onnx::ModelProto m = OneNodeModel("Clip", 13, 1, 1, "clip");
  m.mutable_graph()->mutable_node(0)->add_input("lo");
  auto* lo = m.mutable_graph()->add_initializer();
  lo->set_name("lo"), lo->set_data_type(onnx::TensorProto::FLOAT), lo->add_dims(3);
  for (float v : {0.f, 1.f, 2.f}) lo->add_float_data(v);
  ExpectMessage(m, "node 0 'clip' (Clip): Clip min 'lo' has shape [3], expects one value");
}

TEST(OnnxArity, NamesFromTheFileStayOnOneLine) {
  ExpectError(OneNodeModel("Ge\nlu", 13, 1, 1, "line\none"),
              "node 0 'line\\x0aone' (Ge\\x0alu): operator 'Ge\\x0alu' is not supported");
  ExpectError(OneNodeModel("Relu", 13, 0, 1, std::string(500, 'n')), "node 0 '" + std::string(64, 'n') + "...' (Relu)");
  // Found by shape inference, which quotes layer names as they are.
  onnx::ModelProto m = OneNodeModel("Softmax", 13, 1, 1, "sm\r\nx");
  auto* axis = m.mutable_graph()->mutable_node(0)->add_attribute();
  axis->set_name("axis"), axis->set_type(onnx::AttributeProto::INT), axis->set_i(7);
  ExpectError(m, "node 0 'sm\\x0d\\x0ax' (Softmax): axis out of range");
}

}  // namespace
}  // namespace ionn
