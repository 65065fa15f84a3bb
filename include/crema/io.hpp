// Reading and writing protobuf messages (nets, solvers, weights, blobs) in Caffe's text
// and binary formats. Every failure is reported as a crema::Error whose message names
// the file; nothing here aborts the process.
#pragma once

#include <string>

#include "crema/common.hpp"

namespace google {
namespace protobuf {
class Message;
}  // namespace protobuf
}  // namespace google

namespace crema {

bool FileExists(const std::string& path);
// The whole file's bytes. Throws crema::Error "Cannot open <what> file <path>: <reason>."
// (or "Cannot read ...") otherwise.
std::string ReadWholeFile(const std::string& path, const std::string& what);

// Parses a text-format (prototxt) message. Parse errors are reported as
// "path:line:column: message" (1-based), all of them in one paragraph. Field names the
// schema does not know are errors, as they are in Caffe.
void ReadProtoFromTextFile(const std::string& path, google::protobuf::Message* proto);
// The same for text already in memory; `source_name` stands in for the path in errors.
void ReadProtoFromTextString(const std::string& text, google::protobuf::Message* proto,
                             const std::string& source_name);

// Parses a binary-format message (a .caffemodel, .solverstate, .binaryproto). Files up
// to 2 GiB are accepted. A missing, unreadable, truncated or corrupt file, or one with
// bytes left over after the message, is an error.
void ReadProtoFromBinaryFile(const std::string& path, google::protobuf::Message* proto);

// Writers replace `path` atomically: the data goes to "<path>.tmp.<pid>", is flushed
// to disk, and is then renamed over `path`, so readers never see a half-written file.
void WriteProtoToTextFile(const google::protobuf::Message& proto, const std::string& path);
void WriteProtoToBinaryFile(const google::protobuf::Message& proto, const std::string& path);

// Read a net or solver and bring legacy formats up to date (see upgrade_proto.hpp). A
// WARNING is logged for each upgrade applied.
void ReadNetParamsFromTextFile(const std::string& path, pb::NetParameter* net);
void ReadNetParamsFromBinaryFile(const std::string& path, pb::NetParameter* net);
// Also fills in snapshot_prefix as Caffe does: when unset it becomes the solver file's
// path without its extension; when it names an existing directory, the solver file's
// stem is appended inside it.
void ReadSolverParamsFromTextFile(const std::string& path, pb::SolverParameter* solver);

}  // namespace crema
