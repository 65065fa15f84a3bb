// LMDBReader / LMDBWriter: round trip, cursor wrap, map growth, error messages.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "crema/common.hpp"
#include "crema/db.hpp"
#include "tests/test_util.hpp"

namespace crema {
namespace {

using testing::TempDir;

std::string Key(int i) {
  char key[16];
  std::snprintf(key, sizeof(key), "%08d", i);
  return key;
}

std::string Value(int i, size_t size) {
  std::string value(size, '\0');
  for (size_t j = 0; j < size; ++j) value[j] = static_cast<char>((i * 31 + j * 7) & 0xff);
  return value;
}

TEST(LMDB, WriteAndReadBack) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  {
    LMDBWriter writer(db, /*commit_every=*/7);
    for (int i = 0; i < 50; ++i) writer.Put(Key(i), Value(i, 10 + i));
    writer.Close();
    EXPECT_EQ(writer.committed(), 50u);
  }
  EXPECT_TRUE(std::filesystem::exists(db + "/data.mdb"));
  LMDBReader reader(db);
  EXPECT_EQ(reader.Entries(), 50u);
  ASSERT_TRUE(reader.valid());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(reader.valid()) << i;
    EXPECT_EQ(reader.key(), Key(i));
    EXPECT_EQ(reader.value(), Value(i, 10 + i));
    reader.Next();
  }
  EXPECT_FALSE(reader.valid());

  reader.SeekToFirst();
  for (int i = 0; i < 49; ++i) EXPECT_FALSE(reader.NextWrap());
  EXPECT_EQ(reader.key(), Key(49));
  EXPECT_TRUE(reader.NextWrap());  // past the end: back to the first entry
  EXPECT_EQ(reader.key(), Key(0));

  reader.SeekToIndex(123);  // 123 mod 50
  EXPECT_EQ(reader.key(), Key(23));
}

TEST(LMDB, OpensTheDataFileDirectly) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  LMDBWriter writer(db);
  writer.Put("a", "1");
  writer.Put("b", "2");
  writer.Close();
  LMDBReader reader(db + "/data.mdb");  // MDB_NOSUBDIR
  EXPECT_EQ(reader.Entries(), 2u);
  EXPECT_EQ(reader.value(), "1");
}

TEST(LMDB, DiscardsUncommittedWithoutClose) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  {
    LMDBWriter writer(db, /*commit_every=*/4);
    for (int i = 0; i < 6; ++i) writer.Put(Key(i), "x");
  }
  LMDBReader reader(db);
  EXPECT_EQ(reader.Entries(), 4u);
}

TEST(LMDB, MapGrowsWhenFull) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  const size_t initial = size_t{256} << 10;  // 256 KiB; we write ~3 MiB
  {
    LMDBWriter writer(db, /*commit_every=*/100, initial);
    for (int i = 0; i < 300; ++i) writer.Put(Key(i), Value(i, 10000));
    writer.Close();
    EXPECT_GT(writer.map_size(), initial);
    EXPECT_EQ(writer.map_size() % initial, 0u);  // doubled, never anything else
  }
  LMDBReader reader(db);
  ASSERT_EQ(reader.Entries(), 300u);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(reader.valid());
    ASSERT_EQ(reader.value(), Value(i, 10000)) << i;
    reader.Next();
  }
}

TEST(LMDB, OneTransactionLargerThanTheMap) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  LMDBWriter writer(db, /*commit_every=*/1000, size_t{128} << 10);
  for (int i = 0; i < 40; ++i) writer.Put(Key(i), Value(i, 50000));  // 2 MB in one commit
  writer.Close();
  LMDBReader reader(db);
  EXPECT_EQ(reader.Entries(), 40u);
}

TEST(LMDB, MissingPathNamesThePath) {
  const std::string path = "/tmp/crema_no_such_dir_4711/train_lmdb";
  try {
    LMDBReader reader(path);
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

TEST(LMDB, DirectoryWithoutDataIsNotAnLmdb) {
  TempDir dir;
  try {
    LMDBReader reader(dir.path());
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not an LMDB"), std::string::npos) << e.what();
  }
}

TEST(LMDB, GarbageFileIsAnError) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  std::filesystem::create_directory(db);
  {
    std::ofstream out(db + "/data.mdb", std::ios::binary);
    out << std::string(20000, 'z');
  }
  try {
    LMDBReader reader(db);
    FAIL() << "expected crema::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(db), std::string::npos) << e.what();
  }
}

TEST(LMDB, WriterRefusesAnExistingDatabase) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  {
    LMDBWriter writer(db);
    writer.Put("k", "v");
    writer.Close();
  }
  EXPECT_THROW(LMDBWriter again(db), Error);
  EXPECT_THROW(LMDBWriter nested(dir.path() + "/missing_parent/db"), Error);
}

TEST(LMDB, ReadOnlyDirectoryFallsBackToNoLock) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir dir;
  const std::string db = dir.path() + "/db";
  {
    LMDBWriter writer(db);
    writer.Put("k", "v");
    writer.Close();
  }
  std::filesystem::remove(db + "/lock.mdb");
  std::filesystem::permissions(db, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::remove);
  LMDBReader reader(db);
  EXPECT_EQ(reader.Entries(), 1u);
  std::filesystem::permissions(db, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
}

}  // namespace
}  // namespace crema
