// Seeded mutations of small valid ONNX files, of their bytes and of their
// nodes: import, engine creation and a run must each either succeed or return
// an error, never crash (CI also runs this under ASan and UBSan).
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include <onnx/onnx_pb.h>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"
#include "../fuzz/small_model.h"

namespace ionn {
namespace {

Graph SmallModel() {
  Graph g = fuzz::SmallModel();
  EXPECT_TRUE(g.Finalize().ok());
  return g;
}

Graph SmallTransformerModel() {
  Graph g = fuzz::SmallTransformerModel();
  const Status st = g.Finalize();
  EXPECT_TRUE(st.ok()) << st.message();
  return g;
}

// Seeded byte mutations of each small model's file (a CNN's, a
// transformer's).
class OnnxFuzz : public ::testing::TestWithParam<bool> {
 protected:
  Graph Model() const { return GetParam() ? SmallTransformerModel() : SmallModel(); }
};

TEST_P(OnnxFuzz, MutatedFilesNeverCrash) {
  const std::string good = SerializeOnnx(Model()).value();
  std::mt19937 rng(2026);
  int parsed = 0, ran = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string bytes = good;
    switch (trial % 4) {
      case 0:  // flip a few bytes
      case 1:
        for (int k = 1 + rng() % 6; k > 0; --k) bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 2:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 3:  // overwrite a run with random bytes
        for (size_t at = rng() % bytes.size(), k = 0; k < 8 && at + k < bytes.size(); ++k) {
          bytes[at + k] = static_cast<char>(rng());
        }
        break;
    }
    auto g = ParseOnnx(bytes);
    if (!g.ok()) {
      EXPECT_FALSE(g.status().message().empty());
      continue;
    }
    ++parsed;
    auto e = Engine::Create(*g);
    if (!e.ok()) continue;
    TensorMap in;
    for (const auto& i : g->inputs) in[i.name] = SeededInput(i.shape, 1);
    if ((*e)->RunAll(in).ok()) ++ran;
  }
  std::printf("parsed %d of 5000 mutations, ran %d\n", parsed, ran);
  // Most byte flips land in weight data and still parse and run.
  EXPECT_GT(parsed, 300);
  EXPECT_GT(ran, 300);
}

// Seeded structural mutations of the same models: inputs and outputs of a
// node dropped, duplicated, emptied or all removed, its operator swapped for
// another that import accepts, an attribute given another type. Each import
// either succeeds or returns a one-line error that names the node.
TEST_P(OnnxFuzz, MutatedNodesNeverCrash) {
  onnx::ModelProto good;
  ASSERT_TRUE(good.ParseFromString(SerializeOnnx(Model()).value()));
  std::mt19937 rng(2027);
  int parsed = 0, ran = 0, node_errors = 0;
  constexpr int kTrials = 3000;
  for (int trial = 0; trial < kTrials; ++trial) {
    onnx::ModelProto m = good;
    for (int k = 1 + rng() % 2; k > 0; --k) {
      onnx::NodeProto* n = m.mutable_graph()->mutable_node(rng() % m.graph().node_size());
      auto* inputs = n->mutable_input();
      auto* outputs = n->mutable_output();
      switch (rng() % 9) {
        case 0:  // drop an input
          if (!inputs->empty()) inputs->erase(inputs->begin() + rng() % inputs->size());
          break;
        case 1:  // duplicate an input, at the end
          if (!inputs->empty()) n->add_input(n->input(rng() % n->input_size()));
          break;
        case 2:  // drop an output
          if (!outputs->empty()) outputs->erase(outputs->begin() + rng() % outputs->size());
          break;
        case 3:  // duplicate an output, or add a new one
          if (!outputs->empty() && rng() % 2)
            n->add_output(n->output(rng() % n->output_size()));
          else
            n->add_output("extra" + std::to_string(trial));
          break;
        case 4:  // no inputs, or no outputs
          if (rng() % 2)
            n->clear_input();
          else
            n->clear_output();
          break;
        case 5:  // an input or an output without a name
          if (rng() % 2 && !inputs->empty())
            n->set_input(rng() % n->input_size(), "");
          else if (!outputs->empty())
            n->set_output(rng() % n->output_size(), "");
          break;
        case 6:  // another operator
          n->set_op_type(OnnxOpArities()[rng() % OnnxOpArities().size()].op_type);
          break;
        case 7:  // an attribute of another type
          if (n->attribute_size()) {
            n->mutable_attribute(rng() % n->attribute_size())
                ->set_type(static_cast<onnx::AttributeProto::AttributeType>(rng() % 11));
          }
          break;
        case 8:  // a graph input without its type or shape
          if (rng() % 2)
            m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->clear_shape();
          else
            m.mutable_graph()->mutable_input(0)->clear_type();
          break;
      }
    }
    auto g = ParseOnnx(m.SerializeAsString());
    if (!g.ok()) {
      const std::string& msg = g.status().message();
      EXPECT_FALSE(msg.empty());
      EXPECT_EQ(msg.find_first_of("\n\r"), std::string::npos) << msg;
      node_errors += msg.rfind("node ", 0) == 0;
      continue;
    }
    ++parsed;
    auto e = Engine::Create(*g);
    if (!e.ok()) continue;
    TensorMap in;
    for (const auto& i : g->inputs) in[i.name] = SeededInput(i.shape, 1);
    if ((*e)->RunAll(in).ok()) ++ran;
  }
  std::printf("structural mutations: %d of %d parsed, %d ran, %d errors named a node\n", parsed, kTrials, ran,
              node_errors);
  EXPECT_GT(node_errors, kTrials / 2);
}

INSTANTIATE_TEST_SUITE_P(Models, OnnxFuzz, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Transformer" : "Cnn"; });

}  // namespace
}  // namespace ionn
