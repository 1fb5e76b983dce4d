//! The JSON text of strings, against an escaper written here from RFC 8259 as serde_json writes
//! it (vendor/serde_json is patched to find strings needing no escape eight bytes at a time: a
//! byte missed there would be a broken answer or row).

/// `"`, `\` and the control characters escaped as serde_json does (the short forms where JSON
/// has them, else `\u00xx` in lower case); everything else, multi-byte UTF-8 included, as is.
fn reference(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn check(s: &str) {
    let text = serde_json::to_string(s).expect("a string serialises");
    assert_eq!(text, reference(s), "the JSON of {s:?}");
    assert_eq!(serde_json::from_str::<String>(&text).expect("and parses back"), s);
}

#[test]
fn every_ascii_byte_at_every_position_of_short_strings() {
    for len in 1..=24 {
        for at in 0..len {
            for b in 0u8..0x80 {
                let mut s = vec![b'a'; len];
                s[at] = b;
                check(std::str::from_utf8(&s).expect("ascii"));
            }
        }
    }
    check("");
}

#[test]
fn multi_byte_text_with_and_without_escapes() {
    for s in [
        "张三",
        "北京协和医院 内科 主任医师",
        "号源已满\"请候补\"",
        "第一行\n第二行\t缩进",
        "émoji 😀 and \\ backslash",
        "\u{7f}\u{80}\u{ff}\u{100}\u{2028}\u{2029}",
        "0123456789abcdef0123456789abcdef\u{1f}",
        "a8098c1a-f86e-11da-bd1a-00112444be1e",
        "2026-12-04T09:00:00.000+08:00",
    ] {
        check(s);
    }
}

#[test]
fn random_strings() {
    // A fixed xorshift: the same strings every run, any failure reproducible.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet: Vec<char> = "abc XYZ09\"\\/\n\r\t\u{0}\u{1}\u{1f}\u{7f}é号😀-:.".chars().collect();
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let s: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        check(&s);
    }
}
