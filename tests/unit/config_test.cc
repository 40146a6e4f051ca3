// The knob registry: defaults, parsing through a fake environment, Horovod aliases, errors that
// name the variable and the accepted range, and the per-knob source report.
#include "runtime/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>

namespace quorum {
namespace {

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Config load_ok(std::map<std::string, std::string> vars) {
  Config c;
  Status s = load_config(fake_env(std::move(vars)), &c);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return c;
}

Status load_err(std::map<std::string, std::string> vars) {
  Config c;
  return load_config(fake_env(std::move(vars)), &c);
}

// Expects `vars` to be rejected with a message naming `variable` and `range`.
void expect_rejected(const std::string& variable, const std::string& value,
                     const std::string& range) {
  SCOPED_TRACE(variable + "=" + value);
  Status s = load_err({{variable, value}});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(variable), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'" + value + "'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(range), std::string::npos) << s.message();
}

TEST(Config, Defaults) {
  Config c = load_ok({});
  EXPECT_EQ(c.fusion_threshold, 67108864);
  EXPECT_EQ(c.fusion_max_tensor, 262144);
  EXPECT_EQ(c.cycle_time_ms, 1.0);
  EXPECT_EQ(c.log_level, LogLevel::kWarn);
  EXPECT_EQ(c.log_subsystems, ~0u);
  EXPECT_EQ(c.thread_affinity, -1);
  EXPECT_EQ(c.control_port, 0);
  EXPECT_EQ(c.connect_timeout_sec, 60.0);
  EXPECT_EQ(c.shutdown_timeout_sec, 60.0);
}

TEST(Config, ParsesValuesAndByteSuffixes) {
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_THRESHOLD", "0"}}).fusion_threshold, 0);
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_THRESHOLD", "12345"}}).fusion_threshold, 12345);
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_THRESHOLD", "64K"}}).fusion_threshold, 65536);
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_MAX_TENSOR", "1M"}}).fusion_max_tensor, 1048576);
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_THRESHOLD", "3k"}}).fusion_threshold, 3072);
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_THRESHOLD", "32M"}}).fusion_threshold, 32 << 20);
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_THRESHOLD", "1G"}}).fusion_threshold, 1 << 30);
  EXPECT_EQ(load_ok({{"QUORUM_FUSION_THRESHOLD", "1073741824"}}).fusion_threshold, 1 << 30);
  EXPECT_EQ(load_ok({{"QUORUM_CYCLE_TIME_MS", "2.5"}}).cycle_time_ms, 2.5);
  EXPECT_EQ(load_ok({{"QUORUM_CYCLE_TIME_MS", "0"}}).cycle_time_ms, 0.0);
  EXPECT_EQ(load_ok({{"QUORUM_LOG_LEVEL", "debug"}}).log_level, LogLevel::kDebug);
  EXPECT_EQ(load_ok({{"QUORUM_LOG_LEVEL", "ERROR"}}).log_level, LogLevel::kError);
  EXPECT_EQ(load_ok({{"QUORUM_LOG_LEVEL", "off"}}).log_level, LogLevel::kOff);
  EXPECT_EQ(load_ok({{"QUORUM_LOG_SUBSYS", "engine,coord"}}).log_subsystems,
            (1u << static_cast<int>(Subsys::kEngine)) | (1u << static_cast<int>(Subsys::kCoord)));
  EXPECT_EQ(load_ok({{"QUORUM_LOG_SUBSYS", "all"}}).log_subsystems, ~0u);
  EXPECT_EQ(load_ok({{"QUORUM_THREAD_AFFINITY", "3"}}).thread_affinity, 3);
  EXPECT_EQ(load_ok({{"QUORUM_CONTROL_PORT", "65535"}}).control_port, 65535);
  EXPECT_EQ(load_ok({{"QUORUM_CONNECT_TIMEOUT_SEC", "0.1"}}).connect_timeout_sec, 0.1);
  EXPECT_EQ(load_ok({{"QUORUM_SHUTDOWN_TIMEOUT_SEC", "3600"}}).shutdown_timeout_sec, 3600.0);
}

TEST(Config, HorovodAliasesOnlyWhenQuorumNameUnset) {
  EXPECT_EQ(load_ok({{"HOROVOD_FUSION_THRESHOLD", "1048576"}}).fusion_threshold, 1 << 20);
  EXPECT_EQ(load_ok({{"HOROVOD_CYCLE_TIME", "7"}}).cycle_time_ms, 7.0);
  Config c = load_ok({{"HOROVOD_FUSION_THRESHOLD", "1024"},
                      {"QUORUM_FUSION_THRESHOLD", "2K"},
                      {"HOROVOD_CYCLE_TIME", "7"},
                      {"QUORUM_CYCLE_TIME_MS", "3"}});
  EXPECT_EQ(c.fusion_threshold, 2048);
  EXPECT_EQ(c.cycle_time_ms, 3.0);
  // A valid QUORUM_ value hides even an invalid alias.
  EXPECT_TRUE(load_err({{"QUORUM_CYCLE_TIME_MS", "3"}, {"HOROVOD_CYCLE_TIME", "x"}}).is_ok());
  // Only those two knobs have aliases.
  EXPECT_EQ(load_ok({{"HOROVOD_LOG_LEVEL", "loud"}}).log_level, LogLevel::kWarn);
}

TEST(Config, InvalidValuesNameTheVariableAndRange) {
  for (const char* v : {"-1", "abc", "", "1.5M", "2G", "1073741825", "64Q", "K", " 64"}) {
    expect_rejected("QUORUM_FUSION_THRESHOLD", v, "0 .. 1G");
  }
  for (const char* v : {"-0.5", "fast", "10001", "nan", "inf", "1ms", " 5", "0x10"}) {
    expect_rejected("QUORUM_CYCLE_TIME_MS", v, "0 .. 10000");
  }
  expect_rejected("QUORUM_LOG_LEVEL", "loud", "trace|debug|info|warn|error|off");
  expect_rejected("QUORUM_LOG_LEVEL", "", "trace|debug|info|warn|error|off");
  expect_rejected("QUORUM_LOG_SUBSYS", "engine,bogus", "init,engine,coord,ops,config");
  expect_rejected("QUORUM_LOG_SUBSYS", "engine,,ops", "init,engine,coord,ops,config");
  expect_rejected("QUORUM_LOG_SUBSYS", "", "init,engine,coord,ops,config");
  expect_rejected("QUORUM_THREAD_AFFINITY", "-2", "-1 .. 65535");
  expect_rejected("QUORUM_THREAD_AFFINITY", "65536", "-1 .. 65535");
  expect_rejected("QUORUM_CONTROL_PORT", "70000", "0 .. 65535");
  expect_rejected("QUORUM_CONTROL_PORT", "-1", "0 .. 65535");
  expect_rejected("QUORUM_CONTROL_PORT", "80x", "0 .. 65535");
  expect_rejected("QUORUM_CONNECT_TIMEOUT_SEC", "0.05", "0.1 .. 3600");
  expect_rejected("QUORUM_SHUTDOWN_TIMEOUT_SEC", "3601", "0.1 .. 3600");
}

TEST(Config, InvalidAliasValueNamesTheAlias) {
  expect_rejected("HOROVOD_FUSION_THRESHOLD", "-5", "0 .. 1G");
  expect_rejected("HOROVOD_CYCLE_TIME", "soon", "0 .. 10000");
}

TEST(Config, EveryKnobIsDeclaredCompletely) {
  ASSERT_FALSE(knobs().empty());
  std::set<std::string> names;
  for (const KnobSpec& k : knobs()) {
    SCOPED_TRACE(k.name);
    EXPECT_EQ(std::string(k.name).rfind("QUORUM_", 0), 0u);
    EXPECT_TRUE(names.insert(k.name).second) << "declared twice";
    if (k.alias) {
      EXPECT_EQ(std::string(k.alias).rfind("HOROVOD_", 0), 0u);
    }
    ASSERT_NE(k.description, nullptr);
    EXPECT_GT(std::string(k.description).size(), 10u);
    ASSERT_NE(k.type, nullptr);
    EXPECT_FALSE(std::string(k.type).empty());
    ASSERT_NE(k.range, nullptr);
    EXPECT_FALSE(std::string(k.range).empty());
    ASSERT_NE(k.apply, nullptr);
    Config c;
    EXPECT_TRUE(k.apply(k.default_value, c)) << "default '" << k.default_value << "'";
    // Path knobs take any text; every other knob must refuse junk.
    if (std::string(k.type) != "path") {
      EXPECT_FALSE(k.apply("not a value", c));
    }
  }
  for (const char* expected : {"QUORUM_FUSION_THRESHOLD", "QUORUM_CYCLE_TIME_MS",
                               "QUORUM_LOG_LEVEL", "QUORUM_LOG_SUBSYS"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
}

TEST(Config, SettingsReportTheSource) {
  Config c;
  std::vector<KnobSetting> settings;
  Status s = load_config(fake_env({{"QUORUM_CONTROL_PORT", "1234"},
                                   {"HOROVOD_FUSION_THRESHOLD", "8M"},
                                   {"UNRELATED", "1"}}),
                         &c, &settings);
  ASSERT_TRUE(s.is_ok()) << s.message();
  ASSERT_EQ(settings.size(), knobs().size());
  for (size_t i = 0; i < settings.size(); ++i) {
    const KnobSetting& k = settings[i];
    SCOPED_TRACE(k.spec->name);
    EXPECT_EQ(k.spec, &knobs()[i]) << "one setting per knob, in declaration order";
    std::string name = k.spec->name;
    if (name == "QUORUM_CONTROL_PORT") {
      EXPECT_EQ(k.source, "QUORUM_CONTROL_PORT");
      EXPECT_EQ(k.value, "1234");
    } else if (name == "QUORUM_FUSION_THRESHOLD") {
      EXPECT_EQ(k.source, "HOROVOD_FUSION_THRESHOLD");
      EXPECT_EQ(k.value, "8M");
    } else {
      EXPECT_EQ(k.source, "default");
      EXPECT_EQ(k.value, k.spec->default_value);
    }
  }
  EXPECT_EQ(c.control_port, 1234);
  EXPECT_EQ(c.fusion_threshold, 8 << 20);
}

TEST(Config, ProcessEnvReadsTheEnvironment) {
  ::setenv("QUORUM_TEST_ONLY_VARIABLE", "42", 1);
  EXPECT_EQ(process_env()("QUORUM_TEST_ONLY_VARIABLE"), std::optional<std::string>("42"));
  ::unsetenv("QUORUM_TEST_ONLY_VARIABLE");
  EXPECT_FALSE(process_env()("QUORUM_TEST_ONLY_VARIABLE").has_value());
}

}  // namespace
}  // namespace quorum
