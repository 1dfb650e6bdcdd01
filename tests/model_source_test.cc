#include "ionn/model_source.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "ionn/onnx_io.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

TEST(LoadModel, ZooModelWithOrWithoutWeights) {
  auto shapes = LoadModel("", "alexnet", /*with_weights=*/false);
  ASSERT_TRUE(shapes.ok()) << shapes.status().message();
  EXPECT_EQ(shapes->name, "alexnet");
  EXPECT_EQ(shapes->ParameterCount(), 60965224);
  EXPECT_TRUE(shapes->layers[0].weights[0].data.empty());
  auto weights = LoadModel("", "mobilenet", /*with_weights=*/true);
  ASSERT_TRUE(weights.ok()) << weights.status().message();
  EXPECT_EQ(weights->layers[0].weights[0].data, BuildZooModel("mobilenet", 1)->layers[0].weights[0].data);
}

TEST(LoadModel, OnnxFile) {
  const std::string path = ::testing::TempDir() + "ionn_load_model_test.onnx";
  auto zoo = BuildZooModel("mobilenet", 1);
  ASSERT_TRUE(zoo.ok());
  ASSERT_TRUE(WriteOnnxFile(*zoo, path).ok());
  auto g = LoadModel(path, "", /*with_weights=*/false);  // a file always brings its weights
  std::remove(path.c_str());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->layers.size(), zoo->layers.size());
  EXPECT_EQ(g->layers[0].weights[0].data, zoo->layers[0].weights[0].data);
}

TEST(LoadModel, InputShapesOnlyForAFile) {
  OnnxImportOptions shapes;
  shapes.input_shapes = {{"", {1, 3, 227, 227}}};
  auto zoo = LoadModel("", "alexnet", /*with_weights=*/false, shapes);
  ASSERT_FALSE(zoo.ok());
  EXPECT_EQ(zoo.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(
      zoo.status().message().find("--input-shape is for a model file: zoo model 'alexnet' has fixed input shapes"),
      std::string::npos)
      << zoo.status().message();

  const std::string path = ::testing::TempDir() + "ionn_load_model_shapes_test.onnx";
  auto model = BuildZooModel("mobilenet", 1, /*with_weights=*/true);
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(WriteOnnxFile(*model, path).ok());
  shapes.input_shapes = {{"", model->inputs[0].shape}};  // as the file says: accepted
  auto same = LoadModel(path, "", /*with_weights=*/true, shapes);
  shapes.input_shapes = {{"", {1, 3, 112, 112}}};  // the file's dimensions are fixed
  auto other = LoadModel(path, "", /*with_weights=*/true, shapes);
  std::remove(path.c_str());
  ASSERT_TRUE(same.ok()) << same.status().message();
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("dimension 2 is 224 in the file, 112 in the given shape"), std::string::npos)
      << other.status().message();
}

TEST(LoadModel, RejectsBothAndNeither) {
  for (auto [file, zoo] : {std::pair<std::string, std::string>{"", ""}, {"m.onnx", "alexnet"}}) {
    auto g = LoadModel(file, zoo, false);
    ASSERT_FALSE(g.ok()) << "file '" << file << "', zoo '" << zoo << "'";
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(g.status().message().find("give a model file or --zoo NAME"), std::string::npos);
  }
}

TEST(LoadModel, PassesOnTheLoadersErrors) {
  auto missing = LoadModel(::testing::TempDir() + "no_such_model.onnx", "", true);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open"), std::string::npos) << missing.status().message();
  auto unknown = LoadModel("", "vgg16", true);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("vgg16"), std::string::npos) << unknown.status().message();
}

}  // namespace
}  // namespace ionn
