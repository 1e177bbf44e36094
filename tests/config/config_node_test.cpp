// ConfigNode: typed reads, defaults recorded in the resolved config, overrides, unknown keys.
#include "mtl/config/config_node.h"

#include "test_util.h"

using mtl::Config;

TEST(ConfigNode, ReadsTypedValuesAndDefaults) {
  Config cfg = Config::from_string("a: {i: 3, d: 0.5, b: true, s: hi, v: [1, 2], w: [0.5, 1e-3]}\n", "t.yaml");
  auto a = cfg.root().child("a");
  EXPECT_EQ(a.get<int64_t>("i", 0), 3);
  EXPECT_DOUBLE_EQ(a.get<double>("d", 0), 0.5);
  EXPECT_TRUE(a.get<bool>("b", false));
  EXPECT_EQ(a.get<std::string>("s", ""), "hi");
  EXPECT_EQ(a.get<std::vector<int64_t>>("v", {}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(a.get<std::vector<double>>("w", {}), (std::vector<double>{0.5, 1e-3}));
  EXPECT_EQ(a.get<int64_t>("missing", 7), 7);
  EXPECT_DOUBLE_EQ(a.get<double>("i", 0), 3.0);  // integers are numbers
  cfg.check_unused();
  // Defaults appear in the resolved config, which loads again to the same values.
  Config again = Config::from_string(cfg.resolved_yaml(), "resolved.yaml");
  EXPECT_EQ(again.root().child("a").get<int64_t>("missing", 0), 7);
  EXPECT_EQ(again.root().child("a").get<std::string>("s", ""), "hi");
}

TEST(ConfigNode, ComponentShorthandAndList) {
  Config cfg = Config::from_string("m: lenet\nl: [accuracy, {type: top_k_accuracy, k: 3}]\n");
  auto m = cfg.root().component("m");
  EXPECT_EQ(m.type(), "lenet");
  auto l = cfg.root().components("l");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].type(), "accuracy");
  EXPECT_EQ(l[1].type(), "top_k_accuracy");
  EXPECT_EQ(l[1].get<int64_t>("k", 5), 3);
  cfg.check_unused();
  EXPECT_NE(cfg.resolved_yaml().find("top_k_accuracy"), std::string::npos);
}

TEST(ConfigNode, OverridesReplaceAndCreateValues) {
  Config cfg = Config::from_string("trainer: {epochs: 10}\n", "t.yaml",
                                   {"trainer.epochs=3", "trainer.seed=5", "optimizer.lr=0.1"});
  EXPECT_EQ(cfg.root().child("trainer").get<int64_t>("epochs", 0), 3);
  EXPECT_EQ(cfg.root().child("trainer").get<int64_t>("seed", 0), 5);
  EXPECT_DOUBLE_EQ(cfg.root().child("optimizer").get<double>("lr", 0), 0.1);
  // A bad overridden value is reported at the flag, not at a file position.
  Config bad = Config::from_string("trainer: {epochs: 10}\n", "t.yaml", {"trainer.epochs=ten"});
  EXPECT_MTL_ERROR(bad.root().child("trainer").get<int64_t>("epochs", 0), "--set trainer.epochs",
                   "expected an integer", "'ten'");
}

TEST(ConfigNode, UnknownKeySuggestsNearMiss) {
  Config cfg = Config::from_string("trainer:\n  epochs: 1\n  batch_sise: 3\n", "t.yaml");
  auto t = cfg.root().child("trainer");
  t.get<int64_t>("epochs", 1);
  t.get<int64_t>("batch_size", 1);
  EXPECT_MTL_ERROR(cfg.check_unused(), "t.yaml:3:3", "trainer.batch_sise", "unknown key 'batch_sise'",
                   "did you mean 'batch_size'");
}

TEST(ConfigNode, AKnownKeySetToNullReadsAsAbsent) {
  // `--set model.init=null` removes a section the file has: read as absent, and not an unknown key.
  Config cfg = Config::from_string("model:\n  init: {path: x}\n  other: ~\n", "t.yaml", {"model.init=null"});
  auto m = cfg.root().child("model");
  EXPECT_FALSE(m.has("init"));
  EXPECT_MTL_ERROR(cfg.check_unused(), "model.other", "unknown key 'other'");  // never asked for: still unknown
  Config file = Config::from_string("model:\n  init: ~\n", "t.yaml");
  EXPECT_FALSE(file.root().child("model").has("init"));
  EXPECT_NO_THROW(file.check_unused());
}

TEST(ConfigNode, ErrorsCarryLineAndColumn) {
  Config cfg = Config::from_string("a:\n  x: [1, 2]\n", "f.yaml");
  EXPECT_MTL_ERROR(cfg.root().child("a").get<int64_t>("x", 0), "f.yaml:2:6 (a.x)", "expected an integer",
                   "a list");
  EXPECT_MTL_ERROR(cfg.root().child("a").require<std::string>("y"), "f.yaml", "(a.y)", "missing required key 'y'");
}

TEST(ConfigNode, ChoiceListsAllowedValues) {
  Config cfg = Config::from_string("o: {type: sgdd}\n", "f.yaml");
  EXPECT_MTL_ERROR(cfg.root().child("o").choice("type", "sgd", {"sgd", "adam"}), "f.yaml:1:11", "(o.type)",
                   "did you mean 'sgd'", "sgd, adam");
}

// Keys with dots, brackets or quotes (CSV columns such as "temp[C]" used as label names) are one path segment:
// the resolved config keeps them as they were (a resumed run reads it back), unknown keys among them are found,
// and `--set` reaches them in quotes. (Fuzzing found "temp[C]" crashing the resolved-config writer.)
TEST(ConfigNode, KeysWithDotsAndBracketsStayOneKey) {
  Config cfg = Config::from_string(
      "labels: {\"temp[C]\": {kind: real}, \"a.b\": {kind: class}, 'say \"hi\"': {kind: class}}\n"
      "stems: [lenet, mlp]\n",
      "t.yaml", {"labels.\"a.b\".kind=real"});
  auto labels = cfg.root().child("labels");
  const std::vector<std::string> keys = cfg.root().keys("labels");
  ASSERT_EQ(keys, (std::vector<std::string>{"temp[C]", "a.b", "say \"hi\""}));
  for (const auto& k : keys) labels.child(k).get<std::string>("kind", "");
  EXPECT_EQ(labels.child("a.b").get<std::string>("kind", ""), "real");  // the --set reached it
  EXPECT_EQ(labels.child("temp[C]").where("kind"), "t.yaml:1:28 (labels.\"temp[C]\".kind)");
  // The same key read as a list of names and then as components (code paths that differ) stays readable.
  cfg.root().get<std::vector<std::string>>("stems", {});
  EXPECT_EQ(cfg.root().components("stems")[0].type(), "lenet");
  cfg.check_unused();
  Config again = Config::from_string(cfg.resolved_yaml(), "resolved.yaml");
  EXPECT_EQ(again.root().keys("labels"), keys);
  EXPECT_EQ(again.root().child("labels").child("temp[C]").get<std::string>("kind", ""), "real");
  EXPECT_EQ(again.root().child("labels").child("say \"hi\"").get<std::string>("kind", ""), "class");
  // An unknown key inside a quoted segment is reported with its path.
  Config bad = Config::from_string("labels: {\"a.b\": {kind: real, knd: 1}}\n", "b.yaml");
  bad.root().child("labels").child("a.b").get<std::string>("kind", "");
  EXPECT_MTL_ERROR(bad.check_unused(), "labels.\"a.b\".knd", "unknown key 'knd'");
  EXPECT_MTL_ERROR(Config::from_string("a: [1, 2]\n", "t.yaml", {"a[0]=3"}), "cannot set one element of a list");
}
