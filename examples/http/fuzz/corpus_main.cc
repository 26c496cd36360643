// corpus_main.cc: runs the fuzz target (request_parser_fuzzer.cc) over the files and directories named on
// the command line, without libFuzzer, so that the gcc builds (and their ASan, UBSan and TSan configs) run
// the seed corpus too. Each file also runs with every piece size (its fourth byte's low half) and two more
// seeds, so that the split-versus-whole check sees each seed arrive in many ways.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void collect(const std::string& path, std::vector<std::string>& files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "cannot stat %s\n", path.c_str());
    std::exit(2);
  }
  if (!S_ISDIR(st.st_mode)) {
    files.push_back(path);
    return;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(2);
  }
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") collect(path + "/" + name, files);
  }
  closedir(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::size_t minimum = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--min_files=", 0) == 0) {
      minimum = std::stoul(arg.substr(12));
    } else {
      collect(arg, files);
    }
  }
  std::size_t runs = 0;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "cannot read %s\n", file.c_str());
      return 2;
    }
    std::fprintf(stderr, "%s (%zu bytes)\n", file.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    ++runs;
    if (bytes.size() < 4) continue;
    for (unsigned high : {0x30u, 0x70u, 0xa0u}) {
      for (unsigned low = 0; low < 16; ++low) {
        bytes[3] = static_cast<char>(high | low);
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        ++runs;
      }
    }
  }
  std::fprintf(stderr, "%zu files, %zu runs\n", files.size(), runs);
  if (files.size() < minimum) {
    std::fprintf(stderr, "expected at least %zu corpus files\n", minimum);
    return 1;
  }
  return 0;
}
