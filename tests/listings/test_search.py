from hypothesis import given
from hypothesis import strategies as st

from exchange.listings.search import parse_query, tokens_for


def test_two_character_chinese_query_matches_inside_a_longer_title() -> None:
    query = parse_query("交通")
    assert query.exact == ["交通"]
    assert set(query.exact) <= set(tokens_for("上海交通出行数据"))


def test_longer_chinese_query_needs_every_bigram() -> None:
    assert parse_query("交通出行").exact == ["交通", "通出", "出行"]
    assert "通出" not in tokens_for("交通 出行")  # separated words do not fake a phrase


def test_single_character_query_matches_unigrams() -> None:
    assert parse_query("港").exact == ["港"]
    assert "港" in tokens_for("洋山港集装箱")


def test_latin_words_are_lowercased_prefixes() -> None:
    query = parse_query("Traf HOURLY")
    assert query.prefixes == ["traf", "hourly"]
    assert query.fts5() == '"traf"* AND "hourly"*'
    assert query.tsquery() == "'traf':* & 'hourly':*"


def test_full_width_letters_normalise_to_ascii() -> None:
    assert tokens_for("ＧＤＰ") == ["gdp"]


def test_punctuation_and_quotes_never_reach_the_query_text() -> None:
    query = parse_query("\"'); DROP TABLE listings; -- 交通")
    assert query.exact == ["交通"]
    assert query.prefixes == ["drop", "table", "listings"]


@given(st.text(max_size=200))
def test_query_terms_are_only_letters_and_digits(text: str) -> None:
    query = parse_query(text)
    for term in query.exact + query.prefixes:
        assert term.isalnum(), term


@given(st.text(alphabet=st.sampled_from("上海交通出行数据金融医疗港口 "), min_size=1, max_size=40), st.data())
def test_any_chinese_substring_of_a_document_is_found_by_its_own_query(document: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(document) - 1))
    end = data.draw(st.integers(start + 1, len(document)))
    assert set(parse_query(document[start:end]).exact) <= set(tokens_for(document))


@given(st.lists(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), min_size=1, max_size=8), st.data())
def test_the_start_of_any_latin_word_finds_the_document(words: list[str], data: st.DataObject) -> None:
    word = data.draw(st.sampled_from(words))
    query = parse_query(word[: data.draw(st.integers(1, len(word)))].upper())
    assert all(any(token.startswith(p) for token in tokens_for(" ".join(words))) for p in query.prefixes)
