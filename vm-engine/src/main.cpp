// The `vm` command-line tool. Subcommands are added by the frontend, backend
// and engine work; see docs/cli.md.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_run.hpp"
#include "vm/translate/toolchain.hpp"

int main(int argc, char** argv, char** envp) {
  CLI::App app{"vm: an LLVM-backed x86-64 dynamic binary translator"};
  bool version = false;
  app.add_flag("--version", version, "Print version and toolchain information");
  app.require_subcommand(0, 1);
  vm::engine::cli::add_run_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (vm::engine::cli::run_selected(app)) return vm::engine::cli::run_execute(envp);
  if (version) {
    fmt::print("vm 0.1.0 (LLVM {}, Zydis {})\n", vm::translate::llvm_version(), vm::translate::zydis_version());
    return 0;
  }
  fmt::print("{}", app.help());
  return 0;
}
