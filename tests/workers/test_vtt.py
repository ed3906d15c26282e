"""Parsing Teams WebVTT transcripts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exceptions import BadInput
from workers.vtt import Cue, Transcript, parse

TEAMS = (
    "WEBVTT\n"
    "\n"
    "0f8a7c1e-1b2d-4a1e-9d51-3c7f0e6a2b11/12-0\n"
    "00:00:00.000 --> 00:00:03.120\n"
    "<v Alice Adams>Hello Carol, thanks for joining.</v>\n"
    "\n"
    "0f8a7c1e-1b2d-4a1e-9d51-3c7f0e6a2b11/15-0\n"
    "00:00:03.500 --> 00:00:06.000\n"
    "<v Carol Diaz>Happy to. Shall we start?</v>\n"
)


def cue(body: str, timing: str = "00:00:01.000 --> 00:00:02.000") -> Cue:
    transcript = parse(f"WEBVTT\n\n{timing}\n{body}\n")
    assert transcript.cue_count == 1
    return transcript.cues[0]


class TestTeamsSample:
    """A typical Teams transcript gives one cue per voice line, with speaker and times."""

    def test_cues(self) -> None:
        t = parse(TEAMS)
        assert t.cues == (
            Cue(0.0, 3.12, "Alice Adams", "Hello Carol, thanks for joining."),
            Cue(3.5, 6.0, "Carol Diaz", "Happy to. Shall we start?"),
        )
        assert t.lines() == [
            "Alice Adams: Hello Carol, thanks for joining.",
            "Carol Diaz: Happy to. Shall we start?",
        ]
        assert t.cue_count == 2
        assert t.language is None


class TestEnvelope:
    """BOM, line endings, the signature and its header are accepted in every Teams form."""

    @pytest.mark.parametrize(
        "text",
        [
            TEAMS,
            "\ufeff" + TEAMS,
            TEAMS.replace("\n", "\r\n"),
            TEAMS.replace("\n", "\r"),
            "\ufeff" + TEAMS.replace("\n", "\r\n"),
            TEAMS.replace("WEBVTT\n", "WEBVTT - Teams transcript\n"),
            TEAMS.replace("WEBVTT\n", "WEBVTT\tx\nKind: captions\n"),
            "\n\n" + TEAMS,
            TEAMS.replace("\n\n", "\n\n\n\n"),
            TEAMS + "\n\n\n",
        ],
    )
    def test_same_cues(self, text: str) -> None:
        assert parse(text).cues == parse(TEAMS).cues

    def test_no_blank_line_after_signature(self) -> None:
        t = parse("WEBVTT\n00:00:01.000 --> 00:00:02.000\nhi\n")
        assert t.lines() == ["hi"]

    def test_signature_only_is_empty(self) -> None:
        t = parse("WEBVTT\n")
        assert t.cues == ()
        assert t.lines() == []

    def test_language_header(self) -> None:
        assert parse("WEBVTT\nLanguage: en-US\n\n").language == "en-US"

    @pytest.mark.parametrize(
        ("text", "line"),
        [
            ("", 1),
            ("\n\n", 3),
            ("WEBVTTX\n", 1),
            ("webvtt\n", 1),
            ("\ufeff\n  \n1\n00:00:01.000 --> 00:00:02.000\nhi\n", 3),
            ("<html>not a transcript</html>", 1),
        ],
    )
    def test_missing_signature(self, text: str, line: int) -> None:
        with pytest.raises(BadInput, match=rf"^line {line}: expected the WEBVTT signature"):
            parse(text)


class TestTimings:
    """Timings have optional hours (past 99), unpadded fields as in Graph's docs, 1-3 fraction
    digits, negative offsets and cue settings."""

    @pytest.mark.parametrize(
        ("timing", "start", "end"),
        [
            ("00:00:01.000 --> 00:00:02.500", 1.0, 2.5),
            ("00:01.000 --> 00:02.250", 1.0, 2.25),
            ("01:02:03.004 --> 01:02:04.000", 3723.004, 3724.0),
            ("123:00:00.000 --> 123:00:01.000", 442800.0, 442801.0),
            ("-00:00:00.370 --> 00:00:01.000", -0.37, 1.0),
            ("-00:01.500 --> -00:00.500", -1.5, -0.5),
            ("00:00:01.000 --> 00:00:02.000 align:start position:10%", 1.0, 2.0),
            ("00:00:01.000-->00:00:02.000", 1.0, 2.0),
            ("00:00:01,000 --> 00:00:02,000", 1.0, 2.0),
            ("  00:00:01.000 --> 00:00:02.000  ", 1.0, 2.0),
            # Graph's "Get callTranscript" example writes `0:0:0.0 --> 0:0:5.320`.
            ("0:0:0.0 --> 0:0:5.320", 0.0, 5.32),
            ("0:0:6.1 --> 0:0:9.05", 6.1, 9.05),
            ("1:2:3.4 --> 10:20:30.45", 3723.4, 37230.45),
            ("0:59.999 --> 1:0.5", 59.999, 60.5),
            ("5:07.25 --> 05:7.250", 307.25, 307.25),
            ("-0:0:0.37 --> 0:0:1.0", -0.37, 1.0),
            ("0:0:1.0\t-->\t0:0:2.0\tline:0 size:50%", 1.0, 2.0),
            ("00:00:01.0000000 --> 00:00:02.5000000", 1.0, 2.5),
        ],
    )
    def test_timing(self, timing: str, start: float, end: float) -> None:
        c = cue("words", timing)
        assert c.start_s == pytest.approx(start)
        assert c.end_s == pytest.approx(end)

    @pytest.mark.parametrize(
        ("short", "long"),
        [("0:0:5.32", "00:00:05.320"), ("0:0:0.1", "00:00.100"), ("2:3:4.5", "02:03:04.500")],
    )
    def test_short_and_long_forms_give_the_same_float(self, short: str, long: str) -> None:
        assert cue("x", f"{short} --> {short}") == cue("x", f"{long} --> {long}")

    @pytest.mark.parametrize(
        ("text", "line"),
        [
            ("WEBVTT\n\n00:00:01.000 --> soon\nhi\n", 3),
            ("WEBVTT\n\nid\n00:00:01 --> 00:00:02\nhi\n", 4),
            ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:61.000 --> 01:02.000\nhi\n", 6),
            ("WEBVTT\n\n00:00:01.000 --> 00:60:02.000\nhi\n", 3),
            ("WEBVTT\n\n0:0:0.0 --> 0:0:60.0\nhi\n", 3),
            ("WEBVTT\n\n0:0:0 --> 0:0:5\nhi\n", 3),
            ("WEBVTT\n\n0:0:0. --> 0:0:5.3\nhi\n", 3),
            ("WEBVTT\n\n0:000:0.0 --> 0:0:5.3\nhi\n", 3),
            ("WEBVTT\n\n0:0:0.0 --> 0:0:5.3\nhi\n\n5.3 --> 6.0\nho\n", 6),
            ("WEBVTT\n\n0:0:0.0 -> 0:0:5.3\nhi\n\nid\n0:0:0.0 --> 0:0:5.3x\n", 3),
            (
                "WEBVTT\n\n00:00:01.000 --> 00:00:02.000 \u0663\nok\n\n\u0660\u0660:01.000 --> x\n",
                6,
            ),
        ],
    )
    def test_malformed_timing_names_the_line(self, text: str, line: int) -> None:
        with pytest.raises(BadInput, match=rf"^line {line}: "):
            parse(text)

    def test_line_numbers_count_crlf_once(self) -> None:
        with pytest.raises(BadInput, match=r"^line 4: "):
            parse("WEBVTT\r\n\r\nid\r\n00:00:01 --> x\r\n")


class TestCueText:
    """Voice tags give the speaker; other tags go; lines join with spaces; entities decode."""

    @pytest.mark.parametrize(
        ("body", "speaker", "text"),
        [
            ("<v Alice Adams>Hello.</v>", "Alice Adams", "Hello."),
            ("<v Alice Adams>Hello.", "Alice Adams", "Hello."),
            ("<v.loud Alice>Hello.</v>", "Alice", "Hello."),
            ("<v.a.b\tAlice   Adams >Hello.</v>", "Alice Adams", "Hello."),
            ("<v>Hello.</v>", None, "Hello."),
            ("Hello.", None, "Hello."),
            ("<v O&apos;Brien &amp; Co>Hi</v>", "O'Brien & Co", "Hi"),
            ("<v Alice>first line\nsecond line</v>", "Alice", "first line second line"),
            ("<v Alice>\n  padded  \n\tline\n</v>", "Alice", "padded line"),
            (
                "<c.colorE5E5E5>coloured</c> <i>it</i> <b>bold</b> <u>u</u>",
                None,
                "coloured it bold u",
            ),
            ("<lang en-US>hello</lang> <ruby>x<rt>y</rt></ruby>", None, "hello xy"),
            ("one <00:00:01.500>two", None, "one two"),
            ("a &amp; b &lt;c&gt; d", None, "a & b <c> d"),
            ("&lt;v Eve&gt;not a tag", None, "<v Eve>not a tag"),
            ("no&nbsp;break", None, "no break"),
            ("&lrm;left&rlm;", None, "\u200eleft\u200f"),
            ("&#39;quoted&#x27; &#8212; dash", None, "'quoted' \u2014 dash"),
            ("fish & chips", None, "fish & chips"),
            ("unclosed <b", None, "unclosed"),
            ("nul\x00char", None, "nul\ufffdchar"),
            ("< v Alice>no tag name", None, "no tag name"),
            ("<v Alice\nAdams>across lines</v>", "Alice Adams", "across lines"),
            ("&#0000000000065;&#x000041;", None, "AA"),
            ("&#38;lt; is decoded once", None, "&lt; is decoded once"),
            ("&#1114112; &#xD800;", None, "\ufffd \ufffd"),
            # Past U+10FFFF however long: int() of these would be slow, and past 4,300 digits
            # refused with ValueError, which html.unescape lets escape.
            ("&#" + "9" * 5000 + ";x", None, "\ufffdx"),
            ("&#x" + "f" * 5000 + "x", None, "\ufffdx"),
            ("&#" + "0" * 5000 + "66;", None, "B"),
        ],
    )
    def test_text(self, body: str, speaker: str | None, text: str) -> None:
        c = cue(body)
        assert (c.speaker, c.text) == (speaker, text)


class TestVoices:
    """Each voice span of a cue is a cue of its own, as WebVTT reads nested and closed `<v>`."""

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ("<v Alice>Hello</v> <v Bob>Hi</v>", [("Alice", "Hello"), ("Bob", "Hi")]),
            ("<v Alice>Hello</v>\n<v Bob>Hi</v>", [("Alice", "Hello"), ("Bob", "Hi")]),
            ("<v Alice>Hello<v Bob>Hi", [("Alice", "Hello"), ("Bob", "Hi")]),
            (
                "<v Alice>Hello <v Bob>Hi</v> again</v>",
                [("Alice", "Hello"), ("Bob", "Hi"), ("Alice", "again")],
            ),
            ("<v Alice>one</v> <v Alice>two</v>", [("Alice", "one two")]),
            ("<v Alice>one <i>two</i></v>\n<v Alice>three", [("Alice", "one two three")]),
            (
                "intro <v Alice>Hello</v> outro",
                [(None, "intro"), ("Alice", "Hello"), (None, "outro")],
            ),
            ("<v Alice></v><v Bob>Hi</v>", [("Bob", "Hi")]),
            ("<v Alice>a</v></v></v>b", [("Alice", "a"), (None, "b")]),
            ("<v Alice><v>aside</v>back", [(None, "aside"), ("Alice", "back")]),
        ],
    )
    def test_spans(self, body: str, expected: list[tuple[str | None, str]]) -> None:
        t = parse(f"WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n{body}\n")
        assert [(c.speaker, c.text) for c in t.cues] == expected
        assert all((c.start_s, c.end_s) == (1.0, 3.0) for c in t.cues)

    def test_shared_cue_in_lines_and_talk_time(self) -> None:
        t = parse(
            "WEBVTT\n\n00:00:04.000 --> 00:00:05.000\n<v Carol>Later.</v>\n\n"
            "00:00:01.000 --> 00:00:03.000\n<v Alice>Shall we?</v> <v Bob>Yes.</v>\n"
        )
        assert t.lines() == ["Alice: Shall we?", "Bob: Yes.", "Carol: Later."]
        assert t.cue_count == 3
        assert t.talk_seconds() == {"Carol": 1.0, "Alice": 2.0, "Bob": 2.0}


class TestBlocks:
    """NOTE, STYLE and REGION blocks and empty cues are skipped; stray blank lines are tolerated."""

    def test_skipped_blocks(self) -> None:
        text = (
            "WEBVTT\n\n"
            "STYLE\n::cue { color: red }\n\n"
            "REGION\nid:fred width:40%\n\n"
            "NOTE This is a comment\nthat runs --> across lines\n\n"
            "NOTE\nanother\n\n"
            "00:00:01.000 --> 00:00:02.000\n<v A>kept</v>\n\n"
            "NOTE\tlate note\n\n"
        )
        assert parse(text).lines() == ["A: kept"]

    def test_note_like_text_is_a_cue(self) -> None:
        t = parse("WEBVTT\n\nNOTES\n00:00:01.000 --> 00:00:02.000\nNOTE well\n")
        assert t.lines() == ["NOTE well"]

    @pytest.mark.parametrize(
        "block",
        [
            # WebVTT's parser reads a line before a timing line as the cue's identifier, even
            # one starting NOTE, and a timing line ends the block it appears in.
            "NOTE Confidence: 0.91\n00:00:01.000 --> 00:00:02.000\n<v A>kept</v>",
            "NOTE one\nNOTE two\n00:00:01.000 --> 00:00:02.000\n<v A>kept</v>",
            "STYLE\n::cue { color: red }\n00:00:01.000 --> 00:00:02.000\n<v A>kept</v>",
        ],
    )
    def test_timing_line_in_a_comment_block_starts_a_cue(self, block: str) -> None:
        assert parse(f"WEBVTT\n\n{block}\n").lines() == ["A: kept"]

    def test_text_after_a_stray_blank_line_stops_at_the_next_timing(self) -> None:
        t = parse(
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v A>one\n\ntwo\nthree\n"
            "00:00:03.000 --> 00:00:04.000\n<v B>four\n"
        )
        assert t.lines() == ["A: one two three", "B: four"]

    def test_line_just_before_a_timing_is_its_identifier(self) -> None:
        t = parse(
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v A>one\n\nid-7\n"
            "00:00:03.000 --> 00:00:04.000\n<v B>two\n"
        )
        assert t.lines() == ["A: one", "B: two"]

    @pytest.mark.parametrize("body", ["", "<v Alice></v>", "<v Alice>   </v>", "<b></b>", "&nbsp;"])
    def test_empty_cue_is_skipped(self, body: str) -> None:
        text = (
            f"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n{body}\n\n00:00:03.000 --> 00:00:04.000\nx\n"
        )
        t = parse(text)
        assert t.lines() == ["x"]
        assert t.cue_count == 1

    def test_blank_line_inside_cue_text_keeps_the_text(self) -> None:
        t = parse("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v A>Hello\n\nworld</v>\n")
        assert t.lines() == ["A: Hello world"]

    def test_timing_line_without_blank_line_starts_a_cue(self) -> None:
        t = parse(
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v A>one</v>\n"
            "00:00:02.000 --> 00:00:03.000\n<v B>two</v>\n"
        )
        assert t.lines() == ["A: one", "B: two"]

    def test_arrow_in_text_that_is_no_timing_stays_text(self) -> None:
        assert cue("a --> b").text == "a --> b"

    def test_text_before_any_cue_is_refused(self) -> None:
        with pytest.raises(BadInput, match=r"^line 3: text outside a cue"):
            parse("WEBVTT\n\nsome words\nmore words\n\n00:00:01.000 --> 00:00:02.000\nx\n")


class TestFigures:
    """Lines follow spoken order; talk time, questions and language are derived from cues."""

    SAMPLE = (
        "WEBVTT\n\n"
        "00:00:05.000 --> 00:00:07.000\n<v Bob>Second? Yes?!</v>\n\n"
        "00:00:00.000 --> 00:00:02.500\n<v Alice>First.</v>\n\n"
        "00:00:05.000 --> 00:00:06.000\n<v Alice>Tie, later in file\uff1f</v>\n\n"
        "00:00:08.000 --> 00:00:09.000\nNobody said this؟\n\n"
        "00:00:10.000 --> 00:00:09.000\n<v Bob>backwards</v>\n"
    )

    def test_lines_in_spoken_order_stable_on_ties(self) -> None:
        assert parse(self.SAMPLE).lines() == [
            "Alice: First.",
            "Bob: Second? Yes?!",
            "Alice: Tie, later in file\uff1f",
            "Nobody said this؟",
            "Bob: backwards",
        ]

    def test_cues_keep_file_order(self) -> None:
        assert [c.text for c in parse(self.SAMPLE).cues][:2] == ["Second? Yes?!", "First."]

    def test_talk_seconds(self) -> None:
        assert parse(self.SAMPLE).talk_seconds() == {"Bob": 2.0, "Alice": 3.5}

    def test_question_count(self) -> None:
        assert parse(self.SAMPLE).question_count() == 4

    def test_cue_count(self) -> None:
        assert parse(self.SAMPLE).cue_count == 5

    @pytest.mark.parametrize(
        ("text", "language"),
        [
            ("WEBVTT\n\n00:01.000 --> 00:02.000\n<lang de-DE>Hallo</lang>\n", "de-DE"),
            (
                "WEBVTT\n\n00:01.000 --> 00:02.000\n<lang de>Hallo</lang>\n\n"
                "00:02.000 --> 00:03.000\n<lang en>Hello</lang>\n",
                None,
            ),
            ("WEBVTT\nLanguage: fr\n\n00:01.000 --> 00:02.000\n<lang de>Hallo</lang>\n", "fr"),
        ],
    )
    def test_language(self, text: str, language: str | None) -> None:
        assert parse(text).language == language


def transcript(*lines: str) -> Transcript:
    return Transcript(tuple(Cue(float(i), float(i) + 1, None, t) for i, t in enumerate(lines)))


class TestSalesforceText:
    """Text__c holds the lines joined by newlines, cut at a line boundary within the limit."""

    @pytest.mark.parametrize(
        ("lines", "limit", "expected"),
        [
            (("aaa", "bbb", "ccc"), 100, ("aaa\nbbb\nccc", False)),
            (("aaa", "bbb", "ccc"), 11, ("aaa\nbbb\nccc", False)),
            (("aaa", "bbb", "ccc"), 10, ("aaa\nbbb", True)),
            (("aaa", "bbb", "ccc"), 7, ("aaa\nbbb", True)),
            (("aaa", "bbb", "ccc"), 6, ("aaa", True)),
            (("aaa", "bbb", "ccc"), 3, ("aaa", True)),
            (("aaaaaa", "b"), 4, ("aaaa", True)),
            (("a",), 0, ("", True)),
            ((), 0, ("", False)),
            (("\U0001f600\U0001f600", "x"), 4, ("\U0001f600\U0001f600", True)),
            (("\U0001f600\U0001f600", "x"), 3, ("\U0001f600", True)),
        ],
    )
    def test_cut(self, lines: tuple[str, ...], limit: int, expected: tuple[str, bool]) -> None:
        assert transcript(*lines).text_for_salesforce(limit) == expected

    def test_default_limit_is_the_field_size(self) -> None:
        long = transcript(*(["x" * 99] * 2000))  # 2000 lines of 100 chars with newlines
        text, truncated = long.text_for_salesforce()
        assert truncated is True
        assert len(text) <= 131_072
        assert len(text) > 131_072 - 100
        assert text.endswith("x" * 99)

    def test_negative_limit_is_refused(self) -> None:
        with pytest.raises(ValueError, match="limit"):
            transcript("a").text_for_salesforce(-1)


speakers = st.none() | st.text(st.characters(categories=["L", "Nd"]), min_size=1, max_size=8)
words = st.text(st.characters(categories=["L", "Nd", "Zs", "P"]), max_size=30)


class TestProperties:
    """Parsing raises only BadInput, and every cue with text becomes exactly one line."""

    @given(st.text(max_size=300))
    @settings(max_examples=400)
    def test_arbitrary_text(self, text: str) -> None:
        try:
            t = parse(text)
        except BadInput:
            return
        assert len(t.lines()) == t.cue_count

    @given(
        st.text(alphabet=st.sampled_from("WEBVT \n\r-<>/v0123456789:.&;#x\ufeffNOTE"), max_size=300)
    )
    @settings(max_examples=400)
    def test_vtt_flavoured_text(self, text: str) -> None:
        try:
            t = parse("WEBVTT\n\n" + text)
        except BadInput as exc:
            assert str(exc).startswith("line ")
            return
        assert len(t.lines()) == t.cue_count
        assert all(c.text for c in t.cues)

    @given(st.lists(st.tuples(speakers, words), max_size=12))
    def test_generated_transcripts(self, items: list[tuple[str | None, str]]) -> None:
        blocks = []
        for i, (speaker, body) in enumerate(items):
            escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            voice = f"<v {speaker}>{escaped}</v>" if speaker else escaped
            blocks.append(f"{i}\n00:00:{i:02d}.000 --> 00:00:{i + 1:02d}.000\n{voice}")
        t = parse("WEBVTT\n\n" + "\n\n".join(blocks) + "\n")
        with_text = [(s, " ".join(b.split())) for s, b in items if b.split()]
        assert [(c.speaker, c.text) for c in t.cues] == with_text
        assert len(t.lines()) == len(with_text)
