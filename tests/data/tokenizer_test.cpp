// Tokenizers: the word splitting rule, vocabulary selection (min_freq, max_size, deterministic ties),
// encode/decode round trips, unknown words, save/load giving identical ids, SentencePiece training (unigram
// and BPE) and loading a .model file, option parsing, and one-line errors naming the file.
#include "mtl/data/text/tokenizer.h"

#include <fstream>
#include <random>

#include "mtl/config/config_node.h"
#include "mtl/core/batch.h"
#include "mtl/core/error.h"
#include "mtl/data/text/sentencepiece_tokenizer.h"
#include "mtl/data/text/utf8.h"
#include "mtl/data/text/word_tokenizer.h"
#include "test_util.h"

using namespace std::string_literals;
using mtl_test::TempDir;

namespace {

mtl::TextCorpus corpus_of(const std::vector<std::string>& texts) {
  return [texts](const std::function<void(const std::string&)>& visit) {
    for (const auto& t : texts) visit(t);
  };
}

// A few hundred varied sentences from a small grammar (deterministic).
std::vector<std::string> generated_sentences(int n) {
  const std::vector<std::string> subj = {"the union", "a federal government", "the people", "every state",
                                         "the senate", "our constitution", "the executive", "a free republic"};
  const std::vector<std::string> verb = {"protects", "requires", "establishes", "weakens", "regulates",
                                         "defends", "considers", "restrains"};
  const std::vector<std::string> obj = {"the liberty of citizens", "common defence", "domestic tranquility",
                                        "the general welfare", "foreign commerce", "separate powers",
                                        "national credit", "public happiness"};
  std::mt19937 rng(7);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back(subj[rng() % subj.size()] + " " + verb[rng() % verb.size()] + " " + obj[rng() % obj.size()] +
                  (i % 3 == 0 ? ", and " + subj[rng() % subj.size()] + " agrees." : "."));
  return out;
}

struct Parsed {
  mtl::Config cfg;
  mtl::TokenizerOptions options;
};
Parsed parse(const std::string& yaml) {
  Parsed p{mtl::Config::from_string("tokenizer:\n" + yaml), {}};
  p.options = mtl::parse_tokenizer_options(p.cfg.root().child("tokenizer"));
  return p;
}

}  // namespace

TEST(Tokenizer, Utf8Validation) {
  EXPECT_EQ(mtl::find_invalid_utf8("plain ascii"), std::string::npos);
  EXPECT_EQ(mtl::find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string::npos);
  EXPECT_EQ(mtl::find_invalid_utf8("ab\xFF"), 2u);
  EXPECT_EQ(mtl::find_invalid_utf8("ab\xC3"), 2u);              // truncated
  EXPECT_EQ(mtl::find_invalid_utf8("x\xC0\xAF"), 1u);           // overlong '/'
  EXPECT_EQ(mtl::find_invalid_utf8("xy\xED\xA0\x80"), 2u);      // surrogate
  EXPECT_EQ(mtl::find_invalid_utf8("\xF4\x90\x80\x80"), 0u);    // above U+10FFFF
  EXPECT_EQ(mtl::find_invalid_utf8("ok\x80"), 2u);              // stray continuation
}

TEST(Tokenizer, WordSplittingRule) {
  EXPECT_EQ(mtl::split_words("Don't STOP,  caf\xC3\xA9!\tU.S.", true),
            (std::vector<std::string>{"don", "'", "t", "stop", ",", "caf\xC3\xA9", "!", "u", ".", "s", "."}));
  EXPECT_EQ(mtl::split_words("Don't", false), (std::vector<std::string>{"Don", "'", "t"}));
  EXPECT_TRUE(mtl::split_words(" \n\t ", true).empty());
}

TEST(Tokenizer, WordVocabularyRoundTripAndUnknown) {
  auto tok = mtl::make_tokenizer(mtl::TokenizerOptions{},
                                 corpus_of({"The Union is strong.", "the union, the states", "The people"}));
  EXPECT_EQ(tok->type(), "word");
  // the x4, union x2, then the rest once each in byte order: "," "." is people states strong
  EXPECT_EQ(tok->vocab_size(), 3 + 8);
  EXPECT_EQ(tok->piece(mtl::kFirstPieceId), "the");
  EXPECT_EQ(tok->piece(mtl::kFirstPieceId + 1), "union");
  EXPECT_EQ(tok->piece(mtl::kFirstPieceId + 2), ",");
  EXPECT_EQ(tok->piece(0), "<pad>");
  EXPECT_EQ(tok->piece(1), "<unk>");
  EXPECT_EQ(tok->piece(2), "<cls>");
  std::vector<int64_t> ids = tok->encode("THE union is Strong .");
  EXPECT_EQ(ids.size(), 5u);
  for (int64_t id : ids) EXPECT_GE(id, mtl::kFirstPieceId);
  EXPECT_EQ(tok->decode(ids), "the union is strong .");
  EXPECT_EQ(tok->decode(tok->encode("The union,the states.")), "the union , the states .");
  std::vector<int64_t> unk = tok->encode("the federalist union");
  EXPECT_EQ(unk, (std::vector<int64_t>{mtl::kFirstPieceId, mtl::kUnkTokenId, mtl::kFirstPieceId + 1}));
  EXPECT_EQ(tok->decode({mtl::kClsTokenId, ids[0], mtl::kUnkTokenId, mtl::kPadTokenId}), "the <unk>");
  EXPECT_MTL_ERROR(tok->piece(tok->vocab_size()), "outside the vocabulary"s);
}

TEST(Tokenizer, WordMinFreqAndMaxSize) {
  auto corpus = corpus_of({"b a c a b a d", "y x"});
  mtl::TokenizerOptions o;
  o.min_freq = 2;
  auto t = mtl::make_tokenizer(o, corpus);
  ASSERT_EQ(t->vocab_size(), 3 + 2);
  EXPECT_EQ(t->piece(3), "a");
  EXPECT_EQ(t->piece(4), "b");
  EXPECT_EQ(t->encode("c"), (std::vector<int64_t>{mtl::kUnkTokenId}));
  o.min_freq = 1;
  o.max_size = 4;
  t = mtl::make_tokenizer(o, corpus);
  ASSERT_EQ(t->vocab_size(), 3 + 4);
  EXPECT_EQ(t->piece(5), "c");  // ties (c, d, x, y once each) broken by the word
  EXPECT_EQ(t->piece(6), "d");
  EXPECT_EQ(t->encode("x"), (std::vector<int64_t>{mtl::kUnkTokenId}));
  EXPECT_MTL_ERROR(mtl::make_tokenizer(o, corpus_of({" ", ""})), "tokenizer"s, "no words"s);
}

TEST(Tokenizer, WordSaveLoadGivesIdenticalIds) {
  TempDir dir("tok_word");
  mtl::TokenizerOptions o;
  o.lowercase = false;
  auto tok = mtl::make_tokenizer(o, corpus_of(generated_sentences(50)));
  tok->save(dir.file("tok"));
  EXPECT_EQ(mtl_test::read_file(dir.file("tok/vocab.txt")).substr(0, 20), "<pad>\n<unk>\n<cls>\n.\n");  // "." ends each one
  auto again = mtl::load_tokenizer(dir.file("tok"));
  EXPECT_EQ(again->type(), "word");
  EXPECT_EQ(again->vocab_size(), tok->vocab_size());
  for (const auto& s : generated_sentences(60)) EXPECT_EQ(again->encode(s), tok->encode(s));
  EXPECT_EQ(again->encode("The"), (std::vector<int64_t>{mtl::kUnkTokenId}));  // lowercase: false was kept

  // options.model: a user's word list without the reserved lines
  mtl_test::write_file(dir.file("words.txt"), "hello\nworld\r\n");
  mtl::TokenizerOptions u;
  u.model = dir.file("words.txt");
  auto user = mtl::make_tokenizer(u, nullptr);
  EXPECT_EQ(user->vocab_size(), 5);
  EXPECT_EQ(user->encode("World hello there"), (std::vector<int64_t>{4, 3, mtl::kUnkTokenId}));
}

TEST(Tokenizer, LoadErrorsNameTheFile) {
  TempDir dir("tok_bad");
  EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.file("none")), dir.file("none/tokenizer.json"), "cannot open"s);
  mtl_test::write_file(dir.file("tokenizer.json"), "{\"type\": \"word\", ");
  EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.path()), dir.file("tokenizer.json"), "corrupt"s);
  mtl_test::write_file(dir.file("tokenizer.json"), "{\"type\": \"word\", \"lowercase\": true, \"min_freq\": 1, "
                                                   "\"max_size\": 9, \"vocab\": \"vocab.txt\"}");
  EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.path()), dir.file("vocab.txt"), "cannot open"s);
  mtl_test::write_file(dir.file("vocab.txt"), "<pad>\n<unk>\n<cls>\na\nb\na\n");
  EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.path()), dir.file("vocab.txt") + ":6"s, "'a' repeats line 4"s);
  mtl_test::write_file(dir.file("vocab.txt"), "a\n\nb\n");
  EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.path()), dir.file("vocab.txt") + ":2"s, "empty line"s);
  mtl_test::write_file(dir.file("tokenizer.json"), "{\"type\": \"bytes\"}");
  EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.path()), dir.file("tokenizer.json"), "unknown tokenizer type 'bytes'"s);
  mtl_test::write_file(dir.file("tokenizer.json"), "{\"type\": \"sentencepiece\", \"model_type\": \"bpe\", "
                                                   "\"vocab_size\": 10, \"character_coverage\": 1.0, \"model\": \"m.model\"}");
  EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.path()), dir.file("m.model"), "cannot open"s);
}

TEST(Tokenizer, ParsesOptions) {
  Parsed w = parse("  type: word\n  min_freq: 2\n  max_size: 100\n  lowercase: false\n");
  EXPECT_NO_THROW(w.cfg.check_unused());
  EXPECT_EQ(w.options.type, "word");
  EXPECT_EQ(w.options.min_freq, 2);
  EXPECT_EQ(w.options.max_size, 100);
  EXPECT_FALSE(w.options.lowercase);
  Parsed s = parse("  type: sentencepiece\n  model_type: bpe\n  vocab_size: 500\n  character_coverage: 0.9995\n");
  EXPECT_NO_THROW(s.cfg.check_unused());
  EXPECT_EQ(s.options.model_type, "bpe");
  EXPECT_EQ(s.options.vocab_size, 500);
  EXPECT_DOUBLE_EQ(s.options.character_coverage, 0.9995);
  EXPECT_EQ(parse("  {}\n").options.type, "word");
  EXPECT_MTL_ERROR(parse("  type: bytes\n"), "tokenizer.type"s, "'bytes'"s, "word, sentencepiece"s);
  EXPECT_MTL_ERROR(parse("  type: word\n  min_freq: 0\n"), "tokenizer.min_freq"s, "positive"s);
  EXPECT_MTL_ERROR(parse("  type: sentencepiece\n  model_type: wordpiece\n"), "tokenizer.model_type"s, "unigram, bpe"s);
  EXPECT_MTL_ERROR(parse("  type: sentencepiece\n  character_coverage: 1.5\n"), "tokenizer.character_coverage"s);
  Parsed wrong = parse("  type: word\n  model_type: bpe\n");  // a sentencepiece key under a word tokenizer
  EXPECT_MTL_ERROR(wrong.cfg.check_unused(), "model_type"s);
}

class SentencePieceTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(SentencePieceTokenizer, TrainsRoundTripsSavesAndLoads) {
  std::string why;
  if (mtl::sentencepiece_blocked_by_sanitizers()) GTEST_SKIP() << "no SentencePiece in a sanitizer build";
  ASSERT_TRUE(mtl::sentencepiece_available(&why)) << why;
  TempDir dir("tok_spm");
  mtl::TokenizerOptions o;
  o.type = "sentencepiece";
  o.model_type = GetParam();
  o.vocab_size = 120;
  const auto sentences = generated_sentences(300);
  auto tok = mtl::make_tokenizer(o, corpus_of(sentences));
  EXPECT_EQ(tok->type(), "sentencepiece");
  EXPECT_GT(tok->vocab_size(), 40);
  EXPECT_LE(tok->vocab_size(), 3 + 120);
  EXPECT_EQ(tok->piece(2), "<cls>");
  for (int i = 0; i < 20; ++i) {
    std::vector<int64_t> ids = tok->encode(sentences[i]);
    ASSERT_FALSE(ids.empty());
    for (int64_t id : ids) {
      EXPECT_GE(id, mtl::kFirstPieceId);
      EXPECT_LT(id, tok->vocab_size());
    }
    EXPECT_EQ(tok->decode(ids), sentences[i]);
  }
  // Pieces are sub-words: a long frequent word is one piece, a new word several.
  EXPECT_LT(tok->encode("the constitution").size(), tok->encode("unconstitutionalities").size());
  std::vector<int64_t> unk = tok->encode("the union \xE2\x98\x83");  // a snowman: not in the corpus
  EXPECT_EQ(unk.back(), mtl::kUnkTokenId);

  tok->save(dir.file("tok"));
  auto again = mtl::load_tokenizer(dir.file("tok"));
  EXPECT_EQ(again->type(), "sentencepiece");
  EXPECT_EQ(again->vocab_size(), tok->vocab_size());
  for (const auto& s : generated_sentences(320)) EXPECT_EQ(again->encode(s), tok->encode(s));

  mtl::TokenizerOptions m;
  m.type = "sentencepiece";
  m.model = dir.file("tok/sentencepiece.model");
  auto loaded = mtl::make_tokenizer(m, nullptr);
  EXPECT_EQ(loaded->encode(sentences[5]), tok->encode(sentences[5]));
  EXPECT_EQ(loaded->piece(10), tok->piece(10));
}

INSTANTIATE_TEST_SUITE_P(ModelTypes, SentencePieceTokenizer, ::testing::Values("unigram", "bpe"));

TEST(Tokenizer, SentencePieceErrors) {
  std::string why;
  if (mtl::sentencepiece_blocked_by_sanitizers()) GTEST_SKIP() << "no SentencePiece in a sanitizer build";
  ASSERT_TRUE(mtl::sentencepiece_available(&why)) << why;
  TempDir dir("tok_spm_bad");
  mtl_test::write_file(dir.file("bad.model"), "this is not a protobuf");
  mtl::TokenizerOptions m;
  m.type = "sentencepiece";
  m.model = dir.file("bad.model");
  EXPECT_MTL_ERROR(mtl::make_tokenizer(m, nullptr), dir.file("bad.model"), "not a valid SentencePiece model"s);
  m.model = dir.file("missing.model");
  EXPECT_MTL_ERROR(mtl::make_tokenizer(m, nullptr), dir.file("missing.model"), "cannot open"s);
  mtl::TokenizerOptions t;
  t.type = "sentencepiece";
  EXPECT_MTL_ERROR(mtl::make_tokenizer(t, corpus_of({"", "  "})), "no text"s);
}

// Fuzzing found a float where an integer belongs ("min_freq": 5.6e118) cast to int64 by the JSON library
// (undefined behaviour); such a field is now a one-line error (tests/fuzz/regressions/vocab/).
TEST(Tokenizer, ASavedTokenizerWithANonIntegerCountIsAnError) {
  mtl_test::TempDir dir("tok_float");
  mtl_test::write_file(dir.file("vocab.txt"), "<pad>\n<unk>\n<cls>\nthe\n");
  for (const std::string bad : {"5.5e118", "1.5", "18446744073709551615", "\"3\""}) {
    mtl_test::write_file(dir.file("tokenizer.json"), "{\"type\": \"word\", \"lowercase\": true, \"min_freq\": " + bad +
                                                         ", \"max_size\": 10, \"vocab\": \"vocab.txt\"}");
    EXPECT_MTL_ERROR(mtl::load_tokenizer(dir.path()), "tokenizer.json", "'min_freq'");
  }
  mtl_test::write_file(dir.file("tokenizer.json"),
                       "{\"type\": \"word\", \"lowercase\": true, \"min_freq\": 2, \"max_size\": 10, \"vocab\": \"vocab.txt\"}");
  EXPECT_EQ(mtl::load_tokenizer(dir.path())->vocab_size(), 4);
}
