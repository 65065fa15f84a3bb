// Protobuf file I/O: text and binary readers with user-facing errors, and atomic writers.
#include "crema/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include "crema.pb.h"
#include "crema/upgrade_proto.hpp"

namespace crema {

namespace {

std::string ErrnoText(int err) {
  return std::strerror(err);
}

// Closes a POSIX file descriptor when it goes out of scope.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  // Closes now and reports close()'s own failure (which can carry a delayed write error).
  int Close() {
    int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

std::string TypeName(const google::protobuf::Message& proto) {
  return proto.GetDescriptor()->name();
}

}  // namespace

std::string ReadWholeFile(const std::string& path, const std::string& what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    CREMA_THROW("Cannot open " << what << " file " << path << ": " << ErrnoText(err) << ".");
  }
  FdCloser closer(fd);
  std::string contents;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      CREMA_THROW("Cannot read " << what << " file " << path << ": " << ErrnoText(err) << ".");
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  return contents;
}

namespace {

// Tab stops of the protobuf tokenizer (GCC counts display columns the same way).
constexpr int kTabWidth = 8;

int NextColumn(int column, char c) {
  return c == '\t' ? (column / kTabWidth + 1) * kTabWidth : column + 1;
}

// Offset in `text` of a 0-based tokenizer (line, column), or npos.
size_t OffsetOf(const std::string& text, int line, int column) {
  size_t offset = 0;
  for (int l = 0; l < line; ++l) {
    offset = text.find('\n', offset);
    if (offset == std::string::npos) return std::string::npos;
    ++offset;
  }
  for (int col = 0; col < column; ++offset) {
    if (offset >= text.size() || text[offset] == '\n') return std::string::npos;
    col = NextColumn(col, text[offset]);
  }
  return offset;
}

// 0-based tokenizer (line, column) of an offset in `text`.
void PositionOf(const std::string& text, size_t offset, int* line, int* column) {
  *line = 0;
  *column = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++*line;
      *column = 0;
    } else {
      *column = NextColumn(*column, text[i]);
    }
  }
}

// For errors about a name (an unknown field or enum value, a singular field given twice)
// the parser points at the token after the name, which may even be on the next line.
// Moves (line, column) back to the start of the name, which is what a reader looks for.
void MoveToNameStart(const std::string& text, const std::string& message, int* line, int* column) {
  static const char* const kPatterns[] = {
      "has no field named \"", "Unknown enumeration value of \"", "Non-repeated field \""};
  std::string name;
  for (const char* pattern : kPatterns) {
    const size_t at = message.find(pattern);
    if (at == std::string::npos) continue;
    const size_t begin = at + std::strlen(pattern);
    const size_t end = message.find('"', begin);
    if (end != std::string::npos) name = message.substr(begin, end - begin);
    break;
  }
  if (name.empty() || *line < 0) return;
  size_t offset = OffsetOf(text, *line, *column);
  if (offset == std::string::npos) return;
  while (offset > 0 && std::isspace(static_cast<unsigned char>(text[offset - 1]))) --offset;
  if (offset < name.size() || text.compare(offset - name.size(), name.size(), name) != 0) return;
  PositionOf(text, offset - name.size(), line, column);
}

// Gathers every error and warning the text parser reports, with 1-based positions.
class CollectingErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  // `text` is the input being parsed; it must outlive the collector.
  CollectingErrorCollector(std::string source_name, const std::string& text)
      : source_name_(std::move(source_name)), text_(text) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    MoveToNameStart(text_, message, &line, &column);
    errors_.push_back(Format(line, column, message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    LOG(WARNING) << Format(line, column, message);
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  // The parser counts lines and columns from 0 and uses line -1 for problems that
  // belong to the whole message (such as missing required fields).
  std::string Format(int line, int column, const std::string& message) const {
    std::ostringstream out;
    out << source_name_;
    if (line >= 0) out << ":" << (line + 1) << ":" << (column + 1);
    out << ": " << message;
    return out.str();
  }

  std::string source_name_;
  const std::string& text_;
  std::vector<std::string> errors_;
};

// Writes `data` to `path` through a temporary file in the same directory, fsyncs it and
// renames it into place.
void WriteFileAtomically(const std::string& data, const std::string& path,
                         const std::string& what) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    int err = errno;
    CREMA_THROW("Cannot write " << what << " " << path << ": cannot create " << tmp << ": "
                                << ErrnoText(err) << ".");
  }
  FdCloser closer(fd);
  auto fail = [&](const char* step, int err) {
    ::unlink(tmp.c_str());
    CREMA_THROW("Cannot write " << what << " " << path << ": " << step << " " << tmp
                                << " failed: " << ErrnoText(err) << ".");
  };
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing", errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("flushing", errno);
  if (closer.Close() != 0) fail("closing", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("renaming into place", errno);

  // Make the rename itself durable; failing here does not lose the data just written,
  // so it is only logged.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    if (::fsync(dir_fd) != 0) {
      VLOG(1) << "fsync of directory " << dir << " failed: " << ErrnoText(errno);
    }
    ::close(dir_fd);
  }
}

}  // namespace

bool FileExists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

void ReadProtoFromTextString(const std::string& text, google::protobuf::Message* proto,
                             const std::string& source_name) {
  CHECK(proto != nullptr);
  CollectingErrorCollector collector(source_name, text);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  // Unknown field names stay errors (the parser's default), as in Caffe: a misspelt
  // setting must not be silently ignored.
  parser.AllowUnknownField(false);
  const bool ok = parser.ParseFromString(text, proto);
  if (ok && collector.errors().empty()) return;

  std::ostringstream message;
  message << "Cannot parse " << source_name << " as a text " << TypeName(*proto) << ": ";
  if (collector.errors().empty()) {
    message << "the protobuf text parser failed without saying why.";
  } else {
    const std::vector<std::string>& errors = collector.errors();
    for (size_t i = 0; i < errors.size(); ++i) {
      if (i > 0) message << "; ";
      message << errors[i];
    }
    if (errors.back().empty() || errors.back().back() != '.') message << ".";
  }
  throw Error(message.str());
}

void ReadProtoFromTextFile(const std::string& path, google::protobuf::Message* proto) {
  CHECK(proto != nullptr);
  const std::string text = ReadWholeFile(path, "text " + TypeName(*proto));
  ReadProtoFromTextString(text, proto, path);
}

void ReadProtoFromBinaryFile(const std::string& path, google::protobuf::Message* proto) {
  CHECK(proto != nullptr);
  const std::string type = TypeName(*proto);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    CREMA_THROW("Cannot open binary " << type << " file " << path << ": " << ErrnoText(err) << ".");
  }
  FdCloser closer(fd);
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int err = errno;
    CREMA_THROW("Cannot read binary " << type << " file " << path << ": " << ErrnoText(err) << ".");
  }
  if (S_ISDIR(info.st_mode)) {
    CREMA_THROW("Cannot read binary " << type << " file " << path << ": it is a directory.");
  }
  const bool regular = S_ISREG(info.st_mode);
  if (regular && info.st_size > INT_MAX) {
    CREMA_THROW("Cannot read binary " << type << " file " << path << ": it is " << info.st_size
                                      << " bytes, and protobuf messages are limited to 2 GiB.");
  }

  google::protobuf::io::FileInputStream raw(fd);
  bool parsed = false;
  int64_t consumed = 0;
  {
    google::protobuf::io::CodedInputStream coded(&raw);
    coded.SetTotalBytesLimit(INT_MAX);
    proto->Clear();
    parsed = proto->MergePartialFromCodedStream(&coded) && coded.ConsumedEntireMessage();
    consumed = coded.CurrentPosition();
  }
  if (raw.GetErrno() != 0) {
    CREMA_THROW("Cannot read binary " << type << " file " << path << ": "
                                      << ErrnoText(raw.GetErrno()) << ".");
  }
  if (!parsed) {
    std::ostringstream size;
    if (regular) size << " (" << info.st_size << " bytes)";
    CREMA_THROW("Cannot parse " << path << " as a binary " << type << size.str()
                                << ": the file is truncated or corrupt, or is not a binary " << type
                                << " at all.");
  }
  if (regular && consumed != static_cast<int64_t>(info.st_size)) {
    CREMA_THROW("Cannot parse " << path << " as a binary " << type << ": only " << consumed
                                << " of its " << info.st_size
                                << " bytes form the message; the rest is not protobuf data.");
  }
  if (!proto->IsInitialized()) {
    CREMA_THROW("Cannot parse " << path << " as a binary " << type
                                << ": required fields are missing: "
                                << proto->InitializationErrorString() << ".");
  }
}

void WriteProtoToTextFile(const google::protobuf::Message& proto, const std::string& path) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(proto, &text)) {
    CREMA_THROW("Cannot write text " << TypeName(proto) << " " << path
                                     << ": the message could not be printed.");
  }
  WriteFileAtomically(text, path, "text " + TypeName(proto));
}

void WriteProtoToBinaryFile(const google::protobuf::Message& proto, const std::string& path) {
  const std::string type = TypeName(proto);
  if (!proto.IsInitialized()) {
    CREMA_THROW("Cannot write binary " << type << " " << path << ": required fields are missing: "
                                       << proto.InitializationErrorString() << ".");
  }
  const size_t size = proto.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    CREMA_THROW("Cannot write binary " << type << " " << path << ": the message is " << size
                                       << " bytes, and protobuf messages are limited to 2 GiB.");
  }
  std::string data;
  if (!proto.SerializeToString(&data)) {
    CREMA_THROW("Cannot write binary " << type << " " << path
                                       << ": protobuf could not serialize the message.");
  }
  WriteFileAtomically(data, path, "binary " + type);
}

void ReadNetParamsFromTextFile(const std::string& path, pb::NetParameter* net) {
  ReadProtoFromTextFile(path, net);
  UpgradeNetAsNeeded(path, net);
}

void ReadNetParamsFromBinaryFile(const std::string& path, pb::NetParameter* net) {
  ReadProtoFromBinaryFile(path, net);
  UpgradeNetAsNeeded(path, net);
}

void ReadSolverParamsFromTextFile(const std::string& path, pb::SolverParameter* solver) {
  ReadProtoFromTextFile(path, solver);
  UpgradeSolverAsNeeded(path, solver);

  // Default snapshot location, as Caffe derives it from the solver file's name.
  namespace fs = std::filesystem;
  if (!solver->has_snapshot_prefix()) {
    solver->set_snapshot_prefix(fs::path(path).replace_extension().string());
    LOG(INFO) << "snapshot_prefix not given; using " << solver->snapshot_prefix();
  } else {
    std::error_code ec;
    if (fs::is_directory(solver->snapshot_prefix(), ec)) {
      solver->set_snapshot_prefix(
          (fs::path(solver->snapshot_prefix()) / fs::path(path).stem()).string());
      LOG(INFO) << "snapshot_prefix is a directory; using " << solver->snapshot_prefix();
    }
  }
}

}  // namespace crema
