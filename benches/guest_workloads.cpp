// Whole-program speed: each bundled compute-heavy guest program (gcc -O2,
// static) run natively, under qemu-x86_64 and under `vm run` (tiered engine,
// softmmu and direct address spaces), as separate processes in the same
// benchmark run, so the ratios (vm / native, vm / qemu) compare like with
// like. Each program repeats its work VM_GUEST_SCALE times (per-program
// defaults below, chosen so that native runs take roughly 0.1 s and warm-up
// is a small part of a vm run); the environment variable
// VM_WORKLOAD_SCALE_PERCENT scales them all (0: run each program once at
// scale 1, which the CI smoke run uses). stdout goes to /dev/null; a run
// that does not exit with status 0 is reported as an error, never timed.
//
// steady/...: the same commands at steady state. One iteration runs the
// program at its scale S and at 3 S; the time reported (manual time) is half
// the difference, the cost of S units of work with start-up, translation and
// warm-up (which both runs share) taken out. The goal (faster than
// qemu "at steady state") is judged on these.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Program {
  const char* name;
  long scale;  // VM_GUEST_SCALE at 100 %
};
const Program kPrograms[] = {
    {"bytecode", 100}, {"sha256", 300}, {"recursion", 1000}, {"strings", 1000}, {"linked_list", 100}};

long scaled(long base) {
  const char* pct = std::getenv("VM_WORKLOAD_SCALE_PERCENT");
  if (pct == nullptr) return base;
  long p = std::atol(pct);
  return p <= 0 ? 1 : std::max(1L, base * p / 100);
}

bool run_process(const std::vector<std::string>& argv, long scale, std::string& error) {
  pid_t pid = fork();
  if (pid < 0) {
    error = "fork failed";
    return false;
  }
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    setenv("VM_GUEST_SCALE", std::to_string(scale).c_str(), 1);
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

void bench_command(benchmark::State& state, std::vector<std::string> argv, long scale) {
  if (access(argv[0].c_str(), X_OK) != 0) {
    state.SkipWithError((argv[0] + " is not available").c_str());
    return;
  }
  std::string error;
  for (auto _ : state) {
    if (!run_process(argv, scale, error)) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
}

// Half the time of a run at 3 `scale` minus that of a run at `scale`.
void bench_steady(benchmark::State& state, std::vector<std::string> argv, long scale) {
  if (access(argv[0].c_str(), X_OK) != 0) {
    state.SkipWithError((argv[0] + " is not available").c_str());
    return;
  }
  std::string error;
  auto timed = [&](long s, double& seconds) {
    auto t0 = std::chrono::steady_clock::now();
    bool ok = run_process(argv, s, error);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return ok;
  };
  for (auto _ : state) {
    double once = 0, thrice = 0;
    if (!timed(scale, once) || !timed(3 * scale, thrice)) {
      state.SkipWithError(error.c_str());
      return;
    }
    // Noise can make the difference negative on tiny runs (the CI smoke
    // run's scale 1); the benchmark library wants a positive time.
    state.SetIterationTime(std::max(1e-6, (thrice - once) / 2));
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const Program& p : kPrograms) {
    std::string prog = p.name;
    std::string exe = std::string(VM_GUEST_DIR) + "/" + prog + "-gcc-O2";
    long scale = scaled(p.scale);
    auto reg = [&](const std::string& name, std::vector<std::string> cmd) {
      benchmark::RegisterBenchmark(name.c_str(), bench_command, cmd, scale)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      // One pair of runs per repetition (the manual time is too short for the
      // library to choose an iteration count from; it would run hundreds).
      benchmark::RegisterBenchmark(("steady/" + name).c_str(), bench_steady, cmd, scale)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime()
          ->Iterations(1);
    };
    reg("native/" + prog, {exe});
    reg("qemu/" + prog, {"/usr/bin/qemu-x86_64", exe});
    // The tiered engine (the default) over both address-space strategies.
    reg("vm_run/" + prog + "/softmmu", {VM_BINARY, "run", "--engine", "tiered", "--mmu", "softmmu", exe});
    reg("vm_run/" + prog + "/direct", {VM_BINARY, "run", "--engine", "tiered", "--mmu", "direct", exe});
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
