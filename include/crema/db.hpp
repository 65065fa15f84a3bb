// A small wrapper around LMDB, the key-value store Caffe keeps its datasets in.
//
// Layout: a Caffe LMDB is a directory holding data.mdb and lock.mdb. LMDBReader also accepts
// the path of a data.mdb file itself (opened with MDB_NOSUBDIR). Readers never write: they
// open read-only (MDB_RDONLY | MDB_NOTLS, so the read transaction may be used by a thread
// other than the one that opened it) and fall back to MDB_NOLOCK when the lock file cannot
// be created (a read-only dataset directory).
//
// LMDBWriter batches Put()s into transactions of `commit_every` entries. The memory map
// starts small and doubles whenever LMDB reports MDB_MAP_FULL, after which the pending
// transaction is replayed, so a growing database never fails for lack of map space.
//
// Every failure throws crema::Error naming the path and LMDB's own message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crema/common.hpp"

// Opaque LMDB handles (from <lmdb.h>), so this header does not need LMDB's.
struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace crema {

class LMDBReader {
 public:
  // Opens an existing database read-only. Throws crema::Error for a missing path, a
  // directory without data.mdb, a file that is not an LMDB, or denied permissions.
  explicit LMDBReader(const std::string& path);
  ~LMDBReader();
  LMDBReader(const LMDBReader&) = delete;
  LMDBReader& operator=(const LMDBReader&) = delete;

  const std::string& path() const { return path_; }
  // Number of key/value pairs (mdb_stat).
  size_t Entries() const { return entries_; }

  // The cursor. After SeekToFirst on a non-empty database it is valid; Next() past the last
  // entry makes it invalid.
  void SeekToFirst();
  void Next();
  // Next(), and back to the first entry when the end is reached (Caffe's data-layer wrap).
  // Returns true when it wrapped.
  bool NextWrap();
  // Moves to the entry with this index (0-based, modulo Entries()): SeekToFirst plus
  // index % Entries() steps.
  void SeekToIndex(uint64_t index);
  bool valid() const { return valid_; }
  // Views into LMDB's memory map: valid until the cursor moves or the reader is destroyed.
  std::string_view key() const;
  std::string_view value() const;

 private:
  void Fetch(unsigned op);  // op is an MDB_cursor_op
  [[noreturn]] void Fail(const char* what, int rc) const;

  std::string path_;
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
  MDB_cursor* cursor_ = nullptr;
  size_t entries_ = 0;
  bool valid_ = false;
  const char* key_data_ = nullptr;
  size_t key_size_ = 0;
  const char* value_data_ = nullptr;
  size_t value_size_ = 0;
};

class LMDBWriter {
 public:
  // Creates a new database directory at `path` (its parent must exist). An existing empty
  // directory is accepted; a directory that already holds data.mdb is refused (crema::Error)
  // so a dataset is never silently appended to.
  explicit LMDBWriter(const std::string& path, size_t commit_every = 1000,
                      size_t initial_map_size = size_t{64} << 20);
  // Entries put since the last Commit() are DISCARDED: call Close() (or Commit()) to keep
  // them. (A destructor cannot report errors, and a conversion that failed half-way should
  // not leave a database that looks complete.)
  ~LMDBWriter();
  LMDBWriter(const LMDBWriter&) = delete;
  LMDBWriter& operator=(const LMDBWriter&) = delete;

  // Queues one pair; commits automatically every `commit_every` puts.
  void Put(std::string key, std::string value);
  // Writes the queued pairs in one transaction, growing the map as needed.
  void Commit();
  // Commit() and close the environment. Further Put()s are errors.
  void Close();

  const std::string& path() const { return path_; }
  size_t map_size() const { return map_size_; }
  // Number of pairs committed so far.
  size_t committed() const { return committed_; }

 private:
  void GrowMap();
  [[noreturn]] void Fail(const char* what, int rc) const;

  std::string path_;
  MDB_env* env_ = nullptr;
  size_t commit_every_;
  size_t map_size_;
  size_t committed_ = 0;
  std::vector<std::pair<std::string, std::string>> pending_;
};

}  // namespace crema
