// LMDBReader / LMDBWriter: see include/crema/db.hpp.
#include <errno.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstring>

#include "crema/db.hpp"

namespace crema {

namespace {

// What LMDB (or errno) says, with a hint for the codes users actually meet.
std::string DescribeLmdbError(int rc) {
  std::string text = mdb_strerror(rc);
  if (rc == MDB_INVALID) text += " (the file is not an LMDB database, or it is corrupt)";
  if (rc == MDB_VERSION_MISMATCH) text += " (written by an incompatible LMDB version)";
  if (rc == EACCES) text += " (check the permissions of the directory and its files)";
  return text;
}

bool PathExists(const std::string& path, struct stat* info) {
  return ::stat(path.c_str(), info) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// LMDBReader
// ---------------------------------------------------------------------------------------

LMDBReader::LMDBReader(const std::string& path) : path_(path) {
  struct stat info;
  if (!PathExists(path_, &info)) {
    const int err = errno;
    if (err == ENOENT)
      CREMA_THROW("LMDB '" << path_
                           << "' does not exist (expected a directory holding "
                              "data.mdb, as written by convert_mnist or Caffe's tools)");
    CREMA_THROW("cannot access LMDB '" << path_ << "': " << std::strerror(err));
  }
  unsigned int flags = MDB_RDONLY | MDB_NOTLS;
  if (S_ISDIR(info.st_mode)) {
    struct stat data_info;
    const std::string data_file = path_ + "/data.mdb";
    if (!PathExists(data_file, &data_info))
      CREMA_THROW("'" << path_ << "' is not an LMDB: the directory has no data.mdb");
  } else if (S_ISREG(info.st_mode)) {
    flags |= MDB_NOSUBDIR;  // the data file itself was named
  } else {
    CREMA_THROW("'" << path_ << "' is not an LMDB (neither a directory nor a file)");
  }

  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) Fail("cannot create an LMDB environment for", rc);
  rc = mdb_env_open(env_, path_.c_str(), flags, 0664);
  if (rc == EACCES || rc == EROFS) {
    // The lock file could not be created (read-only dataset): read without locking. Safe as
    // long as nobody writes the database meanwhile, which is the case for datasets.
    LOG(WARNING) << "LMDB " << path_ << ": cannot create the lock file (" << mdb_strerror(rc)
                 << "); opening with MDB_NOLOCK";
    mdb_env_close(env_);
    env_ = nullptr;
    rc = mdb_env_create(&env_);
    if (rc != MDB_SUCCESS) Fail("cannot create an LMDB environment for", rc);
    rc = mdb_env_open(env_, path_.c_str(), flags | MDB_NOLOCK, 0664);
  }
  if (rc != MDB_SUCCESS) {
    mdb_env_close(env_);
    env_ = nullptr;
    Fail("cannot open LMDB", rc);
  }

  MDB_dbi dbi;
  rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn_);
  if (rc == MDB_SUCCESS) rc = mdb_dbi_open(txn_, nullptr, 0, &dbi);
  MDB_stat stat;
  if (rc == MDB_SUCCESS) rc = mdb_stat(txn_, dbi, &stat);
  if (rc == MDB_SUCCESS) rc = mdb_cursor_open(txn_, dbi, &cursor_);
  if (rc != MDB_SUCCESS) {
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
    mdb_env_close(env_);
    env_ = nullptr;
    Fail("cannot read LMDB", rc);
  }
  entries_ = stat.ms_entries;
  SeekToFirst();
}

LMDBReader::~LMDBReader() {
  if (cursor_) mdb_cursor_close(cursor_);
  if (txn_) mdb_txn_abort(txn_);
  if (env_) mdb_env_close(env_);
}

void LMDBReader::Fail(const char* what, int rc) const {
  CREMA_THROW(what << " '" << path_ << "': " << DescribeLmdbError(rc));
}

void LMDBReader::Fetch(unsigned op) {
  MDB_val key, value;
  const int rc = mdb_cursor_get(cursor_, &key, &value, static_cast<MDB_cursor_op>(op));
  if (rc == MDB_NOTFOUND) {
    valid_ = false;
    return;
  }
  if (rc != MDB_SUCCESS) Fail("cannot read from LMDB", rc);
  valid_ = true;
  key_data_ = static_cast<const char*>(key.mv_data);
  key_size_ = key.mv_size;
  value_data_ = static_cast<const char*>(value.mv_data);
  value_size_ = value.mv_size;
}

void LMDBReader::SeekToFirst() {
  Fetch(MDB_FIRST);
}

void LMDBReader::Next() {
  CHECK(valid_) << "LMDBReader::Next on an invalid cursor";
  Fetch(MDB_NEXT);
}

bool LMDBReader::NextWrap() {
  Next();
  if (valid_) return false;
  SeekToFirst();
  return true;
}

void LMDBReader::SeekToIndex(uint64_t index) {
  SeekToFirst();
  if (entries_ == 0) return;
  for (uint64_t steps = index % entries_; steps > 0 && valid_; --steps) Fetch(MDB_NEXT);
  if (!valid_) SeekToFirst();  // fewer entries than mdb_stat said: should not happen
}

std::string_view LMDBReader::key() const {
  CHECK(valid_) << "LMDBReader::key on an invalid cursor";
  return std::string_view(key_data_, key_size_);
}

std::string_view LMDBReader::value() const {
  CHECK(valid_) << "LMDBReader::value on an invalid cursor";
  return std::string_view(value_data_, value_size_);
}

// ---------------------------------------------------------------------------------------
// LMDBWriter
// ---------------------------------------------------------------------------------------

LMDBWriter::LMDBWriter(const std::string& path, size_t commit_every, size_t initial_map_size)
    : path_(path),
      commit_every_(commit_every > 0 ? commit_every : 1),
      map_size_(initial_map_size > 0 ? initial_map_size : size_t{1} << 20) {
  struct stat info;
  if (PathExists(path_, &info)) {
    if (!S_ISDIR(info.st_mode))
      CREMA_THROW("cannot create LMDB '" << path_ << "': a file with that name exists");
    struct stat data_info;
    if (PathExists(path_ + "/data.mdb", &data_info))
      CREMA_THROW("cannot create LMDB '" << path_
                                         << "': it already exists (remove it first to rebuild it)");
  } else if (::mkdir(path_.c_str(), 0755) != 0) {
    const int err = errno;
    CREMA_THROW("cannot create LMDB directory '"
                << path_ << "': " << std::strerror(err)
                << (err == ENOENT ? " (missing parent directory)" : ""));
  }
  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) Fail("cannot create an LMDB environment for", rc);
  rc = mdb_env_set_mapsize(env_, map_size_);
  if (rc == MDB_SUCCESS) rc = mdb_env_open(env_, path_.c_str(), 0, 0664);
  if (rc != MDB_SUCCESS) {
    mdb_env_close(env_);
    env_ = nullptr;
    Fail("cannot create LMDB", rc);
  }
}

LMDBWriter::~LMDBWriter() {
  if (env_) mdb_env_close(env_);
}

void LMDBWriter::Fail(const char* what, int rc) const {
  CREMA_THROW(what << " '" << path_ << "': " << DescribeLmdbError(rc));
}

void LMDBWriter::Put(std::string key, std::string value) {
  CREMA_REQUIRE(env_, "LMDB '" << path_ << "' was already closed");
  pending_.emplace_back(std::move(key), std::move(value));
  if (pending_.size() >= commit_every_) Commit();
}

void LMDBWriter::GrowMap() {
  constexpr size_t kLimit = size_t{1} << 42;  // 4 TiB: beyond that something else is wrong
  if (map_size_ >= kLimit)
    CREMA_THROW("LMDB '" << path_ << "': the memory map would exceed " << (kLimit >> 30) << " GiB");
  map_size_ *= 2;
  const int rc = mdb_env_set_mapsize(env_, map_size_);
  if (rc != MDB_SUCCESS) Fail("cannot grow the memory map of LMDB", rc);
  VLOG(1) << "LMDB " << path_ << ": map size doubled to " << (map_size_ >> 20) << " MiB";
}

void LMDBWriter::Commit() {
  CREMA_REQUIRE(env_, "LMDB '" << path_ << "' was already closed");
  if (pending_.empty()) return;
  for (;;) {
    MDB_txn* txn = nullptr;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != MDB_SUCCESS) Fail("cannot begin a write transaction on LMDB", rc);
    rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
    if (rc != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      Fail("cannot open the database of LMDB", rc);
    }
    bool map_full = false;
    for (auto& [key, value] : pending_) {
      MDB_val k{key.size(), const_cast<char*>(key.data())};
      MDB_val v{value.size(), const_cast<char*>(value.data())};
      rc = mdb_put(txn, dbi, &k, &v, 0);
      if (rc == MDB_MAP_FULL) {
        map_full = true;
        break;
      }
      if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        Fail(("cannot write key '" + key + "' to LMDB").c_str(), rc);
      }
    }
    if (map_full) {
      mdb_txn_abort(txn);
      GrowMap();
      continue;  // replay the whole transaction in the larger map
    }
    rc = mdb_txn_commit(txn);  // frees txn whatever the outcome
    if (rc == MDB_MAP_FULL) {
      GrowMap();
      continue;
    }
    if (rc != MDB_SUCCESS) Fail("cannot commit to LMDB", rc);
    break;
  }
  committed_ += pending_.size();
  pending_.clear();
}

void LMDBWriter::Close() {
  if (!env_) return;
  Commit();
  mdb_env_close(env_);
  env_ = nullptr;
}

}  // namespace crema
