#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace kpt::io {

namespace {

std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

SafetensorsHeader parse(const std::string& bytes) {
  return parse_safetensors_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.safetensors");
}

// Expects an Error whose message contains `needle`.
void expect_error(const std::string& bytes, const std::string& needle) {
  try {
    parse(bytes);
    FAIL() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidFile) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.safetensors"), std::string::npos) << e.what();
  }
}

const std::string kGoodHeader =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("kpt_st_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
  }
};

}  // namespace

TEST(Safetensors, ParsesValidFile) {
  auto h = parse(file_bytes(kGoodHeader, std::string(22, '\0')));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[1].shape, (Shape{3}));
  EXPECT_EQ(h.metadata.at("format"), "pt");
}

TEST(Safetensors, OpensMappedFileZeroCopy) {
  TempDir dir;
  std::string data(22, '\0');
  float vals[4] = {1.5f, -2.0f, 3.25f, 4.0f};
  std::memcpy(data.data(), vals, 16);
  // Header padded to a multiple of 8 as writers do, so the f32 data is aligned.
  std::string header = kGoodHeader;
  while ((8 + header.size()) % 8 != 0) header += ' ';
  dir.write("model.safetensors", file_bytes(header, data));
  auto f = SafetensorsFile::open((dir.path / "model.safetensors").string());
  Tensor a = f->get("a");
  EXPECT_EQ(a.dtype(), DType::kF32);
  EXPECT_EQ(a.data<float>()[2], 3.25f);
  EXPECT_THROW(f->get("nope"), Error);
}

TEST(Safetensors, RejectsTruncatedAndCorruptFiles) {
  const std::string good = file_bytes(kGoodHeader, std::string(22, '\0'));
  expect_error(good.substr(0, 5), "at least 8");
  expect_error(good.substr(0, 40), "exceeds");                      // header cut short
  expect_error(good.substr(0, good.size() - 3), "outside the data buffer");  // data cut short
  expect_error(file_bytes("not json at all", ""), "does not start with '{'");
  expect_error(file_bytes("{\"a\": ", ""), "not valid JSON");
  expect_error(file_bytes("[1,2]", ""), "does not start with '{'");
  std::string huge(8, '\xff');
  expect_error(huge + "{}", "100 MB");
}

TEST(Safetensors, RejectsBadEntries) {
  const std::string data(16, '\0');
  auto one = [&](const std::string& entry) { return file_bytes("{\"t\":" + entry + "}", data); };
  expect_error(one(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,32]})"), "outside the data buffer");
  expect_error(one(R"({"dtype":"F32","shape":[3,2],"data_offsets":[0,16]})"), "needs 24 bytes");
  expect_error(one(R"({"dtype":"F16","shape":[2,2],"data_offsets":[0,16]})"), "needs 8 bytes");
  expect_error(one(R"({"dtype":"Q4","shape":[4],"data_offsets":[0,16]})"), "unknown dtype 'Q4'");
  expect_error(one(R"({"dtype":"F32","shape":[-4],"data_offsets":[0,16]})"), "not a non-negative integer");
  expect_error(one(R"({"dtype":"F32","shape":[4],"data_offsets":[16,0]})"), "begin > end");
  expect_error(one(R"({"dtype":"F32","shape":[4]})"), "data_offsets");
  expect_error(one(R"({"shape":[4],"data_offsets":[0,16]})"), "dtype");
  expect_error(one(R"("F32")"), "entry must be an object");
  expect_error(one(R"({"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,16]})"),
               "overflows");
}

TEST(Safetensors, RejectsOverlapsAndHoles) {
  const std::string data(16, '\0');
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}})",
                          data),
               "overlaps");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                          data),
               "belong to no tensor");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data), "cover 8");
}

TEST(Safetensors, UnsupportedDtypeIsClearWhenLoaded) {
  TempDir dir;
  dir.write("model.safetensors",
            file_bytes(R"({"t":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", std::string(16, '\0')));
  auto f = SafetensorsFile::open((dir.path / "model.safetensors").string());
  try {
    f->get("t");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("F64"), std::string::npos);
  }
}

TEST(Safetensors, ShardedIndex) {
  TempDir dir;
  dir.write("a.safetensors", file_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')));
  dir.write("b.safetensors", file_bytes(R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')));
  dir.write("model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})");
  WeightStore store = WeightStore::open_dir(dir.path.string());
  EXPECT_TRUE(store.contains("x"));
  EXPECT_TRUE(store.contains("y"));

  dir.write("model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors","y":"c.safetensors"}})");
  EXPECT_THROW(WeightStore::open_dir(dir.path.string()), Error);  // missing shard
  dir.write("model.safetensors.index.json", R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors"}})");
  try {
    WeightStore::open_dir(dir.path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'y' is in a.safetensors"), std::string::npos) << e.what();
  }
  dir.write("model.safetensors.index.json", R"({"weight_map":{"x":"../a.safetensors"}})");
  EXPECT_THROW(WeightStore::open_dir(dir.path.string()), Error);
  dir.write("model.safetensors.index.json", R"({"nothing": 1})");
  EXPECT_THROW(WeightStore::open_dir(dir.path.string()), Error);
}

TEST(Safetensors, MissingFileIsNotFound) {
  TempDir dir;
  try {
    WeightStore::open_dir(dir.path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

// Random byte flips of a valid file must give an error or a valid parse, never a crash.
TEST(Safetensors, SurvivesRandomCorruption) {
  const std::string good = file_bytes(kGoodHeader, std::string(22, '\0'));
  std::mt19937 rng(7);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string bytes = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    if (rng() % 5 == 0) bytes.resize(rng() % bytes.size());
    try {
      parse(bytes);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidFile) << e.what();
    }
  }
}

}  // namespace kpt::io
