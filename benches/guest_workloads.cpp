// Whole-program speed: each bundled compute-heavy guest program (gcc -O2,
// static) run natively, under qemu-x86_64 and under `vm run`, as separate
// processes in the same benchmark run, so the ratios (vm / native, vm / qemu)
// compare like with like. stdout goes to /dev/null; a run that does not exit
// with status 0 is reported as an error, never timed.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

const char* const kPrograms[] = {"bytecode", "sha256", "recursion", "strings", "linked_list"};

bool run_process(const std::vector<std::string>& argv, std::string& error) {
  pid_t pid = fork();
  if (pid < 0) {
    error = "fork failed";
    return false;
  }
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + " did not exit with status 0";
    return false;
  }
  return true;
}

void bench_command(benchmark::State& state, std::vector<std::string> argv) {
  if (access(argv[0].c_str(), X_OK) != 0) {
    state.SkipWithError((argv[0] + " is not available").c_str());
    return;
  }
  std::string error;
  for (auto _ : state) {
    if (!run_process(argv, error)) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const char* prog : kPrograms) {
    std::string exe = std::string(VM_GUEST_DIR) + "/" + prog + "-gcc-O2";
    auto reg = [&](const std::string& name, std::vector<std::string> cmd) {
      benchmark::RegisterBenchmark(name.c_str(), bench_command, cmd)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    };
    reg(std::string("native/") + prog, {exe});
    reg(std::string("qemu/") + prog, {"/usr/bin/qemu-x86_64", exe});
    // Tiered JIT (compiled code reaches memory through the softmmu path).
    reg(std::string("vm_run/") + prog + "/softmmu", {VM_BINARY, "run", "--engine", "tiered", "--mmu", "softmmu", exe});
    // Direct memory: only the interpreter runs in direct mode today.
    reg(std::string("vm_run/") + prog + "/direct", {VM_BINARY, "run", "--engine", "interp", "--mmu", "direct", exe});
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
