#include "bench/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

extern char** environ;

namespace surge::bench {

Result<std::unique_ptr<ServerProcess>> ServerProcess::start(const std::vector<std::string>& argv) {
  if (argv.empty()) return Error(EINVAL, "start server: empty command line");
  int to_child[2];
  int from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) return Error(errno, "start server: pipe");
  if (pipe2(from_child, O_CLOEXEC) != 0) {
    const int code = errno;
    close(to_child[0]);
    close(to_child[1]);
    return Error(code, "start server: pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
  std::vector<char*> arguments;
  for (const auto& argument : argv) arguments.push_back(const_cast<char*>(argument.c_str()));
  arguments.push_back(nullptr);
  auto process = std::unique_ptr<ServerProcess>(new ServerProcess());
  process->name_ = argv[0];
  const int spawned = posix_spawn(&process->pid_, argv[0].c_str(), &actions, nullptr, arguments.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(to_child[0]);
  close(from_child[1]);
  process->to_server_ = to_child[1];
  process->from_server_ = from_child[0];
  if (spawned != 0) {
    process->pid_ = -1;
    return Error(spawned, "posix_spawn of the server");
  }
  auto line = process->read_line(10000);
  if (!line) return line.error();
  unsigned port = 0;
  if (line->rfind("port ", 0) != 0 ||
      std::from_chars(line->data() + 5, line->data() + line->size(), port).ec != std::errc() || port == 0 ||
      port > 65535) {
    std::fprintf(stderr, "%s: expected 'port N', got '%s'\n", argv[0].c_str(), line->c_str());
    return Error(EPROTO, "reading the server's 'port N' line");
  }
  process->port_ = static_cast<std::uint16_t>(port);
  return process;
}

ServerProcess::~ServerProcess() {
  if (to_server_ >= 0) close(to_server_);
  if (from_server_ >= 0) close(from_server_);
  if (pid_ <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (waitpid(pid_, nullptr, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<std::string> ServerProcess::read_line(int timeout_ms) {
  for (;;) {
    if (const auto newline = pending_.find('\n'); newline != std::string::npos) {
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      return line;
    }
    pollfd readable{from_server_, POLLIN, 0};
    const int ready = ::poll(&readable, 1, timeout_ms);
    if (ready == 0) return Error(ETIMEDOUT, "waiting for a line from the server");
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Error(errno, "poll on the server's stdout");
    }
    char chunk[512];
    const ssize_t got = ::read(from_server_, chunk, sizeof(chunk));
    if (got == 0) return Error(EPIPE, "the server exited (see its stderr above)");
    if (got < 0) {
      if (errno == EINTR) continue;
      return Error(errno, "read from the server's stdout");
    }
    pending_.append(chunk, static_cast<std::size_t>(got));
  }
}

Result<ServerStats> ServerProcess::stats() {
  static constexpr char kRequest[] = "stats\n";
  if (::write(to_server_, kRequest, sizeof(kRequest) - 1) != static_cast<ssize_t>(sizeof(kRequest) - 1)) {
    return Error(errno == 0 ? EPIPE : errno, "asking the server for stats");
  }
  auto line = read_line(5000);
  if (!line) return line.error();
  if (line->rfind("stats", 0) != 0) {
    std::fprintf(stderr, "%s: expected 'stats ...', got '%s'\n", name_.c_str(), line->c_str());
    return Error(EPROTO, "reading the server's stats line");
  }
  ServerStats stats;
  std::size_t position = 5;
  while (position < line->size()) {
    const std::size_t start = line->find_first_not_of(' ', position);
    if (start == std::string::npos) break;
    std::size_t end = line->find(' ', start);
    if (end == std::string::npos) end = line->size();
    const std::string field = line->substr(start, end - start);
    const std::size_t equals = field.find('=');
    if (equals == std::string::npos) {
      std::fprintf(stderr, "%s: stats field without '=': '%s'\n", name_.c_str(), field.c_str());
      return Error(EPROTO, "reading the server's stats line");
    }
    stats[field.substr(0, equals)] = std::strtod(field.c_str() + equals + 1, nullptr);
    position = end;
  }
  return stats;
}

}  // namespace surge::bench
