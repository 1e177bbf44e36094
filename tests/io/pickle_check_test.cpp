// The pickle bounds check (mtl/io/pickle_check.h) against pickles written by Python itself: every protocol's
// opcodes pass, and a cut, an inflated length or an unknown opcode is an mtl::Error before LibTorch reads it.
#include "mtl/io/archive_check.h"
#include "mtl/io/pickle_check.h"

#include <filesystem>

#include "mtl/io/checkpoint.h"
#include "test_util.h"

namespace {

// Pickles of a value that uses most opcodes (ints of every width, floats, str, bytes, bytearray, tuples of 1-3
// and more, lists, dicts, sets, frozensets, None/True/False, shared references, a global), protocols 0-5.
std::vector<std::string> python_pickles(const mtl_test::TempDir& dir) {
  const std::string code =
      "import pickle, sys, collections\n"
      "shared = [1, 2]\n"
      "v = {'i': [0, 1, 255, 256, 65535, 65536, -1, 2**31, 2**70, -2**70], 'f': [0.5, -1e300], 's': 'caf\\u00e9',\n"
      "     'b': b'\\x00\\xff' * 300, 'ba': bytearray(b'xy'), 't': [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],\n"
      "     'set': {1, 2}, 'fs': frozenset({3}), 'n': [None, True, False], 'ref': [shared, shared],\n"
      "     'od': collections.OrderedDict(a=1), 'long': 'x' * 70000}\n"
      "for p in range(6):\n"
      "    open(sys.argv[1] + '/p%d.pkl' % p, 'wb').write(pickle.dumps(v, protocol=p))\n";
  mtl_test::write_file(dir.file("make.py"), code);
  mtl_test::ShellRun r = mtl_test::run_shell("/usr/bin/python3 " + dir.file("make.py") + " " + dir.path());
  EXPECT_EQ(r.code, 0) << r.out;
  std::vector<std::string> out;
  for (int p = 0; p < 6; ++p) out.push_back(mtl_test::read_file(dir.file("p" + std::to_string(p) + ".pkl")));
  return out;
}

}  // namespace

TEST(PickleCheck, PythonsPicklesOfEveryProtocolPass) {
  mtl_test::TempDir dir("pickle_ok");
  for (const std::string& p : python_pickles(dir)) EXPECT_NO_THROW(mtl::check_pickle(p.data(), p.size(), "p"));
}

TEST(PickleCheck, CutInflatedAndUnknownOpcodesAreErrors) {
  mtl_test::TempDir dir("pickle_bad");
  const std::string p = python_pickles(dir)[4];  // protocol 4: FRAME, SHORT_BINUNICODE, BINUNICODE8, ...
  EXPECT_MTL_ERROR(mtl::check_pickle(p.data(), p.size() - 1, "p"), "p: damaged pickle: no STOP opcode");
  EXPECT_MTL_ERROR(mtl::check_pickle(p.data(), p.size() / 2, "p"), "p: damaged pickle");
  // The 70000-character string is a BINUNICODE ('X', 4-byte length): declare 3 GB instead.
  std::string inflated = p;
  const size_t x = inflated.find(std::string("X\x70\x11\x01\x00", 5));
  ASSERT_NE(x, std::string::npos);
  inflated.replace(x + 1, 4, std::string("\x00\x00\x00\xb8", 4));
  EXPECT_MTL_ERROR(mtl::check_pickle(inflated.data(), inflated.size(), "p"), "declares 3087007744 bytes");
  std::string unknown = p;
  unknown[2] = '\xff';
  EXPECT_MTL_ERROR(mtl::check_pickle(unknown.data(), unknown.size(), "p"), "unknown opcode 0xff at byte 2");
}

TEST(PickleCheck, ACheckpointWithAnInflatedLengthIsAnErrorNotAnAllocation) {
  // The fuzzer's finding: a checkpoint whose pickle declares a 3 GB string (LibTorch reserved it first).
  const std::string file = mtl_test::source_path("tests/fuzz/regressions/checkpoint/unpickler_reserves_declared_3gb");
  EXPECT_MTL_ERROR(mtl::read_checkpoint_model_tensors(file), "not a readable mtl checkpoint: record '",
                   "damaged pickle", "declares");
  // A valid checkpoint passes the check (each of its .pkl records).
  EXPECT_NO_THROW(mtl::check_archive_records(mtl_test::source_path("tests/fuzz/corpus/checkpoint/small.pt")));
}

TEST(PickleCheck, AMemoIndexPastTheRecordIsAnError) {
  // LibTorch grows its memo table to the index a PUT names: LONG_BINPUT 1869898499 (the fuzzer's finding,
  // a 17 KB checkpoint) made it allocate 30 GB. PROTO 2, EMPTY_LIST, LONG_BINPUT, STOP:
  const std::string binput("\x80\x02]r\x03\x63\x74\x6f.", 9);
  EXPECT_MTL_ERROR(mtl::check_pickle(binput.data(), binput.size(), "p"), "a memo index of 1869898499 at byte 3");
  const std::string put = "(lp99999999\n.";  // protocol 0's PUT
  EXPECT_MTL_ERROR(mtl::check_pickle(put.data(), put.size(), "p"), "a memo index of 99999999 at byte 2");
  const std::string ok("\x80\x02]r\x00\x00\x00\x00.", 9);  // index 0 is what a pickler writes first
  EXPECT_NO_THROW(mtl::check_pickle(ok.data(), ok.size(), "p"));
  const std::string file = mtl_test::source_path("tests/fuzz/regressions/checkpoint/unpickler_memo_index_30gb");
  EXPECT_MTL_ERROR(mtl::read_checkpoint_model_tensors(file), "damaged pickle: a memo index of 1869898499");
}

TEST(ArchiveCheck, ModuleSourcesOfTheWritersShapePass) {
  const std::string source =
      "class Module(Module):\n"
      "  __parameters__ = [\"rng\", \"w\", ]\n"
      "  __buffers__ = []\n"
      "  __annotations__ = []\n"
      "  __annotations__[\"0x6100000ffd40\"] = __torch__.___torch_mangle_2.Module\n"
      "  __annotations__[\"trunk.0.weight\"] = Tensor\n"
      "  model : Dict[str, Tensor]\n"
      "  epoch_loss_sum : List[float]\n"
      "  nested : Optional[Tuple[int, List[str], bool]]\n"
      "  state : __torch__.___torch_mangle_10.Module\n";
  EXPECT_NO_THROW(mtl::check_module_source(source.data(), source.size(), "s"));
}

TEST(ArchiveCheck, ADamagedModuleSourceNamesItsLine) {
  auto check = [](const std::string& body) {
    const std::string source = "class Module(Module):\n  __buffers__ = []\n" + body;
    mtl::check_module_source(source.data(), source.size(), "record 'code/m.py'");
  };
  // The fuzzer's finding: a damaged "__parameters__" that LibTorch's parser took for a class constant (SIGSEGV).
  EXPECT_MTL_ERROR(check("  stateameters__ = []\n"), "record 'code/m.py': damaged module source, line 3: expected");
  EXPECT_MTL_ERROR(check("  x : Tensor = 3\n"), "line 3");
  EXPECT_MTL_ERROR(check("  x : Module\n"), "line 3");                         // not a type the writer uses
  EXPECT_MTL_ERROR(check("  x : List[List[List[List[List[int]]]]]\n"), "line 3");  // deeper than the writer nests
  EXPECT_MTL_ERROR(check("  x : Dict[str, Tensor\n"), "line 3");
  EXPECT_MTL_ERROR(check("  __parameters__ = [\"a\"]\n"), "line 3");
  EXPECT_MTL_ERROR(check("  __annotations__[\"a\\\"b\"] = int\n"), "line 3");
  EXPECT_MTL_ERROR(check("\n"), "line 3");
  EXPECT_MTL_ERROR(check("  def forward(self):\n"), "line 3");
  const std::string header = "class Module(Foo):\n";
  EXPECT_MTL_ERROR(mtl::check_module_source(header.data(), header.size(), "s"),
                   "line 1: expected 'class Module(Module):'");
  EXPECT_MTL_ERROR(mtl::check_module_source("", 0, "s"), "the record is empty");
}

TEST(ArchiveCheck, ACheckpointWithADamagedModuleSourceIsAnErrorNotACrash) {
  // The fuzzer's finding: LibTorch's TorchScript parser dereferenced a bad address on this checkpoint.
  const std::string file =
      mtl_test::source_path("tests/fuzz/regressions/checkpoint/torchscript_class_constant_segv");
  EXPECT_MTL_ERROR(mtl::read_checkpoint_model_tensors(file), "not a readable mtl checkpoint: record 'code/",
                   "damaged module source, line 2");
}
