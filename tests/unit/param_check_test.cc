// The libtorch binding's cross-rank parameter check, without torch or MPI: the wire form
// round-trips and rejects garbage, and compare() names the parameter, the values and the ranks
// for every kind of difference, the same way given the same input.
#include "bindings/torch/param_check.h"

#include <gtest/gtest.h>

namespace quorum::torch_binding {
namespace {

ParamDesc p(std::string name, std::vector<int64_t> shape, std::string dtype = "f32") {
  return ParamDesc{std::move(name), std::move(dtype), "cpu", std::move(shape), true, ""};
}

ParamList model() {
  return {"root 0", {p("fc1.weight", {64, 16}), p("fc1.bias", {64}), p("fc2.weight", {1, 64})}};
}

void expect(const Status& s, StatusCode code, const std::string& message) {
  EXPECT_EQ(code, s.code()) << s.message();
  EXPECT_EQ(message, s.message());
}

TEST(ParamCheck, EncodeDecodeRoundTrips) {
  ParamList in = model();
  in.params[1].problem = "dtype Bool is not supported";
  in.params[2].requires_grad = false;
  in.params.push_back(p("scalar", {}));
  ParamList out;
  ASSERT_TRUE(decode(encode(in), &out).is_ok());
  EXPECT_EQ(in, out);
  ParamList empty;
  ASSERT_TRUE(decode(encode(empty), &out).is_ok());
  EXPECT_EQ(empty, out);
}

TEST(ParamCheck, ControlCharactersInNamesCannotBreakTheFraming) {
  ParamList in{"", {p("evil\nname\x1f", {2})}};
  ParamList out;
  ASSERT_TRUE(decode(encode(in), &out).is_ok());
  ASSERT_EQ(1u, out.params.size());
  EXPECT_EQ("evil?name?", out.params[0].name);
}

TEST(ParamCheck, DecodeRejectsWhatEncodeCannotProduce) {
  ParamList out;
  for (const char* bad : {"", "x", "1\x1f\n",
                          "2\x1fs\na\x1f"
                          "f32\x1f"
                          "cpu\x1f"
                          "1\x1f"
                          "1\x1f\n",
                          "1\x1fs\na\x1f"
                          "f32\x1f"
                          "cpu\x1f"
                          "1,x\x1f"
                          "1\x1f\n",
                          "1\x1fs\na\x1f"
                          "f32\x1f"
                          "cpu\x1f"
                          "1\x1f"
                          "2\x1f\n",
                          "-1\x1fs\n"}) {
    EXPECT_FALSE(decode(bad, &out).is_ok()) << "accepted: " << bad;
  }
}

TEST(ParamCheck, AgreementIsOk) {
  EXPECT_TRUE(compare({model(), model(), model()}, "op").is_ok());
  EXPECT_TRUE(compare({model()}, "op").is_ok());
  EXPECT_TRUE(compare({}, "op").is_ok());
}

TEST(ParamCheck, ShapeDifferenceNamesParameterValuesAndRanks) {
  std::vector<ParamList> ranks{model(), model(), model()};
  ranks[1].params[2].shape = {1, 65};
  expect(compare(ranks, "DistributedOptimizer"), StatusCode::kMismatch,
         "DistributedOptimizer: parameter 'fc2.weight' (#2): shape [1,64] on ranks 0,2 but [1,65] "
         "on rank 1");
}

TEST(ParamCheck, DtypeNameAndRequiresGradDifferences) {
  std::vector<ParamList> ranks{model(), model()};
  ranks[1].params[0].dtype = "f64";
  expect(compare(ranks, "x"), StatusCode::kMismatch,
         "x: parameter 'fc1.weight' (#0): dtype f32 on rank 0 but f64 on rank 1");
  ranks = {model(), model(), model()};
  ranks[0].params[1].name = "enc.bias";
  expect(compare(ranks, "x"), StatusCode::kMismatch,
         "x: parameter #1: named 'enc.bias' on rank 0 but 'fc1.bias' on ranks 1,2");
  ranks = {model(), model()};
  ranks[1].params[1].requires_grad = false;
  expect(compare(ranks, "x"), StatusCode::kMismatch,
         "x: parameter 'fc1.bias' (#1): requires_grad true on rank 0 but false on rank 1");
}

TEST(ParamCheck, DifferentCountsNameTheFirstParameterNotEverywhere) {
  std::vector<ParamList> ranks{model(), model(), model(), model()};
  ranks[2].params.push_back(p("fc2.bias", {1}));
  expect(
      compare(ranks, "x"), StatusCode::kMismatch,
      "x: parameter lists differ across ranks: count 3 on ranks 0,1,3 but 4 on rank 2; the first "
      "parameter not on every rank is parameter 'fc2.bias' (#3) [1] on rank 2");
  // A difference within the common prefix is reported before the count.
  ranks[3].params[0].shape = {1};
  expect(compare(ranks, "x"), StatusCode::kMismatch,
         "x: parameter 'fc1.weight' (#0): shape [64,16] on ranks 0,1,2 but [1] on rank 3");
}

TEST(ParamCheck, ALocalProblemOnOneRankIsReportedEverywhereFirst) {
  std::vector<ParamList> ranks{model(), model()};
  ranks[1].params[2].problem = "dtype Bool is not supported";
  ranks[1].params[0].shape = {3};
  expect(
      compare(ranks, "broadcast_parameters"), StatusCode::kInvalidArgument,
      "broadcast_parameters: parameter 'fc2.weight' (#2) on rank 1: dtype Bool is not supported");
  expect(compare({ranks[1]}, "b"), StatusCode::kInvalidArgument,
         "b: parameter 'fc2.weight' (#2): dtype Bool is not supported");
  ranks.push_back(ranks[1]);
  ranks[0].params[2].problem = "dtype Bool is not supported";
  expect(compare(ranks, "b"), StatusCode::kInvalidArgument,
         "b: parameter 'fc2.weight' (#2): dtype Bool is not supported");  // every rank: no list
  ranks.push_back(model());
  expect(compare(ranks, "b"), StatusCode::kInvalidArgument,
         "b: parameter 'fc2.weight' (#2) on ranks 0,1,2: dtype Bool is not supported");
}

TEST(ParamCheck, SettingsMustAgree) {
  std::vector<ParamList> ranks{model(), model(), model()};
  ranks[2].settings = "root 1";
  expect(compare(ranks, "broadcast_parameters"), StatusCode::kMismatch,
         "broadcast_parameters: ranks disagree about the call: called with root 0 on ranks 0,1 but "
         "root 1 on rank 2");
}

TEST(ParamCheck, ShapeString) {
  EXPECT_EQ("[]", shape_string({}));
  EXPECT_EQ("[3]", shape_string({3}));
  EXPECT_EQ("[10,0,7]", shape_string({10, 0, 7}));
}

}  // namespace
}  // namespace quorum::torch_binding
