// `vm run`: the Linux user-mode runner's command-line front. Kept apart from
// main.cpp so each subcommand's options live next to the code they drive.
#pragma once

#include <CLI/CLI.hpp>

namespace vm::engine::cli {

// Adds the `run` subcommand to `app`. After parsing, if it was selected,
// call run_selected(), which returns the process exit status.
void add_run_command(CLI::App& app);
bool run_selected(const CLI::App& app);
int run_execute(char** envp);

}  // namespace vm::engine::cli
