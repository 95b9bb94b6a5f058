#include "vm/core/log.hpp"

#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace vm::core {
namespace {

spdlog::level::level_enum level_from(const char* name) {
  if (name == nullptr || *name == '\0') return spdlog::level::warn;
  auto lvl = spdlog::level::from_str(name);
  // from_str maps unknown names to "off"; an unknown name should not silence errors.
  if (lvl == spdlog::level::off && std::string_view(name) != "off") return spdlog::level::warn;
  return lvl;
}

std::shared_ptr<spdlog::logger> make_logger() {
  auto log = spdlog::stderr_color_mt("vm");
  log->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  log->set_level(level_from(std::getenv("VM_LOG")));
  return log;
}

}  // namespace

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = make_logger();
  return *instance;
}

void set_log_level(const char* level_name) {
  logger().set_level(level_from(level_name != nullptr ? level_name : std::getenv("VM_LOG")));
}

}  // namespace vm::core
