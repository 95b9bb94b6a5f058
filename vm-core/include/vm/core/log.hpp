// Logging: one spdlog logger for the whole process, created on first use.
// Quiet by default (warnings and errors only); VM_LOG=trace|debug|info|warn|
// error|off in the environment selects the level. Output goes to stderr so it
// never mixes with a guest's stdout.
#pragma once

#include <spdlog/spdlog.h>

namespace vm::core {

// The process-wide logger ("vm"). Thread-safe; initialised exactly once.
spdlog::logger& logger();

// Re-reads VM_LOG (or uses `level_name` when given). For tests and the CLI.
void set_log_level(const char* level_name);

}  // namespace vm::core

#define VM_LOG_TRACE(...) SPDLOG_LOGGER_TRACE(&::vm::core::logger(), __VA_ARGS__)
#define VM_LOG_DEBUG(...) ::vm::core::logger().debug(__VA_ARGS__)
#define VM_LOG_INFO(...) ::vm::core::logger().info(__VA_ARGS__)
#define VM_LOG_WARN(...) ::vm::core::logger().warn(__VA_ARGS__)
#define VM_LOG_ERROR(...) ::vm::core::logger().error(__VA_ARGS__)
