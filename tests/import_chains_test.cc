// The operators import makes as chains of layers, through import and the
// engine. Einsum: each equation's output against a naive loop over every
// assignment of its indices (in double), computed operands and constant
// ones, broadcast axes, implicit outputs; the layers import makes (no step
// that changes nothing); and the refusals, one line naming the node. Sum,
// Max, Min and Mean of 1 to 4 operands, computed and constant, with
// broadcasting and NaN, against a loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <onnx/onnx_pb.h>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"
#include "random_values.h"

namespace ionn {
namespace {

struct Operand {
  Shape shape;
  std::vector<float> data;
  bool constant = false;
};

onnx::ModelProto OneEinsum(const std::string& equation, const std::vector<Operand>& operands) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  auto* n = g->add_node();
  n->set_name("es"), n->set_op_type("Einsum");
  for (size_t i = 0; i < operands.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    n->add_input(name);
    if (operands[i].constant) {
      auto* t = g->add_initializer();
      t->set_name(name);
      t->set_data_type(onnx::TensorProto::FLOAT);
      for (int64_t d : operands[i].shape) t->add_dims(d);
      for (float v : operands[i].data) t->add_float_data(v);
      continue;
    }
    auto* in = g->add_input();
    in->set_name(name);
    in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : operands[i].shape) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  }
  auto* a = n->add_attribute();
  a->set_name("equation"), a->set_type(onnx::AttributeProto::STRING), a->set_s(equation);
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

// The equation with "..." spelled as capital letters (right-aligned, as
// numpy broadcasts) and its output made explicit: the naive loop's input.
struct Spelled {
  std::vector<std::string> terms;
  std::string output;
};

Spelled Spell(const std::string& spaced, const std::vector<Operand>& operands) {
  std::string equation;
  for (char c : spaced) {
    if (c != ' ') equation += c;
  }
  const size_t arrow = equation.find("->");
  std::string lhs = equation.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t from = 0;;) {
    const size_t comma = lhs.find(',', from);
    terms.push_back(lhs.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  const std::string kSpare = "UVWXYZ";
  size_t widest = 0;
  std::vector<size_t> extra(terms.size(), 0);
  for (size_t i = 0; i < terms.size(); ++i) {
    const size_t dots = terms[i].find("...");
    if (dots == std::string::npos) continue;
    extra[i] = operands[i].shape.size() - (terms[i].size() - 3);
    widest = std::max(widest, extra[i]);
  }
  Spelled s;
  std::map<char, int> uses;
  for (size_t i = 0; i < terms.size(); ++i) {
    std::string t = terms[i];
    const size_t dots = t.find("...");
    if (dots != std::string::npos) t.replace(dots, 3, kSpare.substr(widest - extra[i], extra[i]));
    for (char c : terms[i]) {
      if (c != '.') ++uses[c];
    }
    s.terms.push_back(t);
  }
  if (arrow != std::string::npos) {
    s.output = equation.substr(arrow + 2);
    const size_t dots = s.output.find("...");
    if (dots != std::string::npos) s.output.replace(dots, 3, kSpare.substr(0, widest));
  } else {
    s.output = kSpare.substr(0, widest);
    for (const auto& [c, n] : uses) {
      if (n == 1) s.output += c;
    }
  }
  return s;
}

// numpy's einsum, by brute force: every assignment of every index.
Tensor NaiveEinsum(const std::string& equation, const std::vector<Operand>& operands) {
  const Spelled s = Spell(equation, operands);
  std::map<char, int64_t> size;
  for (size_t i = 0; i < s.terms.size(); ++i) {
    for (size_t d = 0; d < s.terms[i].size(); ++d) size[s.terms[i][d]] = std::max(size[s.terms[i][d]], operands[i].shape[d]);
  }
  std::string letters;
  for (const auto& [c, n] : size) letters += c;
  Tensor y;
  for (char c : s.output) y.shape.push_back(size[c]);
  std::vector<double> acc(ElementCount(y.shape), 0.0);
  std::map<char, int64_t> at;
  for (char c : letters) at[c] = 0;
  for (;;) {
    double product = 1;
    for (size_t i = 0; i < s.terms.size(); ++i) {
      int64_t flat = 0;
      for (size_t d = 0; d < s.terms[i].size(); ++d) {
        const int64_t n = operands[i].shape[d];
        flat = flat * n + (n == 1 ? 0 : at[s.terms[i][d]]);
      }
      product *= operands[i].data[flat];
    }
    int64_t out = 0;
    for (char c : s.output) out = out * size[c] + at[c];
    acc[out] += product;
    size_t k = letters.size();
    while (k > 0 && ++at[letters[k - 1]] == size[letters[k - 1]]) at[letters[--k]] = 0;
    if (k == 0) break;
  }
  y.data.assign(acc.begin(), acc.end());
  return y;
}

struct Case {
  std::string equation;
  std::vector<Shape> shapes;
  std::vector<bool> constant;
  int layers;  // what import makes
};

TEST(Einsum, MatchesANaiveLoopOverEveryIndex) {
  const Case cases[] = {
      {"bhid,bhjd->bhij", {{2, 3, 4, 5}, {2, 3, 6, 5}}, {false, false}, 2},  // MaxViT's Q K^T: B transposed
      {"bhij,bhjd->bhid", {{2, 3, 4, 6}, {2, 3, 6, 5}}, {false, false}, 1},  // its weights times V: one MatMul
      {"B G H I D, B G H J D -> B G H I J", {{1, 2, 2, 3, 4}, {1, 2, 2, 5, 4}}, {false, false}, 2},
      {"ij,jk->ik", {{3, 4}, {4, 5}}, {false, true}, 1},                       // a constant B: MatMul's weight
      {"ij,jk", {{3, 4}, {4, 5}}, {false, false}, 1},                          // implicit output "ik"
      {"ij,kj->ik", {{3, 4}, {5, 4}}, {true, false}, 2},                       // a constant A: the product swapped
      {"ij->ji", {{3, 4}}, {false}, 1},
      {"ij->i", {{3, 4}}, {false}, 1},
      {"ijk->kj", {{2, 3, 4}}, {false}, 2},
      {"...ij,...jk->...ik", {{2, 1, 3, 4}, {5, 4, 6}}, {false, false}, 1},    // broadcast axes
      {"bij,bjk->bik", {{2, 3, 4}, {2, 4, 5}}, {false, false}, 1},
      {"abc,cd->abd", {{2, 3, 4}, {4, 5}}, {false, true}, 1},
      {"ik,jk->ijk", {{3, 4}, {5, 4}}, {false, false}, 6},                     // a batch index last
      {"ab,cd->abcd", {{2, 3}, {4, 5}}, {false, false}, 4},                    // outer product
      {"abc,ac->b", {{2, 3, 4}, {2, 4}}, {false, false}, 5},                   // two contracted indices
      {"ijk,jl->il", {{2, 3, 4}, {3, 5}}, {false, false}, 2},                  // k summed in A alone
      {"ij,ij->ij", {{3, 4}, {3, 4}}, {false, false}, 4},                      // element-wise
      {"i,i->i", {{5}, {5}}, {false, false}, 4},
      {"i,i", {{5}, {5}}, {false, false}, 4},                                  // inner product: a scalar
      {"ij->", {{3, 4}}, {false}, 1},
      {"bn,anm,bm->ba", {{1}, {1}, {1}}, {false, false, false}, -1},            // three operands: refused
  };
  std::mt19937 rng(11);
  for (const Case& c : cases) {
    std::vector<Operand> operands;
    for (size_t i = 0; i < c.shapes.size(); ++i) {
      operands.push_back({c.shapes[i], Random(ElementCount(c.shapes[i]), rng, -2, 2), c.constant[i]});
    }
    auto g = ParseOnnx(OneEinsum(c.equation, operands).SerializeAsString());
    if (c.layers < 0) {
      ASSERT_FALSE(g.ok()) << c.equation;
      EXPECT_NE(g.status().message().find("node 0 'es' (Einsum)"), std::string::npos) << g.status().message();
      continue;
    }
    ASSERT_TRUE(g.ok()) << c.equation << ": " << g.status().message();
    EXPECT_EQ(static_cast<int>(g->layers.size()), c.layers) << c.equation;
    EXPECT_EQ(g->layers.back().name, "es") << c.equation;
    auto engine = Engine::Create(*g);
    ASSERT_TRUE(engine.ok()) << c.equation << ": " << engine.status().message();
    std::map<std::string, Tensor> in;
    for (size_t i = 0; i < operands.size(); ++i) {
      if (!operands[i].constant) in["in" + std::to_string(i)] = Tensor{operands[i].shape, operands[i].data};
    }
    auto out = (*engine)->RunAll(in);
    ASSERT_TRUE(out.ok()) << c.equation << ": " << out.status().message();
    const Tensor& y = out->at(g->outputs[0]);
    const Tensor want = NaiveEinsum(c.equation, operands);
    ASSERT_EQ(y.shape, want.shape) << c.equation;
    for (size_t i = 0; i < want.data.size(); ++i) {
      ASSERT_NEAR(y.data[i], want.data[i], 1e-4 * (1 + std::abs(want.data[i]))) << c.equation << " at " << i;
    }
    // Export and import again: the same output.
    auto bytes = SerializeOnnx(*g);
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    auto again = ParseOnnx(*bytes);
    ASSERT_TRUE(again.ok()) << c.equation << ": " << again.status().message();
    auto engine2 = Engine::Create(*again);
    ASSERT_TRUE(engine2.ok());
    auto out2 = (*engine2)->RunAll(in);
    ASSERT_TRUE(out2.ok());
    EXPECT_EQ(out2->at(again->outputs[0]).data, y.data) << c.equation;
  }
}

TEST(Einsum, RefusesWhatItCannotDoInOneLineNamingTheNode) {
  std::mt19937 rng(3);
  auto op = [&](Shape s, bool constant = false) { return Operand{s, Random(ElementCount(s), rng), constant}; };
  const std::pair<std::string, std::vector<Operand>> refused[] = {
      {"ii->i", {op({3, 3})}},                             // a diagonal
      {"ij,jk->iz", {op({3, 4}), op({4, 5})}},              // an output index in no operand
      {"ij,jk->ii", {op({3, 4}), op({4, 5})}},              // an output index twice
      {"i.j,jk->ik", {op({3, 4}), op({4, 5})}},             // a lone '.'
      {"i1,1k->ik", {op({3, 4}), op({4, 5})}},              // not a letter
      {"ij,jk->ik", {op({3, 4}), op({5, 5})}},              // j: 4 and 5
      {"ijk,jk->ik", {op({3, 4}), op({4, 5})}},             // three indices for two axes
      {"ij->ij", {op({3, 4}), op({4, 5})}},                 // one term, two inputs
      {"...i,...i->i", {op({2, 3}), op({2, 3})}},           // broadcast axes summed
      {"ij,jk->ik", {op({3, 4}, true), op({4, 5}, true)}},  // two constants
      {"", {op({3, 4})}},
  };
  for (const auto& [equation, operands] : refused) {
    auto g = ParseOnnx(OneEinsum(equation, operands).SerializeAsString());
    ASSERT_FALSE(g.ok()) << "imported '" << equation << "'";
    const std::string& msg = g.status().message();
    EXPECT_NE(msg.find("node 0 'es' (Einsum)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// One node `op` over inputs in0..in{n-1} (their shapes; constant ones as
// initializers), output y.
onnx::ModelProto OneVariadic(const std::string& op, const std::vector<Operand>& operands) {
  onnx::ModelProto m = OneEinsum("", operands);
  auto* n = m.mutable_graph()->mutable_node(0);
  n->set_op_type(op);
  n->clear_attribute();
  return m;
}

TEST(Variadic, SumMaxMinMeanOfAnyCountMatchALoop) {
  std::mt19937 rng(5);
  const std::vector<std::vector<Shape>> shape_sets = {
      {{2, 3}}, {{2, 3}, {2, 3}}, {{2, 3}, {3}, {2, 1}}, {{4, 1, 3}, {2, 3}, {1}, {4, 2, 3}}};
  for (const char* op : {"Sum", "Max", "Min", "Mean"}) {
    const std::string name = op;
    for (const auto& shapes : shape_sets) {
      for (int constants = 0; constants < static_cast<int>(shapes.size()); ++constants) {
        std::vector<Operand> operands;
        Shape out;
        for (size_t i = 0; i < shapes.size(); ++i) {
          Operand o{shapes[i], Random(ElementCount(shapes[i]), rng, -2, 2), i > 0 && static_cast<int>(i) <= constants};
          if (i == 0 && o.data.size() > 1) o.data[1] = NAN;  // NaN wins in Max and Min, as numpy's
          operands.push_back(std::move(o));
          out.resize(std::max(out.size(), shapes[i].size()), 1);
        }
        for (const Operand& o : operands) {  // numpy's broadcast shape
          for (size_t d = 0; d < o.shape.size(); ++d) {
            int64_t& s = out[out.size() - o.shape.size() + d];
            s = std::max(s, o.shape[d]);
          }
        }
        const std::string what =
            name + " of " + std::to_string(shapes.size()) + ", " + std::to_string(constants) + " constant";
        auto g = ParseOnnx(OneVariadic(op, operands).SerializeAsString());
        ASSERT_TRUE(g.ok()) << what << ": " << g.status().message();
        auto engine = Engine::Create(*g);
        ASSERT_TRUE(engine.ok()) << what << ": " << engine.status().message();
        std::map<std::string, Tensor> in;
        for (size_t i = 0; i < operands.size(); ++i) {
          if (!operands[i].constant) in["in" + std::to_string(i)] = Tensor{operands[i].shape, operands[i].data};
        }
        auto y = (*engine)->RunAll(in);
        ASSERT_TRUE(y.ok()) << what << ": " << y.status().message();
        const Tensor& got = y->at(g->outputs[0]);
        ASSERT_EQ(got.shape, out) << what;
        for (int64_t e = 0; e < ElementCount(out); ++e) {
          std::vector<int64_t> index(out.size());
          for (int64_t d = static_cast<int64_t>(out.size()) - 1, rest = e; d >= 0; --d) {
            index[d] = rest % out[d], rest /= out[d];
          }
          double acc = 0;
          for (size_t i = 0; i < operands.size(); ++i) {
            const Operand& o = operands[i];
            int64_t flat = 0;  // the element of o that broadcasts to e
            for (size_t d = 0; d < o.shape.size(); ++d) {
              const int64_t k = index[out.size() - o.shape.size() + d];
              flat = flat * o.shape[d] + (o.shape[d] == 1 ? 0 : k);
            }
            const double v = o.data[flat];
            if (i == 0) acc = v;
            else if (name == "Max") acc = std::isnan(acc) || std::isnan(v) ? NAN : std::max(acc, v);
            else if (name == "Min") acc = std::isnan(acc) || std::isnan(v) ? NAN : std::min(acc, v);
            else acc += v;
          }
          if (name == "Mean") acc /= static_cast<double>(operands.size());
          if (std::isnan(acc)) {
            EXPECT_TRUE(std::isnan(got.data[e])) << what << " at " << e;
          } else {
            EXPECT_NEAR(got.data[e], acc, 1e-5) << what << " at " << e;
          }
        }
      }
    }
  }
}

// The steps' names are no tensors of the file: a later node may write a
// tensor named like one, and a graph output may not read one.
TEST(Variadic, StepsNameNoTensorOfTheFile) {
  std::mt19937 rng(9);
  std::vector<Operand> operands(3, Operand{{2, 3}, Random(6, rng), false});
  onnx::ModelProto m = OneVariadic("Sum", operands);  // node "es": steps "es/0", then "es"
  auto* relu = m.mutable_graph()->add_node();
  relu->set_op_type("Relu"), relu->add_input("y"), relu->add_output("es/0");
  m.mutable_graph()->mutable_output(0)->set_name("es/0");
  auto g = ParseOnnx(m.SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->layers.back().kind, LayerKind::kRelu);
  EXPECT_EQ(g->outputs[0], g->layers.back().name);
  m.mutable_graph()->mutable_node()->RemoveLast();  // now nothing writes "es/0"
  g = ParseOnnx(m.SerializeAsString());
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("not produced by any node"), std::string::npos) << g.status().message();
}

}  // namespace
}  // namespace ionn
